"""The TLBI differential test: which TLB maintenance instructions trap, are UNDEFINED or
execute, at EL1 and EL2, under generated HCR_EL2 values — atlab
(:func:`atlab.tlb.tlbi_route`) against QEMU ``-cpu max`` (the harness's TLBI stubs,
``tools/hw``, with the operand in x1).

What a TLB *holds* cannot be compared this way: QEMU's AT always walks (R_NPZWX lets it) and
its TLBIs invalidate more than the architecture requires.  What is compared is exact: no
exception, or the exception's target EL, ESR (ISS.Rt included: the harness names x1, and the
forms without an operand encode XZR), FAR and HPFAR.

Generated: ``el`` 1 (mostly) or 2; HCR_EL2 with RW=1 and a random subset of NV, NV1, TTLB,
TTLBIS, FB, E2H, AT and TSC (TGE only at EL2: EL1 cannot run with TGE=1; VM=0, since the
harness's code at EL1 is not mapped by any stage 2); one to four TLBI ops with random Xt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from atlab import AtlabError, SysRegs
from atlab.tlb import TlbiOp, tlbi_route
from tools.difftest.outcome import Outcome

#: HCR_EL2 bits the generator sets at random (name, bit).
HCR_BITS = (("NV", 42), ("NV1", 43), ("TTLB", 25), ("TTLBIS", 54), ("FB", 9), ("E2H", 34),
            ("AT", 44), ("TSC", 19))
_RW, _TGE = 1 << 31, 1 << 27
PREFIX = "TLBI "


def gen_tlbi(r: random.Random, name: str) -> dict[str, Any]:
    el = 1 if r.random() < 0.8 else 2
    hcr = _RW
    tags = ["tlbi", f"tlbi:el{el}"]
    for bit_name, n in HCR_BITS:
        if r.random() < 0.3:
            hcr |= 1 << n
            tags.append(f"hcr:{bit_name.lower()}")
    if el == 2 and r.random() < 0.3:
        hcr |= _TGE
        tags.append("hcr:tge")
    ops = []
    for _ in range(r.randint(1, 4)):
        op = r.choice(list(TlbiOp))
        xt = r.choice((0, r.getrandbits(64), r.getrandbits(44), 5 << 48 | 0x1_0000))
        ops.append({"op": PREFIX + op.name, "va": f"{xt:#x}"})
        tags.append(f"tlbi:{op.name}")
    return {"name": name, "el": el, "tags": sorted(set(tags)),
            "sysregs": {"HCR_EL2": f"{hcr:#x}"}, "ops": ops}


def generate_tlbi(seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` TLBI scenarios for ``seed`` (scenario ``i`` depends only on (seed, i))."""
    return [gen_tlbi(random.Random(f"atlab-difftest-tlbi:{seed}:{i}"), f"t{seed}-{i}")
            for i in range(count)]


def run_model_tlbi(scn: Mapping[str, Any]) -> list[Outcome]:
    """atlab's outcome for every TLBI op of ``scn``: "done" or the exception."""
    try:
        regs = SysRegs.from_mapping(dict(scn.get("sysregs", {})))
    except AtlabError as exc:
        return [Outcome("error", text=str(exc))] * len(scn["ops"])
    out = []
    for op in scn["ops"]:
        e = tlbi_route(TlbiOp.parse(op["op"]), regs=regs, cur_el=int(scn["el"])).exception
        out.append(Outcome("done") if e is None else
                   Outcome("exc", el=e.target_el, esr=e.esr, far=e.far, hpfar=e.hpfar))
    return out


def run_qemu_tlbi(scns: Sequence[Mapping[str, Any]]) -> list[list[Outcome]]:
    """QEMU's outcome for every TLBI op (a PAR read back means: no exception)."""
    from tools.difftest.compare import run_qemu

    return [[Outcome("done") if o.kind == "par" else o for o in ops] for ops in run_qemu(scns)]


@dataclass
class TlbiReport:
    scenarios: int = 0
    ops: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    mismatches: list[tuple[dict[str, Any], int, Outcome, Outcome]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_outcome.items()))
        return (f"{self.scenarios} TLBI scenarios, {self.ops} ops ({kinds}): "
                f"{len(self.mismatches)} mismatches ({self.seconds:.1f} s)")


def _kind(o: Outcome) -> str:
    if o.kind != "exc":
        return o.kind
    return "UNDEFINED" if o.esr >> 26 == 0 else f"trap to EL{o.el}"


def compare_tlbi(scns: Sequence[dict[str, Any]]) -> TlbiReport:
    """QEMU against atlab over ``scns``."""
    t0 = time.monotonic()
    rep = TlbiReport(scenarios=len(scns))
    for scn, qs in zip(scns, run_qemu_tlbi(scns), strict=True):
        ms = run_model_tlbi(scn)
        for i, (m, q) in enumerate(zip(ms, qs, strict=True)):
            rep.ops += 1
            rep.by_outcome[_kind(q)] = rep.by_outcome.get(_kind(q), 0) + 1
            if m.key() != q.key() or m.esr != q.esr:  # ISS.Rt compared too
                rep.mismatches.append((scn, i, m, q))
    rep.seconds = time.monotonic() - t0
    return rep


__all__ = ["HCR_BITS", "TlbiReport", "compare_tlbi", "gen_tlbi", "generate_tlbi",
           "run_model_tlbi", "run_qemu_tlbi"]
