"""The course's shape (issue 16): every chapter opens with its crux and a picture, explains
*why* for the designs it shows, and never uses a term before the notebook that introduces it.
Also the crux pictures themselves (atlab.viz_course): legible, and labelled from the library."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from atlab import viz_course
from atlab.viz import figure_meta

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
#: The course in reading order: 00 start here, 00a primer, then the chapters.
COURSE = sorted(p.stem for p in NOTEBOOKS.glob("[0-9]*.ipynb"))
CHAPTERS = [name for name in COURSE if name != "00_start_here"]


def _cells(name: str) -> list[dict[str, Any]]:
    cells: list[dict[str, Any]] = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    return cells


def _source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return src if isinstance(src, str) else "".join(src)


def _headings(text: str) -> list[str]:
    return [line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")]


# --- 1. the crux and the picture, before the details -----------------------------------------


def test_the_course_order_is_the_one_the_readme_gives() -> None:
    assert COURSE[:3] == ["00_start_here", "00a_primer", "01_anatomy_of_a_va"]
    assert set(CHAPTERS) == set(viz_course.CHAPTER_PICTURES)


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_opens_with_its_crux_and_a_picture(name: str) -> None:
    """Cell 1 is the title, cell 2 a heading "The crux" (one or two sentences of problem),
    cell 3 draws the chapter's picture -- before any other code cell."""
    cells = _cells(name)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# ")
    crux = _source(cells[1])
    assert cells[1]["cell_type"] == "markdown" and _headings(crux) == ["The crux"], crux[:80]
    problem = crux.split("\n\n")[1]
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", problem.strip()) if s]
    assert 1 <= len(sentences) <= 2, problem
    picture = cells[2]
    fn = viz_course.CHAPTER_PICTURES[name]
    assert picture["cell_type"] == "code"
    # %matplotlib inline: atlab never imports pyplot, so the kernel shows a Figure as an
    # image only once the inline backend is set up.
    want = rf"%matplotlib inline\nfrom atlab\.viz_course import {fn.__name__}\n\n{fn.__name__}\(\)"
    assert re.fullmatch(want, _source(picture).strip()), _source(picture)
    # nothing but the title and the crux before the picture
    assert all(c["cell_type"] == "markdown" for c in cells[:2])


# --- the pictures ------------------------------------------------------------------------------


def _renderer(fig: Figure) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return FigureCanvasAgg(fig).get_renderer()


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


@pytest.mark.parametrize("name", list(viz_course.CHAPTER_PICTURES))
def test_crux_picture_is_legible_and_inside_its_figure(name: str) -> None:
    """>= 9 pt at the figure's own size, drawn at most 13.4 in wide (shown unscaled in a
    notebook output area, tests/test_viz.py), and no text runs off the figure."""
    fig = viz_course.CHAPTER_PICTURES[name]()
    assert isinstance(fig, Figure)
    small = sorted({(t.get_fontsize(), t.get_text()[:30]) for t in _texts(fig)
                    if t.get_fontsize() < 9})
    assert small == [], small
    assert fig.get_size_inches()[0] <= 13.4
    renderer = _renderer(fig)
    box = fig.bbox
    for t in _texts(fig):
        ext = t.get_window_extent(renderer)
        assert (ext.x0 >= box.x0 - 1 and ext.x1 <= box.x1 + 1 and ext.y0 >= box.y0 - 1
                and ext.y1 <= box.y1 + 1), (name, t.get_text()[:40])


def _inside(inner: Any, outer: Any) -> bool:
    return bool(inner.x0 >= outer.x0 - 1 and inner.x1 <= outer.x1 + 1
                and inner.y0 >= outer.y0 - 1 and inner.y1 <= outer.y1 + 1)


@pytest.mark.parametrize("name", [n for n in viz_course.CHAPTER_PICTURES if n != "00a_primer"])
def test_box_text_stays_in_its_box(name: str) -> None:
    fig = viz_course.CHAPTER_PICTURES[name]()
    renderer = _renderer(fig)
    boxes = {a.get_gid()[len("node-"):]: a.get_window_extent(renderer)
             for a in fig.findobj() if (a.get_gid() or "").startswith("node-")}
    meta = figure_meta(fig)
    assert set(boxes) == {n["key"] for n in meta["nodes"]}
    titles = {n["title"]: n["key"] for n in meta["nodes"]}
    bodies = {"\n".join(n["lines"]): n["key"] for n in meta["nodes"] if n["lines"]}
    for t in _texts(fig):
        key = titles.get(t.get_text()) or bodies.get(t.get_text())
        if key is not None:
            assert _inside(t.get_window_extent(renderer), boxes[key]), (name, t.get_text())


def test_pictures_are_labelled_by_the_library() -> None:
    """The facts the pictures state come from atlab: the VA bits of each level, the regimes
    under E2H/TGE, the reads of a nested walk, the range bounds."""
    from atlab import AtOp, FeatureSet, SysRegs
    from atlab.granule import Granule, index_slices, start_level
    from atlab.regime import compute_translation_regime

    walk = figure_meta(viz_course.walk_levels(granule=Granule.K16, txsz=17))
    lines = [n["lines"][0] for n in walk["nodes"] if n["key"].startswith("l")]
    sl = start_level(47, Granule.K16)
    assert lines == [f"index VA[{lsb + mask.bit_length() - 1}:{lsb}]"
                     for lsb, mask in index_slices(47, sl, Granule.K16)]
    assert sl == 1 and [n["key"] for n in walk["nodes"]] == ["ttbr", "l1", "l2", "l3", "page"]
    assert walk["nodes"][-1]["lines"] == ("offset VA[13:0]",)

    for row in viz_course.regime_map():
        hcr = 1 << 31 | int(row["e2h"]) << 34 | int(row["tge"]) << 27  # type: ignore[call-overload]
        for op, regime in row["regimes"].items():  # type: ignore[attr-defined]
            got = compute_translation_regime(AtOp[op], SysRegs({"HCR_EL2": hcr}),
                                             FeatureSet.all()).regime
            assert str(got) == regime
    assert [r["regimes"]["S1E1R"] for r in viz_course.regime_map()] == [  # type: ignore[index]
        "EL1&0", "EL1&0", "EL2&0"]

    assert viz_course.nested_reads(4, 4) == 24 and viz_course.nested_reads(3, 2) == 11
    assert "= 24 descriptor reads" in figure_meta(viz_course.two_stages())["notes"][0]
    ranges = {n["key"]: n["lines"] for n in figure_meta(viz_course.va_ranges(txsz=25))["nodes"]}
    assert ranges["ttbr0"][1] == "to 0x0000007fffffffff"
    assert ranges["ttbr1"][0] == "0xffffff8000000000"


def test_a_picture_in_the_dark_theme_and_a_bad_theme() -> None:
    from atlab import AtlabError

    assert viz_course.at_flow(theme="dark").get_facecolor()[0] < 0.5
    with pytest.raises(AtlabError, match="unknown theme"):
        viz_course.tlb_path(theme="blue")


# --- 2. "why" paragraphs for the designs the chapters show -----------------------------------

WHY = {
    "02_stage1_walk": "Why two TTBRs?",
    "05_regimes_e2h_tge": "Why E2H exists",
    "06_at_and_par": "Why AT exists at all",
    "07_stage2_2d_walk": "Why concatenate the start tables?",
    "10_tlbs_and_shadow_stage2": "Why ASIDs and VMIDs?",
}


@pytest.mark.parametrize(("name", "heading"), list(WHY.items()))
def test_why_paragraph_with_its_claims_asserted(name: str, heading: str) -> None:
    """A markdown cell headed ``### Why ...`` explains the design in a short paragraph; the
    behaviour it claims is asserted by a sanity-check cell right after it (at most one code
    cell between them, which shows it)."""
    cells = _cells(name)
    found = [i for i, c in enumerate(cells)
             if c["cell_type"] == "markdown" and heading in _headings(_source(c))]
    assert len(found) == 1, f"{name}: no single '### {heading}' cell"
    i = found[0]
    assert _source(cells[i]).startswith(f"### {heading}\n")
    words = len(_source(cells[i]).split())
    assert 60 <= words <= 220, f"{name}: a short paragraph, not {words} words"
    follow = cells[i + 1:i + 3]
    checks = [c for c in follow if "sanity-check" in c["metadata"].get("tags", [])]
    assert checks and "assert" in _source(checks[0])


# --- 4. no term before the notebook that introduces it -----------------------------------------

#: Each term (a regular expression over a notebook's cells, code and text) and the notebook
#: that introduces it. No notebook before that one in COURSE may use it.
TERMS: dict[str, str] = {
    r"\bAT\b": "00a_primer",
    r"\bPAR(_EL\d)?\b": "00a_primer",
    r"\bFST\b": "00a_primer",
    r"\brun_at\b": "00a_primer",
    r"\bregimes?\b": "00a_primer",
    r"\bEL[0-3]\b": "00a_primer",
    r"\b[Ee]xception levels?\b": "00a_primer",
    r"\bsystem registers?\b": "00a_primer",
    r"\bTTBR": "00a_primer",
    r"\bTCR_EL": "00a_primer",
    r"\bSCTLR": "00a_primer",
    r"\bMAIR": "00a_primer",
    r"\bT0SZ\b": "00a_primer",
    r"\bHCR_EL2\b": "00a_primer",
    r"\bE2H\b": "00a_primer",
    r"\bTGE\b": "00a_primer",
    r"\bVHE\b": "00a_primer",
    r"\bstage 2\b": "00a_primer",
    r"\bIPAs?\b": "00a_primer",
    r"\bTLBI?s?\b": "00a_primer",
    r"\bASIDs?\b": "00a_primer",
    r"\bVMIDs?\b": "00a_primer",
    r"\bgranules?\b": "00a_primer",
    r"\bguest hypervisor\b": "00a_primer",
    r"\bS1Builder\b": "00a_primer",
    r"\bTBI\b|[Tt]op-byte-ignore": "01_anatomy_of_a_va",
    r"\bAccess flag\b": "02_stage1_walk",
    r"\bAPTable\b": "03_permissions_and_faults",
    r"\bPAN\b": "03_permissions_and_faults",
    r"\bWXN\b": "03_permissions_and_faults",
    r"\bAttrIndx\b": "04_memory_attributes",
    r"\bPTW\b": "06_at_and_par",
    r"\bconcatenat": "07_stage2_2d_walk",
    r"\bFWB\b": "07_stage2_2d_walk",
    r"\bshadow stage 2\b": "08_nested_virtualization",
    r"\bwalk cache\b": "10_tlbs_and_shadow_stage2",
}


def _uses(name: str, term: str) -> list[str]:
    return [line.strip()[:80] for cell in _cells(name) for line in _source(cell).splitlines()
            if re.search(term, line)]


@pytest.mark.parametrize(("term", "intro"), list(TERMS.items()))
def test_no_term_before_the_notebook_that_introduces_it(term: str, intro: str) -> None:
    assert intro in COURSE
    assert _uses(intro, term), f"{intro} is said to introduce {term!r} but never uses it"
    early = {name: _uses(name, term) for name in COURSE[:COURSE.index(intro)]}
    assert {name: lines for name, lines in early.items() if lines} == {}


def test_the_term_check_would_catch_the_old_start_here() -> None:
    """The check is not vacuous: the first AT of the old 00 (now in the primer) trips it."""
    old = "result = run_at(AtOp.S1E1R, 0x1234_5678_9ABC, regs=regs, mem=mem, cur_el=2)"
    hits = [t for t, intro in TERMS.items() if COURSE.index(intro) > 0 and re.search(t, old)]
    assert hits == [r"\brun_at\b"]


def test_start_here_sends_newcomers_to_the_primer_first() -> None:
    text = _source(_cells("00_start_here")[0])
    assert "00a_primer.ipynb" in text and "next" in text.lower()


# --- 7. every figure the course draws is legible ------------------------------------------------

#: matplotlib's inline backend draws a figure at 100 dpi (plus ~0.1 in of padding each side);
#: a JupyterLab output area at the default window is ~965 px wide and scales wider images down.
INLINE_DPI, OUTPUT_PX = 100, 965


def _shown_pt(fig: Figure) -> float:
    """The smallest text as shown inline, in the units tests/test_browser.py measures (9 pt at
    72 dpi = 9 px): its size, times dpi/72, times the scale-down to fit the output area."""
    smallest = min(t.get_fontsize() for t in _texts(fig))
    width_px = fig.get_size_inches()[0] * INLINE_DPI + 0.2 * INLINE_DPI
    return float(smallest * INLINE_DPI / 72 * min(1.0, OUTPUT_PX / width_px))


@pytest.mark.parametrize("name", list(viz_course.CHAPTER_PICTURES))
def test_crux_picture_is_legible_inline_at_notebook_width(name: str) -> None:
    assert _shown_pt(viz_course.CHAPTER_PICTURES[name]()) >= 9


def test_the_tlb_picture_is_at_least_9_pt() -> None:
    """Chapter 10's stale-entry picture (the widest: table and page-table panel)."""
    from atlab import AtOp, Regime, S1Builder
    from atlab.pe import Machine
    from atlab.viz_tlb import tlb_table

    b = S1Builder(Regime.EL10, tables=(0x4020_0000, 0x4030_0000), asid=5)
    b.map(0x1000_0000, 0x4100_0000, 0x1000, ap="EL1 RW")
    b.map(0x1000_1000, 0x4100_1000, 0x1000, ap="EL1 RW / EL0 RW", ng=True)
    mem = b.memory()
    m = Machine(b.regs(), mem)
    steps = m.at(AtOp.S1E1R, 0x1000_0000).result.trace.steps
    m.store(steps[-1].desc_pa, (mem.peek(steps[-1].desc_pa) & ~0xFFFF_FFFF_F000) | 0x4A00_0000)
    stale = m.at(AtOp.S1E1R, 0x1000_0000)
    assert stale.hit
    for fig in (tlb_table(m.history[-1], page_tables=steps, mem=mem), tlb_table(stale.tlb)):
        assert min(t.get_fontsize() for t in _texts(fig)) >= 9
        assert fig.get_size_inches()[0] <= 13.4


def test_every_figure_function_has_a_legibility_test() -> None:
    """Each public function of atlab.viz, atlab.viz_tlb and atlab.viz_course that returns a
    Figure is measured: by tests/test_viz.py (_all_figures), or here."""
    import inspect

    from atlab import viz, viz_tlb

    drawn = set()
    for module in (viz, viz_tlb, viz_course):
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if not fname.startswith("_") and fn.__module__ == module.__name__ and \
                    inspect.signature(fn).return_annotation in ("Figure", Figure):
                drawn.add(fname)
    test_viz = (ROOT / "tests" / "test_viz.py").read_text()
    all_figures = test_viz[test_viz.index("def _all_figures"):
                           test_viz.index("def test_every_text_in_every_figure")]
    measured = set(re.findall(r"viz\.(\w+)\(", all_figures))
    measured |= {fn.__name__ for fn in viz_course.CHAPTER_PICTURES.values()} | {"tlb_table"}
    assert drawn and drawn - measured == set()
