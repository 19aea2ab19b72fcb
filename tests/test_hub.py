"""The workshop hub in a real browser (issue 18): ``python -m tools.hub`` on a free port for a
room of two, two learners logged in with Chromium, each running chapter 02 from their own copy,
stepping the walk stepper and running an exercise checker; then the room's failure cases:

(a) a third learner beyond ``active_server_limit`` gets JupyterHub's limit page at once;
(b) learner A's kernel killed and A's server stopped: nobody's saved work is lost, B's kernel
    keeps running;
(c) the hub restarted (with a short idle-cull time): A's files are still A's, and after the
    idle culler stops A's server they still are.

The tests run in file order and share one room.  Skipped, with the reason, only when Chromium,
JupyterHub or the proxy is missing outside CI; with CI=true a missing part fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS
from tools.hub import limits

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "atlab-room-pw"
EXERCISE = "exercises/01_decode_descriptor.ipynb"
CHAPTER = "notebooks/02_stage1_walk.ipynb"
A, B, C = "ada", "bob", "cy"
T = 60_000  # ms: a generous wait for each step on a loaded 2-core machine


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"Chromium is not installed ({CHROMIUM}); run tools/install-system-deps.sh"
    try:
        import jupyterhub  # noqa: F401
        import jupyterhub_idle_culler  # noqa: F401
        import playwright  # noqa: F401
        import psutil  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[dev,notebooks,hub]')"
    if shutil.which("configurable-http-proxy") is None:
        return "configurable-http-proxy is missing: sh tools/install-system-deps.sh hub"
    return None


_WHY = _missing()
pytestmark = pytest.mark.skipif(
    _WHY is not None and os.environ.get("CI") != "true", reason=_WHY or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Room:
    """One hub process and its state directory (kept across restarts)."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self, cull_timeout: int = 3600) -> None:
        log = self.state.parent / f"hub-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tools.hub", "--ip", "127.0.0.1", "--port",
                 str(self.port), "--learners", "2", "--dir", str(self.state),
                 "--password", PASSWORD, "--cull-timeout", str(cull_timeout), "--mem", "1G"],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/hub/api/", timeout=5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the hub did not start: {self.log_text()[-3000:]}")
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(45)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            pytest.fail("the hub did not stop within 45 s of SIGTERM")

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())

    def home(self, name: str) -> Path:
        return self.state / "home" / name


def _learner_processes(name: str, kind: str) -> list[Any]:
    """The learner's processes: kind 'ipykernel' (kernels) or 'jupyterhub.singleuser'."""
    import psutil

    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if kind in " ".join(p.info["cmdline"] or []) and \
                    p.environ().get("JUPYTERHUB_USER") == name:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _digest(home: Path, skip: set[str]) -> dict[str, str]:
    out = {}
    for top in ("notebooks", "exercises"):
        for p in sorted((home / top).rglob("*")):
            rel = p.relative_to(home).as_posix()
            if p.is_file() and ".ipynb_checkpoints" not in rel and rel not in skip:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def room(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Room]:
    if _WHY is not None:
        pytest.fail(_WHY)
    r = Room(tmp_path_factory.mktemp("hub") / "state")
    r.start()
    try:
        yield r
    finally:
        r.stop()
        for name in (A, B, C):  # nothing of the room left running
            for kind in ("ipykernel", "jupyterhub.singleuser"):
                for p in _learner_processes(name, kind):
                    p.kill()


@pytest.fixture(scope="module")
def hub_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(browser: Any, room: Room, name: str) -> Any:
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(T)
    page.goto(f"{room.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    return page


def wait_lab(page: Any, name: str) -> None:
    page.wait_for_url(f"**/user/{name}/lab/**")
    page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()


def open_notebook(page: Any, room: Room, name: str, path: str) -> None:
    """Open ``path`` alone (``?reset``: no tabs restored from the last visit, no extra
    kernels) and wait for its kernel."""
    page.goto(f"{room.url}/user/{name}/lab/tree/{path}?reset")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first.wait_for()
    page.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()


def run_all(page: Any) -> None:
    """Run > Run All, until a cell shows it ran (a click while JupyterLab is still settling
    can be lost)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ran = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt",
                       has_text=re.compile(r"\[(\*|\d+)\]")).first
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        try:
            ran.wait_for(timeout=15_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail("Run All did not start the notebook")


def open_and_run_all(page: Any, room: Room, name: str, path: str) -> None:
    open_notebook(page, room, name, path)
    run_all(page)


def outputs(page: Any) -> str:
    return "\n".join(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea")
                     .all_inner_texts())


PAGES: dict[str, Any] = {}
ARTIFACTS = ROOT / "artifacts" / "hub"


@pytest.fixture(autouse=True)
def _screenshots_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failing test leaves each learner's page in artifacts/hub/ (what the learner saw)."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed > failed_before or sys.exc_info()[0] is not None:
        _shoot(request.node.name)


def _shoot(test: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, page in PAGES.items():
        with contextlib.suppress(Exception):  # the page may be closed
            page.screenshot(path=str(ARTIFACTS / f"{test}-{name}.png"))


def test_two_learners_run_chapter_02_and_an_exercise(room: Room, hub_browser: Any) -> None:
    for name in (A, B):
        PAGES[name] = login(hub_browser, room, name)
    for name in (A, B):
        wait_lab(PAGES[name], name)
        # each learner works in their own copy of the course
        assert (room.home(name) / CHAPTER).is_file()
        assert _learner_processes(name, "jupyterhub.singleuser"), f"{name} has no server"
    # the limits the start banner announces are on the learners' real processes
    banner = room.log_text()
    for name in (A, B):
        for proc in _learner_processes(name, "jupyterhub.singleuser"):
            if "(cgroup v1)" in banner:
                assert limits.cgroup_of(proc.pid, "memory") == f"/{limits.GROUP}/{name}"
                assert limits.cgroup_of(proc.pid, "cpu") == f"/{limits.GROUP}/{name}"
            else:
                assert "RLIMIT_AS" in banner
                assert proc.rlimit(resource.RLIMIT_AS)[0] == 2**30 + limits.RLIMIT_AS_SLACK
    for name in (A, B):
        open_and_run_all(PAGES[name], room, name, CHAPTER)
    for name in (A, B):
        pg = PAGES[name]
        stepper = pg.locator(".atlab-walk-stepper")
        stepper.wait_for(state="visible")
        pg.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
        text = outputs(pg)
        assert "HA=0:" in text and "IPS=32 bits:" in text, text[:2000]
        assert pg.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0
        index = ".atlab-walk-stepper .atlab-stepper-index"
        assert pg.locator(index).first.inner_text() == "1"
        before = pg.locator(".atlab-walk-stepper .atlab-stepper-descriptor").first.inner_text()
        pg.locator(".atlab-walk-stepper .atlab-stepper-step").click()
        pg.locator(index, has_text="2").wait_for()
        pg.wait_for_function(
            "t => document.querySelector('.atlab-walk-stepper .atlab-stepper-descriptor')"
            ".innerText !== t", arg=before)
    # A solves exercise 01 in the browser; B runs the untouched stub: the checkers say so.
    solution = next("".join(c["source"]) for c in json.loads(
        (ROOT / "exercises/solutions/01_decode_descriptor.ipynb").read_text())["cells"]
        if "solution" in c["metadata"].get("tags", []) and c["cell_type"] == "code")
    pa = PAGES[A]
    open_notebook(pa, room, A, EXERCISE)
    stub = pa.locator(".jp-CodeCell", has_text="raise NotImplementedError").locator(
        ".cm-content")
    stub.click()
    pa.keyboard.press("Control+a")
    pa.keyboard.insert_text(solution)
    pa.keyboard.press("Escape")
    pa.keyboard.press("Control+s")
    for name in (A, B):
        if name == B:
            open_and_run_all(PAGES[B], room, B, EXERCISE)
        else:
            run_all(pa)
    pa.get_by_text("✓ decode_s1_descriptor: all cases pass").wait_for()
    PAGES[B].get_by_text("decode_s1_descriptor: not attempted").first.wait_for()
    pa.keyboard.press("Control+s")
    saved = room.home(A) / EXERCISE
    deadline = time.monotonic() + 30
    while "pgshift = granule.pgshift" not in saved.read_text():
        assert time.monotonic() < deadline, "A's solution was not saved to A's copy"
        time.sleep(0.5)
    assert "pgshift = granule.pgshift" not in (room.home(B) / EXERCISE).read_text()
    assert "raise NotImplementedError" in (ROOT / EXERCISE).read_text()  # the course untouched


def test_a_learner_beyond_the_limit_gets_a_clear_page(room: Room, hub_browser: Any) -> None:
    t0 = time.monotonic()
    page = login(hub_browser, room, C)
    page.locator("h1", has_text="Active user limit exceeded").wait_for(timeout=30_000)
    assert time.monotonic() - t0 < 30
    assert page.locator("h1").first.inner_text().startswith("429")
    assert "Try again in a few minutes" in page.locator("body").inner_text()
    assert not _learner_processes(C, "jupyterhub.singleuser")
    page.context.close()


def test_killing_and_stopping_a_learner_loses_no_saved_work(room: Room) -> None:
    open_files = {CHAPTER, EXERCISE}  # the browser may autosave these two
    before = {n: _digest(room.home(n), open_files) for n in (A, B)}
    kernels_a = _learner_processes(A, "ipykernel")
    kernels_b = _learner_processes(B, "ipykernel")
    assert kernels_a and kernels_b
    for p in kernels_a:
        p.kill()
    # JupyterLab restarts A's kernel; B's kernels are untouched
    PAGES[A].locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
    assert all(p.is_running() for p in kernels_b)
    # A stops their server (what the idle culler does, through the same hub API)
    pa = PAGES[A]
    pa.goto(f"{room.url}/hub/home")
    pa.locator("#stop").click()
    pa.locator("#start").wait_for()
    deadline = time.monotonic() + 30
    while _learner_processes(A, "jupyterhub.singleuser"):
        assert time.monotonic() < deadline, "A's server did not stop"
        time.sleep(0.5)
    assert all(p.is_running() for p in kernels_b)
    after = {n: _digest(room.home(n), open_files) for n in (A, B)}
    assert after == before
    assert "pgshift = granule.pgshift" in (room.home(A) / EXERCISE).read_text()
    json.loads((room.home(A) / EXERCISE).read_text())  # still a whole notebook
    # B still works: the kernel answers
    pb = PAGES[B]
    pb.locator(".jp-CodeCell", has_text="check_decode_s1_descriptor(").last.click()
    pb.keyboard.press("Shift+Enter")
    pb.get_by_text("decode_s1_descriptor: not attempted").first.wait_for()


def test_a_restarted_hub_keeps_the_learners_files(room: Room, hub_browser: Any) -> None:
    open_files = {CHAPTER, EXERCISE}
    before = {n: _digest(room.home(n), open_files) for n in (A, B)}
    for pg in PAGES.values():
        pg.context.close()
    room.stop()
    assert not _learner_processes(B, "jupyterhub.singleuser"), "B's server outlived the hub"
    room.start(cull_timeout=20)
    page = login(hub_browser, room, A)
    wait_lab(page, A)
    open_notebook(page, room, A, EXERCISE)  # A's saved solution, not a fresh copy
    page.locator(".cm-content", has_text="pgshift = granule.pgshift").first.wait_for()
    assert {n: _digest(room.home(n), open_files) for n in (A, B)} == before
    page.context.close()
    # the idle culler (jupyterhub-idle-culler, timeout 20 s here) stops A's idle server
    deadline = time.monotonic() + 90
    while _learner_processes(A, "jupyterhub.singleuser"):
        assert time.monotonic() < deadline, "the idle culler did not stop A's server"
        time.sleep(1)
    assert f"Culling server {A} (inactive for" in room.log_text()
    assert {n: _digest(room.home(n), open_files) for n in (A, B)} == before
    assert "pgshift = granule.pgshift" in (room.home(A) / EXERCISE).read_text()
