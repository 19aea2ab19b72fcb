"""docs/z2jh/values.yaml, the Zero to JupyterHub values for workshops beyond one machine.

The chart is not part of this repository, so the values are checked against a hand-written
list of the chart's documented keys (each with its type and the page of the z2jh
documentation, z2jh.jupyter.org, that documents it: the Configuration Reference section named
by the key, and the guide that uses it).  ``hub.config`` is free-form traitlets configuration:
each of its entries is checked against the real JupyterHub classes.  The values must also
agree with ``make hub`` (tools/hub): same authenticator, names, start page, limits, culling.

``python -m tools.hub.z2jh CHART_DIR`` validates the values against a checkout of the chart's
own schema; here it runs on a stand-in chart.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.hub import config as hub_config
from tools.hub.settings import VARIABLES, parse_size

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "docs" / "z2jh" / "values.yaml"
DOCKERFILE = ROOT / "docs" / "z2jh" / "Dockerfile"

_REF = "Configuration Reference"
_RES = "Customizing User Resources"
_ENV = "Customizing User Environment"
_OPT = "Optimizations"
_STO = "Customizing User Storage"
_AUTH = "Authentication and Authorization"
_NET = "Administrator Guide: Networking"

#: key path -> (allowed types, where the z2jh documentation describes it)
DOCUMENTED: dict[str, tuple[tuple[type, ...], str]] = {
    "hub.config": ((dict,), f"{_REF}: hub.config; {_AUTH}"),
    "hub.activeServerLimit": ((int,), f"{_REF}: hub.activeServerLimit"),
    "hub.concurrentSpawnLimit": ((int,), f"{_REF}: hub.concurrentSpawnLimit"),
    "singleuser.image.name": ((str,), f"{_REF}: singleuser.image; {_ENV}"),
    "singleuser.image.tag": ((str,), f"{_REF}: singleuser.image; {_ENV}"),
    "singleuser.cmd": ((str, list), f"{_REF}: singleuser.cmd"),
    "singleuser.defaultUrl": ((str,), f"{_REF}: singleuser.defaultUrl; {_ENV}"),
    "singleuser.memory.guarantee": ((str, int), f"{_REF}: singleuser.memory; {_RES}"),
    "singleuser.memory.limit": ((str, int), f"{_REF}: singleuser.memory; {_RES}"),
    "singleuser.cpu.guarantee": ((float, int), f"{_REF}: singleuser.cpu; {_RES}"),
    "singleuser.cpu.limit": ((float, int), f"{_REF}: singleuser.cpu; {_RES}"),
    "singleuser.storage.type": ((str,), f"{_REF}: singleuser.storage; {_STO}"),
    "singleuser.storage.capacity": ((str,), f"{_REF}: singleuser.storage; {_STO}"),
    "singleuser.storage.homeMountPath": ((str,), f"{_REF}: singleuser.storage; {_STO}"),
    "singleuser.lifecycleHooks": ((dict,), f"{_REF}: singleuser.lifecycleHooks; {_ENV}"),
    "singleuser.startTimeout": ((int,), f"{_REF}: singleuser.startTimeout"),
    "cull.enabled": ((bool,), f"{_REF}: cull; {_OPT}"),
    "cull.timeout": ((int,), f"{_REF}: cull.timeout"),
    "cull.every": ((int,), f"{_REF}: cull.every"),
    "cull.users": ((bool,), f"{_REF}: cull.users"),
    "scheduling.userScheduler.enabled": ((bool,), f"{_REF}: scheduling.userScheduler; {_OPT}"),
    "scheduling.podPriority.enabled": ((bool,), f"{_REF}: scheduling.podPriority; {_OPT}"),
    "scheduling.userPlaceholder.enabled": ((bool,), f"{_REF}: scheduling.userPlaceholder; "
                                           f"{_OPT}"),
    "scheduling.userPlaceholder.replicas": ((int,), f"{_REF}: scheduling.userPlaceholder"),
    "prePuller.hook.enabled": ((bool,), f"{_REF}: prePuller.hook; {_OPT}"),
    "prePuller.continuous.enabled": ((bool,), f"{_REF}: prePuller.continuous; {_OPT}"),
    "proxy.service.type": ((str,), f"{_REF}: proxy.service.type; {_NET}"),
}
#: subtrees whose inside is Kubernetes or traitlets configuration, checked separately
OPAQUE = ("hub.config", "singleuser.lifecycleHooks")


def values() -> dict[str, Any]:
    data = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if prefix in OPAQUE or not isinstance(node, dict):
        return {prefix: node}
    for key, value in node.items():
        out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def get(path: str) -> Any:
    node: Any = values()
    for key in path.split("."):
        node = node[key]
    return node


def test_every_key_is_documented_with_its_type() -> None:
    found = leaves(values())
    unknown = sorted(set(found) - set(DOCUMENTED))
    assert not unknown, f"keys not in the documented list: {unknown}"
    for path, value in found.items():
        types, where = DOCUMENTED[path]
        assert where.startswith(_REF)
        assert isinstance(value, types) and not (isinstance(value, bool) and bool not in types), \
            f"{path}={value!r} is not {[t.__name__ for t in types]} ({where})"


def test_hub_config_names_real_jupyterhub_traits() -> None:
    """Each hub.config class.trait exists and has a value its trait accepts."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.auth import Authenticator
    from jupyterhub.authenticators.shared import SharedPasswordAuthenticator

    classes = {c.__name__: c for c in (JupyterHub, Authenticator, SharedPasswordAuthenticator)}
    for cls_name, traits in get("hub.config").items():
        cls = classes[cls_name]
        for name, value in traits.items():
            trait = cls.class_traits(config=True).get(name)
            assert trait is not None, f"{cls_name}.{name} is not a configurable trait"
            if value != "":  # the passwords are given at install time
                trait.validate(cls(), list(value) if isinstance(value, list) else value)


def test_values_agree_with_make_hub() -> None:
    cfg = get("hub.config")
    assert cfg["JupyterHub"]["authenticator_class"] == "shared-password"
    assert cfg["Authenticator"]["username_pattern"] == hub_config.USERNAME_PATTERN
    assert cfg["Authenticator"]["admin_users"] == [hub_config.ADMIN]
    assert cfg["SharedPasswordAuthenticator"] == {"user_password": "", "admin_password": ""}
    assert get("singleuser.defaultUrl") == hub_config.START_URL
    assert parse_size("HUB_MEM", get("singleuser.memory.limit")) == parse_size(
        "HUB_MEM", VARIABLES["HUB_MEM"][0])
    assert float(get("singleuser.cpu.limit")) == float(VARIABLES["HUB_CPU"][0])
    assert get("cull.timeout") == int(VARIABLES["HUB_CULL_TIMEOUT"][0])
    guarantee = parse_size("HUB_MEM", get("singleuser.memory.guarantee"))
    assert 0 < guarantee <= parse_size("HUB_MEM", get("singleuser.memory.limit"))
    assert 0 < get("singleuser.cpu.guarantee") <= get("singleuser.cpu.limit")
    assert get("hub.concurrentSpawnLimit") <= get("hub.activeServerLimit")


def test_course_copy_never_overwrites_and_matches_the_image() -> None:
    command = get("singleuser.lifecycleHooks")["postStart"]["exec"]["command"]
    script = command[-1]
    assert re.search(r"\bcp -R -n /srv/course/\. ", script), script  # -n: never overwrite
    assert script.rstrip().endswith(get("singleuser.storage.homeMountPath") + "/")
    docker = DOCKERFILE.read_text(encoding="utf-8")
    assert "-f environment.yml" in docker and "tools.hub.course /srv/course" in docker
    assert get("singleuser.image.name").endswith("atlab-singleuser")


def test_no_secret_is_committed() -> None:
    cfg = get("hub.config")["SharedPasswordAuthenticator"]
    assert not cfg["user_password"] and not cfg["admin_password"]


def _chart(tmp: Path, defaults: dict[str, Any]) -> Path:
    """A stand-in chart: its defaults, and a schema shaped like the chart's (closed objects
    for the keys the values use, types on the leaves)."""
    def shape(v: Any) -> dict[str, Any]:
        if isinstance(v, dict):
            return {"type": "object", "additionalProperties": False,
                    "properties": {k: shape(x) for k, x in v.items()}}
        if isinstance(v, bool):
            return {"type": "boolean"}
        if isinstance(v, (int, float)):
            return {"type": ["number", "string"]}
        if isinstance(v, list):
            return {"type": "array"}
        return {"type": ["string", "null"]}

    (tmp / "values.schema.yaml").write_text(yaml.safe_dump(shape(values())), encoding="utf-8")
    (tmp / "values.yaml").write_text(yaml.safe_dump(defaults), encoding="utf-8")
    return tmp


def test_the_chart_schema_check_passes_good_values_and_names_bad_ones(tmp_path: Path) -> None:
    """``python -m tools.hub.z2jh CHART_DIR`` (the organiser's check with the real chart, which
    is not in this repository): values the schema accepts pass, a misspelt key and a wrong
    type are each reported with their path, helm's merge keeps the defaults' other keys."""
    from tools.hub.z2jh import merge, schema_errors

    chart = _chart(tmp_path, {"hub": {}})
    assert schema_errors(chart, values()) == []
    bad = merge(values(), {"cull": {"enabled": "yes", "timout": 60}})
    errors = schema_errors(chart, bad)
    assert any(e.startswith("cull.enabled:") for e in errors), errors
    assert any(e.startswith("cull:") and "timout" in e for e in errors), errors
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


def test_the_chart_schema_check_command(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    from tools.hub.z2jh import main

    assert main([str(_chart(tmp_path, {}))]) == 0
    assert "is valid against" in capsys.readouterr().out
    assert main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is missing" in err
