"""Descriptor decode/encode (VMSAv8-64 block, page and table descriptor formats, D8.3)."""

from __future__ import annotations

import pytest

from atlab import AtlabError, FeatureSet, Regime
from atlab.descriptors import decode_descriptor, encode_page, encode_table, parse_granule
from atlab.granule import Granule

ALL = FeatureSet.all()


@pytest.mark.parametrize(
    ("desc", "level", "granule", "kind"),
    [
        # bit[0]=0 invalid; bits[1:0]=11 table below level 3, page at level 3; 01 a block
        # where AArch64.BlockDescSupported() allows it, else reserved (invalid).
        pytest.param(0x0, 1, Granule.K4, "invalid", id="4K-L1-invalid"),
        pytest.param(0x4020_1003, 0, Granule.K4, "table", id="4K-L0-table"),
        pytest.param(0x4567_8703, 3, Granule.K4, "page", id="4K-L3-page"),
        pytest.param(0x4000_0401, 1, Granule.K4, "block", id="4K-L1-block"),
        pytest.param(0x4020_0401, 2, Granule.K4, "block", id="4K-L2-block"),
        pytest.param(0x401, 0, Granule.K4, "reserved", id="4K-L0-block-reserved"),
        pytest.param(0x401, 3, Granule.K4, "reserved", id="4K-L3-01-reserved"),
        pytest.param(0x401, 1, Granule.K16, "reserved", id="16K-L1-block-reserved"),
        pytest.param(0x200_0401, 2, Granule.K16, "block", id="16K-L2-block"),
        pytest.param(0x2000_0401, 2, Granule.K64, "block", id="64K-L2-block"),
    ],
)
def test_descriptor_kind(desc: int, level: int, granule: Granule, kind: str) -> None:
    assert decode_descriptor(desc, level=level, granule=granule)["kind"] == kind


@pytest.mark.parametrize(
    ("fields", "level"),
    [
        pytest.param(dict(pa=0x4567_8000, attr_index=0, ap=0, sh=3), 3, id="page-plain"),
        pytest.param(dict(pa=0xF_FFFF_F000, attr_index=7, ap=3, sh=2, uxn=1, pxn=1, ng=1,
                          contiguous=1), 3, id="page-all-bits"),
        pytest.param(dict(pa=0x8000_0000_0000, attr_index=2, ap=1, sh=0, af=0), 3,
                     id="page-AF0"),
        pytest.param(dict(pa=0x4000_0000, attr_index=1, ap=2, sh=3, block=True), 1,
                     id="L1-block"),
        pytest.param(dict(pa=0x1234_0020_0000, attr_index=5, ap=1, sh=3, uxn=1, block=True),
                     2, id="L2-block-UXN"),
    ],
)
def test_page_round_trip(fields: dict[str, int], level: int) -> None:
    desc = encode_page(**fields)  # type: ignore[arg-type]
    d = decode_descriptor(desc, level=level)
    assert d["kind"] == ("block" if fields.get("block") else "page")
    assert d["OA"] == fields["pa"]
    assert d["AttrIndx"] == fields["attr_index"]
    assert d["AP"] == fields["ap"]
    assert d["SH"] == fields["sh"]
    assert d["AF"] == fields.get("af", 1)
    assert d["UXN"] == fields.get("uxn", 0) and d["PXN"] == fields.get("pxn", 0)
    assert d["nG"] == fields.get("ng", 0) and d["Contiguous"] == fields.get("contiguous", 0)
    # Bit positions by hand: AttrIndx[4:2], AP[7:6], SH[9:8], AF 10, nG 11, Contig 52, PXN 53,
    # UXN 54.
    assert desc == (fields["pa"] | (0b01 if fields.get("block") else 0b11)
                    | fields["attr_index"] << 2 | fields["ap"] << 6 | fields["sh"] << 8
                    | fields.get("af", 1) << 10 | fields.get("ng", 0) << 11
                    | fields.get("contiguous", 0) << 52 | fields.get("pxn", 0) << 53
                    | fields.get("uxn", 0) << 54)


@pytest.mark.parametrize(
    ("nxt", "ap_table", "uxn_table", "pxn_table"),
    [(0x4020_1000, 0, 0, 0), (0xFFFF_FFFF_F000, 3, 1, 1), (0x1000, 2, 0, 1)],
    ids=["table-plain", "table-all", "table-APTable10-PXNTable"],
)
def test_table_round_trip(nxt: int, ap_table: int, uxn_table: int, pxn_table: int) -> None:
    desc = encode_table(nxt, ap_table=ap_table, uxn_table=uxn_table, pxn_table=pxn_table)
    assert desc == nxt | 0b11 | pxn_table << 59 | uxn_table << 60 | ap_table << 61
    d = decode_descriptor(desc, level=1)
    assert (d["kind"], d["next_table"], d["APTable"], d["UXNTable"], d["PXNTable"]) == (
        "table", nxt, ap_table, uxn_table, pxn_table)


def test_el2_regime_decodes_xn() -> None:
    d = decode_descriptor(encode_page(0x1000, uxn=1), level=3, regime=Regime.EL2)
    assert d["XN"] == 1 and "UXN" not in d


def test_stage2_fields() -> None:
    # Stage 2: MemAttr[5:2], S2AP[7:6], XN[54:53].
    desc = 0x7000 | 0b11 | 0b1111 << 2 | 0b01 << 6 | 3 << 8 | 1 << 10 | 0b10 << 53
    d = decode_descriptor(desc, level=3, stage=2)
    assert (d["MemAttr"], d["S2AP"], d["XN"], d["SH"], d["OA"]) == (0b1111, 0b01, 0b10, 3, 0x7000)


def test_52bit_oa_decode() -> None:
    # DS=1: OA[51:50] in bits [9:8], OA[49:48] in place; no SH field.
    desc = 0x3_1234_5678_9000 | 0b10 << 8 | 0b11 | 1 << 10
    d = decode_descriptor(desc, level=3, ds=True)
    assert d["OA"] == 0xB_1234_5678_9000 and "SH" not in d
    # 64KB with 52-bit PAs: OA[51:48] in bits [15:12].
    desc = 0x1234_5678_0000 | 0xA << 12 | 0b11 | 1 << 10
    d = decode_descriptor(desc, level=3, granule=Granule.K64)
    assert d["OA"] == 0xA_1234_5678_0000


@pytest.mark.parametrize(("desc", "level"), [(1 << 64, 3), (-1, 3), (0, 4), (0, -2)],
                         ids=["too-wide", "negative", "level4", "level-2"])
def test_decode_bad_input(desc: int, level: int) -> None:
    with pytest.raises(AtlabError):
        decode_descriptor(desc, level=level)


@pytest.mark.parametrize(
    ("level", "granule", "stage", "ds", "error"),
    [
        # R_KSBQV (Table D8-16): level -1 is the 4KB granule's, with DS=1 only
        (-1, Granule.K4, 1, False, "level -1 exists only with the 4KB granule and DS=1"),
        (-1, Granule.K4, 2, False, "level -1 exists only with the 4KB granule and DS=1"),
        (-1, Granule.K4, 1, True, None),
        (-1, Granule.K4, 2, True, None),
        # R_VGVLD (Table D8-26): the 16KB granule starts at level 0 at the lowest, and at
        # stage 2 has level 0 with DS=1 only
        (-1, Granule.K16, 1, True, "a 16KB walk has no level -1"),
        (0, Granule.K16, 1, False, None),
        (0, Granule.K16, 2, False, "a 16KB stage 2 walk has level 0 only with VTCR_EL2.DS=1"),
        (0, Granule.K16, 2, True, None),
        # R_MLLGN (Table D8-35): the 64KB granule has levels 1 to 3
        (-1, Granule.K64, 1, False, "a 64KB walk has no level -1"),
        (0, Granule.K64, 1, False, "a 64KB walk has no level 0"),
        (0, Granule.K64, 2, False, "a 64KB walk has no level 0"),
        (1, Granule.K64, 2, False, None),
    ],
    ids=["4K-L-1-DS0-S1", "4K-L-1-DS0-S2", "4K-L-1-DS1-S1", "4K-L-1-DS1-S2", "16K-L-1",
         "16K-L0-S1", "16K-L0-S2-DS0", "16K-L0-S2-DS1", "64K-L-1", "64K-L0-S1", "64K-L0-S2",
         "64K-L1-S2"],
)
def test_decode_only_levels_the_granule_has(level: int, granule: Granule, stage: int, ds: bool,
                                            error: str | None) -> None:
    desc = 0x4020_1003  # a table descriptor at every level above 3
    if error is None:
        assert decode_descriptor(desc, level=level, granule=granule, stage=stage,
                                 ds=ds)["kind"] == "table"
    else:
        with pytest.raises(AtlabError, match=error):
            decode_descriptor(desc, level=level, granule=granule, stage=stage, ds=ds)


def test_parse_granule() -> None:
    assert parse_granule("4k") is Granule.K4 and parse_granule("64KB") is Granule.K64
    with pytest.raises(AtlabError):
        parse_granule("8K")


def _atlab_imports(module: str) -> set[str]:
    """The ``atlab.*`` modules ``module``'s source imports (at any depth in the file)."""
    import ast
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("atlab"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("atlab"))
    return found


@pytest.mark.parametrize("module", ["atlab.descriptors", "atlab.granule"])
def test_decoding_sits_below_the_walkers(module: str) -> None:
    # The granule and descriptor decoding are below the walkers: neither module, nor anything
    # it imports from atlab (followed to the end), imports a walker or the AT front end.
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo += sorted(_atlab_imports(mod))
    assert "atlab.errors" in seen  # the closure was really followed
    assert not seen & {"atlab.walk_s1", "atlab.walk_s2", "atlab.at", "atlab.tlb"}, sorted(seen)
