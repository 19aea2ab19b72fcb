"""``python -m tools.hub``: the atlab workshop hub (JupyterHub) on this machine.

Checks first, each failure one line and exit status 2: the settings (``HUB_*`` variables or
the options below), the public port, the proxy (``configurable-http-proxy``), JupyterHub
itself.  Then it writes the launch record into the state directory, prints the address, the
learners' password and the limits, and runs ``jupyterhub`` in its place (Ctrl-C stops it and
every learner's server; their files stay in ``<state>/home``).

    python -m tools.hub --learners 20 --port 8000 --mem 1G --cpu 1
    python -m tools.hub --check      # print what would run, start nothing
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from atlab.errors import AtlabError, clip
from tools.hub import limits
from tools.hub.config import ADMIN
from tools.hub.settings import VARIABLES, HubSettings, parse_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).resolve().parent / "jupyterhub_config.py"
#: Debian's node-configurable-http-proxy keeps its modules here; a Node.js not from Debian
#: (e.g. NodeSource's) does not look there by itself.
DEBIAN_NODE_MODULES = Path("/usr/share/nodejs")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise AtlabError(f"{message} (python -m tools.hub --help)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tools.hub", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, (default, help_) in VARIABLES.items():
        opt = "--" + name.removeprefix("HUB_").lower().replace("_", "-")
        p.add_argument(opt, dest=name, metavar="V",
                       help=f"{help_} [{name}; default {default or 'see text'}]")
    p.add_argument("--check", action="store_true",
                   help="check everything and print the launch record; start nothing")
    return p


def node_env(env: Mapping[str, str]) -> dict[str, str]:
    out = dict(env)
    if DEBIAN_NODE_MODULES.is_dir():
        parts = [p for p in out.get("NODE_PATH", "").split(os.pathsep) if p]
        if str(DEBIAN_NODE_MODULES) not in parts:
            out["NODE_PATH"] = os.pathsep.join([*parts, str(DEBIAN_NODE_MODULES)])
    return out


def find_proxy(env: Mapping[str, str]) -> str:
    """The configurable-http-proxy command, checked to run."""
    path = shutil.which("configurable-http-proxy", path=env.get("PATH"))
    local = ROOT / "build" / "node" / "bin" / "configurable-http-proxy"
    if path is None and local.exists():
        path = str(local)
    if path is None:
        raise AtlabError("configurable-http-proxy is not installed: run "
                         "'sh tools/install-system-deps.sh hub' (Debian package "
                         "node-configurable-http-proxy)")
    try:
        run = subprocess.run([path, "--version"], env=node_env(env), capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AtlabError(f"configurable-http-proxy ({path}) does not run: {exc}") from None
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no output"])
        why = next((ln for ln in last if ln.startswith("Error")), last[-1])
        raise AtlabError(f"configurable-http-proxy ({path}) does not run: {clip(why, 120)}")
    return path


def check_port(ip: str, port: int) -> None:
    """Fail if something listens on (ip, port); TIME_WAIT leftovers are fine."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as exc:
            raise AtlabError(f"port {port} on {ip} is in use or not available "
                             f"({exc.strerror}): choose another with HUB_PORT=... "
                             f"(make hub HUB_PORT={port + 1})") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _secret_file(path: Path, given: str | None, nbytes: int) -> str:
    """The password in ``path`` (written once, mode 600); a given one replaces it."""
    if given is None and path.exists():
        return path.read_text(encoding="utf-8").strip()
    value = given or secrets.token_urlsafe(nbytes)
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return value


def prepare(settings: HubSettings, env: Mapping[str, str]) -> dict[str, Any]:
    """Check the port and the proxy, make the state directory; the launch record."""
    try:
        import jupyterhub  # noqa: F401
        import jupyterhub_idle_culler  # noqa: F401
    except ImportError as exc:
        raise AtlabError(f"{exc.name} is not installed: pip install -e '.[hub]' "
                         "(or make hub)") from None
    check_port(settings.ip, settings.port)
    proxy = find_proxy(env)
    state = settings.state_dir
    try:
        (state / "home").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AtlabError(f"cannot make the state directory {clip(str(state))}: "
                         f"{exc.strerror}") from None
    lim = limits.detect(settings.mem_bytes, settings.cpu, want=settings.limits)
    return {
        "settings": settings.to_json(),
        "root": str(ROOT),
        "proxy": proxy,
        "hub_port": free_port(),
        "proxy_api_port": free_port(),
        "password": _secret_file(state / "learner-password", settings.password, 6),
        "admin_password": _secret_file(state / "admin-password", None, 32),
        "limits_mode": lim.mode,
        "limits": limits.describe(lim),
    }


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    try:
        opts = vars(_parser().parse_args(argv))
        check_only = opts.pop("check")
        # only the hub's own names: other tools use HUB_* too (GitHub's `hub`: HUB_PROTOCOL)
        values = {k: v for k, v in env.items() if k in VARIABLES}
        values.update({k: v for k, v in opts.items() if v is not None})
        settings = parse_settings(values, root=ROOT, cores=os.cpu_count() or 1)
        launch = prepare(settings, env)
        record = settings.state_dir / "launch.json"
        try:
            record.write_text(json.dumps(launch, indent=1), encoding="utf-8")
            record.chmod(0o600)
        except OSError as exc:
            raise AtlabError(f"cannot write {clip(str(record))}: {exc.strerror}") from None
    except AtlabError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    host = "<this machine>" if settings.ip in ("0.0.0.0", "::") else settings.ip
    print(f"atlab hub: http://{host}:{settings.port}/  ({settings.learners} learners)\n"
          f"  learners: any name, password {launch['password']}\n"
          f"  organiser: user '{ADMIN}', password in {settings.state_dir / 'admin-password'}\n"
          f"  limits: {launch['limits']}; idle servers stopped after "
          f"{settings.cull_timeout} s\n  state: {settings.state_dir}", flush=True)
    if check_only:
        return 0
    child_env = node_env(env)
    child_env["ATLAB_HUB_LAUNCH"] = str(record)
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    os.chdir(settings.state_dir)
    # A shell's background job ignores SIGINT; the proxy and services would inherit that and
    # make JupyterHub's shutdown wait out its timeouts.
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    os.execve(sys.executable, [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
              child_env)


if __name__ == "__main__":
    sys.exit(main())
