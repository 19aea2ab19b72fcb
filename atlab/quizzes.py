"""The chapters' "Check your understanding" quizzes (see :mod:`atlab.quiz`), by notebook name.

Where the model can say so, a question's ``verify`` checks its right answer with the library;
the notebooks assert :meth:`~atlab.quiz.Quiz.verify` in a ``sanity-check`` cell.
"""

from __future__ import annotations

from atlab.quiz import Question, Quiz

_RW, _E2H, _TGE = 1 << 31, 1 << 34, 1 << 27


def _regime(op: str, hcr: int) -> str:
    from atlab.features import FeatureSet
    from atlab.regime import AtOp, compute_translation_regime
    from atlab.sysregs import SysRegs

    return str(compute_translation_regime(AtOp[op], SysRegs({"HCR_EL2": hcr}),
                                          FeatureSet.all()).regime)


def _user_page_par(op: str, *, pan: int = 0) -> tuple[int, int]:
    """(F, FST) of ``op`` on a page EL0 may read and write (AP=01), at EL1&0."""
    from atlab.at import run_at
    from atlab.builder import S1Builder
    from atlab.regime import AtOp, Regime

    b = S1Builder(Regime.EL10, va_bits=48, tables=(0x4020_0000, 0x4040_0000))
    b.map(0x10_0000, 0x4800_0000, 0x1000, ap="EL1 RW / EL0 RW")
    par = run_at(AtOp[op], 0x10_0000, regs=b.regs(), mem=b.memory(), pan=pan).par
    assert par is not None
    return par.f, par.fault_status


def _desc_kind(desc: int, level: int) -> str:
    from atlab.descriptors import decode_descriptor

    return str(decode_descriptor(desc, level=level)["kind"])


def _perms(ap: int, el: int, *, wxn: bool = False) -> tuple[bool, bool, bool]:
    from atlab.checks import reference_s1_permissions
    from atlab.perms import S1PermBits

    return reference_s1_permissions(S1PermBits(ap=ap), el, False, wxn)


def _tlbi_for(kind: str) -> list[str]:
    from atlab.checks import reference_tlb_maintenance, tlb_changes

    change = next(c for name, c in tlb_changes() if name == kind)
    return [op for op, _ in reference_tlb_maintenance(change)]


def _granule(name: str) -> object:
    from atlab.granule import Granule

    return Granule[name]


def _primer() -> Quiz:
    from atlab.sysregs import decode

    return Quiz("00a_primer", (
        Question("A Linux kernel runs inside a virtual machine. At which exception level does "
                 "that kernel run?", ("EL0", "EL1", "EL2", "EL3"), 1,
                 "A guest's kernel runs at EL1 like any kernel; the hypervisor at EL2 runs the "
                 "VM and adds a stage 2 behind the guest's EL1&0 regime.",
                 verify=lambda: _regime("S1E1R", _RW) == "EL1&0"),
        Question("TCR_EL1 = 0x500803510. What is TCR_EL1.T0SZ, bits [5:0]?",
                 ("0x510", "5", "16", "48"), 2,
                 "The last two hex digits 0x10 are bits [7:0]; bits [5:0] of 0x10 are 0b010000 "
                 "= 16, so the lower range has 64 - 16 = 48 bits.",
                 verify=lambda: decode("TCR_EL1", 0x500803510)["T0SZ"] == 16),
        Question("What does AT S1E1R, X0 do?",
                 ("Loads from the address in X0 with EL1's permissions",
                  "Translates the VA in X0 as an EL1 read would and writes the answer to "
                  "PAR_EL1, without accessing memory at that address",
                  "Invalidates the TLB entry of the VA in X0",
                  "Writes a descriptor for the VA in X0"), 1,
                 "AT asks the MMU; the answer (PA and attributes, or the fault) lands in "
                 "PAR_EL1. No data access happens.",
                 verify=lambda: _user_page_par("S1E1R") == (0, 0)),
        Question("With HCR_EL2.{E2H,TGE} = {1,1}, which regime translates an application's "
                 "(EL0) accesses?", ("EL1&0", "EL2", "EL2&0", "EL3"), 2,
                 "E2H=1 with TGE=1 makes EL2 the host kernel's level (VHE): EL0 runs in the "
                 "EL2&0 regime beside it.",
                 verify=lambda: _regime("S1E0R", _RW | _E2H | _TGE) == "EL2&0"),
        Question("A kernel changed a page's descriptor. Why must it also execute TLBI?",
                 ("The MMU only reads the tables once, at boot",
                  "The TLB may still hold the old translation: it is not kept coherent with "
                  "the tables", "TLBI writes the new descriptor to memory",
                  "AT instructions need it"), 1,
                 "The TLB caches translations; after a change software removes the stale "
                 "entry (TLBI), waits for it (DSB) and resynchronizes (ISB) — chapter 10.",
                 verify=lambda: _tlbi_for("leaf remaps")[-2:] == ["DSB ISH", "ISB"]),
    ))


def _anatomy() -> Quiz:
    from atlab.granule import Granule, decode_tg1, start_level

    return Quiz("01_anatomy_of_a_va", (
        Question("How many VA bits does each level of a walk resolve with the 4KB granule?",
                 ("8", "9", "12", "13"), 1,
                 "A 4KB table holds 512 eight-byte descriptors: 2^9 entries, 9 bits "
                 "(11 with 16KB, 13 with 64KB).", verify=lambda: Granule.K4.stride == 9),
        Question("TCR_EL1.T0SZ = 25 with the 4KB granule: at which level does the walk start?",
                 ("Level 0", "Level 1", "Level 2", "Level 3"), 1,
                 "64 - 25 = 39 bits; 12 bits of page offset and 3 x 9 index bits cover 39: "
                 "three levels, starting at level 1.",
                 verify=lambda: start_level(39, Granule.K4) == 1),
        Question("Which VA bit chooses between TTBR0_EL1 and TTBR1_EL1?",
                 ("Bit 63", "Bit 55", "Bit 48", "Bit 47"), 1,
                 "AArch64.GetVARange() reads bit 55, so the choice survives top-byte-ignore "
                 "(a tag in bits [63:56])."),
        Question("TCR_EL1.TG1 = 0b10. Which granule does the upper range use?",
                 ("4KB", "16KB", "64KB", "Reserved"), 0,
                 "TG1 encodes 01=16KB, 10=4KB, 11=64KB — not like TG0 (00=4KB, 01=64KB, "
                 "10=16KB).", verify=lambda: decode_tg1(0b10, "TCR_EL1") is Granule.K4),
        Question("Why does the EL1&0 regime have two VA ranges?",
                 ("To double the address space of one process",
                  "So the kernel's mappings (upper range, TTBR1) stay put while a context "
                  "switch changes only the process's table (lower range, TTBR0)",
                  "Because stage 2 needs the second one",
                  "One range is for reads, the other for writes"), 1,
                 "Each process brings its own TTBR0_EL1 table; the kernel, mapped through "
                 "TTBR1_EL1, is the same in every process."),
    ))


def _walk() -> Quiz:
    from atlab.granule import Granule, level_lsb

    return Quiz("02_stage1_walk", (
        Question("A descriptor with bits [1:0] = 0b01 at level 3 is", (
            "a block", "a page", "invalid", "reserved (it faults)"), 3,
            "At level 3, 0b11 is a page; 0b01 (a block elsewhere) is reserved and the walk "
            "reports a translation fault.", verify=lambda: _desc_kind(0x45678701, 3) ==
            "reserved"),
        Question("A descriptor with bits [1:0] = 0b11 at level 2 is", (
            "a table: it points at the next level's table", "a page", "a 2MB block",
            "invalid"), 0,
            "Above level 3, 0b11 is a table descriptor and 0b01 a block.",
            verify=lambda: _desc_kind(0x45678703, 2) == "table"),
        Question("How much memory does a level 2 block map with the 4KB granule?",
                 ("4KB", "2MB", "1GB", "512GB"), 1,
                 "A level 2 entry covers what the level 3 table under it would: 512 x 4KB = "
                 "2MB (level 1: 1GB).", verify=lambda: level_lsb(2, Granule.K4) == 21),
        Question("How many descriptors does a successful 4KB, 48-bit VA walk read to reach a "
                 "page?", ("3", "4", "5", "24"), 1,
                 "One per level, levels 0 to 3. (24 is the nested case of chapter 07.)",
                 verify=lambda: level_lsb(0, Granule.K4) == 39),
        Question("A leaf has AF (the Access flag, bit 10) = 0 and hardware AF management is "
                 "off. The access", ("succeeds and sets AF", "takes an Access flag fault",
                                     "takes a translation fault", "takes a permission fault"),
                 1, "Without FEAT_HAFDBS (or with TCR_ELx.HA=0) software manages AF: the "
                 "access faults so the OS can note the page was used."),
    ))


def _perms_quiz() -> Quiz:
    return Quiz("03_permissions_and_faults", (
        Question("AP[2:1] = 0b01 means", ("EL1 read/write, no EL0 access",
                                          "EL1 and EL0 read/write", "EL1 read-only",
                                          "EL1 and EL0 read-only"), 1,
                 "00: EL1 RW; 01: EL1 and EL0 RW; 10: EL1 RO; 11: EL1 and EL0 RO.",
                 verify=lambda: _perms(0b01, 0)[:2] == (True, True)),
        Question("With PSTATE.PAN = 1, AT S1E1R on a page EL0 can access",
                 ("faults: PAN forbids it", "succeeds: AT S1E1R ignores PAN",
                  "is UNDEFINED", "returns the EL0 view"), 1,
                 "Only AT S1E1RP/WP (FEAT_PAN2) apply PAN; S1E1R/W never see it.",
                 verify=lambda: _user_page_par("S1E1R", pan=1)[0] == 0
                 and _user_page_par("S1E1RP", pan=1)[1] == 0b001111),
        Question("Which AT asks \"may the application (EL0) read this address?\"",
                 ("AT S1E1R", "AT S1E1RP", "AT S1E0R", "AT S1E1A"), 2,
                 "S1E0R checks EL0's permissions. S1E1RP checks EL1's access with PAN; "
                 "S1E1A checks no permissions at all.",
                 verify=lambda: _user_page_par("S1E0R") == (0, 0)),
        Question("Can EL1 execute code from a page EL0 may write (AP=01, PXN=0)?",
                 ("Yes, PXN=0 allows it", "No: EL0-writable memory is never executable at "
                  "EL1 (implicit PXN)", "Only with PAN=0", "Only with WXN=0"), 1,
                 "The architecture makes EL0-writable memory privileged-execute-never, so a "
                 "kernel cannot be tricked into running user-written code.",
                 verify=lambda: _perms(0b01, 1)[2] is False),
        Question("SCTLR_EL1.WXN = 1 makes", ("every writable page non-executable",
                                              "every executable page read-only",
                                              "EL0 pages inaccessible", "nothing at EL1"), 0,
                 "Write implies execute-never: memory writable at a level is not executable "
                 "there.", verify=lambda: _perms(0b00, 1, wxn=True)[2] is False),
    ))


def _attrs_quiz() -> Quiz:
    from atlab.attrs import decode_mair_attr, par_shareability

    return Quiz("04_memory_attributes", (
        Question("Where does a leaf descriptor get its memory type?",
                 ("From bits [4:2] directly", "AttrIndx (bits [4:2]) selects one byte of "
                  "MAIR_ELx", "From the TCR_ELx.IRGN/ORGN fields", "From PAR_EL1"), 1,
                 "The descriptor holds a 3-bit index; MAIR_ELx holds the eight attribute "
                 "bytes."),
        Question("MAIR attribute byte 0xbb is", ("Normal Write-Back", "Normal Write-Through",
                                                "Device-nGnRE", "Normal Non-cacheable"), 1,
                 "Each nibble 0b10RW is Write-Through Non-transient; Write-Back is 0b11RW "
                 "(0xc-0xf), so 0xff is Write-Back.",
                 verify=lambda: str(decode_mair_attr(0xBB)) == "Normal iWT oWT"),
        Question("MAIR attribute byte 0x04 is", ("Device-nGnRnE", "Device-nGnRE",
                                                "Normal Non-cacheable", "reserved"), 1,
                 "0b0000dd00: dd=01 is nGnRE (0x00 nGnRnE, 0x08 nGRE, 0x0c GRE).",
                 verify=lambda: str(decode_mair_attr(0x04)) == "Device-nGnRE"),
        Question("A Device page's descriptor says SH = Inner Shareable. PAR_EL1.SH reads",
                 ("0b11 (Inner, from the descriptor)", "0b10 (Outer Shareable)",
                  "0b00 (Non-shareable)", "UNKNOWN"), 1,
                 "Device and Normal Non-cacheable memory are always reported as 0b10, "
                 "whatever the descriptor says.",
                 verify=lambda: par_shareability(decode_mair_attr(0x04), 0b11) == 0b10),
    ))


def _regimes_quiz() -> Quiz:
    return Quiz("05_regimes_e2h_tge", (
        Question("HCR_EL2.{E2H,TGE} = {1,0}, code at EL2 executes AT S1E1R. It translates in",
                 ("EL1&0", "EL2&0", "EL2", "nothing: it is UNDEFINED"), 0,
                 "E2H=1 alone is a VHE host running a guest: EL1 and EL0 are the guest's, "
                 "in the EL1&0 regime. Only {1,1} moves S1E0*/S1E1* to EL2&0.",
                 verify=lambda: _regime("S1E1R", _RW | _E2H) == "EL1&0"),
        Question("HCR_EL2.{E2H,TGE} = {1,1}. AT S1E0R translates in",
                 ("EL1&0", "EL2&0", "EL2", "EL3"), 1,
                 "With {1,1} the host's applications run at EL0 beside the host kernel at "
                 "EL2: the EL2&0 regime.", verify=lambda: _regime("S1E0R", _RW | _E2H | _TGE)
                 == "EL2&0"),
        Question("HCR_EL2.{E2H,TGE} = {0,1}. What happens to the EL1&0 stage 1?",
                 ("Nothing", "It is disabled: VA = PA (flat map)", "It moves to EL2&0",
                  "It becomes stage 2"), 1,
                 "AArch64.S1Enabled(): TGE=1 disables the EL1&0 stage 1; TGE without E2H "
                 "does not create EL2&0.",
                 verify=lambda: _at_target("S1E1R", _RW | _TGE, 0x4000) == ("EL1&0", "none")),
        Question("With E2H = 0, how many VA ranges does the EL2 regime have?",
                 ("One (TTBR0_EL2)", "Two (TTBR0_EL2 and TTBR1_EL2)", "None", "Four"), 0,
                 "Only regimes with an EL0 (EL1&0, EL2&0) have two ranges; an upper VA is "
                 "out of range in the EL2 regime.",
                 verify=lambda: _at_target("S1E2R", _RW, 0xFFFF_0000_1234_5000)[1] == "none"),
    ))


def _at_target(op: str, hcr: int, va: int) -> tuple[str, str]:
    from atlab.checks import reference_at_target
    from atlab.regime import AtOp

    regime, ttbr = reference_at_target(AtOp[op], hcr, va)
    return str(regime), ttbr


def _at_par_quiz() -> Quiz:
    from atlab.par import Par

    return Quiz("06_at_and_par", (
        Question("PAR_EL1.F = 1 means", ("the PA is valid", "the translation faulted; FST "
                                         "says which fault at which level",
                                         "the AT was UNDEFINED", "the TLB missed"), 1,
                 "F=0: PA and attributes; F=1: FST (fault status, with the level), S "
                 "(stage 2?) and PTW (on a stage 1 table walk?).",
                 verify=lambda: Par(0x809).f == 1),
        Question("PAR_EL1 = 0xb0d reports", (
            "a stage 1 permission fault", "a stage 2 translation fault at level 2 on the "
            "final IPA", "a stage 2 translation fault at level 2 on a stage 1 table walk "
            "(S=1, PTW=1)", "success"), 2,
            "Bits [6:1] are FST = 0b000110, a level 2 translation fault; bit 9 S=1: stage 2; "
            "bit 8 PTW=1: on a stage 1 table walk.",
            verify=lambda: (Par(0xB0D).s, Par(0xB0D).ptw, Par(0xB0D).fault_status)
            == (1, 1, 0b000110)),
        Question("AT S1E1A (FEAT_ATS1A) differs from AT S1E1R in that it",
                 ("checks write permission", "checks no permissions: only translation, "
                  "Access flag and address size faults", "uses stage 2",
                  "applies PAN"), 1,
                 "It answers \"where does this VA go?\" without an access check."),
        Question("Why does the AArch64 architecture have AT instructions at all?",
                 ("To speed up every load", "So software (an OS, a hypervisor emulating "
                  "an access, a debugger) can ask the MMU for a translation without "
                  "making the access and taking its fault",
                  "To fill the TLB before a context switch", "For stage 2 only"), 1,
                 "A hypervisor handling a trap, for example, needs the PA of a guest VA; AT "
                 "returns it (or the fault) in PAR_EL1 as a value."),
    ))


def _stage2_quiz() -> Quiz:
    from atlab.checks import reference_combine_attrs

    return Quiz("07_stage2_2d_walk", (
        Question("A nested walk with 4 stage 1 and 4 stage 2 levels reads how many "
                 "descriptors on a TLB miss?", ("8", "16", "24", "25"), 2,
                 "Each of the 4 stage 1 table addresses and the final IPA need a 4-level "
                 "stage 2 walk: (4+1)(4+1) - 1 = 24.", verify=lambda: (4 + 1) * (4 + 1) - 1
                 == 24),
        Question("Why can stage 2 start with up to 16 concatenated tables?",
                 ("To save a level of lookup: a wider first table replaces one more "
                  "level, which every stage 1 access would pay for again",
                  "For security", "Because IPAs are 64 bits", "To share tables between VMs"),
                 0, "A stage 2 level costs an extra access for every stage 1 table read; "
                 "concatenation trades a few contiguous pages for one level less."),
        Question("Stage 1 says Normal Write-Back, stage 2 says Device-nGnRE. The access is",
                 ("Normal Write-Back", "Device-nGnRE", "Normal Non-cacheable",
                  "UNPREDICTABLE"), 1,
                 "Combining takes the more restrictive: a guest cannot make the host's "
                 "device memory cacheable.",
                 verify=lambda: reference_combine_attrs(0xFF, 0b0001) == 0x04),
        Question("A stage 2 fault on a stage 1 table access: PAR_EL1.FST's level is",
                 ("the stage 1 level being walked", "the level of the stage 2 walk that "
                  "faulted", "always 3", "always 0"), 1,
                 "The fault is stage 2's (S=1, PTW=1): its level is where the stage 2 walk "
                 "of that table's IPA stopped."),
    ))


def _nv_quiz() -> Quiz:
    return Quiz("08_nested_virtualization", (
        Question("Where does a guest hypervisor (L1) actually execute?",
                 ("At EL2, beside L0", "At EL1, with HCR_EL2.NV=1 so that its EL2 "
                  "instructions trap to L0", "At EL0", "At EL3"), 1,
                 "Only L0 runs at EL2. L1 runs at EL1 believing it is at EL2 (virtual EL2); "
                 "its EL2 registers are virtual."),
        Question("Why must L0 emulate L1's AT S1E2R instead of letting the hardware run it?",
                 ("It is slow in hardware", "L1's EL2 translation regime is not the "
                  "hardware's: its EL2 registers are virtual, so the hardware would answer "
                  "for the wrong tables", "AT is UNDEFINED at EL2",
                  "L1 has no page tables"), 1,
                 "L0 either loads L1's context and uses a hardware AT (fast path) or walks "
                 "L1's tables in software."),
        Question("When L1 executes AT S12E1R for its guest L2, what is never resident in "
                 "the hardware?", ("L2's stage 1 tables", "L1's stage 2 tables: the hardware "
                                   "only sees L0's shadow stage 2", "PAR_EL1", "The TLB"),
                 1, "L0 builds a shadow stage 2 (L2 IPA -> PA) lazily; L1's own stage 2 is "
                 "walked in software."),
        Question("L2's AT meets a hole in L1's stage 2. What happens?",
                 ("L2 reads a stage 2 fault in PAR_EL1", "L0 injects the Data Abort into L1, "
                  "which handles it like any stage 2 fault", "L0 maps the hole",
                  "Nothing"), 1,
                 "A stage 2 fault on a stage 1 walk of an AT at EL1 is an exception to EL2 — "
                 "to L1's virtual EL2."),
    ))


def _validate_quiz() -> Quiz:
    return Quiz("09_validating_against_hardware", (
        Question("Why does the differential test mask some PAR_EL1 bits before comparing?",
                 ("To hide bugs", "Some bits are IMPLEMENTATION DEFINED or UNKNOWN: two "
                  "correct implementations may differ there", "QEMU is slow",
                  "The model has no PAR"), 1,
                 "Par.masked() removes what the Arm ARM leaves open; everything else must "
                 "agree bit for bit."),
        Question("Why run the same scenarios on QEMU at all?", (
            "QEMU defines the architecture", "An independent implementation catches "
            "misreadings of the Arm ARM that the model's own tests would share",
            "To measure speed", "For the widgets"), 1,
            "Where they disagree, one of them misreads the Arm ARM; the known QEMU "
            "deviations are listed with the argument for atlab's answer."),
        Question("The test runs QEMU 10.0.2. How are AT S1E1A results checked?",
                 ("Against QEMU", "Against the Arm ARM only: QEMU implements FEAT_ATS1A from "
                  "11.1 on", "They are not modelled", "Against KVM"), 1,
                 "Those scenarios are sent with FEAT_ATS1A off."),
    ))


def _tlb_quiz() -> Quiz:
    return Quiz("10_tlbs_and_shadow_stage2", (
        Question("A kernel remapped a page (a leaf descriptor). Which sequence makes every PE "
                 "see the new mapping?", ("DSB; ISB", "TLBI VALE1IS; DSB ISH; ISB",
                                          "ISB; TLBI VALE1IS", "TLBI VALE1IS"), 1,
                 "TLBI removes the entry, DSB waits until every PE has removed it, ISB makes "
                 "the next instructions use the new translation.",
                 verify=lambda: _tlbi_for("leaf remaps") == ["TLBI VALE1IS", "DSB ISH",
                                                             "ISB"]),
        Question("A table descriptor (not a leaf) changed. Is TLBI VALE1 enough?",
                 ("Yes", "No: VALE1 removes leaf entries only; the walk cache may hold the old "
                  "table descriptor — use VAE1", "Only with an ISB", "Only at EL2"), 1,
                 "The 'last level' forms leave the walk cache alone.",
                 verify=lambda: _tlbi_for("table descriptors")[0] == "TLBI VAE1IS"),
        Question("What do ASIDs buy an OS?", (
            "Bigger pages", "TLB entries tagged by process: a context switch needs no TLB "
            "flush", "Faster walks", "Stage 2"), 1,
            "Entries of other address spaces stay but never match; VMIDs do the same for "
            "virtual machines."),
        Question("L0's shadow stage 2 for L2 is best described as", (
            "a copy of L1's stage 2", "a TLB of L1's stage 2 combined with L0's own: entries "
            "L1's TLBIs must drop", "L2's stage 1", "a hardware feature"), 1,
            "That is why L1's TLBIs trap to L0: L0 must remove the shadow entries they "
            "cover."),
    ))


def _snapshot_rights(symbol_lo: str, symbol_hi: str) -> set[str]:
    """The rights of the course snapshot's kernel ranges between two symbols."""
    from atlab.ptdump import ptdump
    from atlab.regime import Regime
    from atlab.snapshot import course_snapshot

    snap = course_snapshot()
    sym = snap.symbols
    sc = snap.scenario
    dump = ptdump(sc.regs, sc.fresh_memory(), regime=Regime.EL20, ttbr=1, features=sc.features)
    return {r.rights for r in dump.ranges
            if r.start < sym[symbol_hi] and r.end > sym[symbol_lo]}


def _snapshot_regime() -> str:
    from atlab.snapshot import course_snapshot

    sc = course_snapshot().scenario
    return _regime("S1E2R", sc.regs["HCR_EL2"])


def _real_quiz() -> Quiz:
    return Quiz("11_real_tables", (
        Question("Debian's kernel booted with virtualization=on on a CPU with FEAT_VHE: where "
                 "are its tables?", ("TTBR0_EL1/TTBR1_EL1 (EL1&0)", "TTBR0_EL2/TTBR1_EL2: "
                                     "it runs at EL2 with HCR_EL2.E2H=1, in the EL2&0 regime",
                                     "TTBR0_EL2 only (the EL2 regime has one range)",
                                     "VTTBR_EL2"), 1,
                 "A VHE host keeps running at EL2; E2H=1 gives EL2 two VA ranges like EL1&0.",
                 verify=lambda: _snapshot_regime() == "EL2&0"),
        Question("What does the kernel's text look like in its tables?", (
            "RWX, so it can patch itself", "Read-only and executable; rodata read-only; data "
            "read-write and never executable", "Read-write, not executable",
            "Not mapped after boot"), 1,
            "W^X: no page is both writable and executable (the kernel checks it at boot, "
            "CONFIG_DEBUG_WX; atlab's ptdump --wx agrees).",
            verify=lambda: _snapshot_rights("_stext", "_etext") == {"EL2:R-X EL0:---"}
            and _snapshot_rights("_sdata", "_end") == {"EL2:RW- EL0:---"}),
        Question("Why does Linux map most of its linear map in 4KB pages rather than blocks?", (
            "Blocks are not allowed at EL2", "So that the permissions of single pages can "
            "change (read-only data, freed init memory) without splitting a live block",
            "The 4KB granule has no blocks", "To save table memory"), 1,
            "Splitting a live block needs break-before-make; mapping in pages from the start "
            "avoids it. Where nothing needs finer control a block is still used."),
        Question("QEMU's gva2gpa said every user page was unmapped while the CPU was at EL2. "
                 "Why?", ("The user process had exited", "gva2gpa translates as the CPU "
                          "would access memory now: at EL2 with PSTATE.PAN=1, privileged "
                          "access to user pages is not allowed", "TTBR0_EL2 is not used at "
                          "EL2", "QEMU has a bug"), 1,
                 "With PAN cleared (and the CPU at EL2) QEMU gives the same PAs as atlab and "
                 "as the kernel's /proc/PID/pagemap."),
    ))


#: Every chapter's quiz, by notebook name (without .ipynb).
QUIZZES: dict[str, Quiz] = {q.chapter: q for q in (
    _primer(), _anatomy(), _walk(), _perms_quiz(), _attrs_quiz(), _regimes_quiz(),
    _at_par_quiz(), _stage2_quiz(), _nv_quiz(), _validate_quiz(), _tlb_quiz(), _real_quiz())}

__all__ = ["QUIZZES"]
