"""Build the example systems in examples/*.yaml with atlab's table builder.

    python examples/build_examples.py           # check: exit 1 if a file is stale
    python examples/build_examples.py --write   # regenerate the files

Every op carries an ``expected_par`` derived here from the *intent* (what was mapped, with
which attributes), by the Arm ARM's rules: a successful PAR reports the output address, the
MAIR attribute byte and the shareability (PAR_EL1.SH is 0b10 for Device and Normal
Non-cacheable memory); a fault reports its kind, level and stage.  None of them is copied from
atlab's walker; ``tests/test_examples_scenarios.py`` checks them with ``atlab run --check`` and,
for the scenarios tagged ``qemu``, on QEMU.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from atlab.builder import (
    MEM_TYPES,
    S1Builder,
    S2Builder,
    TableAllocator,
    qemu_allocator,
    scenario_dict,
)
from atlab.faults import Fault, FaultKind
from atlab.granule import Granule
from atlab.par import Par
from atlab.regime import Regime
from atlab.scenario import scenarios_to_yaml

HERE = Path(__file__).resolve().parent
Op = dict[str, object]

#: The QEMU harness code (tools/hw): mapped executable wherever the ops' EL has its MMU on.
HARNESS, HARNESS_SIZE = 0x4010_0000, 0x2_0000
UART = 0x0900_0000  # the virt board's PL011, a Device-nGnRE page in every kernel


# --- expected PARs, from the intent --------------------------------------------------------

def ok(pa: int, mem: str = "normal-wb", sh: int = 0b11) -> int:
    """A successful PAR: PA, ATTR = the MAIR byte of ``mem``, SH = ``sh`` except that Device
    and Normal Non-cacheable memory report 0b10 (PAR_EL1.SH note)."""
    attr = MEM_TYPES[mem]
    if mem.startswith("device") or mem == "normal-nc":
        sh = 0b10
    return Par.success(pa, attr, sh).value


def fault(kind: FaultKind, level: int, stage: int = 1, ptw: bool = False) -> int:
    return Par.from_fault(Fault(kind, level, stage, ptw)).value


def op(name: str, va: int, expected: int, note: str = "", pan: int | None = None) -> Op:
    o: Op = {"op": name, "va": va, "expected_par": expected}
    if pan is not None:
        o["pan"] = pan
    if note:
        o["note"] = note
    return o


TRANSLATION, PERMISSION, ACCESS_FLAG = (FaultKind.TRANSLATION, FaultKind.PERMISSION,
                                        FaultKind.ACCESS_FLAG)


# --- Linux-like EL1 kernels ------------------------------------------------------------------

def linux_el1(granule: Granule, va_bits: int, pa_bits: int) -> dict[str, object]:
    """A kernel in TTBR1 (image + linear map + a UART page) and a user process in TTBR0."""
    page = 1 << granule.pgshift
    b = S1Builder(Regime.EL10, granule=granule, va_bits=va_bits, pa_bits=pa_bits,
                  tables=qemu_allocator(0x4020_0000, 0x4040_0000), asid=1)
    top = (1 << 64) - (1 << va_bits)  # start of the TTBR1 range = PAGE_OFFSET
    linear, ram, ram_size = top, 0x4000_0000, 0x4000_0000
    kimage = top + (1 << (va_bits - 1)) + 0x800_0000  # upper half of the range, like KIMAGE_VADDR
    text, rodata, data = 0x4080_0000, 0x40A0_0000, 0x40B0_0000
    # Linear map: all of RAM, EL1 RW, never executable (UXN and PXN).
    b.map(linear, ram, ram_size, ap="EL1 RW", xn=True, contiguous=True)
    # Kernel image: text RO+X (UXN only), rodata RO+XN, data/bss RW+XN; pages with CON runs.
    b.map(kimage, text, 0x20_0000, ap="EL1 RO", uxn=True, contiguous=True)
    b.map(kimage + 0x20_0000, rodata, 0x10_0000, ap="EL1 RO", xn=True, contiguous=True)
    b.map(kimage + 0x30_0000, data, 0x10_0000, ap="EL1 RW", xn=True)
    uart_va = (1 << 64) - 0x200_0000  # a fixmap-like slot near the top
    b.map(uart_va, UART, page, ap="EL1 RW", xn=True, mem="device-ngnre")
    # A user process (ASID 1, nG): text EL0 RO+X (PXN), heap and stack EL0 RW+XN.
    utext, heap, stack = 0x40_0000, 0x80_0000, (1 << (va_bits - 1)) - 0x20 * page
    b.map(utext, 0x4100_0000, 16 * page, ap="EL1 RO / EL0 RO", pxn=True, ng=True)
    b.map(heap, 0x4110_0000, 4 * page, ap="EL1 RW / EL0 RW", xn=True, ng=True)
    b.map(stack, 0x4120_0000, 0x20 * page, ap="EL1 RW / EL0 RW", xn=True, ng=True)
    big_pa = None
    if pa_bits == 52:
        # 52-bit PA: memory above 2^48 (e.g. a CXL window) in the linear map.
        big_pa = 0xF_0000_0000_0000
        b.map(linear + (1 << (va_bits - 2)), big_pa, 1 << 29, ap="EL1 RW", xn=True)
    ops = [
        op("S1E1R", kimage + 0x1234, ok(text + 0x1000), "kernel text: EL1 RO"),
        op("S1E1W", kimage + 0x1234,
           fault(PERMISSION, 3 if page > 0x1000 else 2),
           "kernel text is read-only (a 2MB L2 block with 4KB, pages otherwise)"),
        op("S1E1R", kimage + 0x23_4000 + 8, ok(rodata + 0x3_4000), "rodata"),
        op("S1E1W", kimage + 0x30_0010, ok(data), "data is EL1 RW"),
        op("S1E0R", linear + 0x1234_5678, fault(PERMISSION, 1 if page == 0x1000 else 2),
           "the linear map has AP=00: no EL0 access"),
        op("S1E1R", linear + 0x1234_5678, ok(ram + 0x1234_5000)),
        op("S1E1W", uart_va + 0x18, ok(UART, "device-ngnre"), "UART: Device-nGnRE"),
        op("S1E0R", utext + 0x10, ok(0x4100_0000), "user text: EL0 readable"),
        op("S1E0W", utext + 0x10, fault(PERMISSION, 3), "user text: read-only"),
        op("S1E0W", heap + page, ok(0x4110_0000 + page), "heap: EL0 RW"),
        op("S1E1RP", heap + page, fault(PERMISSION, 3), "PAN=1: the kernel may not read "
           "EL0-accessible memory", pan=1),
        op("S1E1R", heap + page, ok(0x4110_0000 + page), "the same access without PAN"),
        op("S1E0R", stack + 0x20 * page - 8, ok((0x4120_0000 + 0x20 * page - 8) & ~0xFFF),
           "top of stack: PAR_EL1.PA holds PA[51:12] whatever the granule"),
        op("S1E0R", 1 << (va_bits - 1),
           fault(TRANSLATION, _unmapped_level(granule, va_bits)), "an unmapped user VA"),
        op("S1E1R", 1 << 54, fault(TRANSLATION, 0),
           "between the two ranges: level 0 translation fault (AArch64.VAIsOutOfRange())"),
    ]
    if big_pa is not None:
        ops.append(op("S1E1R", linear + (1 << (va_bits - 2)) + 0x1000, ok(big_pa + 0x1000),
                      "52-bit output address: PAR_EL1.PA[51:48] set"))
    name = f"linux_el1_{str(granule).lower().replace('kb', 'k')}_{va_bits}bit"
    comment = (f"A Linux-like EL1&0 system, {granule} granule, {va_bits}-bit VAs, {pa_bits}-bit "
               f"PAs. TTBR1_EL1: the linear map (all of RAM at {linear:#x}, EL1 RW, XN), the "
               f"kernel image at {kimage:#x} (text RO+X, rodata RO, data RW) and a UART page. "
               "TTBR0_EL1: a user process (ASID 1, nG) with text, heap and stack. The ops run "
               "at EL2 (SCTLR_EL2.M=0), as a host inspecting its guest would.")
    return b.scenario(name=name, ops=ops, comment=comment, tags=["linux", "el1", "qemu"])


def _unmapped_level(granule: Granule, va_bits: int) -> int:
    """Level of the first empty entry for a user VA at 2^(va_bits-1): the start-level table
    only has the entry for the low user mappings (index 0), and the VA's start-level index is
    the top index bit set, so the start-level entry is empty."""
    return 3 - (va_bits - 1 - granule.pgshift) // granule.stride


# --- VHE host (EL2&0) --------------------------------------------------------------------------

def vhe_host() -> dict[str, object]:
    b = S1Builder(Regime.EL20, granule=Granule.K4, va_bits=48,
                  tables=qemu_allocator(0x4020_0000, 0x4040_0000), asid=1)
    kimage = 0xFFFF_8000_0800_0000
    b.map(0xFFFF_0000_0000_0000, 0x4000_0000, 0x4000_0000, ap="EL2 RW", xn=True)
    b.map(kimage, 0x4080_0000, 0x20_0000, ap="EL2 RO", uxn=True)
    b.map(0x40_0000, 0x4100_0000, 0x1_0000, ap="EL2 RW / EL0 RW", xn=True, ng=True)
    # The harness code, identity mapped: the ops execute at EL2 with SCTLR_EL2.M=1.
    b.map(HARNESS, HARNESS, HARNESS_SIZE, ap="EL2 RO", uxn=True)
    ops = [
        op("S1E2R", kimage + 0x100, ok(0x4080_0000), "host kernel text through TTBR1_EL2"),
        op("S1E2W", kimage + 0x100, fault(PERMISSION, 2), "text is RO (2MB block)"),
        op("S1E2W", 0xFFFF_0000_1000_0000, ok(0x5000_0000), "linear map (1GB block)"),
        op("S1E0W", 0x40_2000, ok(0x4100_2000), "EL0 of the host: a user page"),
        op("S1E1R", 0x40_2000, ok(0x4100_2000),
           "E2H=1, TGE=1: AT S1E1R uses the EL2&0 regime (AArch64.AT())"),
        op("S1E1RP", 0x40_2000, fault(PERMISSION, 3), "...and PAN applies to it", pan=1),
        op("S1E0R", 0xFFFF_0000_1000_0000, fault(PERMISSION, 1), "EL0 cannot read the "
           "kernel's linear map"),
        op("S1E2R", HARNESS + 0x40, ok(HARNESS), "the identity-mapped harness code"),
    ]
    comment = ("A VHE host kernel (HCR_EL2.E2H=1, TGE=1) in the EL2&0 regime: TTBR1_EL2 holds "
               "the linear map and the kernel image, TTBR0_EL2 a user process (ASID 1) and an "
               "identity map of the harness code. AT S1E1* is redirected to EL2&0; AT S1E0* "
               "checks EL0 permissions of the host's user process.")
    return b.scenario(name="vhe_host_el20", ops=ops, comment=comment,
                      tags=["vhe", "el2&0", "qemu"])


# --- nVHE hypervisor with a guest ------------------------------------------------------------

def nvhe_hyp_guest() -> dict[str, object]:
    hyp = S1Builder(Regime.EL2, granule=Granule.K4, va_bits=48,
                    tables=qemu_allocator(0x4020_0000, 0x4030_0000))
    hyp_text = 0x8000_0800_0000  # the hyp VA space (EL2 has one range)
    hyp.map(hyp_text, 0x40C0_0000, 0x1_0000, ap="RO")
    hyp.map(hyp_text + 0x10_0000, 0x40D0_0000, 0x1_0000, ap="RW", xn=True)
    hyp.map(HARNESS, HARNESS, HARNESS_SIZE, ap="RO")
    s2 = S2Builder(granule=Granule.K4, ipa_bits=40, tables=qemu_allocator(0x4030_0000,
                                                                          0x4040_0000))
    # Guest RAM: IPA 0x40000000 (256MB) -> PA 0x50000000.
    s2.map(0x4000_0000, 0x5000_0000, 0x1000_0000, s2ap="RW")
    guest = S1Builder(Regime.EL10, granule=Granule.K4, va_bits=48,
                      tables=TableAllocator(0x4020_0000, 0x4040_0000))  # guest IPAs
    guest.map(0xFFFF_0000_0000_0000, 0x4000_0000, 0x1000_0000, ap="EL1 RW", xn=True)
    guest.map(0xFFFF_8000_0800_0000, 0x4080_0000, 0x20_0000, ap="EL1 RO", uxn=True)
    guest.map(0xFFFF_FFFF_FE00_0000, UART, 0x1000, ap="EL1 RW", xn=True, mem="device-ngnre")
    guest.map(0x40_0000, 0x4100_0000, 0x4000, ap="EL1 RW / EL0 RW", xn=True, ng=True)
    ops = [
        op("S1E2R", hyp_text + 0x80, ok(0x40C0_0000), "hyp text at EL2 (nVHE: E2H=0)"),
        op("S1E2W", hyp_text + 0x80, fault(PERMISSION, 3), "hyp text is RO"),
        op("S1E2W", hyp_text + 0x10_0008, ok(0x40D0_0000), "hyp data"),
        op("S1E1R", 0xFFFF_8000_0800_0010, ok(0x4080_0000),
           "guest stage 1 only: VA -> IPA (the guest's tables are read through stage 2)"),
        op("S12E1R", 0xFFFF_8000_0800_0010, ok(0x5080_0000),
           "both stages: IPA 0x40800000 -> PA 0x50800000; Normal WB at both stages"),
        op("S12E0W", 0x40_1000, ok(0x5100_1000), "a guest user page, both stages"),
        op("S12E1W", 0xFFFF_FFFF_FE00_0000, fault(TRANSLATION, 1, stage=2),
           "the guest's UART IPA is not mapped at stage 2 (emulated MMIO): stage 2 "
           "translation fault, level 1 (the empty entry of the concatenated start tables)"),
    ]
    comment = ("A nVHE hypervisor (HCR_EL2.E2H=0) with its own EL2 tables (hyp text and data, "
               "and the harness code identity mapped), and a guest under stage 2 (40-bit IPA, "
               "HCR_EL2.VM=1): guest RAM IPA 0x40000000 -> PA 0x50000000; the guest's stage 1 "
               "tables live in guest RAM. The guest's UART is left unmapped at stage 2, as a "
               "hypervisor emulating it would.")
    return scenario_dict(name="nvhe_hyp_with_guest", s1=[hyp, guest], s2=s2, ops=ops,
                         comment=comment, tags=["nvhe", "stage2", "qemu"])


# --- KVM guest, 40-bit IPA, concatenated stage 2 start tables ------------------------------

def kvm_guest_40bit() -> dict[str, object]:
    s2 = S2Builder(granule=Granule.K4, ipa_bits=40,
                   tables=qemu_allocator(0x4020_0000, 0x4040_0000), vmid=5)
    assert (s2.root.sl, s2.concat) == (1, 2)
    s2.map(0x4000_0000, 0x6000_0000, 0x800_0000, s2ap="RW")  # guest RAM, 128MB
    s2.map(0x80_0000_0000, 0x6800_0000, 0x20_0000, s2ap="RO", xn=True)  # high IPA: 2nd table
    s2.map(0x0800_0000, 0x0800_0000, 0x1_0000, s2ap="RW", xn=True, mem="device-ngnre")  # GIC
    ops = [
        op("S12E1R", 0x4000_1000, ok(0x6000_1000, "device-ngnrne"),
           "guest MMU off: VA = IPA, stage 1 attributes Device-nGnRnE win over stage 2 "
           "Normal WB (S2CombineS1MemAttrs())"),
        op("S12E1R", 0x80_0000_2000, ok(0x6800_2000, "device-ngnrne"),
           "IPA bit 39 = 1 indexes the second concatenated level 1 table"),
        op("S12E1R", 0x0800_0000, ok(0x0800_0000, "device-ngnrne"),
           "the GIC distributor passed through"),
        op("S12E1R", 0x9000_0000, fault(TRANSLATION, 1, stage=2),
           "IPA 0x90000000 is in the 3rd GB of the first table: empty level 1 entry"),
        op("S12E1R", 0x100_0000_0000, fault(TRANSLATION, 0, stage=2),
           "IPA beyond 40 bits: stage 2 translation fault, level 0"),
    ]
    comment = ("A KVM guest early in boot (SCTLR_EL1.M=0) with a 40-bit IPA space. KVM starts "
               "the 4KB stage 2 walk at level 1 with two concatenated level 1 tables (VTCR_EL2."
               "SL0=1, T0SZ=24): a level 0 table would hold only 2 entries. Guest RAM IPA "
               "0x40000000 -> PA 0x60000000, a read-only page above 512GB of IPA, and the GIC.")
    return scenario_dict(name="kvm_guest_40bit_ipa", s2=s2, ops=ops, comment=comment,
                         tags=["kvm", "stage2", "concatenated", "qemu"])


# --- broken systems, one per common mistake -----------------------------------------------

def broken_tg1() -> list[dict[str, object]]:
    out = []
    for wrong in (True, False):
        b = S1Builder(Regime.EL10, granule=Granule.K64, va_bits=48,
                      tables=qemu_allocator(0x4020_0000, 0x4040_0000))
        b.map(0xFFFF_0000_0000_0000, 0x4080_0000, 0x4_0000, ap="EL1 RW", xn=True)
        tcr = b.sysregs()["TCR_EL1"]
        if wrong:  # TG1 written with TG0's encoding for 64KB (0b01), which TG1 reads as 16KB
            tcr = (tcr & ~(0b11 << 30)) | (0b01 << 30)
        ops = [op("S1E1R", 0xFFFF_0000_0000_0000 + 0x18,
                  fault(TRANSLATION, 3) if wrong else ok(0x4080_0000))]
        name = "broken_wrong_tg1" if wrong else "fixed_tg1"
        comment = (
            "MISTAKE: TCR_EL1.TG1=0b01, TG0's encoding of 64KB; TG1 encodes 16KB as 0b01 and "
            "64KB as 0b11. The 64KB tables are walked as 16KB ones: start level 0 (T1SZ=16), "
            "index VA[47]=0 reads the 64KB level 1 entry 0 (a table), index VA[46:36]=0 reads "
            "the 64KB level 2 entry 0 (a table), index VA[35:25]=0 reads the 64KB level 3 "
            "entry 0 - a page descriptor, which at level 2 means 'table' - so the walk reads "
            "its 'level 3 table' from the data page at 0x40800000, finds 0, and faults: "
            "translation fault, level 3." if wrong else
            "The same tables with TG1=0b11 (64KB): VA 0xffff000000000018 -> PA 0x40800018.")
        out.append(b.scenario(name=name, ops=ops, comment=comment,
                              sysregs={"TCR_EL1": tcr}, tags=["broken", "qemu"]))
    return out


def broken_af() -> dict[str, object]:
    b = S1Builder(Regime.EL10, granule=Granule.K4, va_bits=39,
                  tables=qemu_allocator(0x4020_0000, 0x4040_0000))
    b.map(0x40_0000, 0x4100_0000, 0x2000, ap="EL1 RW / EL0 RW", xn=True, af=False)
    b.map(0x60_0000, 0x4120_0000, 0x20_0000, ap="EL1 RW", xn=True, af=False)
    b.map(0x80_0000, 0x4140_0000, 0x1000, ap="EL1 RW / EL0 RW", xn=True)
    ops = [
        op("S1E0R", 0x40_0000, fault(ACCESS_FLAG, 3), "AF=0, TCR_EL1.HA=0: access flag "
           "fault at the page's level"),
        op("S1E1W", 0x60_1000, fault(ACCESS_FLAG, 2), "the same on a 2MB block: level 2"),
        op("S1E0R", 0x80_0000, ok(0x4140_0000), "a page built with AF=1"),
    ]
    comment = ("MISTAKE: descriptors written without the Access flag (bit 10). Without hardware "
               "AF management (TCR_EL1.HA=0) the first access takes an Access flag fault; "
               "Linux always sets AF (PTE_AF) for the kernel and on first touch for user pages.")
    return b.scenario(name="broken_missing_af", ops=ops, comment=comment,
                      tags=["broken", "qemu"])


def broken_wx() -> dict[str, object]:
    b = S1Builder(Regime.EL10, granule=Granule.K4, va_bits=48,
                  tables=qemu_allocator(0x4020_0000, 0x4040_0000))
    b.map(0xFFFF_8000_0800_0000, 0x4080_0000, 0x20_0000, ap="EL1 RO", uxn=True)
    # The mistake: a module's page left EL1 RW and executable (no PXN).
    b.map(0xFFFF_8000_1000_0000, 0x40A0_0000, 0x1000, ap="EL1 RW", uxn=True)
    ops = [
        op("S1E1W", 0xFFFF_8000_1000_0010, ok(0x40A0_0000),
           "writable at EL1 - and executable: `atlab ptdump --wx` reports it"),
        op("S1E1W", 0xFFFF_8000_0800_0010, fault(PERMISSION, 2), "the text is RO"),
    ]
    comment = ("MISTAKE: a W+X kernel page (EL1 RW, PXN=0). Translation succeeds, so nothing "
               "faults; `atlab ptdump FILE --ttbr 1 --wx` finds it, as Linux's "
               "CONFIG_DEBUG_WX does at boot. SCTLR_EL1.WXN=1 would make it execute-never.")
    return b.scenario(name="broken_wx_page", ops=ops, comment=comment,
                      tags=["broken", "qemu"])


def broken_txsz() -> dict[str, object]:
    b = S1Builder(Regime.EL10, granule=Granule.K4, va_bits=39,
                  tables=qemu_allocator(0x4020_0000, 0x4040_0000))
    assert b.sysregs()["TCR_EL1"] & 0x3F == 25
    b.map(0x4000_0000, 0x4000_0000, 0x4000_0000, ap="EL1 RW", xn=True)  # L1 index 1
    b.map(0x20_0000, 0x8100_0000, 0x20_0000, ap="EL1 RW / EL0 RW", xn=True)  # L2 index 1
    tcr = b.sysregs()["TCR_EL1"]
    tcr = (tcr & ~0x3F) | 16  # T0SZ=16: a 48-bit range for tables built for 39 bits
    ops = [
        op("S1E1R", 0x4000_1000, ok(0x8000_1000),
           "intended 0x40001000 (the level 1 block). With T0SZ=16 the walk starts at level "
           "0: index VA[47:39]=0 reads the level 1 table's entry 0 (a table), then at "
           "'level 1' index VA[38:30]=1 reads the level 2 table's entry 1: the 2MB block "
           "for 0x200000, taken as a 1GB level 1 block: OA 0x81000000 aligned to 1GB = "
           "0x80000000, so PA 0x80001000 - the wrong page, silently"),
        op("S1E1R", 0x20_0000, fault(TRANSLATION, 1),
           "intended 0x81000000: now VA[38:30]=0 reads the level 2 table's entry 0, empty"),
    ]
    comment = ("MISTAKE: TCR_EL1.T0SZ too small for the tables (16 where the tables were "
               "built for 25, a 39-bit range with level 1 at the top). The walk starts one "
               "level higher than the tables, and every index comes from the wrong VA bits.")
    return b.scenario(name="broken_txsz_too_small", ops=ops, comment=comment,
                      sysregs={"TCR_EL1": tcr}, tags=["broken", "qemu"])


# --- the files ---------------------------------------------------------------------------------

FILES: dict[str, Callable[[], list[dict[str, object]]]] = {
    "linux_el1_4k_48bit.yaml": lambda: [linux_el1(Granule.K4, 48, 48)],
    "linux_el1_16k_47bit.yaml": lambda: [linux_el1(Granule.K16, 47, 48)],
    "linux_el1_64k_52bit.yaml": lambda: [linux_el1(Granule.K64, 52, 52)],
    "vhe_host_el20.yaml": lambda: [vhe_host()],
    "nvhe_hyp_with_guest.yaml": lambda: [nvhe_hyp_guest()],
    "kvm_guest_40bit_ipa.yaml": lambda: [kvm_guest_40bit()],
    "broken_wrong_tg1.yaml": broken_tg1,
    "broken_missing_af.yaml": lambda: [broken_af()],
    "broken_wx_page.yaml": lambda: [broken_wx()],
    "broken_txsz_too_small.yaml": lambda: [broken_txsz()],
}

HEADER = "# Generated by examples/build_examples.py --write; do not edit by hand.\n"


def render(name: str) -> str:
    return HEADER + scenarios_to_yaml(FILES[name]())


def main(argv: list[str]) -> int:
    write = "--write" in argv
    stale = []
    for name in FILES:
        text = render(name)
        path = HERE / name
        if write:
            path.write_text(text, encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    if stale:
        print(f"stale: {', '.join(stale)}; run python examples/build_examples.py --write",
              file=sys.stderr)
        return 1
    print(f"{'wrote' if write else 'checked'} {len(FILES)} example files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
