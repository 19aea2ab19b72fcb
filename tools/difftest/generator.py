"""A seeded, architecture-aware generator of atlab scenarios for the QEMU differential test.

``generate(seed, count)`` returns ``count`` scenario dicts (the format of ``atlab run`` and
``tools.hw``), each with ``tags`` naming what it exercises (``granule:16K``,
``regime:EL2&0``, ``feature:lpa2``, ``fault:addrsize`` ...).  The same seed always gives the
same scenarios.  Every scenario sets ``{"FEAT_ATS1A": false}`` (QEMU 10 lacks it).

The harness constraints (tools/hw/README.md) shape the generator: ops run at EL3 with
SCTLR_EL3.M=0 by default; an op executed at an EL whose own MMU is on gets tables that map
the harness (the whole 1 GB of RAM, flat, executable), at stage 2 too when it runs at EL1 with
stage 2 on.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from atlab.descriptors import pi_index
from atlab.sysregs import NOT_MODELLED_FIELDS
from atlab.walk_s2 import s2_pi_index
from tools.difftest.tables import Arena, TableBuilder, mask

PAGE = {"4K": 12, "16K": 14, "64K": 16}
TG0 = {"4K": 0b00, "64K": 0b01, "16K": 0b10}
TG1 = {"4K": 0b10, "64K": 0b11, "16K": 0b01}  # TCR_ELx.TG1 is encoded differently
PS_BITS = (32, 36, 40, 42, 44, 48, 52)
HARNESS_LO, HARNESS_HI = 0x4000_0000, 0x8000_0000  # mapped flat when the MMU runs the harness
HARNESS_CODE = 0x4010_0000  # tools/hw: the harness's code, vectors and EL3 scratch

SCTLR_EL1_BASE = 0x30D0_0800  # RES1 bits
SCTLR_EL2_BASE = 0x30C5_0830
SCTLR_EL3_BASE = 0x30C5_0830
HCR_RW = 1 << 31

#: MAIR attribute bytes: Device (nGnRnE, nGnRE, nGRE, GRE), Normal NC/WT/WB (and mixes,
#: transient), and a few reserved encodings (CONSTRAINED UNPREDICTABLE) tagged apart.
MAIR_DEVICE = (0x00, 0x04, 0x08, 0x0C)
MAIR_NORMAL = (0x44, 0xFF, 0xBB, 0xAA, 0xEE, 0x4F, 0xF4, 0x48, 0x84, 0x77, 0x33, 0x11, 0x55,
               0x99, 0xCC, 0xDD, 0x4B, 0xB4, 0x7F, 0xF7)
MAIR_RESERVED = (0x02, 0x03, 0x0D, 0x80, 0xF0, 0x40, 0x01)

S1_OPS_EL10 = ("S1E0R", "S1E0W", "S1E1R", "S1E1W", "S1E1RP", "S1E1WP")
S12_OPS = ("S12E0R", "S12E0W", "S12E1R", "S12E1W")
S1E2_OPS = ("S1E2R", "S1E2W")
S1E3_OPS = ("S1E3R", "S1E3W")
ATS1A_OPS = ("S1E1A", "S1E2A")


def _hex(v: int) -> str:
    return f"{v:#x}"


@dataclass
class S1Range:
    """One VA range (TTBR0 or TTBR1, or the single range) of a stage 1 regime."""

    upper: bool
    gran: str
    txsz: int
    tbi: int
    hpd: int
    epd: int
    e0pd: int
    sh: int
    builder: TableBuilder | None = None

    @property
    def ia_bits(self) -> int:
        return 64 - self.txsz

    def va(self, ia: int, tag: int = 0) -> int:
        """The VA of input address ``ia`` in this range, with top byte ``tag``."""
        v = ia & mask(self.ia_bits - 1, 0)
        if self.upper:
            v |= mask(63, self.ia_bits)
        if tag is not None and self.tbi:
            v = (v & mask(55, 0)) | (tag << 56)
        return v


@dataclass
class Target:
    va: int
    kind: str  # "map", "fault:..."
    level: int = 3
    regime: str = ""
    rng: S1Range | None = None


@dataclass
class Ctx:
    """One scenario under construction."""

    r: random.Random
    words: dict[int, int] = field(default_factory=dict)
    regs: dict[str, int] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    targets: list[Target] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list)
    arena: Arena | None = None
    s1_to_ipa: Callable[[int], int] = lambda pa: pa
    s2: TableBuilder | None = None
    s2_ia_bits: int = 0
    s2_pgshift: int = 12
    s2_gran: str = "4K"
    s2_ps_bits: int = 48
    s2_ds: bool = False
    s2_lpa64: bool = False
    ipa_delta: int = 0  # stage 1 tables: IPA = PA + ipa_delta
    protected: set[int] = field(default_factory=set)  # stage 1 tables the harness walks
    harness_phase: bool = False  # building the harness's path: tables keep IPA = PA
    nv1: bool = False  # HCR_EL2.{NV,NV1}={1,1}: EL1&0 descriptors read EL2-style
    s1_ha: bool = False  # the stage 1 regime has TCR_ELx.HA=1

    def table_ipa(self, pa: int) -> int:
        """The IPA of a stage 1 table at ``pa`` (the harness's own tables are flat)."""
        if self.harness_phase or pa in self.protected:
            return pa
        return pa + self.ipa_delta

    def chance(self, p: float) -> bool:
        return self.r.random() < p


# ---- helpers ---------------------------------------------------------------------------------

def _pick_ps(c: Ctx, gran: str, ds: bool, low_ps: float = 0.15) -> int:
    """A PS/IPS encoding: mostly 40..52 bits, sometimes small (address size faults)."""
    if c.chance(low_ps):
        return c.r.choice((0, 1, 2))
    big = [3, 4, 5]
    if gran == "64K" or ds:
        big += [6, 6]
    return c.r.choice(big)


def _ps_bits(ps: int, gran: str, ds: bool) -> int:
    """``AArch64.PhysicalAddressSize()`` with PAMax = 52 (QEMU -cpu max)."""
    cap = 52 if (gran == "64K" or ds) else 48
    return min(PS_BITS[min(ps, 6)], cap)


def _txsz(c: Ctx, gran: str, ds: bool, min_ia: int = 0) -> int:
    """A TxSZ: mostly 16..39, sometimes LVA/LPA2 (12..15), TTST (40..48), or out of range."""
    lo = 12 if (gran == "64K" or ds) else 16
    hi = 47 if gran == "64K" else 48
    roll = c.r.random()
    if roll < 0.03 and not min_ia:
        c.tags.add("fault:txsz")
        return c.r.choice((0, 5, 10, 11, lo - 1 if lo > 12 else 11, 49, 55, 63))
    if roll < 0.15:
        t = c.r.randint(lo, 15) if lo < 16 else 16
    elif roll < 0.25:
        t = c.r.randint(40, hi)
    else:
        t = c.r.randint(16, 39)
    if 64 - t < min_ia:
        t = 64 - min_ia
    return t


def _start_level(ia_bits: int, pgshift: int) -> int:
    return 3 - (ia_bits - 1 - pgshift) // (pgshift - 3)


def _mair(c: Ctx) -> tuple[int, list[int]]:
    """MAIR value and the list of 8 attribute bytes (Attr7 is always Normal WB: harness)."""
    attrs = []
    for _ in range(7):
        roll = c.r.random()
        if roll < 0.3:
            attrs.append(c.r.choice(MAIR_DEVICE))
        elif roll < 0.95:
            attrs.append(c.r.choice(MAIR_NORMAL))
        else:
            attrs.append(c.r.choice(MAIR_RESERVED))
    attrs.append(0xFF)
    value = 0
    for i, a in enumerate(attrs):
        value |= a << (8 * i)
    return value, attrs


def _rand_ia(c: Ctx, rng: S1Range, avoid_harness: bool) -> int:
    ia_bits = rng.ia_bits
    for _ in range(20):
        ia = c.r.getrandbits(ia_bits) & ~7
        if c.chance(0.3):  # small addresses are common in real tables
            ia &= mask(min(ia_bits, 32) - 1, 0)
        if avoid_harness and not rng.upper and HARNESS_LO <= ia < HARNESS_HI:
            continue
        return ia
    return 0x1000


# ---- stage 1 ---------------------------------------------------------------------------------

@dataclass
class S1Regime:
    """A stage 1 regime's configuration, written into ``Ctx.regs``."""

    name: str  # "EL1&0", "EL2&0", "EL2", "EL3"
    ranges: list[S1Range]
    ds: bool
    ps: int
    ha: int
    hd: int
    attrs: list[int]
    harness: bool  # the tables map the harness (its EL runs with this MMU on)
    ee: bool

    @property
    def two(self) -> bool:
        return self.name in ("EL1&0", "EL2&0")


def _table_bits(c: Ctx, reg: S1Regime) -> Callable[[], int]:
    """Random APTable / UXNTable / PXNTable (XNTable) for new table descriptors."""
    def bits_() -> int:
        if c.chance(0.6):
            return 0
        v = c.r.getrandbits(4) << 59
        if c.chance(0.1):
            v |= 1 << 63  # NSTable
        return v
    return bits_


def _leaf_attrs(c: Ctx, reg: S1Regime, ds: bool) -> int:
    """AttrIndx, AP, SH, AF, nG, DBM, Contiguous, PXN, UXN (XN) for a stage 1 leaf."""
    a = c.r.randrange(7) << 2
    if c.chance(0.1):
        a |= 1 << 5  # NS (ignored in Non-secure state)
    a |= c.r.getrandbits(2) << 6  # AP[2:1]
    if not ds:
        sh = c.r.choice((0, 2, 3, 3, 3, 1)) if c.chance(0.97) else 1
        a |= sh << 8
        if sh == 1:
            c.tags.add("attr:sh-reserved")
    a |= 1 << 10  # AF
    if c.chance(0.2):
        a |= 1 << 11
    if c.chance(0.1):
        a |= 1 << 51
        c.tags.add("desc:dbm")
    if c.chance(0.15):
        a |= 1 << 52
        c.tags.add("desc:contiguous")
    a |= c.r.getrandbits(2) << 53  # PXN, UXN / XN
    return a


def harness_leaf_attrs(*, s2: bool, two_ranges: bool) -> int:
    """The attributes of the blocks that map the harness (:func:`_harness_map`): stage 2
    MemAttr 0b0111 (Normal, outer NC, inner WB with FWB=0; stage 1 attributes with FWB=1),
    S2AP=11; stage 1 AttrIndx 7, AP=00 and, in a two-range regime, UXN (bit 54 is XN in the
    EL2 and EL3 regimes).  SH=11 (the caller clears it with DS=1), AF=1."""
    if s2:
        return (0x7 << 2) | (0b11 << 6) | (3 << 8) | (1 << 10)
    return (7 << 2) | (3 << 8) | (1 << 10) | (int(two_ranges) << 54)


def _harness_map(c: Ctx, b: TableBuilder, gran: str, s2: bool = False,
                 two_ranges: bool = True) -> None:
    """Map RAM 0x4000_0000-0x7fff_ffff flat, RWX at the privileged EL, Normal WB."""
    attrs = harness_leaf_attrs(s2=s2, two_ranges=two_ranges)
    if b.ds:
        attrs &= ~(3 << 8)
    level = {"4K": 1, "16K": 2, "64K": 2}[gran]
    assert b.sl <= level, "the harness needs a start level that allows its block size"
    step = 1 << b.lsb(level)
    for a in range(HARNESS_LO, HARNESS_HI, step):
        ok = b.leaf(a, level, a, attrs)
        assert ok, "harness mapping conflicts"


def make_s1_regime(c: Ctx, name: str, *, harness: bool, s2: bool) -> S1Regime:
    """Pick a configuration for regime ``name`` and build its (empty) tables."""
    r = c.r
    two = name in ("EL1&0", "EL2&0")
    grans = [r.choice(("4K", "16K", "64K")) for _ in range(2 if two else 1)]
    ds = c.chance(0.2) and any(g in ("4K", "16K") for g in grans)
    if ds:
        c.tags.add("feature:lpa2")
    ps = _pick_ps(c, grans[0], ds)
    ranges = []
    for i, gran in enumerate(grans):
        upper = i == 1
        need = 31 if (harness and not upper) else 0
        gds = ds and gran != "64K"
        txsz = _txsz(c, gran, gds, need)
        ranges.append(S1Range(
            upper=upper, gran=gran, txsz=txsz,
            tbi=int(c.chance(0.3)), hpd=int(c.chance(0.25)),
            epd=int(two and c.chance(0.05) and not (harness and not upper)),
            e0pd=int(two and c.chance(0.07)),
            sh=r.choice((0, 2, 3, 3)),
        ))
    ha = int(c.chance(0.25))
    hd = int(ha and c.chance(0.4))
    mair, attrs = _mair(c)
    ee = (not harness) and c.chance(0.05) and name != "EL3"
    reg = S1Regime(name, ranges, ds, ps, ha, hd, attrs, harness, ee)
    for rg in ranges:
        c.tags.add(f"granule:{rg.gran}" + (":ttbr1" if rg.upper else ""))
        if rg.tbi:
            c.tags.add("feature:tbi")
        if rg.hpd:
            c.tags.add("feature:hpd")
        if rg.epd:
            c.tags.add("feature:epd")
        if rg.e0pd:
            c.tags.add("feature:e0pd")
        if rg.txsz < 16:
            c.tags.add("feature:52bit-va")
        if rg.txsz > 39:
            c.tags.add("feature:ttst")
    if ha:
        c.tags.add("feature:ha")
    if ee:
        c.tags.add("endian:be")
    if any(a in MAIR_RESERVED for a in attrs[:7]):
        c.tags.add("attr:mair-reserved")
    pgshift0 = PAGE[grans[0]]
    if grans[0] == "64K" and ps == 6:
        c.tags.add("feature:52bit-pa")

    # registers
    sfx = {"EL1&0": "EL1", "EL2&0": "EL2", "EL2": "EL2", "EL3": "EL3"}[name]
    if two:
        r0, r1 = ranges
        tcr = (r0.txsz | (r0.epd << 7) | (1 << 8) | (1 << 10) | (r0.sh << 12)
               | (TG0[r0.gran] << 14) | (r1.txsz << 16) | (r1.epd << 23) | (1 << 24)
               | (1 << 26) | (r1.sh << 28) | (TG1[r1.gran] << 30) | (ps << 32)
               | (r0.tbi << 37) | (r1.tbi << 38) | (ha << 39) | (hd << 40) | (r0.hpd << 41)
               | (r1.hpd << 42) | (r0.e0pd << 55) | (r1.e0pd << 56) | (int(ds) << 59))
        if c.chance(0.05):
            tcr |= 1 << 36  # AS
    else:
        r0 = ranges[0]
        tcr = (r0.txsz | (1 << 8) | (1 << 10) | (r0.sh << 12) | (TG0[r0.gran] << 14)
               | (ps << 16) | (r0.tbi << 20) | (ha << 21) | (hd << 22) | (1 << 23)
               | (r0.hpd << 24) | (1 << 31) | (int(ds) << 32))
    c.regs[f"TCR_{sfx}"] = tcr
    c.regs[f"MAIR_{sfx}"] = mair

    # tables
    assert c.arena is not None
    for rg in ranges:
        gds = ds and rg.gran != "64K"
        pgshift = PAGE[rg.gran]
        sl = _start_level(rg.ia_bits, pgshift)
        ok_size = 12 <= rg.txsz <= 48 and sl >= -1
        lpa64 = rg.gran == "64K"
        c.harness_phase = harness and not rg.upper
        b = TableBuilder(c.words, c.arena, pgshift, rg.ia_bits if ok_size else 40,
                         sl if ok_size else _start_level(40, pgshift), ds=gds, lpa64=lpa64,
                         be=ee, to_desc=c.s1_to_ipa if s2 else (lambda pa: pa))
        rg.builder = b
        ttbr = b.base_reg()
        if c.chance(0.03) and _ps_bits(ps, rg.gran, gds) < 48 and not (harness and not rg.upper):
            # TTBR beyond the output size: level 0 address size fault
            ttbr = b.base_reg() | (1 << c.r.randint(_ps_bits(ps, rg.gran, gds), 47))
            c.tags.add("fault:addrsize-ttbr")
        if c.chance(0.05) and name != "EL3":
            ttbr |= c.r.getrandbits(16) << 48  # ASID / VMID-like high bits
        if c.chance(0.05):
            ttbr |= 1  # CnP
        reg_name = f"TTBR{1 if rg.upper else 0}_{sfx}"
        c.regs[reg_name] = ttbr
        if harness and not rg.upper:
            # with NV1, bit 54 is PXN in EL1&0: the harness's block must leave it clear
            _harness_map(c, b, rg.gran, two_ranges=two and not (c.nv1 and name == "EL1&0"))
            # the tables on the harness's path stay readable at stage 2; later tables
            # start on a fresh 64KB page
            c.protected |= {pa for pa, _ in b.extents()}
            c.harness_phase = False
            c.arena.alloc(0, 1 << 16)
    del pgshift0
    return reg


def populate_s1(c: Ctx, reg: S1Regime, n_maps: int, final_ipas: list[tuple[int, int]]) -> None:
    """Add ``n_maps`` mappings (some deliberately faulting) to the regime's tables; record
    the VAs to translate in ``c.targets`` and the leaf output ranges in ``final_ipas``."""
    tb = _table_bits(c, reg)
    for _ in range(n_maps):
        rg = c.r.choice(reg.ranges)
        b = rg.builder
        assert b is not None
        gds = b.ds
        oa_bits = _ps_bits(reg.ps, rg.gran, gds)
        # leaf level: any level allowed for blocks, sometimes illegal ones
        levels = [lv for lv in range(max(b.sl, -1), 4)]
        roll = c.r.random()
        ia = _rand_ia(c, rg, reg.harness)
        tag = c.r.getrandbits(8) if (rg.tbi and c.chance(0.5)) else 0
        va = rg.va(ia, tag)
        kind = "map"
        if roll < 0.07:
            level = c.r.choice(levels)
            desc = c.r.getrandbits(64) & ~1
            if b.set(ia, level, desc, tb):
                c.tags.add("fault:translation")
                c.targets.append(Target(va, "fault:invalid", level, reg.name, rg))
            continue
        if roll < 0.13:
            # block descriptor at a level where blocks are not allowed (reserved encoding)
            level = c.r.choice(levels)
            oa = c.r.getrandbits(40) << 12
            attrs = _leaf_attrs(c, reg, gds)
            desc = b.enc_addr(oa, b.lsb(level)) | attrs | 0b01
            if b.set(ia, level, desc, tb):
                c.tags.add("desc:block-level")
                c.targets.append(Target(va, "block-any-level", level, reg.name, rg))
            continue
        if roll < 0.17 and b.sl < 3:
            # table descriptor whose next-level address is beyond the output size
            level = c.r.choice([lv for lv in levels if lv < 3])
            top = 51 if (gds or rg.gran == "64K") else 47
            if oa_bits > top:
                continue
            big = 1 << c.r.randint(oa_bits, top)
            desc = b.enc_addr(big) | 0b11
            if b.set(ia, level, desc, tb):
                c.tags.add("fault:addrsize")
                c.targets.append(Target(va, "fault:addrsize-table", level, reg.name, rg))
            continue
        legal = [lv for lv in levels if lv == 3 or _block_ok(rg.gran, lv, gds)]
        level = c.r.choice(legal)
        lsb = b.lsb(level)
        attrs = _leaf_attrs(c, reg, gds)
        if roll < 0.23 or (reg.ha and c.s2 is not None and c.chance(0.3)):
            attrs &= ~(1 << 10)
            c.tags.add("fault:af" if not reg.ha else "feature:ha-update")
        # output address
        if c.chance(0.06):
            top = 51 if (gds or rg.gran == "64K") else 47
            lo_bit = min(oa_bits, top)
            oa = (c.r.getrandbits(top + 1) | (1 << c.r.randint(lo_bit, top))) & mask(top, lsb)
            c.tags.add("fault:addrsize-oa")
        elif final_ipas is not None and c.s2 is not None and c.chance(0.8):
            oa = c.r.getrandbits(max(c.s2_ia_bits, lsb + 1)) & mask(max(c.s2_ia_bits, lsb+1) - 1,
                                                                     lsb)
        else:
            oa = c.r.getrandbits(min(oa_bits, 48)) & mask(min(oa_bits, 48) - 1, lsb)
        if b.leaf(ia, level, oa, attrs, tb):
            c.tags.add(f"leaf:L{level}" + ("-block" if level < 3 else "-page"))
            c.targets.append(Target(va, kind, level, reg.name, rg))
            final_ipas.append((oa, lsb))


def _block_ok(gran: str, level: int, ds: bool) -> bool:
    """``AArch64.BlockDescSupported()`` with PAMax = 52."""
    if gran == "4K":
        return (level == 0 and ds) or level in (1, 2)
    if gran == "16K":
        return (level == 1 and ds) or level == 2
    return level in (1, 2)


# ---- stage 2 ---------------------------------------------------------------------------------

def _s2_levels(gran: str, ds: bool) -> list[tuple[int, int, int]]:
    """(start level, SL0, SL2) encodings for a granule."""
    if gran == "4K":
        out = [(2, 0, 0), (1, 1, 0), (0, 2, 0), (3, 3, 0)]
        if ds:
            out.append((-1, 0, 1))
        return out
    if gran == "16K":
        out = [(3, 0, 0), (2, 1, 0), (1, 2, 0)]
        if ds:
            out.append((0, 3, 0))
        return out
    return [(3, 0, 0), (2, 1, 0), (1, 2, 0)]


def make_s2(c: Ctx, *, harness: bool, need_ia: int) -> None:
    """Pick VTCR_EL2/VTTBR_EL2 and build an empty stage 2 table set."""
    r = c.r
    gran = r.choice(("4K", "16K", "64K"))
    ds = gran != "64K" and c.chance(0.2)
    pgshift = PAGE[gran]
    stride = pgshift - 3
    options = []
    ia_hi = 52 if (gran == "64K" or ds) else 48
    for sl, sl0, sl2 in _s2_levels(gran, ds):
        levels = 3 - sl
        lo = levels * stride + pgshift + 1
        hi = min(lo + stride - 1 + 4, ia_hi)
        lo = max(lo, need_ia, 64 - (47 if gran == "64K" else 48))
        if harness and sl > (1 if gran == "4K" else 2):
            continue  # the harness's 1 GB needs blocks of 1 GB (4K) or 32/512 MB
        if lo <= hi:
            options.append((sl, sl0, sl2, lo, hi))
    sl, sl0, sl2, lo, hi = r.choice(options)
    ia_bits = r.randint(lo, hi)
    if c.chance(0.06) and not harness:
        c.tags.add("fault:s2config")
        sl0 = r.randrange(4)
        if ds and gran == "4K":
            sl2 = r.randrange(2)  # VTCR_EL2.SL2:SL0 = 0b101/0b110/0b111 are reserved
        ia_bits = r.randint(max(need_ia, 25), ia_hi)
        sl = {"4K": {0: 2, 1: 1, 2: 0, 3: 3}, "16K": {0: 3, 1: 2, 2: 1, 3: 0},
              "64K": {0: 3, 1: 2, 2: 1, 3: 0}}[gran][sl0]
        if sl2:
            sl = -1
        lo_geo = (3 - sl) * stride + pgshift + 1
        valid_geo = lo_geo <= ia_bits <= lo_geo + stride + 3
        if not valid_geo:
            sl = _start_level(ia_bits, pgshift)
    ps = _pick_ps(c, gran, ds, 0.1)
    if need_ia:
        ps = max(ps, 1)
    bad_txsz = None
    if c.chance(0.02) and not harness:
        # VTCR_EL2.T0SZ outside [64 - IPA max, 48 (47 for 64KB)]: level 0 Translation fault
        lo_txsz = 64 - ia_hi
        hi_txsz = 47 if gran == "64K" else 48
        bad_txsz = r.choice([*range(0, lo_txsz), *range(hi_txsz + 1, 64)])
        c.tags.add("fault:s2-txsz")
    c.tags.add(f"s2:granule:{gran}")
    if ds:
        c.tags.add("s2:lpa2")
    if sl == -1 or sl0 == 3:
        c.tags.add("s2:sl0-deep")
    if sl2:
        c.tags.add("s2:sl2")
    levels = 3 - sl
    concat = 1 << max(0, ia_bits - (levels * stride + pgshift) - stride)
    if concat > 1:
        c.tags.add("s2:concat")
    ha = int(c.chance(0.3))
    hd = int(ha and c.chance(0.4))
    t0sz = 64 - ia_bits if bad_txsz is None else bad_txsz
    vtcr = (t0sz | (sl0 << 6) | (1 << 8) | (1 << 10) | (r.choice((0, 2, 3, 3)) << 12)
            | (TG0[gran] << 14) | (ps << 16) | (ha << 21) | (hd << 22) | (1 << 31)
            | (int(ds) << 32) | (sl2 << 33))
    c.regs["VTCR_EL2"] = vtcr
    c.s2_gran, c.s2_pgshift, c.s2_ia_bits, c.s2_ds = gran, pgshift, ia_bits, ds
    c.s2_lpa64 = gran == "64K"
    c.s2_ps_bits = _ps_bits(ps, gran, ds)
    geo_ok = (3 - sl) * stride + pgshift + 1 <= ia_bits
    b = TableBuilder(c.words, c.arena or Arena(0, 0), pgshift, ia_bits if geo_ok else 40,
                     sl if geo_ok else _start_level(40, pgshift), ds=ds, lpa64=c.s2_lpa64)
    c.s2 = b
    c.regs["VTTBR_EL2"] = b.base_reg() | (r.getrandbits(8) << 48 if c.chance(0.2) else 0)
    if not harness and c.s2_ps_bits < 48 and c.chance(0.05):
        # the start-level table beyond the output size: stage 2 level 0 Address size fault
        c.regs["VTTBR_EL2"] |= 1 << r.randint(c.s2_ps_bits, 47)
        c.tags.add("fault:s2-addrsize-vttbr")
    if harness:
        _harness_map(c, b, gran, s2=True)


def _s2_attrs(c: Ctx, ds: bool) -> int:
    memattr = c.r.randrange(16)
    if c.chance(0.5):
        memattr = c.r.choice((0xF, 0x5, 0x0, 0x1, 0xA, 0xD, 0x6))
    a = memattr << 2
    s2ap = c.r.choice((0, 1, 2, 3, 3, 3))
    a |= s2ap << 6
    if not ds:
        a |= c.r.choice((0, 2, 3, 3)) << 8
    a |= 1 << 10
    if c.chance(0.15):
        a &= ~(1 << 10)
        c.tags.add("s2:af0")
    if c.chance(0.1):
        a |= 1 << 51
    if c.chance(0.1):
        a |= 1 << 52
    a |= c.r.getrandbits(2) << 53
    if memattr in (0b0100, 0b1000, 0b1100):
        c.tags.add("s2:memattr-reserved")
    return a


def _s2_map_page(c: Ctx, ipa: int, pa: int | None, attrs: int | None, level: int | None = None,
                 avoid: set[int] | None = None) -> bool:
    b = c.s2
    assert b is not None
    legal = [lv for lv in range(max(b.sl, -1), 4) if lv == 3 or _block_ok(c.s2_gran, lv, b.ds)]
    lv = level if level is not None else c.r.choice(legal)
    lsb = b.lsb(lv)
    base = ipa & ~((1 << lsb) - 1)
    if avoid and any(base <= p < base + (1 << lsb) for p in avoid):
        return False  # never map a stage 1 table page anywhere but its own PA
    if pa is None:
        pa = c.r.getrandbits(min(c.s2_ps_bits, 48)) & mask(min(c.s2_ps_bits, 48) - 1, lsb)
        if c.chance(0.05):
            top = 51 if (b.ds or b.lpa64) else 47
            pa = (pa | (1 << c.r.randint(min(c.s2_ps_bits, top), top))) & mask(top, lsb)
            c.tags.add("fault:s2-addrsize-oa")
    if attrs is None:
        attrs = _s2_attrs(c, b.ds)
    return b.leaf(ipa, lv, pa, attrs)


def populate_s2(c: Ctx, s1_tables: list[tuple[int, int]], final_ipas: list[tuple[int, int]]
                ) -> None:
    """Map the stage 1 tables' IPAs (mostly readable) and most final IPAs at stage 2."""
    b = c.s2
    assert b is not None
    g = 1 << c.s2_pgshift
    page_pa: dict[int, int] = {}  # IPA page -> PA page
    keep: set[int] = set()
    for pa, size in s1_tables:
        delta = c.table_ipa(pa) - pa
        for p in range(pa & ~(g - 1), pa + size, g):
            page_pa[p + delta] = p
            if pa in c.protected:
                keep.add(p + delta)
    pages = set(page_pa)
    for ipa in sorted(pages):
        if ipa >> c.s2_ia_bits:
            continue
        if ipa in keep:
            attrs = (0x7 << 2) | (3 << 6) | (3 << 8) | (1 << 10)
            b.leaf(ipa, 3, page_pa[ipa], attrs & ~((3 << 8) if b.ds else 0))
            continue
        if c.chance(0.04):
            c.tags.add("s2:s1-table-unmapped")
            continue
        attrs = (0xF << 2) | (3 << 6) | (3 << 8) | (1 << 10)
        if b.ds:
            attrs &= ~(3 << 8)
        if c.chance(0.06):
            attrs = _s2_attrs(c, b.ds)
            c.tags.add("s2:s1-table-attrs")
        elif c.s1_ha and c.chance(0.3):
            # S2AP=01 (read-only): a hardware Access flag update of a stage 1 descriptor in
            # this page needs stage 2 write permission (AArch64.S1Translate())
            attrs &= ~(2 << 6)
            c.tags.add("s2:s1-table-readonly")
        b.leaf(ipa, 3, page_pa[ipa], attrs)
    top = 51 if (b.ds or b.lpa64) else 47
    for oa, _lsb in final_ipas:
        if c.chance(0.1):
            c.tags.add("s2:final-ipa-unmapped")
            continue
        ipa = oa & mask(max(c.s2_ia_bits, 1) - 1, 0)
        roll = c.r.random()
        if roll < 0.05 and b.sl < 3 and c.s2_ps_bits <= top:
            # a table descriptor whose next-level address is beyond the output size
            level = c.r.randint(max(b.sl, -1), 2)
            big = 1 << c.r.randint(c.s2_ps_bits, top)
            if b.set(ipa, level, b.enc_addr(big) | 0b11):
                c.tags.add("fault:s2-addrsize-table")
            continue
        if roll < 0.09:
            # a block descriptor where blocks are not allowed (reserved: Translation fault)
            bad = [lv for lv in range(max(b.sl, -1), 4)
                   if lv == 3 or not _block_ok(c.s2_gran, lv, b.ds)]
            level = c.r.choice(bad)
            pa = c.r.getrandbits(40) << 12
            desc = b.enc_addr(pa, b.lsb(level)) | _s2_attrs(c, b.ds) | 0b01
            if b.set(ipa, level, desc):
                c.tags.add("s2:block-level")
            continue
        _s2_map_page(c, ipa, None, None, avoid=pages)


# ---- ops and whole scenarios -----------------------------------------------------------------

def _op_regime(op: str, e2h: int, tge: int) -> str:
    if op.startswith("S12"):
        return "EL1&0"
    if op.startswith("S1E3"):
        return "EL3"
    if op.startswith("S1E2"):
        return "EL2&0" if e2h else "EL2"
    return "EL2&0" if (e2h and tge) else "EL1&0"


ALL_OPS = S1_OPS_EL10 + S12_OPS + S1E2_OPS + S1E3_OPS


def _ops_for(regime: str, e2h: int, tge: int, el: int) -> list[str]:
    ops = [op for op in ALL_OPS if _op_regime(op, e2h, tge) == regime]
    if el == 1:
        ops = [op for op in ops if op.startswith(("S1E0", "S1E1"))]
    elif el == 2:
        ops = [op for op in ops if not op.startswith("S1E3")]
    return ops


def _mmuoff_va(c: Ctx) -> int:
    roll = c.r.random()
    if roll < 0.5:
        return c.r.getrandbits(40) & ~7
    if roll < 0.7:
        return c.r.getrandbits(52) & ~7
    if roll < 0.85:
        return (c.r.getrandbits(8) << 56) | (c.r.getrandbits(40) & ~7)
    return c.r.getrandbits(64) & ~7


def gen_one(r: random.Random, name: str) -> dict[str, Any]:
    """One scenario (see the module docstring)."""
    c = Ctx(r)
    base = 0x4100_0000 + r.randrange(58) * 0x100_0000
    c.arena = Arena(base, base + 0x100_0000)
    primary = r.choices(("EL1&0", "EL2&0", "EL2", "EL3"), (0.55, 0.17, 0.15, 0.13))[0]
    e2h = tge = vm = dc = ptw = fwb = 0
    deviation_tge = False
    if primary == "EL1&0":
        e2h = int(c.chance(0.3))
        if c.chance(0.03):
            e2h, tge, deviation_tge = 0, 1, True
        vm = int(not tge and c.chance(0.5))
        dc = int(not tge and c.chance(0.05))
    elif primary == "EL2&0":
        e2h, tge = 1, int(c.chance(0.6))
    elif primary == "EL2":
        tge = int(c.chance(0.1))
    else:
        e2h = int(c.chance(0.3))
        tge = int(c.chance(0.3))
    stage2 = bool(vm or dc)
    if stage2:
        ptw = int(c.chance(0.2))
        fwb = int(c.chance(0.4))
    # FEAT_NV: HCR_EL2.{NV,NV1} (EL2-style descriptors in EL1&0 with NV1), HCR_EL2.AT;
    # HCR_EL2.CD (stage 2 Normal memory read as Non-cacheable)
    nv = nv1 = at_trap = cd = 0
    if primary == "EL1&0" and not tge and c.chance(0.1):
        nv = 1
        nv1 = int(c.chance(0.7))
    if stage2 and c.chance(0.2):
        cd = 1
    if primary == "EL1&0":
        el = r.choices((3, 2, 1), (0.45, 0.25, 0.3 if not tge else 0.0))[0]
        if el == 1 and c.chance(0.05):
            at_trap = 1
    elif primary == "EL3":
        el = 3
    else:
        el = r.choice((3, 2))
    c.tags.add(f"regime:{primary}")
    c.tags.add(f"el:{el}")
    c.tags.add(f"hcr:e2h{e2h}-tge{tge}")
    if deviation_tge:
        c.tags.add("hcr:tge-without-e2h")
    if vm:
        c.tags.add("stage2:vm")
    if dc:
        c.tags.add("hcr:dc")
    if ptw:
        c.tags.add("hcr:ptw")
    if fwb:
        c.tags.add("feature:fwb")
    if nv:
        c.tags.add("hcr:nv1" if nv1 else "hcr:nv")
    if at_trap:
        c.tags.add("hcr:at")
    if cd:
        c.tags.add("hcr:cd")

    # stage 1 enable of the primary regime; harness mapping needs
    s1_on = c.chance(0.92)
    if not s1_on:
        c.tags.add("mmu:off")
    s1_harness = s1_on and ((el == 1 and primary == "EL1&0" and not dc)
                            or (el == 2 and primary in ("EL2&0", "EL2"))
                            or (el == 3 and primary == "EL3" and c.chance(0.5)))
    s2_harness = el == 1 and stage2
    hcr = (HCR_RW | vm | (ptw << 2) | (dc << 12) | (tge << 27) | (cd << 32) | (e2h << 34)
           | (nv << 42) | (nv1 << 43) | (at_trap << 44) | (fwb << 46))
    c.nv1 = bool(nv1)
    c.regs["HCR_EL2"] = hcr

    if stage2 and primary == "EL1&0":
        make_s2(c, harness=s2_harness, need_ia=31 if s2_harness else 0)
        ia = c.s2_ia_bits
        if el == 1 and s1_on:
            # the harness's tables stay flat (inside the 1 GB the stage 2 maps for it); the
            # others move below RAM, where stage 2 maps them page by page (or not)
            c.ipa_delta = (r.randrange(1, 63) << 24) - base
        elif c.chance(0.5) or ia < 32:
            c.ipa_delta = 0
            if ia < 31:
                c.ipa_delta = -base + (r.randrange(max(1, (1 << ia) >> 24)) << 24)
        else:
            lim = min(ia, 44)
            cand = r.randrange(1 << (lim - 24)) << 24
            if HARNESS_LO <= cand < HARNESS_HI:
                cand = 0
            c.ipa_delta = cand - base
        if c.ipa_delta:
            c.tags.add("s2:s1-tables-elsewhere")
        c.s1_to_ipa = c.table_ipa

    reg: S1Regime | None = None
    final_ipas: list[tuple[int, int]] = []
    if s1_on and not (primary == "EL1&0" and (dc or tge)):
        reg = make_s1_regime(c, primary, harness=bool(s1_harness),
                             s2=stage2 and primary == "EL1&0")
        c.s1_ha = bool(reg.ha)
        populate_s1(c, reg, r.randint(2, 6), final_ipas)
    if c.s2 is not None:
        s1_tables = []
        if reg is not None:
            for rg in reg.ranges:
                assert rg.builder is not None
                s1_tables += rg.builder.extents()
        if not s1_on or reg is None:
            # stage 1 off: the IPA is the VA; map some small IPAs
            for _ in range(r.randint(1, 4)):
                ipa = r.getrandbits(min(c.s2_ia_bits, 40)) & ~0xFFF
                final_ipas.append((ipa, 12))
                c.targets.append(Target(ipa, "s1off", 3, "EL1&0"))
        populate_s2(c, s1_tables, final_ipas)

    # SCTLRs
    ee = reg.ee if reg is not None else False
    wxn = int(c.chance(0.12))
    epan = int(c.chance(0.25))
    cbit = int(c.chance(0.85))
    if not cbit:
        c.tags.add("sctlr:c0")
    m = int(s1_on)
    sc1 = SCTLR_EL1_BASE | (1 << 12)
    sc2 = SCTLR_EL2_BASE | (1 << 12)
    sc3 = SCTLR_EL3_BASE | (1 << 12)
    if primary == "EL1&0":
        sc1 |= m | (cbit << 2) | (epan << 57) | (int(ee) << 25)
        if wxn and not s1_harness:
            sc1 |= 1 << 19
            c.tags.add("sctlr:wxn")
    elif primary in ("EL2&0", "EL2"):
        sc2 |= m | (cbit << 2) | (int(ee) << 25)
        if primary == "EL2&0":
            sc2 |= epan << 57
        if wxn and not s1_harness:
            sc2 |= 1 << 19
            c.tags.add("sctlr:wxn")
    else:
        sc3 |= m | (cbit << 2)
        if not s1_harness and not s1_on:
            sc3 &= ~1
        if wxn and not s1_harness:
            sc3 |= 1 << 19
            c.tags.add("sctlr:wxn")
        if m and not s1_harness:
            # EL3's MMU would be on for the ops without mapping the harness: run at EL3
            # only when the tables map it
            sc3 &= ~1
            c.tags.discard("mmu:off")
            c.tags.add("mmu:off")
    if epan:
        c.tags.add("feature:epan")
    c.regs["SCTLR_EL1"] = sc1
    c.regs["SCTLR_EL2"] = sc2
    c.regs["SCTLR_EL3"] = sc3

    # targets for stage 1 off
    if reg is None and not c.targets:
        for _ in range(r.randint(2, 4)):
            c.targets.append(Target(_mmuoff_va(c), "mmuoff", 3, primary))

    # ops
    ops: list[dict[str, Any]] = []
    n_ops = r.randint(3, 8)
    prim_ops = _ops_for(primary, e2h, tge, el) or ["S1E1R"]
    if stage2:
        prim_ops += [o for o in prim_ops if o.startswith("S12")]  # the final IPA's stage 2
    for _ in range(n_ops):
        if c.targets and c.chance(0.85):
            t = r.choice(c.targets)
            va = t.va
            if t.rng is not None and t.level <= 3 and t.rng.builder is not None:
                lsb = t.rng.builder.lsb(t.level)
                va = (va & ~mask(lsb - 1, 0)) | (r.getrandbits(lsb) & mask(lsb - 1, 0))
        elif reg is not None:
            rg = r.choice(reg.ranges)
            va = rg.va(_rand_ia(c, rg, reg.harness), r.getrandbits(8))
            if c.chance(0.2):
                va ^= 1 << r.randrange(48, 64)
                c.tags.add("va:out-of-range")
        else:
            va = _mmuoff_va(c)
        roll = r.random()
        if roll < 0.04:
            op = r.choice(ATS1A_OPS)
            c.tags.add("op:ats1a-undef")
        elif roll < 0.12:
            allowed = [o for o in ALL_OPS if not (el < 3 and o.startswith("S1E3"))]
            if el == 1:
                allowed = list(ALL_OPS)
            op = r.choice(allowed)
            c.tags.add("op:cross-regime")
        else:
            op = r.choice(prim_ops)
        if nv and el == 1 and (op in ATS1A_OPS or op in S1E3_OPS):
            # an exception taken to EL1 under HCR_EL2.NV=1 cannot be reported by the harness
            # (its vectors read CurrentEL, which says EL2 there, then ESR_EL2 traps): keep
            # UNDEFINED-at-EL1 ops out of NV scenarios run at EL1
            op = r.choice(("S1E1R", "S1E2W", "S12E1R", "S1E0W"))
        spec: dict[str, Any] = {"op": op, "va": _hex(va)}
        if op.endswith(("RP", "WP")) or el == 1 or c.chance(0.2):
            spec["pan"] = int(c.chance(0.5))
            if spec["pan"]:
                c.tags.add("pstate:pan")
        c.tags.add(f"op:{op}")
        ops.append(spec)

    memory = [{"pa": _hex(pa), "u64": f"0x{v:016x}"} for pa, v in sorted(c.words.items())]
    return {
        "name": name,
        "tags": sorted(c.tags),
        "el": el,
        "features": {"FEAT_ATS1A": False},
        "sysregs": {k: _hex(v) for k, v in sorted(c.regs.items())},
        "memory": memory,
        "ops": ops,
    }


# ---- atlab-only scenarios ---------------------------------------------------------------------

#: Tag prefix of scenarios QEMU cannot check (never sent to QEMU, never in the corpus).
ATLAB_ONLY = "atlab-only:"
#: Features QEMU 10 -cpu max always implements; a scenario switching one off is atlab-only.
FEATURES_OFF = ("FEAT_LVA", "FEAT_TTST", "FEAT_HPDS", "FEAT_E0PD", "FEAT_LPA2", "FEAT_HAFDBS",
                "FEAT_LPA", "FEAT_PAN3", "FEAT_XNX", "FEAT_S2FWB", "FEAT_NV", "FEAT_PAN2",
                "FEAT_VHE")
ATLAB_ONLY_SHARE = 0.06


def is_atlab_only(scn: dict[str, Any]) -> bool:
    return any(t.startswith(ATLAB_ONLY) for t in scn.get("tags", []))


#: The features QEMU 11.1 -cpu max has and 10.0.2 lacks, as atlab's feature names; it has
#: no FEAT_S1POE/S2POE.
QEMU11_FEATURES: dict[str, Any] = {"FEAT_ATS1A": True, "FEAT_S1POE": False, "FEAT_S2POE": False}


#: Share of the eligible QEMU 11 scenarios that get the Armv8.9 translation registers.
V94_SHARE = 0.45
#: PIR_ELx/PIRE0_ELx entries: every encoding, the usual ones more often.
_PI_WEIGHTS = (4, 4, 3, 4, 1, 5, 3, 3, 2, 1, 2, 1, 2, 1, 2, 1)


def _pir(r: random.Random) -> int:
    return sum(r.choices(range(16), _PI_WEIGHTS)[0] << 4 * m for m in range(16))


def v94_variant(r: random.Random, scn: dict[str, Any]) -> dict[str, Any]:
    """The Armv8.9 translation controls QEMU 11.1 implements, on a scenario whose regime is
    not EL3 (the EL3 regime has no TCR2; EL3-regime scenarios get its own controls from
    :func:`v94_el3_variant`): FEAT_TCR2 (HCRX_EL2.TCR2En gating TCR2_EL1),
    FEAT_S1PIE (TCR2_ELx.PIE, random PIR_ELx/PIRE0_ELx: tags ``pie:EL1&0``/``pie:EL2``),
    FEAT_AIE (TCR2_ELx.AIE, MAIR2_ELx, descriptor bit 59 set on some valid words:
    ``aie:...``), FEAT_S2PIE (VTCR_EL2.S2PIE, random S2PIR_EL2: ``s2pie``).

    Ops at EL1 or EL2 run the harness with that EL's MMU on when the scenario's tables map it
    (tools/hw/README.md): :func:`_keep_harness_running` then fixes the few register entries
    the harness's own blocks select, and the scenario is tagged ``v94:harness-mapped``."""
    tags = set(scn["tags"])
    if "regime:EL3" in tags:
        return v94_el3_variant(r, scn)
    regs = dict(scn["sysregs"])
    if ("stage2:vm" in tags or "hcr:dc" in tags) and r.random() < 0.6:
        # FEAT_S2PIE: VTCR_EL2.S2PIE, S2PIR_EL2 (S2PIR weights: every encoding)
        regs["VTCR_EL2"] = f"{int(regs.get('VTCR_EL2', '0'), 16) | 1 << 36:#x}"
        regs["S2PIR_EL2"] = f"{sum(r.randrange(16) << 4 * m for m in range(16)):#x}"
        tags.add("s2pie")
    primary = next(t for t in tags if t.startswith("regime:"))[7:]
    el1 = primary == "EL1&0"
    pie, aie = r.random() < 0.75, r.random() < 0.4
    if not (pie or aie):
        pie = True
    tcr2 = (1 << 1) * pie | (1 << 4) * aie
    suffix = "EL1" if el1 else "EL2"
    regs[f"TCR2_{suffix}"] = f"{tcr2:#x}"
    if el1:
        if r.random() < 0.9:
            regs["HCRX_EL2"] = f"{1 << 14:#x}"  # TCR2En: TCR2_EL1 in force at EL1&0
        else:
            tags.add("tcr2:hcrx-tcr2en-0")  # TCR2_EL1 ignored (IsTCR2EL1Enabled() FALSE)
    names = ("PIR_EL1", "PIRE0_EL1", "PIR_EL2", "PIRE0_EL2")
    for name in names:
        regs[name] = f"{_pir(r):#x}"
    if pie:
        tags.add(f"pie:{primary}")
    memory = scn["memory"]
    if aie:
        tags.add(f"aie:{primary}")
        pool = MAIR_NORMAL + MAIR_DEVICE
        regs[f"MAIR2_{suffix}"] = f"{sum(r.choice(pool) << 8 * i for i in range(8)):#x}"
        memory = []
        keep = _harness_path(scn)
        for word in scn["memory"]:
            value = int(word["u64"], 16)
            if value & 1 and r.random() < 0.5 and int(word["pa"], 16) not in keep:
                value |= 1 << 59  # AttrIndx[3] in a stage 1 leaf of the AIE regime
                word = {"pa": word["pa"], "u64": f"0x{value:016x}"}
            memory.append(word)
    if scn["el"] != 3:
        tags.add("v94:lower-el")
    _keep_harness_running(r, scn["el"], regs, tags)
    return dict(scn, sysregs=dict(sorted(regs.items())), memory=memory, tags=sorted(tags))


#: Entries that keep the harness's blocks usable by the EL that runs it: PIR_ELx values that
#: are privileged-executable (RX 0b0011/0b1010, RWX 0b0111/0b1110; not 0b0110, which WXN
#: makes non-executable), PIRE0_ELx values that EL0 cannot write and that are not GCS (a
#: privileged-executable location writable at EL0 gives no access at all:
#: ``AArch64.S1IndirectBasePermissions()``), S2PIR_EL2 values with read (the stage 1 walk
#: reads the harness's tables through it) and EL1 execute (``AArch64.S2IndirectBasePermissions()``).
HARNESS_PIR = (0b0011, 0b0111, 0b1010, 0b1110)
HARNESS_PIRE0 = (0b0000, 0b0001, 0b0010, 0b0011, 0b1000, 0b1010)
HARNESS_S2PIR = (0b1010, 0b1011, 0b1110, 0b1111)


def _harness_path(scn: dict[str, Any]) -> set[int]:
    """The PAs of the stage 1 descriptors that translate the harness's code for the EL that
    runs the ops, when that EL's MMU is on (atlab's own walk of AT S1E1R/S1E2R on it).

    AIE sets bit 59 on random valid words; on a table descriptor that is PXNTable, which the
    Arm ARM ignores with AIE (``AArch64.S1TTWParamsEL10()``: hpd is 1 when aie is 1) but QEMU
    11.1 applies (``qemu11-aie-keeps-hierarchical-permissions``): on the harness's own path it
    would stop the harness, so these words keep bit 59 clear."""
    from atlab.scenario import parse_scenario

    if scn["el"] == 3:
        return set()
    (res,) = parse_scenario(harness_probe(scn)).run(trace=True)
    return {s.desc_pa for s in res.trace.steps if s.stage == 1 and not s.is_write}


def harness_probe(scn: dict[str, Any]) -> dict[str, Any]:
    """``scn`` with one op: the AT that translates the harness's code as the EL running the
    ops fetches it (S1E1R for EL1, S1E2R for EL2), issued from EL3 so that no HCR_EL2.AT/NV
    trap stops it."""
    op = "S1E1R" if scn["el"] == 1 else "S1E2R"
    return dict(scn, el=3, ops=[{"op": op, "va": f"{HARNESS_CODE:#x}", "pan": 0}])


def _set_entry(regs: dict[str, str], name: str, index: int, value: int) -> None:
    old = int(regs.get(name, "0"), 16)
    regs[name] = f"{old & ~(0xF << 4 * index) | value << 4 * index:#x}"


def _keep_harness_running(r: random.Random, el: int, regs: dict[str, str],
                          tags: set[str]) -> None:
    """For ops at EL1/EL2 whose own translation maps the harness, give the PIR_ELx/PIRE0_ELx
    entry its blocks select (PIIndex of :func:`harness_leaf_attrs`) a value from
    :data:`HARNESS_PIR`/:data:`HARNESS_PIRE0`, Attr7 of MAIR2_ELx Normal WB (AttrIndx 15 when
    AIE sets bit 59 on a harness block, as MAIR_ELx.Attr7 already is), and at EL1 under
    stage 2 the S2PIR_EL2 entry of the harness's stage 2 blocks a value from
    :data:`HARNESS_S2PIR`.  Every other entry stays random, and the entries fixed here still
    answer the scenario's ops that land in the harness's 1 GB."""
    if el == 3:
        return
    hcr = int(regs.get("HCR_EL2", "0"), 16)
    e2h, nv1 = bool(hcr >> 34 & 1), bool(hcr >> 42 & 1 and hcr >> 43 & 1)
    if el == 1:
        suffix, two = "EL1", not nv1
        s1_on = bool(int(regs.get("SCTLR_EL1", "0"), 16) & 1) and not hcr >> 12 & 1
        s2_on = bool(hcr & 1 or hcr >> 12 & 1)
    else:
        suffix, two = "EL2", e2h
        s1_on = bool(int(regs.get("SCTLR_EL2", "0"), 16) & 1)
        s2_on = False  # EL2's own accesses have no stage 2
    if s1_on:
        idx = pi_index(harness_leaf_attrs(s2=False, two_ranges=two))
        _set_entry(regs, f"PIR_{suffix}", idx, r.choice(HARNESS_PIR))
        if two:
            _set_entry(regs, f"PIRE0_{suffix}", idx, r.choice(HARNESS_PIRE0))
        if f"MAIR2_{suffix}" in regs:
            mair2 = int(regs[f"MAIR2_{suffix}"], 16)
            regs[f"MAIR2_{suffix}"] = f"{mair2 & ~(0xFF << 56) | 0xFF << 56:#x}"
        tags.add("v94:harness-mapped")
    if s2_on and "S2PIR_EL2" in regs:
        idx = s2_pi_index(harness_leaf_attrs(s2=True, two_ranges=False))
        _set_entry(regs, "S2PIR_EL2", idx, r.choice(HARNESS_S2PIR))
        tags.add("v94:harness-mapped")


def _harness_block(desc: int) -> bool:
    """Whether ``desc`` is one of the blocks :func:`_harness_map` writes (stage 1: AttrIndx 7,
    AF=1, output address in the harness's RAM)."""
    return (desc & 3 == 1 and desc >> 2 & 7 == 7 and bool(desc >> 10 & 1)
            and HARNESS_LO <= desc & 0xFFFF_FFFF_F000 < HARNESS_HI)


def v94_el3_variant(r: random.Random, scn: dict[str, Any]) -> dict[str, Any]:
    """The EL3 regime's Armv8.9 controls (``AArch64.S1TTWParamsEL3()``: the EL3 regime has no
    TCR2): TCR_EL3.PIE (bit 35) with a random PIR_EL3 (tag ``pie:EL3``), TCR_EL3.AIE (bit 37)
    with MAIR2_EL3 and descriptor bit 59 on some valid words (``aie:EL3``).  With
    SCTLR_EL3.M=1 the harness itself runs through these tables (its flat blocks: PIIndex 0,
    AttrIndx 7), so PIR_EL3.Perm0 gives read, write and execute, its blocks get nDirty (bit 7)
    under PIE and never bit 59."""
    tags = set(scn["tags"])
    regs = dict(scn["sysregs"])
    harness = bool(int(regs.get("SCTLR_EL3", "0"), 16) & 1)
    pie, aie = r.random() < 0.75, r.random() < 0.4
    if not (pie or aie):
        pie = True
    regs["TCR_EL3"] = f"{int(regs.get('TCR_EL3', '0'), 16) | pie << 35 | aie << 37:#x}"
    pir = _pir(r)
    if harness:
        pir = pir & ~0xF | r.choice((0b0111, 0b1110))  # RWX, with or without an overlay
    regs["PIR_EL3"] = f"{pir:#x}"
    if pie:
        tags.add("pie:EL3")
    if aie:
        tags.add("aie:EL3")
        pool = MAIR_NORMAL + MAIR_DEVICE
        regs["MAIR2_EL3"] = f"{sum(r.choice(pool) << 8 * i for i in range(8)):#x}"
    memory = []
    for word in scn["memory"]:
        value = int(word["u64"], 16)
        if harness and _harness_block(value):
            new = value | (1 << 7) if pie else value  # nDirty: the harness writes its records
        elif aie and value & 1 and r.random() < 0.5:
            new = value | 1 << 59  # AttrIndx[3]
        else:
            new = value
        memory.append(word if new == value else {"pa": word["pa"], "u64": f"0x{new:016x}"})
    return dict(scn, sysregs=dict(sorted(regs.items())), memory=memory, tags=sorted(tags))


def qemu11_profile(scn: dict[str, Any]) -> dict[str, Any]:
    """A generated scenario for QEMU 11.1's PE (``--qemu 11``): FEAT_ATS1A on, so the
    ``op:ats1a-undef`` ops execute (tagged ``op:ats1a``) and the ``atlab-only:ats1a`` variants
    are compared with QEMU (tagged ``ats1a``); about :data:`V94_SHARE` of the eligible
    scenarios get the TCR2/S1PIE/AIE registers (:func:`v94_variant`)."""
    tags = set(scn.get("tags", []))
    if ATLAB_ONLY + "ats1a" in tags:
        tags.discard(ATLAB_ONLY + "ats1a")
        tags.add("ats1a")
    if "op:ats1a-undef" in tags:
        tags.discard("op:ats1a-undef")
        tags.add("op:ats1a")
    feats = dict(scn.get("features", {}))
    only = is_atlab_only(dict(scn, tags=sorted(tags)))
    if not only or feats.get("FEAT_ATS1A") is False:
        feats.update(QEMU11_FEATURES)
    out = dict(scn, tags=sorted(tags), features=feats)
    r = random.Random(f"atlab-difftest-v94:{scn['name']}")
    if not only and r.random() < V94_SHARE:
        out = v94_variant(r, out)
    return out


#: Share of the POE variants that also set a field of FEAT_THE/HAFT/D128, which atlab refuses
#: (atlab.sysregs.NOT_MODELLED_FIELDS).
NOT_MODELLED_SHARE = 0.05
#: Share of the POE variants on a PE without FEAT_TCR2 (TCR2_ELx then counts as 0).
TCR2_OFF_SHARE = 0.05


def poe_variant(r: random.Random, scn: dict[str, Any]) -> dict[str, Any]:
    """FEAT_S1POE/FEAT_S2POE, which no QEMU has (tests/test_pie.py checks them against
    hand-derived cases), on a generated scenario (not atlab-only) as :func:`qemu11_profile`
    makes it: an atlab-only scenario (tag ``atlab-only:poe``) for the coverage run
    (:mod:`tools.difftest.covreport`), never sent to QEMU.

    The Armv8.9 registers of :func:`v94_variant` (given here when the profile left them out;
    PIE on in about 3/4 of them: overlays over both indirect and direct permissions), then
    TCR2_ELx.POE (or TCR_EL3.POE) and, in the two-range regimes, TCR2_ELx.E0POE, each in about
    4/5 of the scenarios (tags ``poe:<regime>``, ``e0poe``), random POR_EL0/EL1/EL2/EL3 (every
    encoding, reserved ones included), a random POIndex (bits [62:60]) on about half of the
    valid words, and with VTCR_EL2.S2PIE VTCR_EL2.S2POE (bit 37) with a random S2POR_EL1
    (``s2poe``; the stage 2 POIndex is bits [62:59]).  About :data:`NOT_MODELLED_SHARE` of
    them also set a TCR2_ELx/TCR_EL3/VTCR_EL2 bit of FEAT_THE/HAFT/D128
    (``atlab.sysregs.NOT_MODELLED_FIELDS``; tag ``not-modelled:<register>.<field>``): atlab
    refuses every op whose walk reads that register in force, and about
    :data:`TCR2_OFF_SHARE` of them have no FEAT_TCR2 (``feature-off:TCR2``)."""
    out = qemu11_profile(scn)
    if out["sysregs"] == scn["sysregs"]:  # the profile left out the Armv8.9 registers
        out = v94_variant(r, out)
    tags = set(out["tags"]) | {ATLAB_ONLY + "poe"}
    regs = dict(out["sysregs"])
    primary = next(t for t in tags if t.startswith("regime:"))[7:]
    poe, e0poe = r.random() < 0.8, r.random() < 0.8
    if not (poe or e0poe):
        poe = True
    if primary == "EL3":
        name = "TCR_EL3"  # the EL3 regime has no TCR2 (AArch64.S1TTWParamsEL3())
        regs[name] = f"{int(regs.get(name, '0'), 16) | poe << 36:#x}"
        e0poe = False
    else:
        name = "TCR2_EL1" if primary == "EL1&0" else "TCR2_EL2"
        two = primary in ("EL1&0", "EL2&0")
        e0poe = e0poe and two
        regs[name] = f"{int(regs.get(name, '0'), 16) | poe << 3 | e0poe << 2:#x}"
    if poe:
        tags.add(f"poe:{primary}")
    if e0poe:
        tags.add("e0poe")
    for por in ("POR_EL0", "POR_EL1", "POR_EL2", "POR_EL3"):
        regs[por] = f"{sum(r.randrange(16) << 4 * m for m in range(16)):#x}"
    s2poe = "s2pie" in tags and r.random() < 0.8
    if s2poe:
        regs["VTCR_EL2"] = f"{int(regs['VTCR_EL2'], 16) | 1 << 37:#x}"
        regs["S2POR_EL1"] = f"{sum(r.randrange(16) << 4 * m for m in range(16)):#x}"
        tags.add("s2poe")
    memory = []
    for word in out["memory"]:
        value = int(word["u64"], 16)
        if value & 1 and r.random() < 0.5:
            value = value & ~(0xF << 59) | r.randrange(16) << 59  # POIndex (and bit 59)
            word = {"pa": word["pa"], "u64": f"0x{value:016x}"}
        memory.append(word)
    if r.random() < NOT_MODELLED_SHARE:
        # a field of FEAT_THE/HAFT/D128 in a register the ops' walks read
        reg = name
        if "stage2:vm" in tags and r.random() < 0.4:
            reg = "VTCR_EL2"
        fname, pos = r.choice(NOT_MODELLED_FIELDS[reg])
        regs[reg] = f"{int(regs.get(reg, '0'), 16) | 1 << pos:#x}"
        tags.add(f"not-modelled:{reg}.{fname}")
    feats = dict(out.get("features", {}), FEAT_S1POE=True, FEAT_S2POE=True)
    if r.random() < TCR2_OFF_SHARE:
        feats["FEAT_TCR2"] = False  # TCR2_ELx is not in force (IsTCR2EL1Enabled() FALSE)
        tags.add("feature-off:TCR2")
    return dict(out, sysregs=dict(sorted(regs.items())), memory=memory, tags=sorted(tags),
                features=feats)


def atlab_only_variant(r: random.Random, scn: dict[str, Any]) -> dict[str, Any]:
    """Turn a generated scenario into one only atlab can answer (tagged ``atlab-only:*``):

    - ``feature-off``: features QEMU always has switched off (:data:`FEATURES_OFF`) or a
      PAMax below 52;
    - ``reserved-tg`` (``error-expected``): a reserved TCR_ELx.TG0/TG1 or VTCR_EL2.TG0
      encoding, which atlab refuses (AtlabError) rather than pick an IMPLEMENTATION DEFINED
      granule;
    - ``granule-off``: FEAT_TGran4K/16K/64K off for a granule the scenario uses (atlab
      refuses the walks that select it);
    - ``el1-tge`` (``error-expected``): ops at EL1 with HCR_EL2.TGE=1 (nothing runs there);
    - ``ats1a``: FEAT_ATS1A on (QEMU 10 lacks it) and AT S1E1A/S1E2A/S1E3A, which check no
      permission.
    """
    scn = dict(scn, sysregs=dict(scn["sysregs"]), ops=[dict(o) for o in scn["ops"]])
    tags = set(scn["tags"])
    kind = r.choices(("feature-off", "reserved-tg", "granule-off", "el1-tge", "ats1a"),
                     (0.55, 0.12, 0.05, 0.05, 0.23))[0]
    tags.add(ATLAB_ONLY + kind)
    regs = scn["sysregs"]
    if kind == "feature-off":
        feats: dict[str, Any] = {"FEAT_ATS1A": False}
        for name in r.sample(FEATURES_OFF, r.randint(1, 4)):
            feats[name] = False
            tags.add(f"feature-off:{name[5:]}")
        if r.random() < 0.35:
            feats["PAMax"] = r.choice((32, 36, 40, 42, 44, 48))
            tags.add("feature-off:pamax")
        scn["features"] = feats
    elif kind == "reserved-tg":
        tags.add(ATLAB_ONLY + "error-expected")
        which = r.choice(("TCR_EL1.TG0", "TCR_EL1.TG1", "TCR_EL2.TG0", "TCR_EL2.TG1",
                          "TCR_EL3.TG0", "VTCR_EL2.TG0"))
        reg, fld = which.split(".")
        v = int(regs.get(reg, "0"), 0)
        if fld == "TG0":
            v |= 0b11 << 14
        else:
            v &= ~(0b11 << 30)
        regs[reg] = f"{v:#x}"
        tags.add(f"reserved-tg:{which}")
        # make the ops use the regime of that register
        ops = {"TCR_EL1": ("S1E1R", "S1E0W", "S12E1R"), "TCR_EL2": ("S1E2R", "S1E2W"),
               "TCR_EL3": ("S1E3R",), "VTCR_EL2": ("S12E1R", "S12E0W")}[reg]
        hcr = int(regs.get("HCR_EL2", "0"), 0)
        if reg == "TCR_EL2" and fld == "TG1":
            hcr |= 1 << 34  # E2H: the EL2&0 regime has TTBR1
        if reg == "VTCR_EL2":
            hcr = (hcr | 1) & ~(1 << 27)
        if reg == "TCR_EL1":
            hcr &= ~(1 << 27)
            regs["SCTLR_EL1"] = f"{int(regs.get('SCTLR_EL1', '0'), 0) | 1:#x}"
        if reg == "TCR_EL3":
            regs["SCTLR_EL3"] = f"{int(regs.get('SCTLR_EL3', '0'), 0) | 1:#x}"
        if reg == "TCR_EL2":
            regs["SCTLR_EL2"] = f"{int(regs.get('SCTLR_EL2', '0'), 0) | 1:#x}"
        regs["HCR_EL2"] = f"{hcr:#x}"
        scn["el"] = 3
        for o in scn["ops"]:
            o["op"] = r.choice(ops)
            if fld == "TG1":
                o["va"] = f"{int(o['va'], 0) | (0xFFFF << 48):#x}"
    elif kind == "granule-off":
        # the PE lacks a granule the registers select: atlab refuses the walks that use it
        used = sorted({t.rsplit(":", 1)[-1] for t in tags
                       if t.startswith(("granule:", "s2:granule:")) and not t.endswith("ttbr1")}
                      | {t.split(":")[1] for t in tags if t.endswith(":ttbr1")})
        name = "FEAT_TGran" + r.choice(used or ["4K", "16K", "64K"])
        scn["features"] = {"FEAT_ATS1A": False, name: False}
        tags.add(f"feature-off:{name[5:]}")
    elif kind == "el1-tge":
        tags.add(ATLAB_ONLY + "error-expected")
        regs["HCR_EL2"] = f"{int(regs.get('HCR_EL2', '0'), 0) | (1 << 27):#x}"
        scn["el"] = 1
    else:
        scn["features"] = {"FEAT_ATS1A": True}
        for o in scn["ops"]:
            if r.random() < 0.6:
                o["op"] = r.choice(("S1E1A", "S1E2A", "S1E3A"))
    scn["tags"] = sorted(tags)
    return scn


def generate(seed: int, count: int, *, start: int = 0,
             atlab_only: bool = True) -> list[dict[str, Any]]:
    """``count`` scenarios for ``seed``; scenario ``i`` depends only on (seed, i).  About
    :data:`ATLAB_ONLY_SHARE` of them are atlab-only variants (:func:`atlab_only_variant`);
    ``atlab_only=False`` leaves those out."""
    out = []
    for i in range(start, start + count):
        r = random.Random(f"atlab-difftest:{seed}:{i}")
        scn = gen_one(r, f"s{seed}-{i}")
        rv = random.Random(f"atlab-difftest-variant:{seed}:{i}")
        if rv.random() < ATLAB_ONLY_SHARE:
            if not atlab_only:
                continue
            scn = atlab_only_variant(rv, scn)
        out.append(scn)
    return out
