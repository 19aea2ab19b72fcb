"""System registers as declared field tables, and an immutable register snapshot.

Each register layout is data: a tuple of :class:`Field` rows, spelled as in the Arm ARM
(DDI 0487, chapter D24).  Decoding, encoding and pretty-printing go by field name:

>>> hex(encode("TCR_EL1", T0SZ=16, TG0=0, SH0=3, ORGN0=1, IRGN0=1, IPS=5))
'0x500003510'
>>> decode("TCR_EL1", 0x5b5103510)["TG1"]
2
>>> print(format_fields("HCR_EL2", 0x480000000))
HCR_EL2=0x0000000480000000 RW=1 E2H=1
>>> decode("TCR_EL2", 0x80853510, e2h=0)["PS"]
5

TCR_EL2 has two layouts: the EL2 layout when HCR_EL2.E2H is 0 and the TCR_EL1-like layout
when E2H is 1 (D24.2 TCR_EL2).  SCR_EL3 is fixed (see :data:`SCR_EL3_VALUE`): the modelled PE
runs its lower ELs Non-secure, in AArch64, with EL2 enabled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from atlab.bits import bits, set_bits
from atlab.errors import AtlabError, clip
from atlab.features import Feature, FeatureSet
from atlab.granule import PS_BITS


@dataclass(frozen=True, slots=True)
class Field:
    """One register field ``name`` at bits ``hi:lo``; ``reserved`` lists reserved encodings."""

    name: str
    hi: int
    lo: int
    doc: str = ""
    values: Mapping[int, str] = field(default_factory=dict)
    reserved: frozenset[int] = frozenset()

    @property
    def width(self) -> int:
        return self.hi - self.lo + 1


def _f(name: str, hi: int, lo: int | None = None, doc: str = "", **kw: object) -> Field:
    values = kw.get("values", {})
    reserved = kw.get("reserved", frozenset())
    assert isinstance(values, dict) and isinstance(reserved, frozenset)
    return Field(name, hi, hi if lo is None else lo, doc, values, reserved)


_SH = {0: "Non-shareable", 1: "reserved", 2: "Outer Shareable", 3: "Inner Shareable"}
_RGN = {0: "Non-cacheable", 1: "WB RA WA", 2: "WT RA nWA", 3: "WB RA nWA"}
_TG0 = {0: "4KB", 1: "64KB", 2: "16KB", 3: "reserved"}
_TG1 = {0: "reserved", 1: "16KB", 2: "4KB", 3: "64KB"}
_PS = {0: "32 bits", 1: "36 bits", 2: "40 bits", 3: "42 bits", 4: "44 bits", 5: "48 bits",
       6: "52 bits", 7: "56 bits"}

# TCR_EL1 layout (D24.2 TCR_EL1); also TCR_EL2 when HCR_EL2.E2H == 1.
_TCR_E2H1_LAYOUT: tuple[Field, ...] = (
    _f("T0SZ", 5, 0, "size offset of the TTBR0 region: 2^(64-T0SZ) bytes"),
    _f("EPD0", 7, doc="translation table walk disable for TTBR0"),
    _f("IRGN0", 9, 8, "inner cacheability of TTBR0 walks", values=_RGN),
    _f("ORGN0", 11, 10, "outer cacheability of TTBR0 walks", values=_RGN),
    _f("SH0", 13, 12, "shareability of TTBR0 walks", values=_SH, reserved=frozenset({1})),
    _f("TG0", 15, 14, "TTBR0 granule", values=_TG0, reserved=frozenset({3})),
    _f("T1SZ", 21, 16, "size offset of the TTBR1 region"),
    _f("A1", 22, doc="ASID from TTBR1 (1) or TTBR0 (0)"),
    _f("EPD1", 23, doc="translation table walk disable for TTBR1"),
    _f("IRGN1", 25, 24, values=_RGN),
    _f("ORGN1", 27, 26, values=_RGN),
    _f("SH1", 29, 28, values=_SH, reserved=frozenset({1})),
    _f("TG1", 31, 30, "TTBR1 granule (encoded differently from TG0)", values=_TG1,
       reserved=frozenset({0})),
    _f("IPS", 34, 32, "intermediate physical address size", values=_PS),
    _f("AS", 36, doc="ASID size"),
    _f("TBI0", 37, doc="top byte ignored, TTBR0 region"),
    _f("TBI1", 38, doc="top byte ignored, TTBR1 region"),
    _f("HA", 39, doc="hardware Access flag update (FEAT_HAFDBS)"),
    _f("HD", 40, doc="hardware dirty state management (FEAT_HAFDBS)"),
    _f("HPD0", 41, doc="hierarchical permission disable, TTBR0 (FEAT_HPDS)"),
    _f("HPD1", 42, doc="hierarchical permission disable, TTBR1 (FEAT_HPDS)"),
    _f("HWU059", 43), _f("HWU060", 44), _f("HWU061", 45), _f("HWU062", 46),
    _f("HWU159", 47), _f("HWU160", 48), _f("HWU161", 49), _f("HWU162", 50),
    _f("TBID0", 51), _f("TBID1", 52), _f("NFD0", 53), _f("NFD1", 54),
    _f("E0PD0", 55, doc="EL0 access to TTBR0 region faults (FEAT_E0PD)"),
    _f("E0PD1", 56, doc="EL0 access to TTBR1 region faults (FEAT_E0PD)"),
    _f("TCMA0", 57), _f("TCMA1", 58),
    _f("DS", 59, doc="52-bit addresses with 4KB/16KB granules (FEAT_LPA2)"),
    _f("MTX0", 60), _f("MTX1", 61),
)

# TCR_EL2 when HCR_EL2.E2H == 0 (bits 31 and 23 are RES1); TCR_EL3 extends it below.
_TCR_EL2_LAYOUT: tuple[Field, ...] = (
    _f("T0SZ", 5, 0, "size offset of the region: 2^(64-T0SZ) bytes"),
    _f("IRGN0", 9, 8, values=_RGN),
    _f("ORGN0", 11, 10, values=_RGN),
    _f("SH0", 13, 12, values=_SH, reserved=frozenset({1})),
    _f("TG0", 15, 14, "granule", values=_TG0, reserved=frozenset({3})),
    _f("PS", 18, 16, "physical address size", values=_PS),
    _f("TBI", 20, doc="top byte ignored"),
    _f("HA", 21, doc="hardware Access flag update"),
    _f("HD", 22, doc="hardware dirty state management"),
    _f("RES1_23", 23, doc="RES1"),
    _f("HPD", 24, doc="hierarchical permission disable"),
    _f("HWU59", 25), _f("HWU60", 26), _f("HWU61", 27), _f("HWU62", 28),
    _f("TBID", 29), _f("TCMA", 30),
    _f("RES1_31", 31, doc="RES1"),
    _f("DS", 32, doc="52-bit addresses with 4KB/16KB granules (FEAT_LPA2)"),
    _f("MTX", 33),
)

# D24.2.196 TCR_EL3: the EL2 layout, and bits [43:34] (the EL3 regime has no TCR2_EL3).
_TCR_EL3_LAYOUT: tuple[Field, ...] = (
    *_TCR_EL2_LAYOUT,
    _f("PnCH", 34, doc="protected attribute (FEAT_THE; not modelled)"),
    _f("PIE", 35, doc="stage 1 permission indirection (FEAT_S1PIE): PIR_EL3 gives the rights"),
    _f("POE", 36, doc="permission overlays from POR_EL3 (FEAT_S1POE)"),
    _f("AIE", 37, doc="AttrIndx[3] (descriptor bit 59) and MAIR2_EL3 (FEAT_AIE)"),
    _f("D128", 38, doc="128-bit descriptors (FEAT_D128; not modelled)"),
    _f("PTTWI", 41, doc="RCWS writes with Reduced Coherence (FEAT_THE)"),
    _f("HAFT", 42, doc="hardware Access flag for tables (FEAT_HAFT; not modelled)"),
    _f("DisCH0", 43, doc="no Contiguous bit in the start table (FEAT_D128)"),
)

_SCTLR_LAYOUT: tuple[Field, ...] = (
    _f("M", 0, doc="stage 1 MMU enable"),
    _f("A", 1, doc="alignment check"),
    _f("C", 2, doc="data cacheability control"),
    _f("SA", 3), _f("SA0", 4),
    _f("nAA", 6), _f("I", 12, doc="instruction cacheability control"),
    _f("WXN", 19, doc="write permission implies execute-never"),
    _f("SPAN", 23, doc="set PAN on exception entry (0 = set)"),
    _f("E0E", 24), _f("EE", 25, doc="endianness of data accesses and table walks"),
    _f("nTLSMD", 28), _f("LSMAOE", 29),
    _f("EPAN", 57, doc="enhanced PAN: PAN also covers EL0-executable pages (FEAT_PAN3)"),
)

_HCR_LAYOUT: tuple[Field, ...] = (
    _f("VM", 0, doc="stage 2 enable for EL1&0"),
    _f("SWIO", 1), _f("PTW", 2, doc="protected table walk"),
    _f("FMO", 3), _f("IMO", 4), _f("AMO", 5), _f("VF", 6), _f("VI", 7), _f("VSE", 8),
    _f("FB", 9), _f("BSU", 11, 10),
    _f("DC", 12, doc="default cacheability: EL1&0 stage 1 off, Normal WB"),
    _f("TWI", 13), _f("TWE", 14), _f("TID0", 15), _f("TID1", 16), _f("TID2", 17),
    _f("TID3", 18), _f("TSC", 19), _f("TIDCP", 20), _f("TACR", 21), _f("TSW", 22),
    _f("TPCP", 23), _f("TPU", 24), _f("TTLB", 25), _f("TVM", 26),
    _f("TGE", 27, doc="trap general exceptions: EL0 runs in the host"),
    _f("TDZ", 28), _f("HCD", 29), _f("TRVM", 30),
    _f("RW", 31, doc="EL1 is AArch64"),
    _f("CD", 32, doc="stage 2 data accesses Non-cacheable"),
    _f("ID", 33),
    _f("E2H", 34, doc="EL2 host: EL2&0 regime (FEAT_VHE)"),
    _f("TLOR", 35), _f("TERR", 36), _f("TEA", 37), _f("MIOCNCE", 38), _f("TME", 39),
    _f("APK", 40), _f("API", 41),
    _f("NV", 42, doc="nested virtualization (FEAT_NV)"),
    _f("NV1", 43, doc="nested virtualization, EL1 register redirection (FEAT_NV)"),
    _f("AT", 44, doc="trap EL1 AT S1E0*/S1E1* to EL2 (FEAT_NV)"),
    _f("NV2", 45), _f("FWB", 46, doc="stage 2 forced write-back (FEAT_S2FWB)"),
    _f("FIEN", 47), _f("GPF", 48), _f("TID4", 49), _f("TICAB", 50), _f("AMVOFFEN", 51),
    _f("TOCU", 52), _f("EnSCXT", 53), _f("TTLBIS", 54), _f("TTLBOS", 55), _f("ATA", 56),
    _f("DCT", 57), _f("TID5", 58), _f("TWEDEn", 59), _f("TWEDEL", 63, 60),
)

_TTBR_LAYOUT: tuple[Field, ...] = (
    _f("CnP", 0, doc="common not private"),
    _f("BADDR", 47, 1, "translation table base address"),
    _f("ASID", 63, 48),
)
_TTBR_EL3_LAYOUT: tuple[Field, ...] = (
    _f("CnP", 0),
    _f("BADDR", 47, 1, "translation table base address"),
)
_VTTBR_LAYOUT: tuple[Field, ...] = (
    _f("CnP", 0),
    _f("BADDR", 47, 1, "stage 2 translation table base address"),
    _f("VMID", 63, 48),
)
_MAIR_LAYOUT: tuple[Field, ...] = tuple(
    _f(f"Attr{i}", 8 * i + 7, 8 * i, f"memory attribute encoding for AttrIndx {i}")
    for i in range(8)
)
_VTCR_LAYOUT: tuple[Field, ...] = (
    _f("T0SZ", 5, 0, "size offset of the IPA region"),
    _f("SL0", 7, 6, "starting level of the stage 2 walk"),
    _f("IRGN0", 9, 8, values=_RGN), _f("ORGN0", 11, 10, values=_RGN),
    _f("SH0", 13, 12, values=_SH, reserved=frozenset({1})),
    _f("TG0", 15, 14, "stage 2 granule", values=_TG0, reserved=frozenset({3})),
    _f("PS", 18, 16, "physical address size", values=_PS),
    _f("VS", 19), _f("HA", 21), _f("HD", 22),
    _f("HWU59", 25), _f("HWU60", 26), _f("HWU61", 27), _f("HWU62", 28),
    _f("NSW", 29), _f("NSA", 30), _f("RES1_31", 31, doc="RES1"),
    _f("DS", 32, doc="52-bit addresses with 4KB/16KB granules (FEAT_LPA2)"),
    _f("SL2", 33, doc="starting level -1 with SL0 (FEAT_LPA2, 4KB)"),
    _f("AssuredOnly", 34), _f("TL1", 35), _f("S2PIE", 36), _f("S2POE", 37), _f("D128", 38),
    _f("GCSH", 40), _f("TL0", 41), _f("HAFT", 44), _f("HDBSS", 45),
)
_PAR_LAYOUT: tuple[Field, ...] = (
    _f("F", 0, doc="1: the translation aborted"),
    _f("FST", 6, 1, "fault status code (F=1)"),
    _f("SH", 8, 7, "shareability (F=0)", values=_SH),
    _f("PTW", 8, doc="stage 2 fault on a stage 1 table walk (F=1)"),
    _f("NS", 9, doc="Non-secure (F=0)"),
    _f("S", 9, doc="stage of the fault (F=1)"),
    _f("IMPDEF10", 10), _f("RES1_11", 11),
    _f("PA", 55, 12, "output address bits [55:12] (F=0)"),
    _f("ATTR", 63, 56, "memory attributes, MAIR encoding (F=0)"),
)
_PSTATE_PAN_LAYOUT: tuple[Field, ...] = (_f("PAN", 0, doc="privileged access never"),)
_SCR_LAYOUT: tuple[Field, ...] = (
    _f("NS", 0), _f("IRQ", 1), _f("FIQ", 2), _f("EA", 3), _f("SMD", 7), _f("HCE", 8),
    _f("SIF", 9), _f("RW", 10),
    _f("HXEn", 38, doc="HCRX_EL2 in force (IsHCRXEL2Enabled())"),
    _f("TCR2En", 43, doc="TCR2_EL1/TCR2_EL2 in force (IsTCR2EL1Enabled())"),
    _f("SCTLR2En", 44), _f("PIEn", 45, doc="no EL3 trap of PIR/PIRE0/POR"),
    _f("AIEn", 46, doc="no EL3 trap of MAIR2/AMAIR2"),
)
_MMFR0_LAYOUT: tuple[Field, ...] = (
    _f("PARange", 3, 0), _f("ASIDBits", 7, 4), _f("BigEnd", 11, 8), _f("SNSMem", 15, 12),
    _f("BigEndEL0", 19, 16), _f("TGran16", 23, 20), _f("TGran64", 27, 24),
    _f("TGran4", 31, 28), _f("TGran16_2", 35, 32), _f("TGran64_2", 39, 36),
    _f("TGran4_2", 43, 40), _f("ExS", 47, 44), _f("FGT", 59, 56), _f("ECV", 63, 60),
)
_MMFR1_LAYOUT: tuple[Field, ...] = (
    _f("HAFDBS", 3, 0), _f("VMIDBits", 7, 4), _f("VH", 11, 8), _f("HPDS", 15, 12),
    _f("LO", 19, 16), _f("PAN", 23, 20), _f("SpecSEI", 27, 24), _f("XNX", 31, 28),
)
_MMFR2_LAYOUT: tuple[Field, ...] = (
    _f("CnP", 3, 0), _f("UAO", 7, 4), _f("LSM", 11, 8), _f("IESB", 15, 12),
    _f("VARange", 19, 16), _f("CCIDX", 23, 20), _f("NV", 27, 24), _f("ST", 31, 28),
    _f("AT", 35, 32), _f("IDS", 39, 36), _f("FWB", 43, 40), _f("TTL", 51, 48),
    _f("BBM", 55, 52), _f("EVT", 59, 56), _f("E0PD", 63, 60),
)
_ISAR2_LAYOUT: tuple[Field, ...] = (_f("ATS1A", 63, 60),)
# D24.2.91 ID_AA64MMFR3_EL1.
_MMFR3_LAYOUT: tuple[Field, ...] = (
    _f("TCRX", 3, 0, "FEAT_TCR2: TCR2_ELx"), _f("SCTLRX", 7, 4, "FEAT_SCTLR2: SCTLR2_ELx"),
    _f("S1PIE", 11, 8), _f("S2PIE", 15, 12), _f("S1POE", 19, 16), _f("S2POE", 23, 20),
    _f("AIE", 27, 24), _f("MEC", 31, 28), _f("D128", 35, 32), _f("SNERR", 43, 40),
    _f("ANERR", 47, 44), _f("SDERR", 55, 52), _f("ADERR", 59, 56),
)
# D24.2.190 TCR2_EL1; also TCR2_EL2 when HCR_EL2.E2H == 1 (D24.2.191).
_TCR2_E2H1_LAYOUT: tuple[Field, ...] = (
    _f("PnCH", 0, doc="protected attribute (FEAT_THE; not modelled)"),
    _f("PIE", 1, doc="stage 1 permission indirection (FEAT_S1PIE): PIR/PIRE0 give the rights"),
    _f("E0POE", 2, doc="EL0 permission overlays from POR_EL0 (FEAT_S1POE)"),
    _f("POE", 3, doc="privileged permission overlays from POR_EL1/POR_EL2 (FEAT_S1POE)"),
    _f("AIE", 4, doc="AttrIndx[3] (descriptor bit 59) and MAIR2_ELx (FEAT_AIE)"),
    _f("D128", 5, doc="128-bit descriptors (FEAT_D128; not modelled)"),
    _f("PTTWI", 10), _f("HAFT", 11, doc="hardware Access flag for tables (FEAT_HAFT)"),
    _f("AMEC0", 12), _f("AMEC1", 13), _f("DisCH0", 14), _f("DisCH1", 15), _f("A2", 16),
    _f("FNG0", 17), _f("FNG1", 18),
)
# D24.2.191 TCR2_EL2 when HCR_EL2.E2H == 0.
_TCR2_EL2_LAYOUT: tuple[Field, ...] = (
    _f("PnCH", 0, doc="protected attribute (FEAT_THE; not modelled)"),
    _f("PIE", 1, doc="stage 1 permission indirection (FEAT_S1PIE): PIR_EL2 gives the rights"),
    _f("POE", 3, doc="permission overlays from POR_EL2 (FEAT_S1POE)"),
    _f("AIE", 4, doc="AttrIndx[3] (descriptor bit 59) and MAIR2_EL2 (FEAT_AIE)"),
    _f("PTTWI", 10), _f("HAFT", 11), _f("AMEC0", 12),
)
# D24.2.63 HCRX_EL2 (the fields that matter here, and their neighbours).
_HCRX_LAYOUT: tuple[Field, ...] = (
    _f("EnAS0", 0), _f("EnALS", 1), _f("EnASR", 2), _f("FnXS", 3), _f("FGTnXS", 4),
    _f("TALLINT", 6), _f("VINMI", 7), _f("VFNMI", 8), _f("MCE2", 10), _f("MSCEn", 11),
    _f("TCR2En", 14, doc="TCR2_EL1 accessible from EL1 and in force (FEAT_TCR2)"),
    _f("SCTLR2En", 15, doc="SCTLR2_EL1 accessible from EL1 and in force (FEAT_SCTLR2)"),
    _f("PTTWI", 16), _f("D128En", 17), _f("EnSNERR", 18), _f("TMEA", 19), _f("EnSDERR", 20),
    _f("EnIDCP128", 21), _f("GCSEn", 22), _f("EnFPM", 23), _f("PACMEn", 24),
    _f("SRMASKEn", 26),
)
_PI_VALUES = {
    0b0000: "no access", 0b0001: "R", 0b0010: "X", 0b0011: "RX", 0b0100: "reserved (none)",
    0b0101: "RW", 0b0110: "RWX, WXN applies", 0b0111: "RWX", 0b1000: "R, no overlay",
    0b1001: "R + GCS, no overlay", 0b1010: "RX, no overlay", 0b1011: "reserved (none)",
    0b1100: "RW, no overlay", 0b1101: "reserved (none)", 0b1110: "RWX, no overlay",
    0b1111: "reserved (none)",
}
_S2PI_VALUES = {
    0b0000: "no access", 0b0001: "reserved (none)", 0b0010: "MRO", 0b0011: "MRO-TL1",
    0b0100: "write only", 0b0101: "reserved (none)", 0b0110: "MRO-TL0", 0b0111: "MRO-TL01",
    0b1000: "R", 0b1001: "R, EL0 X", 0b1010: "R, EL1 X", 0b1011: "R, X",
    0b1100: "RW", 0b1101: "RW, EL0 X", 0b1110: "RW, EL1 X", 0b1111: "RW, X",
}
_PO_VALUES = {0: "no access", 1: "R", 2: "X", 3: "RX", 4: "W", 5: "RW", 6: "WX", 7: "RWX"}
# D24.2.145-149 PIR_ELx (EL1, EL2, EL3) / PIRE0_ELx and D24.2.166 S2PIR_EL2: Perm<m>,
# bits [4m+3:4m].
_PIR_LAYOUT: tuple[Field, ...] = tuple(
    _f(f"Perm{m}", 4 * m + 3, 4 * m, f"base permissions for PIIndex {m:#06b}", values=_PI_VALUES)
    for m in range(16)
)
_S2PIR_LAYOUT: tuple[Field, ...] = tuple(
    _f(f"Perm{m}", 4 * m + 3, 4 * m, f"stage 2 permissions for PIIndex {m:#06b}",
       values=_S2PI_VALUES)
    for m in range(16)
)
# D24.2.150-153 POR_ELx (EL0 to EL3): Perm<m>, bits [4m+3:4m] (D24.2.167 S2POR_EL1 uses the
# S2PIR encodings).
_POR_LAYOUT: tuple[Field, ...] = tuple(
    _f(f"Perm{m}", 4 * m + 3, 4 * m, f"overlay permissions for POIndex {m}", values=_PO_VALUES)
    for m in range(16)
)
# D24.2.124-126 MAIR2_ELx (EL1, EL2, EL3): the attributes for AttrIndx 8-15 (FEAT_AIE).
_MAIR2_LAYOUT: tuple[Field, ...] = tuple(
    _f(f"Attr{i + 8}", 8 * i + 7, 8 * i, f"memory attribute encoding for AttrIndx {i + 8}")
    for i in range(8)
)
# D24.2.170-171 SCTLR2_ELx: no field affects AT in atlab.
_SCTLR2_LAYOUT: tuple[Field, ...] = (
    _f("EnADERR", 3), _f("EnANERR", 4), _f("EASE", 5), _f("EnIDCP128", 6), _f("EnPACM", 7),
    _f("EnPACM0", 8), _f("CPTA", 9), _f("CPTA0", 10), _f("CPTM", 11), _f("CPTM0", 12),
)

#: Layouts by register name; TCR_EL2 is looked up through :func:`layout` (two layouts).
LAYOUTS: Mapping[str, tuple[Field, ...]] = MappingProxyType({
    "HCR_EL2": _HCR_LAYOUT,
    "SCR_EL3": _SCR_LAYOUT,
    "SCTLR_EL1": _SCTLR_LAYOUT,
    "SCTLR_EL2": _SCTLR_LAYOUT,
    "SCTLR_EL3": _SCTLR_LAYOUT,
    "TCR_EL1": _TCR_E2H1_LAYOUT,
    "TCR_EL2": _TCR_EL2_LAYOUT,
    "TCR_EL3": _TCR_EL3_LAYOUT,
    "TTBR0_EL1": _TTBR_LAYOUT,
    "TTBR1_EL1": _TTBR_LAYOUT,
    "TTBR0_EL2": _TTBR_LAYOUT,
    "TTBR1_EL2": _TTBR_LAYOUT,
    "TTBR0_EL3": _TTBR_EL3_LAYOUT,
    "MAIR_EL1": _MAIR_LAYOUT,
    "MAIR_EL2": _MAIR_LAYOUT,
    "MAIR_EL3": _MAIR_LAYOUT,
    "VTCR_EL2": _VTCR_LAYOUT,
    "VTTBR_EL2": _VTTBR_LAYOUT,
    "PAR_EL1": _PAR_LAYOUT,
    "PSTATE_PAN": _PSTATE_PAN_LAYOUT,
    "ID_AA64MMFR0_EL1": _MMFR0_LAYOUT,
    "ID_AA64MMFR1_EL1": _MMFR1_LAYOUT,
    "ID_AA64MMFR2_EL1": _MMFR2_LAYOUT,
    "ID_AA64ISAR2_EL1": _ISAR2_LAYOUT,
    "ID_AA64MMFR3_EL1": _MMFR3_LAYOUT,
    "HCRX_EL2": _HCRX_LAYOUT,
    "TCR2_EL1": _TCR2_E2H1_LAYOUT,
    "TCR2_EL2": _TCR2_EL2_LAYOUT,
    "PIR_EL1": _PIR_LAYOUT,
    "PIR_EL2": _PIR_LAYOUT,
    "PIR_EL3": _PIR_LAYOUT,
    "PIRE0_EL1": _PIR_LAYOUT,
    "PIRE0_EL2": _PIR_LAYOUT,
    "S2PIR_EL2": _S2PIR_LAYOUT,
    "POR_EL0": _POR_LAYOUT,
    "POR_EL1": _POR_LAYOUT,
    "POR_EL2": _POR_LAYOUT,
    "POR_EL3": _POR_LAYOUT,
    "S2POR_EL1": _S2PIR_LAYOUT,
    "MAIR2_EL1": _MAIR2_LAYOUT,
    "MAIR2_EL2": _MAIR2_LAYOUT,
    "MAIR2_EL3": _MAIR2_LAYOUT,
    "SCTLR2_EL1": _SCTLR2_LAYOUT,
    "SCTLR2_EL2": _SCTLR2_LAYOUT,
})

#: Registers a scenario may set (the rest are fixed or derived).
WRITABLE: frozenset[str] = frozenset(LAYOUTS) - {
    "SCR_EL3", "PAR_EL1", "ID_AA64MMFR0_EL1", "ID_AA64MMFR1_EL1", "ID_AA64MMFR2_EL1",
    "ID_AA64ISAR2_EL1", "ID_AA64MMFR3_EL1",
}

#: SCR_EL3 is fixed: NS=1 (lower ELs Non-secure), RES1 bits 5:4, HCE=1 (HVC enabled),
#: RW=1 (EL2 is AArch64); SMD=0.  EL2 is therefore always enabled (``EL2Enabled()``).
#: EL3 also leaves the Armv8.9 translation registers to the lower ELs: HXEn, TCR2En,
#: SCTLR2En, PIEn and AIEn are 1 (bits RES0 on a PE without the feature), so HCRX_EL2 and
#: TCR2_ELx are in force (``IsHCRXEL2Enabled()``, ``IsTCR2EL1Enabled()``), as the QEMU 11
#: harness sets them.
SCR_EL3_VALUE = 0x531 | (1 << 38) | (1 << 43) | (1 << 44) | (1 << 45) | (1 << 46)

_WIDTH = {"PSTATE_PAN": 1}


def layout(name: str, *, e2h: int = 0) -> tuple[Field, ...]:
    """The field table of ``name``; TCR_EL2 and TCR2_EL2 depend on HCR_EL2.E2H."""
    if name == "TCR_EL2" and e2h:
        return _TCR_E2H1_LAYOUT
    if name == "TCR2_EL2" and e2h:
        return _TCR2_E2H1_LAYOUT
    try:
        return LAYOUTS[name]
    except KeyError:
        known = ", ".join(sorted(LAYOUTS))
        raise AtlabError(f"unknown register {clip(name)}; known: {known}") from None


def _index(table: tuple[Field, ...]) -> Mapping[str, Field]:
    return MappingProxyType({f.name: f for f in table})


#: Field lookup by name, per layout (built once; the tables are immutable).
_FIELD_INDEX: Mapping[int, Mapping[str, Field]] = MappingProxyType(
    {id(t): _index(t) for t in (*LAYOUTS.values(), _TCR_E2H1_LAYOUT, _TCR2_E2H1_LAYOUT)}
)


def _field(name: str, fname: str, e2h: int) -> Field:
    table = layout(name, e2h=e2h)
    f = _FIELD_INDEX[id(table)].get(fname)
    if f is not None:
        return f
    known = ", ".join(f.name for f in layout(name, e2h=e2h))
    extra = (f" (HCR_EL2.E2H selects the {name} layout)" if name in ("TCR_EL2", "TCR2_EL2")
             else "")
    raise AtlabError(f"{name} has no field {clip(fname)}{extra}; fields: {known}")


def decode(name: str, value: int, *, e2h: int = 0) -> dict[str, int]:
    """All fields of ``name`` for ``value``, by name."""
    return {f.name: bits(value, f.hi, f.lo) for f in layout(name, e2h=e2h)}


def encode(name: str, *, e2h: int = 0, **fields: int) -> int:
    """Build a value of ``name`` from fields; unknown fields or too-wide values raise."""
    value = 0
    for fname, fval in fields.items():
        f = _field(name, fname, e2h)
        if not 0 <= fval < (1 << f.width):
            raise AtlabError(f"{name}.{fname} is {f.width} bits wide; {fval:#x} does not fit")
        value = set_bits(value, f.hi, f.lo, fval)
    return value


_ADDRESS_FIELDS = frozenset({"BADDR", "PA"})


def format_fields(name: str, value: int, *, e2h: int = 0, all_fields: bool = False) -> str:
    """``NAME=0x... FIELD=v ...`` listing the non-zero fields (or all of them)."""
    parts = [f"{name}=0x{value:016x}"]
    for f in layout(name, e2h=e2h):
        v = bits(value, f.hi, f.lo)
        if v or all_fields:
            meaning = f.values.get(v)
            if f.name in _ADDRESS_FIELDS:
                # Address fields are shown as the address they hold (BADDR[47:1] -> bits 47:1).
                parts.append(f"{f.name}={v << f.lo:#x}")
            else:
                parts.append(f"{f.name}={v:#x}" if f.width > 4 else f"{f.name}={v}")
            if meaning and all_fields:
                parts[-1] += f"({meaning})"
    return " ".join(parts)


#: Fields of features the modelled PE lacks (FEAT_THE, FEAT_D128, FEAT_HAFT), by register:
#: (name, bit).  Set in a register a walk uses, they raise AtlabError (see README LIMITATIONS)
#: instead of being read as the RES0 they are on this PE.
NOT_MODELLED_FIELDS: dict[str, tuple[tuple[str, int], ...]] = {
    "TCR2_EL1": (("PnCH", 0), ("D128", 5), ("HAFT", 11)),
    "TCR2_EL2": (("PnCH", 0), ("D128", 5), ("HAFT", 11)),
    "TCR_EL3": (("PnCH", 34), ("D128", 38), ("HAFT", 42)),
    "VTCR_EL2": (("AssuredOnly", 34), ("TL1", 35), ("D128", 38), ("TL0", 41), ("HAFT", 44)),
}

_FEATURE_OF = {"PnCH": "FEAT_THE", "AssuredOnly": "FEAT_THE", "TL0": "FEAT_THE",
               "TL1": "FEAT_THE", "D128": "FEAT_D128", "HAFT": "FEAT_HAFT"}


def refuse_not_modelled(name: str, value: int) -> None:
    """Raise :class:`AtlabError` if ``value`` (register ``name``) sets a field of a feature
    atlab does not model (:data:`NOT_MODELLED_FIELDS`)."""
    for fname, pos in NOT_MODELLED_FIELDS.get(name, ()):
        if value >> pos & 1:
            raise AtlabError(f"{name}.{fname}=1 needs {_FEATURE_OF[fname]}, which atlab does "
                             "not model (README, LIMITATIONS); clear the bit")


def id_registers(features: FeatureSet) -> dict[str, int]:
    """The ID registers that advertise ``features`` (read-only, derived)."""
    has = features.has
    parange = PS_BITS.index(features.pa_max)
    mmfr0 = encode(
        "ID_AA64MMFR0_EL1", PARange=parange, ASIDBits=2,
        TGran4=(1 if has(Feature.LPA2) else 0) if has(Feature.TGRAN4) else 0xF,
        TGran16=(2 if has(Feature.LPA2) else 1) if has(Feature.TGRAN16) else 0,
        TGran64=0 if has(Feature.TGRAN64) else 0xF,
    )
    mmfr1 = encode(
        "ID_AA64MMFR1_EL1",
        HAFDBS=2 if has(Feature.HAFDBS) else 0,
        VH=1 if has(Feature.VHE) else 0,
        HPDS=(2 if has(Feature.HPDS2) else 1) if has(Feature.HPDS) else 0,
        PAN=(3 if has(Feature.PAN3) else 2 if has(Feature.PAN2) else 1) if has(Feature.PAN) else 0,
        XNX=1 if has(Feature.XNX) else 0,
    )
    mmfr2 = encode(
        "ID_AA64MMFR2_EL1",
        VARange=1 if has(Feature.LVA) else 0,
        NV=(2 if has(Feature.NV2) else 1) if has(Feature.NV) else 0,
        ST=1 if has(Feature.TTST) else 0,
        FWB=1 if has(Feature.S2FWB) else 0,
        E0PD=1 if has(Feature.E0PD) else 0,
    )
    isar2 = encode("ID_AA64ISAR2_EL1", ATS1A=1 if has(Feature.ATS1A) else 0)
    mmfr3 = encode(
        "ID_AA64MMFR3_EL1",
        TCRX=1 if has(Feature.TCR2) else 0,
        SCTLRX=1 if has(Feature.SCTLR2) else 0,
        S1PIE=1 if has(Feature.S1PIE) else 0,
        S2PIE=1 if has(Feature.S2PIE) else 0,
        AIE=1 if has(Feature.AIE) else 0,
        S1POE=1 if has(Feature.S1POE) else 0,
        S2POE=1 if has(Feature.S2POE) else 0,
    )
    return {"ID_AA64MMFR0_EL1": mmfr0, "ID_AA64MMFR1_EL1": mmfr1,
            "ID_AA64MMFR2_EL1": mmfr2, "ID_AA64ISAR2_EL1": isar2, "ID_AA64MMFR3_EL1": mmfr3}


@dataclass(frozen=True, slots=True)
class SysRegs:
    """An immutable snapshot of the registers that control translation.

    Registers not given are 0; SCR_EL3 is fixed at :data:`SCR_EL3_VALUE`.

    >>> r = SysRegs.from_mapping({"HCR_EL2": 0x80000000, "TCR_EL1": "0x5b5103510"})
    >>> r.field("TCR_EL1", "TG1"), r.field("HCR_EL2", "RW")
    (2, 1)
    >>> r.replace(PSTATE_PAN=1).field("PSTATE_PAN", "PAN")
    1
    """

    values: Mapping[str, int] = field(default_factory=dict)
    #: Derived values (decoded walk parameters ...) cached per snapshot.  The snapshot is
    #: immutable, so anything computed from it alone can be reused; never part of equality.
    memo: dict[object, object] = field(default_factory=dict, init=False, repr=False,
                                       compare=False, hash=False)

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            if name not in WRITABLE:
                if name in LAYOUTS:
                    raise AtlabError(f"{name} cannot be set: it is fixed or derived from features")
                layout(name)  # raises the unknown-register error
            width = _WIDTH.get(name, 64)
            if not isinstance(value, int) or not 0 <= value < (1 << width):
                raise AtlabError(f"{name} must be a {width}-bit unsigned value, not {clip(value)}")
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @staticmethod
    def from_mapping(spec: Mapping[str, object]) -> SysRegs:
        """Parse ``{"NAME": int | "0x.." | "0b.." | decimal string}``."""
        out: dict[str, int] = {}
        for name, raw in spec.items():
            out[name] = parse_int(raw, what=name)
        return SysRegs(out)

    def __getitem__(self, name: str) -> int:
        if name == "SCR_EL3":
            return SCR_EL3_VALUE
        if name not in LAYOUTS:
            layout(name)
        return self.values.get(name, 0)

    def field(self, name: str, fname: str) -> int:
        """``NAME.FIELD``; TCR_EL2's layout follows HCR_EL2.E2H."""
        e2h = bits(self["HCR_EL2"], 34, 34) if name in ("TCR_EL2", "TCR2_EL2") else 0
        f = _field(name, fname, e2h)
        return bits(self[name], f.hi, f.lo)

    def replace(self, **changes: int) -> SysRegs:
        merged = dict(self.values)
        merged.update(changes)
        return SysRegs(merged)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.values))

    def to_dict(self) -> dict[str, str]:
        return {k: f"{v:#x}" for k, v in sorted(self.values.items())}

    def __str__(self) -> str:
        e2h = bits(self["HCR_EL2"], 34, 34)
        return "\n".join(
            format_fields(n, v, e2h=e2h if n in ("TCR_EL2", "TCR2_EL2") else 0)
            for n, v in sorted(self.values.items())
        )


def parse_int(raw: object, *, what: str = "value") -> int:
    """An int, or a string in hex (``0x``), binary (``0b``) or decimal; else AtlabError."""
    if isinstance(raw, bool):
        raise AtlabError(f"{what}: expected a number, got {clip(raw)}")
    if isinstance(raw, int):
        if raw < 0:
            raise AtlabError(f"{what}: negative values are not allowed ({clip(raw)})")
        return raw
    if isinstance(raw, str):
        text = raw.strip().replace("_", "")
        try:
            value = int(text, 0)
        except ValueError:
            raise AtlabError(f"{what}: {clip(raw)} is not a number (use 0x... hex)") from None
        if value < 0:
            raise AtlabError(f"{what}: negative values are not allowed ({clip(raw)})")
        return value
    raise AtlabError(f"{what}: expected a number or a hex string, got {type(raw).__name__}")


