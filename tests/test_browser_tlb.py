"""The TLB explorer in a real browser: notebooks/widgets_demo.ipynb run in JupyterLab (the
fixtures of test_browser.py, reused), the explorer clicked until the last AT returns the old
PA (TLBI forgotten, wrong ASID) or the new one, a bad input answered on the error line.

Screenshots go to artifacts/browser/tlb_*.png.  Skipped, with the reason, only when Chromium
or JupyterLab is missing (as test_browser.py)."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser import (  # noqa: F401  (lab and page are fixtures)
    FAIL_MS,
    LATENCIES,
    SAMPLES,
    _measure,
    _missing,
    _shot,
    _text,
    lab,
    page,
)

pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")

ROOT = ".atlab-tlb-explorer"
VERDICT = f"{ROOT} .atlab-tlb-verdict"


def _run_all(pg: Any, expect: str) -> None:
    pg.locator(f"{ROOT} .atlab-tlb-run").click()
    pg.locator(VERDICT, has_text=expect).wait_for()


def test_tlb_explorer_in_the_browser(page: Any) -> None:  # noqa: F811
    pg = page
    pg.locator(ROOT).wait_for(state="visible", timeout=60_000)
    pg.locator(VERDICT, has_text="Press Step").wait_for()  # the sanity cell reset it
    # forget the TLBI: the last AT is answered by the stale entry
    pg.locator(f"{ROOT} .atlab-tlb-forget-tlbi input[type=checkbox]").click()
    pg.locator(f"{ROOT} .atlab-tlb-listing", has_text="(forgotten)").wait_for()
    _run_all(pg, "OLD PA 0x41000000: stale")
    _shot(pg, ROOT, "tlb_forgot_tlbi.png")
    # with the TLBI (VAE1, the right VA and ASID): the new PA
    pg.locator(f"{ROOT} .atlab-tlb-forget-tlbi input[type=checkbox]").click()
    pg.locator(VERDICT, has_text="Press Step").wait_for()
    _run_all(pg, "new PA 0x4a000000")
    _shot(pg, ROOT, "tlb_new_pa.png")
    # a TLBI by VA for another ASID leaves the non-global entry
    pg.locator(f"{ROOT} .atlab-tlb-op select").select_option(
        label="TLBI VAE1, VA, wrong ASID (6)")
    pg.locator(VERDICT, has_text="Press Step").wait_for()
    _run_all(pg, "OLD PA 0x41000000: stale")
    # a bad input: the inline error, no traceback
    field = pg.locator(f"{ROOT} .atlab-tlb-new-pa input")
    field.fill("zz")
    field.press("Enter")
    pg.locator(f"{ROOT} .atlab-error", has_text="not a number").wait_for()
    assert pg.locator(f"{ROOT} .jp-OutputArea-output[data-mime-type*='error']").count() == 0
    field.fill("0x4a000000")
    field.press("Enter")
    pg.locator(VERDICT, has_text="Press Step").wait_for()
    assert "not a number" not in _text(pg, f"{ROOT} .atlab-error")
    # latency of one Step (kernel round trip + a new picture)
    for _ in range(SAMPLES):  # the first AT each time (the program has 6 instructions)
        _measure(pg, "tlb: Step", "click", f"{ROOT} .atlab-tlb-step", VERDICT)
        pg.locator(VERDICT, has_text="AT filled the TLB").wait_for()
        pg.locator(f"{ROOT} .atlab-tlb-reset").click()
        pg.locator(VERDICT, has_text="Press Step").wait_for()
    pg.locator(f"{ROOT} .atlab-tlb-step").click()
    ms = sorted(LATENCIES["tlb: Step"])[len(LATENCIES["tlb: Step"]) // 2]
    assert ms < FAIL_MS, f"Step took {ms:.0f} ms (median)"
    _shot(pg, ROOT, "tlb_steps.png")
