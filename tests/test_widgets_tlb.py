"""The TLB explorer (atlab.widgets.tlb): set its controls in Python, step the program, check the
PA the last AT returns, the picture's metadata and the inline errors."""

from __future__ import annotations

import ipywidgets as w
import pytest

from atlab import AtlabError
from atlab.widgets import TlbExplorer, make_tlb_explorer
from atlab.widgets.tlb import TLBI_CHOICES, stale_lab

OLD_PA = 0x4100_0000
NEW_PA = 0x4A00_0000
LEAF_SEQ = 4


def test_lab_page_is_built_with_the_builder() -> None:
    page = stale_lab()
    assert (page.va, page.old_pa, page.asid, page.vmid) == (0x1000_0000, OLD_PA, 5, 3)
    assert page.leaf & 0xFFFF_FFFF_F000 == OLD_PA and page.leaf & 0b11 == 0b11
    assert page.trace.steps[-1].desc_pa == page.leaf_pa and page.trace.steps[-1].level == 3


def test_is_a_widget_with_a_picture() -> None:
    tx = make_tlb_explorer()
    assert isinstance(tx, w.VBox) and isinstance(tx, TlbExplorer)
    assert tx.error.message == "" and tx.picture.value[:4] == b"\x89PNG"
    assert tx.position == 0 and tx.events == [] and tx.final_pa is None and tx.stale is None
    assert tx.meta["rows"] == [] and "Press Step" in tx.verdict_html.value
    assert "TLBI VAE1: stage 1 entries for the VA" in tx.tlbi_help.value


@pytest.mark.parametrize(
    ("forget", "pa"),
    [
        ((), NEW_PA),  # TLBI; DSB; ISB: complete on the issuing PE (R_BLDZX)
        (("tlbi",), OLD_PA),  # nothing invalidates the entry (D8.16)
        (("isb",), OLD_PA),  # DSB alone: the issuer needs the ISB too (R_BLDZX)
        (("dsb",), OLD_PA),  # ISB alone: not complete without the DSB (R_YNJCP)
        (("tlbi", "isb"), OLD_PA),
    ],
    ids=["TLBI-DSB-ISB->new-PA", "no-TLBI->old-PA", "no-ISB->old-PA", "no-DSB->old-PA",
         "no-TLBI-no-ISB->old-PA"],
)
def test_forgetting_a_step_leaves_the_stale_entry(forget: tuple[str, ...], pa: int) -> None:
    tx = TlbExplorer()
    for name in forget:
        getattr(tx, f"forget_{name}").value = True
    tx.run_button.click()
    assert tx.error.message == "" and tx.done
    assert tx.final_pa == pa and tx.stale is (pa == OLD_PA)
    assert len(tx.events) == 6 - len(forget)
    if pa == OLD_PA:
        assert "OLD PA 0x41000000: stale" in tx.verdict_html.value
        assert tx.meta["hit"] == [LEAF_SEQ]  # the last AT: answered by the old leaf entry
        assert [d["entries"] for d in tx.meta["stale"]] == [[LEAF_SEQ]]
    else:
        assert "new PA 0x4a000000: the TLBI removed the entry" in tx.verdict_html.value
        assert tx.meta["hit"] == [] and tx.meta["stale"] == []
    for name in forget:
        assert "(forgotten)" in tx.listing_html.value
        assert f"<s>{name.upper()}" in tx.listing_html.value.replace("DSB ISH", "DSB")


@pytest.mark.parametrize(
    ("label", "stale"),
    [
        ("TLBI VAE1, VA (ASID 5)", False),
        ("TLBI VALE1, VA (ASID 5)", False),  # the leaf is the last level
        ("TLBI VAAE1, VA (any ASID)", False),
        ("TLBI ASIDE1 (ASID 5)", False),  # the page is non-global (nG=1)
        ("TLBI VMALLE1", False),
        ("TLBI VAE1, wrong VA (the next page)", True),
        ("TLBI VAE1, VA, wrong ASID (6)", True),  # an nG entry matches its own ASID only
        ("TLBI VAE2, VA (the EL2 regime)", True),  # C5.5: VAE2 leaves EL1&0 entries
    ],
    ids=["VAE1", "VALE1", "VAAE1", "ASIDE1", "VMALLE1", "VAE1-wrong-VA", "VAE1-wrong-ASID",
         "VAE2-wrong-regime"],
)
def test_each_tlbi_choice(label: str, stale: bool) -> None:
    tx = TlbExplorer()
    tx.tlbi_op.value = label
    tx.run_all()
    assert tx.error.message == "" and tx.stale is stale
    assert tx.final_pa == (OLD_PA if stale else NEW_PA)


def test_every_choice_is_covered() -> None:
    assert len(TLBI_CHOICES) == 8


def test_step_by_step_listing_and_picture() -> None:
    tx = TlbExplorer()
    tx.forget_isb.value = True
    pictures = [tx.picture.value]
    for _ in range(5):
        tx.step_button.click()
        pictures.append(tx.picture.value)
    assert tx.done and len(set(pictures)) == len(pictures)  # every step redraws
    kinds = [e.kind for e in tx.events]
    assert kinds == ["at", "store", "tlbi", "dsb", "at"]
    assert tx.listing_html.value.count("atlab-tlb-current") == 1
    current = tx.listing_html.value.split("atlab-tlb-current")[1].split("</li>")[0]
    assert "▶" in current and "AT S1E1R, 0x10000000" in current
    tx.step()  # at the end: nothing runs
    assert len(tx.events) == 5 and tx.error.message == ""
    tx.reset_button.click()
    assert tx.position == 0 and tx.events == [] and tx.final_pa is None


def test_the_first_steps_show_fill_then_stale_descriptor() -> None:
    tx = TlbExplorer()
    tx.step()
    assert tx.meta["new"] == [1, 2, 3, LEAF_SEQ] and "filled the TLB" in tx.verdict
    tx.step()  # the store: memory changed, the entry did not
    assert [d["level"] for d in tx.meta["stale"]] == [3]
    assert "still holds the old translation" in tx.verdict
    tx.step()
    tx.step()
    assert "next ISB" in tx.verdict and tx.meta["removed"] == []
    tx.step()
    assert tx.meta["removed"] == [1, 2, 3, LEAF_SEQ] and tx.meta["stale"] == []


def test_new_pa_input() -> None:
    tx = TlbExplorer()
    tx.new_pa.value = "0x4b000000"
    tx.run_all()
    assert tx.final_pa == 0x4B00_0000 and tx.error.message == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zz", "not a number"),
        ("", "type a value"),
        ("0x4a000010", "not 4KB aligned"),
        ("0x41000000", "is the page's PA already"),
        ("0x1000000000000", "does not fit in 48 bits"),
    ],
    ids=["not-hex", "empty", "unaligned", "same-PA", "beyond-48-bit-OA"],
)
def test_bad_input_shows_the_inline_error(text: str, message: str) -> None:
    tx = TlbExplorer()
    tx.new_pa.value = text  # no exception: the error line says what is wrong
    assert message in tx.error.message and "&#9888;" in tx.error.value
    tx.step_button.click()
    assert message in tx.error.message and tx.events == []
    tx.run_all()
    assert message in tx.error.message
    tx.new_pa.value = "0x4a000000"
    assert tx.error.message == ""
    tx.run_all()
    assert tx.final_pa == NEW_PA


def test_unknown_choice_is_misuse() -> None:
    with pytest.raises(AtlabError, match="unknown TLBI choice"):
        TlbExplorer(tlbi="TLBI EVERYTHING")
