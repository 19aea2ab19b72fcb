"""tools/kvm: KVM's own AT emulation (arch/arm64/kvm/at.c, Linux 6.12) built as a userspace
program from Debian's linux-source-6.12 tarball, checked on hand-made scenarios whose answers
come from reading at.c.

Skipped only when the tarball is absent outside CI; with CI=true a missing build fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from atlab.errors import AtlabError
from atlab.nv.model import load_nv_scenarios
from tools.kvm import harness

ROOT = Path(__file__).resolve().parents[1]


# A 4KB, 48-bit EL2 (nVHE: vHCR_EL2.E2H=0) stage 1: TTBR0_EL2=0x10000, tables at 0x10000,
# 0x11000, 0x12000, 0x13000; VA 0x40201234 -> L0[0] -> L1[1] -> L2[1] -> L3[1] -> page 0x80000000.
EL2_TABLES = """\
reg HCR_EL2 0x80000001
reg SCTLR_EL2 0x5
reg TCR_EL2 0x80850010
reg TTBR0_EL2 0x10000
reg MAIR_EL2 0x04ff
mem 0x10000 0x11003
mem 0x11008 0x12003
mem 0x12008 0x13003
mem 0x13008 0x80000703
"""


def one(text: str, **kw: object) -> harness.KvmOpResult:
    (res,) = harness.run("scenario t\n" + text, **kw)  # type: ignore[arg-type]
    return res


def test_el2_s1_4k_success(kvm_at: Path) -> None:
    # compute_par_s1(): NSE (bit 11) | PA | ATTR=MAIR_EL2[0]=0xff | SH from the descriptor (ISH)
    res = one(EL2_TABLES + "at S1E2R 0x40201234\n")
    assert res.par == 0xFF00_0000_8000_0980
    assert res.written and not res.undef
    assert (res.reads, res.hwat, res.warn, res.bug) == (4, 1, (), None)
    assert res.kernel.startswith("6.12.")


def test_el2_s1_level2_translation_fault(kvm_at: Path) -> None:
    # walk_s1(): invalid L2 descriptor -> ESR_ELx_FSC_FAULT_L(2) with ptw=true, so PAR.PTW=1
    # (KVM's choice; architecturally PTW is for stage 2 faults on the stage 1 walk)
    res = one(EL2_TABLES + "at S1E2R 0x40401234\n")
    assert res.par == 0x800 | 0x100 | (0x06 << 1) | 1
    assert res.reads == 3


def test_s1e2a_without_ats1a_is_undefined(kvm_at: Path) -> None:
    # handle_at_s1e2(): no FGT for AT S1E2A, KVM injects UNDEFINED without FEAT_ATS1A
    res = one("id ID_AA64ISAR2_EL1 0\n" + EL2_TABLES + "at S1E2A 0x40201234\n")
    assert res.undef and res.par is None and not res.written
    assert (res.reads, res.hwat) == (0, 0)
    res = one("id ID_AA64ISAR2_EL1 0x1000000000000000\n" + EL2_TABLES + "at S1E2A 0x40201234\n")
    assert not res.undef and res.par == 0xFF00_0000_8000_0980


# vHCR_EL2.{E2H,VM}=1 (at.c 6.12 only walks L1's stage 2 for S12E* when E2H=1): L2's stage 1
# (EL1&0, same table shapes at 0x10000, leaf -> IPA 0x40000000) under L1's stage 2:
# VTCR_EL2 T0SZ=32, SL0=1 (start at level 1), 4KB; VTTBR_EL2=0x20000; L1[0] identity 1GB block,
# L1[1]: IPA 0x40000000 -> 0x80000000 1GB block, S2AP=RW, MemAttr=0b1111, ISH, AF.
EL1_UNDER_S2 = """\
reg HCR_EL2 0x480000001
reg SCTLR_EL1 0x5
reg TCR_EL1 0x500800010
reg TTBR0_EL1 0x10000
reg MAIR_EL1 0xff
reg VTCR_EL2 0x80050060
reg VTTBR_EL2 0x20000
mem 0x10000 0x11003
mem 0x11008 0x12003
mem 0x12008 0x13003
mem 0x13008 0x40000703
mem 0x20000 0x7fd
mem 0x20008 0x800007fd
"""


def test_s12e1r_through_l1_stage2(kvm_at: Path) -> None:
    # __kvm_at_s12(): stage 1 by __kvm_at_s1e01 (each table IPA through kvm_walk_nested_s2),
    # then kvm_walk_nested_s2() of the output IPA; compute_par_s12(): WB+WB -> 0xff, SH ISH,
    # no NSE bit
    res = one(EL1_UNDER_S2 + "at S12E1R 0x40201234\n")
    assert res.par == 0xFF00_0000_8000_0180
    assert res.reads == 4 * 2 + 1
    assert res.hwat == 0  # fails mode: lookup_s2_mmu() finds no MMU, no hardware AT
    # S1E1R stops at the IPA
    assert one(EL1_UNDER_S2 + "at S1E1R 0x40201234\n").par == 0xFF00_0000_4000_0980


def test_walk_outside_ram_is_external_abort(kvm_at: Path) -> None:
    # kvm_read_guest() outside every memslot -> ESR_ELx_FSC_SEA_TTW(level), ptw=true
    res = one("ram 0x0 0x12000\n" + EL2_TABLES + "at S1E2R 0x40201234\n")
    assert res.par == 0x800 | 0x100 | ((0x14 + 2) << 1) | 1
    assert res.reads == 3


def test_batch_and_par_reset(kvm_at: Path) -> None:
    text = "".join(f"scenario s{i}\nreg PAR_EL1 0x{i:x}000\n" + EL2_TABLES +
                   "at S1E2W 0x40201234\nat S1E2R 0x40401234\n" for i in range(50))
    results = harness.run(text)
    assert len(results) == 100
    assert {r.par for r in results[0::2]} == {0xFF00_0000_8000_0980}
    assert [r.n for r in results[:4]] == [0, 1, 0, 1]
    assert results[99].scenario == "s49"


def test_input_error_exits_2(kvm_at: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.kvmat"
    bad.write_text("scenario x\nreg NOT_A_REG 1\n")
    proc = subprocess.run([str(kvm_at), str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"kvm-at: {bad}:2: unknown register: NOT_A_REG\n"
    with pytest.raises(AtlabError, match="unknown AT op: S1E3R"):
        harness.run("scenario x\nat S1E3R 0x0\n")


def test_hardware_mode_keeps_a_successful_hardware_par(kvm_at: Path) -> None:
    seen: list[harness.HwAtRequest] = []

    def answer(req: harness.HwAtRequest) -> int | None:
        seen.append(req)
        return 0x1234_5000

    text = "hw HCR_EL2 0x88000001\nhw VTTBR_EL2 0x77000\n" + EL2_TABLES + "at S1E2R 0x40201234\n"
    res = one(text, mode="hardware", answer=answer)
    assert res.par == 0x1234_5000 and res.reads == 0 and res.hwat == 1
    # __kvm_at_s1e2(): TGE cleared, VM set, NV|NV1 set for a nVHE guest hypervisor
    (req,) = seen
    assert req.op == "S1E1R" and req.va == 0x40201234
    assert req.regs["HCR_EL2"] == (0x88000001 & ~(1 << 27)) | 1 | (1 << 42) | (1 << 43)


def test_nv_scenario_file_roundtrip(kvm_at: Path) -> None:
    (scn,) = load_nv_scenarios(str(ROOT / "examples/nv_l1_guest_hypervisor.json"))
    text = harness.to_kvm_input(scn)
    assert "esr 0x62111c30\nat S1E2R 0x123456789000" in text  # EC 0x18, Op1=4 CRm=8, Rt=1
    (results,) = harness.run_scenarios([scn])
    assert len(results) == len(harness.kvm_op_indices(scn)) == 5
    assert results[0].par == 0x4400_0000_4ABC_D900  # SCTLR_EL2.C=0: Normal forced to NC


def test_build_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(harness.KvmBuildError, match=r"^no kernel tree at /nonexistent/x$"):
        harness.build("/nonexistent/x")
    with pytest.raises(harness.KvmBuildError, match=r"not a kernel tree with arch/arm64/kvm/at\.c"):
        harness.build(str(tmp_path))


def test_warn_is_reported_with_nested_c_line(kvm_at: Path) -> None:
    # VTCR_EL2.SL0=2 with a 4KB granule and T0SZ=32 starts the stage 2 walk at level 0 with a
    # 32-bit IPA space: check_base_s2_limits() fails and walk_nested_s2_pgd() WARNs; the
    # stage 1 walk then reports a stage 2 fault on its first table access (PTW=1, S=1)
    text = EL1_UNDER_S2.replace("reg VTCR_EL2 0x80050060", "reg VTCR_EL2 0x800500a0")
    res = one(text + "at S12E1R 0x40201234\n")
    assert res.par == 0x800 | 0x200 | 0x100 | 1 and res.reads == 0
    (where,) = res.warn
    file, line = where.split(":")
    assert file == "nested.c" and res.bug is None
    trees = list((harness.BUILD / "src").glob("*/arch/arm64/kvm/nested.c"))
    if trees:  # the location names nested.c's own line, not the cut's
        assert "WARN_ON(" in trees[0].read_text().splitlines()[int(line) - 1]


def test_to_kvm_input_pan_esr_and_ids() -> None:
    from atlab.nv.model import parse_nv_scenario

    scn = parse_nv_scenario({
        "name": "pan", "vsysregs": {"HCR_EL2": "0x80000001", "PSTATE_PAN": 1},
        "features": {"FEAT_ATS1A": False, "PAMax": 48},
        "ops": [{"op": "S1E1RP", "va": "0x1000"}, {"op": "S1E1RP", "va": "0x1000", "pan": 0},
                {"op": "S1E3R", "va": "0x0"}]})
    lines = harness.to_kvm_input(scn, registers=harness.BASE_REGS).splitlines()
    # PAN from the op's "pan" key, else vsysregs PSTATE_PAN; EC 0x18, IL, Op0=1 Op2=0 Op1=0
    # CRn=7 Rt=1 CRm=9 (AT S1E1RP), direction 0
    assert [ln for ln in lines if ln.startswith(("pstate", "esr", "at"))] == [
        "pstate 0x400009", "esr 0x62101c32", "at S1E1RP 0x1000",
        "pstate 0x9", "esr 0x62101c32", "at S1E1RP 0x1000"]
    assert "id ID_AA64ISAR2_EL1 0x0" in lines and "ipa_limit 48" in lines
    assert harness.kvm_op_indices(scn) == [0, 1]


# The fast-path acceptance rule, decided by KVM itself: in hardware mode the answer to the
# hardware AT is ours; what KVM then writes (that PAR, or the software walk's) shows whether it
# kept it.  atlab.nv.kvm.fast_par_accepted must agree for every kind of answer and op.
ANSWERS = {
    "success": 0xFF00_0000_1234_5B80,
    "s1-permission-L3": 0x800 | (0x0F << 1) | 1,
    "s1-access-flag-L3": 0x800 | (0x0B << 1) | 1,
    "s1-translation-L2": 0x800 | (0x06 << 1) | 1,
    "s2-permission-on-walk": 0x800 | (1 << 9) | (1 << 8) | (0x0F << 1) | 1,
    "s2-translation-on-walk": 0x800 | (1 << 9) | (1 << 8) | (0x07 << 1) | 1,
}


@pytest.mark.parametrize("answer", list(ANSWERS), ids=list(ANSWERS))
@pytest.mark.parametrize(("op", "tables", "va"), [
    ("S1E2R", EL2_TABLES, 0x40201234),
    ("S1E2W", EL2_TABLES, 0x40201234),
    ("S1E1R", EL1_UNDER_S2, 0x40201234),
    ("S1E0W", EL1_UNDER_S2, 0x40201234),
    ("S1E1RP", EL1_UNDER_S2, 0x40201234),
], ids=["S1E2R", "S1E2W", "S1E1R", "S1E0W", "S1E1RP"])
def test_fast_path_acceptance_rule_is_kvms(kvm_at: Path, answer: str, op: str, tables: str,
                                           va: int) -> None:
    from atlab.nv.kvm import fast_par_accepted

    given = ANSWERS[answer]
    asked: list[harness.HwAtRequest] = []

    def reply(req: harness.HwAtRequest) -> int:
        asked.append(req)
        return given

    (res,) = harness.run("scenario t\n" + tables + f"at {op} {va:#x}\n", mode="hardware",
                         answer=reply)
    slow = one(tables + f"at {op} {va:#x}\n")  # fails mode: the software path's PAR
    assert len(asked) == 1
    kept = res.par == given
    assert kept == fast_par_accepted(given), (answer, op, hex(res.par or 0))
    if not kept:
        assert res.par == slow.par


def test_no_shadow_mmu_means_no_hardware_at() -> None:
    """lookup_s2_mmu() failing (fails mode) sends AT S1E0*/S1E1* straight to the software
    walker: no hardware AT at all (hwat=0), as the model's NvSystem(shadow_mmu=False) does."""
    from atlab.nv import KvmBehaviour, emulate_at
    from atlab.nv.model import load_nv_scenarios

    (sc,) = load_nv_scenarios(str(ROOT / "examples" / "nv_l1_guest_hypervisor.json"))
    system = sc.system()
    system.shadow_mmu = False
    res = emulate_at(system, sc.ops[2].op, sc.ops[2].va, kvm=KvmBehaviour.kvm())
    assert res.fast_path is None and res.path == "software walker"
    assert any("lookup_s2_mmu() finds no shadow" in line for line in res.narration)


def test_the_hcr_el2_l0_loads_for_l1_is_kvms_compute_hcr(kvm_at: Path) -> None:
    """atlab.nv.loaded_hcr_el2(L1 at vEL2) against KVM's own __compute_hcr() (vhe/switch.c,
    compiled from the same tree): NV, NV2, AT, TTLB (NV1 for a non-VHE L1) and every vHCR_EL2
    bit but TGE, API and APK folded in, for vHCR_EL2 values as KVM holds them."""
    import random

    from atlab.features import FeatureSet
    from atlab.nv import Context, loaded_hcr_el2
    from atlab.nv.kvm import kvm_sanitise
    from atlab.sysregs import SysRegs

    feats = FeatureSet.all()
    r = random.Random(14)
    vhcrs = [0, 1 << 34, (1 << 34) | (1 << 27), 0x80001001, (1 << 40) | (1 << 41) | (1 << 27)]
    vhcrs += [r.getrandbits(64) for _ in range(300)]
    held = [kvm_sanitise(SysRegs({"HCR_EL2": v}), feats) for v in vhcrs]
    base = (1 << 31) | 1 | (1 << 34)  # RW, VM, E2H: what the model takes as KVM's guest HCR
    kvm = harness.compute_hcr([h["HCR_EL2"] for h in held], base=base)
    for h, got in zip(held, kvm, strict=True):
        want = loaded_hcr_el2(Context.L1_VEL2, h, feats).value
        assert want == got, (hex(h["HCR_EL2"]), hex(want), hex(got))


@pytest.mark.parametrize(("vtcr", "granule"), [(0x80023559, "K4"), (0x8002B559, "K16"),
                                              (0x80027559, "K64")], ids=["4K", "16K", "64K"])
def test_tlbi_without_ttl_unmaps_what_kvms_compute_tlb_inval_range_says(
        kvm_at: Path, vtcr: int, granule: str) -> None:
    """atlab.nv.shadow.guest_mapping_size (with the largest-block fallback of l0_handle_tlbi)
    against KVM's own get_guest_mapping_ttl()/compute_tlb_inval_range() (nested.c, compiled
    from the same tree): the size of the shadow range L0 unmaps for L1's TLBI IPAS2E1."""
    import random

    from atlab.granule import Granule
    from atlab.nv import NvSystem
    from atlab.nv.shadow import _max_block, guest_mapping_size
    from atlab.sysregs import SysRegs

    g = Granule[granule]
    r = random.Random(vtcr)
    system = NvSystem(vregs=SysRegs({"HCR_EL2": (1 << 31) | 1, "VTCR_EL2": vtcr}),
                      l1_memory={})
    region = 0x4000_0000
    for _ in range(60):  # shadow leaves (4KB, as atlab builds them) tagged with L1's level
        page = region + (r.randrange(0, 1 << 30) & ~0xFFF)
        system.shadow[page] = 0x1_0000_0000 + (page & 0xFFF_F000)
        system.shadow_level[page] = r.choice([1, 2, 3, 3, 3])
    ipas = [p + r.choice([0, 0x1000, 0x20_0000]) for p in list(system.shadow)[:40]]
    ipas += [region + (r.randrange(0, 1 << 30) & ~0xFFF) for _ in range(40)]
    kvm = harness.tlb_inval_range(vtcr, system.shadow_level, ipas)
    for ipa, got in zip(ipas, kvm, strict=True):
        want = guest_mapping_size(system, ipa, g) or _max_block(g)
        assert want == got, (hex(ipa), hex(want), hex(got))
