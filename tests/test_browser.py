"""Real-browser tests of the widgets: JupyterLab started here on localhost, Debian's Chromium
driven by Playwright, notebooks/widgets_demo.ipynb run with Run All, the explorers clicked.

Screenshots and the measured interaction latencies (median per interaction, target 150 ms)
go to artifacts/browser/.  Skipped, with the reason, only when Chromium or JupyterLab is
missing.  Facts about the set-up: ../shared/RECIPES.md.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
NOTEBOOK = "notebooks/widgets_demo.ipynb"
TARGET_MS = 150.0
#: The browser test fails only far above the target (a loaded CI machine); the benchmark
#: (benchmarks/bench_widgets.py) reports the medians against TARGET_MS.
FAIL_MS = float(os.environ.get("ATLAB_LATENCY_FAIL_MS", "1000"))
SAMPLES = 7


def _missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return f"Chromium is not installed ({CHROMIUM}); run tools/install-system-deps.sh"
    try:
        import jupyterlab  # noqa: F401
        import playwright  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install -e '.[dev,notebooks]')"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _notebook_bytes() -> dict[str, bytes]:
    return {str(p.relative_to(ROOT)): p.read_bytes()
            for d in ("notebooks", "exercises") for p in sorted((ROOT / d).rglob("*.ipynb"))
            if ".ipynb_checkpoints" not in p.parts}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 with temporary settings/workspaces/runtime dirs, no token, the
    news toast silenced, notebook windowing off (every widget is rendered) and autosave off (the
    server's root is the checkout: a Run All must never write outputs into its notebooks)."""
    tmp = tmp_path_factory.mktemp("lab")
    settings = tmp / "settings"
    for rel, content in {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
            {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings":
            {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings":
            {"autosave": False},
    }.items():
        path = settings / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_PLATFORM_DIRS": "1"}
    port = _free_port()
    log = (tmp / "lab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", "--allow-root", "--IdentityProvider.token=",
         "--ServerApp.password=", f"--ServerApp.root_dir={ROOT}",
         "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    saved = _notebook_bytes()
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {(tmp / 'lab.log').read_text()}")
                time.sleep(0.3)
        yield url
        changed = [p for p, b in _notebook_bytes().items() if saved.get(p) != b]
        assert not changed, f"the browser tests wrote into the checkout's notebooks: {changed}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(lab: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(45_000)
        pg.goto(f"{lab}/lab/tree/{NOTEBOOK}")
        pg.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
        pg.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        pg.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
        for cls in ("atlab-regime-explorer", "atlab-walk-stepper", "atlab-decoder",
                    "atlab-nv-explorer", "atlab-pt-builder"):
            pg.locator(f".{cls}").wait_for(state="visible", timeout=60_000)
        pg.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
        yield pg
        # every sanity-check cell passed: no error output anywhere in the notebook
        errors = pg.locator(".jp-OutputArea-output[data-mime-type*='error']").count()
        browser.close()
        assert errors == 0, "a notebook cell raised"


# One interaction: click (or type into) an element, resolve when the watched element changes.
_MEASURE_JS = """
async ([action, selector, watch, text]) => {
  const target = document.querySelector(watch);
  if (!target) throw new Error('no element ' + watch);
  const done = new Promise((resolve, reject) => {
    const t0 = performance.now();
    const obs = new MutationObserver(() => { obs.disconnect(); resolve(performance.now() - t0); });
    obs.observe(target, {subtree: true, childList: true, characterData: true, attributes: true});
    setTimeout(() => { obs.disconnect(); reject(new Error('no update of ' + watch)); }, 10000);
    const el = document.querySelector(selector);
    if (action === 'click') { el.click(); }
    else { el.value = text; el.dispatchEvent(new Event('input', {bubbles: true})); }
  });
  return await done;
}
"""

LATENCIES: dict[str, list[float]] = {}


def _measure(page: Any, name: str, action: str, selector: str, watch: str,
             text: str = "") -> float:
    ms = float(page.evaluate(_MEASURE_JS, [action, selector, watch, text]))
    LATENCIES.setdefault(name, []).append(ms)
    page.wait_for_timeout(60)  # let trailing updates of the same interaction land
    return ms


def _button(page: Any, root: str, label: str) -> Any:
    return page.locator(f"{root} .widget-toggle-button", has_text=label).first


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).first.inner_text())


def _shot(page: Any, selector: str, name: str) -> None:
    page.wait_for_function(
        "sel => [...document.querySelectorAll(sel + ' img')]"
        ".every(i => i.complete && i.naturalWidth > 0)", arg=selector)
    page.locator(selector).first.screenshot(path=str(ARTIFACTS / name))


def _assert_legible(page: Any, selector: str) -> None:
    """The figure is shown at (at least) its own size: its smallest text, >= 9 pt in the
    figure (tests/test_viz.py), is then >= 9 px tall at 100 % zoom — never scaled down to fit."""
    from atlab.widgets._common import IMAGE_DPI

    size = page.locator(f"{selector} img, {selector}").first.evaluate(
        "e => { const i = e.tagName === 'IMG' ? e : e.querySelector('img');"
        " return [i.naturalWidth, i.clientWidth, i.naturalHeight, i.clientHeight]; }")
    natural_w, shown_w, natural_h, shown_h = size
    assert natural_w > 0 and shown_w >= 0.99 * natural_w, size
    assert shown_h >= 0.99 * natural_h, size
    assert 9 * IMAGE_DPI / 72 * shown_w / natural_w >= 9


def _assert_inline_legible(page: Any) -> None:
    """The chapter's opening picture, drawn inline by matplotlib at 100 dpi: its smallest text
    (9 pt in the figure, tests/test_course.py) is >= 9 px as shown at 100 % zoom, scale-down to
    the output area's width included."""
    img = page.locator(".jp-OutputArea-output img").first
    img.wait_for()
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=img.element_handle())
    natural_w, shown_w = img.evaluate("i => [i.naturalWidth, i.clientWidth]")
    assert natural_w > 0 and shown_w > 0
    assert 9 * 100 / 72 * shown_w / natural_w >= 9, (natural_w, shown_w)


def test_regime_explorer_in_the_browser(page: Any) -> None:
    root = ".atlab-regime-explorer"
    out, par = f"{root} .atlab-regime-out", f"{root} .atlab-regime-par"
    assert "EL1&0" in _text(page, out) and "0x45678000" in _text(page, par)
    _shot(page, root, "regime_e2h1_tge0.png")
    _button(page, f"{root} .atlab-regime-tge", "TGE=1").click()
    page.locator(out, has_text="EL2&0").wait_for()
    page.locator(par, has_text="0x4abcd000").wait_for()
    assert "TTBR0_EL2" in _text(page, f"{root} .atlab-regime-registers")
    assert "mod-active" in (_button(page, f"{root} .atlab-regime-tge", "TGE=1")
                            .get_attribute("class") or "")
    _shot(page, root, "regime_e2h1_tge1.png")
    _button(page, f"{root} .atlab-regime-e2h", "E2H=0").click()
    page.locator(par, has_text="0x123456789000").wait_for()  # EL1&0 stage 1 off: flat
    assert "EL1&0" in _text(page, out)
    _shot(page, root, "regime_e2h0_tge1.png")
    # latency: alternate TGE and E2H
    for i in range(SAMPLES):
        tge = "TGE=0" if i % 2 == 0 else "TGE=1"
        _button(page, f"{root} .atlab-regime-tge", tge).evaluate("b => b.id ||= 'atlab-probe'")
        _measure(page, "regime: toggle TGE", "click", "#atlab-probe", out)
        page.evaluate("() => document.getElementById('atlab-probe').removeAttribute('id')")
    for i in range(SAMPLES):
        e2h = "E2H=1" if i % 2 == 0 else "E2H=0"
        _button(page, f"{root} .atlab-regime-e2h", e2h).evaluate("b => b.id ||= 'atlab-probe'")
        _measure(page, "regime: toggle E2H", "click", "#atlab-probe", out)
        page.evaluate("() => document.getElementById('atlab-probe').removeAttribute('id')")


def test_walk_stepper_in_the_browser(page: Any) -> None:
    root = ".atlab-walk-stepper"
    index = f"{root} .atlab-stepper-index"
    assert _text(page, index) == "1"
    _shot(page, root, "stepper_access1.png")
    page.locator(f"{root} .atlab-stepper-step").click()
    page.locator(index, has_text="2").wait_for()
    page.locator(f"{root} .atlab-stepper-step").click()
    page.locator(index, has_text="3").wait_for()
    assert "S1 L0 descriptor" in _text(page, f"{root} .atlab-stepper-descriptor")
    _shot(page, root, "stepper_access3.png")
    _assert_legible(page, f"{root} .atlab-stepper-picture")
    for _ in range(SAMPLES):
        _measure(page, "stepper: Step", "click", f"{root} .atlab-stepper-step",
                 f"{root} .atlab-stepper-counter")
    for _ in range(SAMPLES):
        _measure(page, "stepper: Back", "click", f"{root} .atlab-stepper-back",
                 f"{root} .atlab-stepper-counter")
    # to the end: why the walk ended
    for _ in range(15):
        page.locator(f"{root} .atlab-stepper-step").click()
    page.locator(index, has_text="15").wait_for()
    page.locator(f"{root} .atlab-stepper-why").wait_for()
    assert "PA 0x45678123" in _text(page, f"{root} .atlab-stepper-ended")
    _shot(page, root, "stepper_end.png")


def test_decoder_in_the_browser(page: Any) -> None:
    root = ".atlab-decoder"
    field = f"{root} .atlab-decoder-value input"
    page.locator(field).fill("0x81f")
    page.locator(f"{root} .atlab-decoder-fields", has_text="PAR_EL1=0x000000000000081f").wait_for()
    page.locator(field).fill("0xzz")
    page.locator(f"{root} .atlab-error", has_text="not a number").wait_for()
    assert page.locator(f"{root} .jp-OutputArea-output[data-mime-type*='error']").count() == 0
    for i in range(SAMPLES):
        _measure(page, "decoder: type PAR", "type", field, f"{root} .atlab-decoder-fields",
                 text=hex(0xB0D + 2 * i))
    _shot(page, root, "decoder_par.png")
    _assert_legible(page, f"{root} .atlab-decoder-picture")


def test_nv_explorer_in_the_browser(page: Any) -> None:
    root = ".atlab-nv-explorer"
    path = f"{root} .atlab-nv-path"
    assert _text(page, path) == "software walker"
    page.locator(f"{root} .atlab-nv-run").click()
    page.wait_for_timeout(1000)  # the re-run renders the same page: nothing to wait for
    # Run again: the emulated AT filled no hole in L0's stage 2, so the software walker again.
    assert _text(page, path) == "software walker"
    _shot(page, root, "nv_run_again.png")
    _assert_legible(page, f"{root} .atlab-nv-picture")
    _button(page, f"{root} .atlab-nv-context", "L2 at EL0").click()
    page.locator(path, has_text="UNDEFINED").wait_for()
    for i in range(SAMPLES):
        ctx = "L1 at vEL2" if i % 2 == 0 else "L2 at EL0"
        _button(page, f"{root} .atlab-nv-context", ctx).evaluate("b => b.id ||= 'atlab-probe'")
        _measure(page, "nv: switch context", "click", "#atlab-probe", f"{root} .atlab-nv-route")
        page.evaluate("() => document.getElementById('atlab-probe').removeAttribute('id')")


def test_page_table_builder_in_the_browser(page: Any) -> None:
    root = ".atlab-pt-builder"
    dump = f"{root} .atlab-builder-ptdump"
    page.locator(dump, has_text="L2 BLK").wait_for()  # the notebook's sanity cell added one
    page.locator(f"{root} .atlab-builder-export").click()
    page.locator(f"{root} .atlab-builder-scenario textarea").wait_for()
    page.wait_for_function(
        "sel => document.querySelector(sel).value.includes('TTBR0_EL1')",
        arg=f"{root} .atlab-builder-scenario textarea")
    _shot(page, root, "builder.png")


def test_latency_report(page: Any) -> None:
    """Write artifacts/browser/latency.json: the median per interaction (target 150 ms)."""
    assert LATENCIES, "the interaction tests did not run"
    report = {
        "target_ms": TARGET_MS,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "browser": page.context.browser.version,
        "method": "click/input in Chromium -> MutationObserver on the widget's output "
                  "(kernel round trip + render)",
        "interactions": {name: {"median_ms": round(statistics.median(v), 1),
                                "max_ms": round(max(v), 1), "samples": len(v)}
                         for name, v in LATENCIES.items()},
    }
    (ARTIFACTS / "latency.json").write_text(json.dumps(report, indent=2) + "\n")
    slow = {n: r["median_ms"] for n, r in report["interactions"].items()
            if r["median_ms"] > FAIL_MS}
    assert not slow, f"interactions far slower than the {TARGET_MS} ms target: {slow}"


# --- the course: the start-here notebook and one exercise, run in JupyterLab ----------------

def _run_all(pg: Any, lab: str, path: str) -> None:
    # A workspace of its own per notebook: JupyterLab does not reopen the previous one.
    pg.goto(f"{lab}/lab/workspaces/{Path(path).stem}/tree/{path}")
    pg.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
    pg.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    pg.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


@pytest.fixture(scope="module")
def course_page(page: Any) -> Iterator[Any]:
    """A second tab in the same browser (one Playwright instance per process)."""
    pg = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    pg.set_default_timeout(45_000)
    yield pg
    pg.close()


@pytest.mark.parametrize(
    ("path", "expect"),
    [("notebooks/00a_primer.ipynb", "PAR_EL1=0xff00000045678b80"),
     ("exercises/09_predict_par.ipynb", "not attempted")],
    ids=["primer", "exercise-09-student-copy"],
)
def test_course_notebook_runs_and_its_widget_answers(course_page: Any, lab: str, path: str,
                                                     expect: str) -> None:
    pg = course_page
    _run_all(pg, lab, path)
    root = ".atlab-decoder"
    pg.locator(root).first.wait_for(state="visible", timeout=60_000)
    pg.locator("#jp-main-statusbar").get_by_text("| Idle").wait_for()
    try:
        pg.locator(".jp-OutputArea-output", has_text=expect).first.wait_for()
    finally:
        pg.screenshot(path=str(ARTIFACTS / f"course_{Path(path).stem}.png"))
    if path.endswith("00a_primer.ipynb"):
        _assert_inline_legible(pg)
    field = f"{root} .atlab-decoder-value input"
    pg.locator(field).first.fill("0xb0d")
    pg.locator(f"{root} .atlab-decoder-fields",
               has_text="PAR_EL1=0x0000000000000b0d").first.wait_for()
    pg.screenshot(path=str(ARTIFACTS / f"course_{Path(path).stem}.png"))
    assert pg.locator(".jp-OutputArea-output[data-mime-type*='error']").count() == 0


# --- every chapter of the course, Run All in JupyterLab --------------------------------------

CHAPTERS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))

#: True once every code cell of the open notebook shows an execution count (none is "[*]" or
#: empty): Run All has finished, whatever the status bar said in between.
_ALL_CELLS_RAN = """() => {
  const prompts = [...document.querySelectorAll(
      '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


#: Shuts every kernel down from inside the page (the server wants the page's XSRF cookie for a
#: DELETE), so the chapters' kernels do not pile up on a 2-core machine.
_SHUT_DOWN_KERNELS = """async () => {
  const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
  const headers = {'X-XSRFToken': decodeURIComponent(xsrf)};
  const kernels = await (await fetch('/api/kernels')).json();
  for (const k of kernels) {
    const r = await fetch('/api/kernels/' + k.id, {method: 'DELETE', headers});
    if (!r.ok) throw new Error('kernel shutdown: HTTP ' + r.status);
  }
  return kernels.length;
}"""


def test_the_chapters_are_the_course() -> None:
    """The list below is the course: the primer and chapters 01-11 (a rename must not empty it)."""
    assert "notebooks/00a_primer.ipynb" in CHAPTERS
    assert len(CHAPTERS) >= 13, CHAPTERS


@pytest.mark.parametrize("path", CHAPTERS, ids=[Path(p).stem for p in CHAPTERS])
def test_chapter_runs_in_chromium(course_page: Any, lab: str, path: str) -> None:
    """Run All on the chapter in JupyterLab: every code cell runs (its sanity-check cells
    included) and none shows an error output in the browser."""
    pg = course_page
    try:
        _run_all(pg, lab, path)
        pg.wait_for_function(_ALL_CELLS_RAN, timeout=240_000, polling=500)
        errors = pg.locator(".jp-NotebookPanel:not(.lm-mod-hidden) "
                            ".jp-OutputArea-output[data-mime-type*='error']")
        text = errors.first.inner_text()[:300] if errors.count() else ""
        assert errors.count() == 0, f"{path}: a cell raised in the browser: {text}"
    finally:
        pg.screenshot(path=str(ARTIFACTS / f"chapter_{Path(path).stem}.png"))
        pg.evaluate(_SHUT_DOWN_KERNELS)
