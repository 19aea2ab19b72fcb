"""The workshop hub's parts without a browser (tools/hub): settings and their one-line errors
(with a fuzz run), the launcher's checks (port in use, proxy missing, bad value), the course
copy that never overwrites, and the per-learner limits measured on a real process.  The hub
itself in a browser: tests/test_hub.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab.errors import AtlabError
from tools.hub import course, limits
from tools.hub.settings import VARIABLES, HubSettings, parse_settings, parse_size

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("values", "field", "expected"), [
    ({}, "learners", 10),
    ({"HUB_LEARNERS": " 20 "}, "learners", 20),
    ({"HUB_MEM": "768M"}, "mem_bytes", 768 * 2**20),
    ({"HUB_MEM": "1.5GiB"}, "mem_bytes", 3 * 2**29),
    ({"HUB_CPU": "0.5"}, "cpu", 0.5),
    ({"HUB_IP": "127.0.0.1"}, "ip", "127.0.0.1"),
    ({"HUB_LEARNERS": "3"}, "spawn_limit", 3),  # never more spawns at once than learners
    ({"HUB_SPAWN_LIMIT": "1"}, "spawn_limit", 1),
    ({"HUB_SOLUTIONS": "1"}, "solutions", True),
    ({"HUB_DIR": "room"}, "state_dir", ROOT / "room"),
    ({"HUB_LIMITS": "rlimit"}, "limits", "rlimit"),
], ids=lambda v: str(v))
def test_settings(values: dict[str, str], field: str, expected: object) -> None:
    s = parse_settings(values, root=ROOT, cores=2)
    assert getattr(s, field) == expected
    assert HubSettings.from_json(s.to_json()) == s


@pytest.mark.parametrize(("values", "message"), [
    ({"HUB_LEARNERS": "abc"}, "HUB_LEARNERS='abc' is not a whole number"),
    ({"HUB_LEARNERS": "0"}, "HUB_LEARNERS='0' is out of range"),
    ({"HUB_PORT": "70000"}, "HUB_PORT='70000' is out of range"),
    ({"HUB_IP": "localhost:80"}, "is not an IP address"),
    ({"HUB_MEM": "lots"}, "is not a size like 768M or 1G"),
    ({"HUB_MEM": "100M"}, "HUB_MEM='100M' is out of range"),
    ({"HUB_CPU": "-1"}, "is not a number of cores"),
    ({"HUB_CPU": "0.01"}, "is out of range"),
    ({"HUB_PASSWORD": "short"}, "shorter than 8 characters"),
    ({"HUB_SOLUTIONS": "yes"}, "is not 0 or 1"),
    ({"HUB_LIMITS": "docker"}, "is not auto, cgroup-v1 or rlimit"),
    ({"HUB_DIR": "~no-such-user-atlab/x"}, "names an unknown home directory"),
    ({"HUB_LERNERS": "5"}, "unknown setting 'HUB_LERNERS'"),
], ids=lambda v: str(v))
def test_bad_settings_are_one_line(values: dict[str, str], message: str) -> None:
    with pytest.raises(AtlabError, match=message.replace("(", r"\(")) as info:
        parse_settings(values, root=ROOT, cores=2)
    assert "\n" not in str(info.value)


@settings(deadline=None, max_examples=300)
@given(name=st.sampled_from(list(VARIABLES)), raw=st.text(max_size=40))
def test_fuzzed_settings_parse_or_fail_in_one_line(name: str, raw: str) -> None:
    try:
        s = parse_settings({name: raw}, root=ROOT, cores=2)
    except AtlabError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(name)
    else:
        assert 1 <= s.learners <= 500 and 256 * 2**20 <= s.mem_bytes <= 64 * 2**30


@settings(deadline=None, max_examples=200)
@given(raw=st.from_regex(r"\s*\d{1,4}(\.\d{1,2})?\s*[kKmMgGtT]?(i?[bB])?\s*", fullmatch=True))
def test_sizes(raw: str) -> None:
    assert parse_size("HUB_MEM", raw) >= 0


_OPTIONS = ["--" + n.removeprefix("HUB_").lower().replace("_", "-") for n in VARIABLES]


@settings(deadline=None, max_examples=60)
@given(args=st.lists(st.tuples(st.sampled_from([*_OPTIONS, "--bogus", "-x"]),
                               st.text(max_size=20)), max_size=4))
def test_fuzzed_launcher_options(args: list[tuple[str, str]], tmp_path_factory: Any) -> None:
    """Any options: status 0 (the room printed) or 2 with one line, never a traceback."""
    import contextlib
    import io

    from tools.hub.__main__ import main

    argv = [x for pair in args if pair[0] != "--dir" for x in pair]
    state = tmp_path_factory.mktemp("fz")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([*argv, "--check", "--ip", "127.0.0.1", "--port", str(_free_port()),
                       "--dir", str(state)], env={"PATH": os.environ["PATH"]})
    if status == 2:
        assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("hub: ")
    else:
        assert status == 0 and "atlab hub:" in out.getvalue(), err.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launcher(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.hub", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def _one_line_error(run: subprocess.CompletedProcess[str], text: str) -> None:
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("hub: "), run.stderr
    assert text in run.stderr and "Traceback" not in run.stderr


def test_launcher_bad_value(tmp_path: Path) -> None:
    run = _launcher("--check", "--dir", str(tmp_path), env={"HUB_LEARNERS": "abc"})
    _one_line_error(run, "HUB_LEARNERS='abc' is not a whole number")
    _one_line_error(_launcher("--learners"), "expected one argument")


def test_launcher_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        run = _launcher("--check", "--ip", "127.0.0.1", "--port", str(port),
                        "--dir", str(tmp_path))
    _one_line_error(run, f"port {port} on 127.0.0.1 is in use")


def test_launcher_proxy_missing(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    run = _launcher("--check", "--ip", "127.0.0.1", "--port", str(_free_port()),
                    "--dir", str(tmp_path),
                    env={"PATH": str(empty)})
    if (ROOT / "build" / "node" / "bin" / "configurable-http-proxy").exists():
        pytest.skip("a local proxy under build/node is found whatever PATH says")
    _one_line_error(run, "configurable-http-proxy is not installed")


def test_forced_cgroup_without_cgroups_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(AtlabError, match="HUB_LIMITS=cgroup-v1 but") as info:
        limits.detect(2**30, 1.0, cgroup_root=tmp_path, want="cgroup-v1")
    assert "\n" not in str(info.value)
    assert limits.detect(2**30, 1.0, cgroup_root=tmp_path).mode == "rlimit"


def test_launcher_check_prints_the_room(tmp_path: Path) -> None:
    run = _launcher("--check", "--ip", "127.0.0.1", "--port", str(_free_port()),
                    "--dir", str(tmp_path),
                    "--learners", "3", "--password", "workshop-pw")
    assert run.returncode == 0, run.stderr
    assert "(3 learners)" in run.stdout and "password workshop-pw" in run.stdout
    assert (tmp_path / "launch.json").stat().st_mode & 0o077 == 0  # holds the passwords
    assert len((tmp_path / "admin-password").read_text().strip()) >= 32


def test_course_copy_never_overwrites(tmp_path: Path) -> None:
    home = tmp_path / "ada"
    first = course.copy_course(ROOT, home)
    names = {p.as_posix() for p in first}
    assert "notebooks/02_stage1_walk.ipynb" in names
    assert "exercises/01_decode_descriptor.ipynb" in names
    assert "tests/data/conformance/smoke.json" in names  # chapters read it via Path("..")
    assert not any(n.startswith("exercises/solutions/") for n in names)
    work = home / "exercises" / "01_decode_descriptor.ipynb"
    work.write_text("my work")
    (home / "notebooks" / "00a_primer.ipynb").unlink()
    again = course.copy_course(ROOT, home)
    assert again == [Path("notebooks/00a_primer.ipynb")]  # only what is missing
    assert work.read_text() == "my work"
    with_sol = course.copy_course(ROOT, home, solutions=True)
    assert with_sol and all(p.parts[:2] == ("exercises", "solutions") for p in with_sol)


_HOG = "b = bytearray(700 * 2**20); print('allocated')"


def test_limits_stop_a_learner_over_memory(tmp_path: Path) -> None:
    """A learner's process allocating beyond its limit fails (cgroup: killed by the OOM
    killer; rlimit: MemoryError); under the limit it runs.  Whatever mode this machine allows
    is the one measured."""
    mem = 300 * 2**20
    lim = limits.detect(mem, 0.5)
    name = f"test-{os.getpid()}"
    procs = limits.prepare(lim, name)
    try:
        small = subprocess.run([sys.executable, "-c", "b = bytearray(50 * 2**20)"],
                               preexec_fn=limits.preexec(lim, procs), capture_output=True)
        assert small.returncode == 0, small.stderr
        hog = _HOG if lim.mode == "cgroup-v1" else _HOG.replace("700", str(
            (mem + limits.RLIMIT_AS_SLACK) // 2**20 + 100))
        big = subprocess.run([sys.executable, "-c", hog], preexec_fn=limits.preexec(lim, procs),
                             capture_output=True, text=True)
        assert "allocated" not in big.stdout
        if lim.mode == "cgroup-v1":
            assert big.returncode == -9  # SIGKILL from the cgroup's OOM killer
            assert limits.cgroup_of(os.getpid(), "memory") != f"/{limits.GROUP}/{name}"
        else:
            assert "MemoryError" in big.stderr
    finally:
        limits.release(lim, name)
