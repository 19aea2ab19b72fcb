"""The page-table builder: choose the regime, granule and VA size, add and remove mappings,
watch the ptdump and the registers update, export a scenario."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import ipywidgets as w

from atlab.builder import MEM_TYPES, S1Builder
from atlab.errors import AtlabError
from atlab.granule import Granule
from atlab.ptdump import PtDump, ptdump
from atlab.regime import Regime
from atlab.viz import memory_map
from atlab.widgets._common import ErrorLine, guarded, image, parse_hex, png_of

#: Where the builder puts its tables (a PA range of the QEMU virt machine's RAM).
TABLES = (0x4020_0000, 0x4040_0000)
_REGIMES = (("EL1&0", Regime.EL10), ("EL2", Regime.EL2), ("EL2&0", Regime.EL20))
_GRANULES = (("4KB", Granule.K4), ("16KB", Granule.K16), ("64KB", Granule.K64))
_AP = ("EL1 RW", "EL1 RW / EL0 RW", "EL1 RO", "EL1 RO / EL0 RO")


@dataclass(frozen=True, slots=True)
class Mapping:
    va: int
    pa: int
    size: int
    ap: str
    mem: str
    xn: bool

    def __str__(self) -> str:
        return (f"{self.va:#x}+{self.size:#x} -> {self.pa:#x} {self.ap} {self.mem}"
                + (" XN" if self.xn else ""))


class PageTableBuilder(w.VBox):  # type: ignore[misc]
    """Build stage 1 tables with :class:`atlab.builder.S1Builder`; every change rebuilds the
    tables from the list of mappings (:attr:`mappings`), so regime, granule and VA size can
    change at any time.  :attr:`dump` is the last :class:`~atlab.ptdump.PtDump`,
    :meth:`scenario` the exported scenario dict."""

    def __init__(self) -> None:
        self.regime = w.Dropdown(options=list(_REGIMES), value=Regime.EL10,
                                 description="regime", layout=w.Layout(width="180px"))
        self.granule = w.Dropdown(options=list(_GRANULES), value=Granule.K4,
                                  description="granule", layout=w.Layout(width="170px"))
        self.va_bits = w.BoundedIntText(value=48, min=16, max=52, description="VA bits",
                                        layout=w.Layout(width="150px"))
        self.va = w.Text(value="0x400000", description="VA", layout=w.Layout(width="220px"))
        self.pa = w.Text(value="0x80000000", description="PA", layout=w.Layout(width="220px"))
        self.size = w.Text(value="0x200000", description="size", layout=w.Layout(width="200px"))
        self.ap = w.Dropdown(options=list(_AP), value="EL1 RW", description="AP",
                             layout=w.Layout(width="220px"))
        self.mem = w.Dropdown(options=list(MEM_TYPES), value="normal-wb", description="memory",
                              layout=w.Layout(width="230px"))
        self.xn = w.Checkbox(value=False, description="XN (UXN+PXN)", indent=False)
        self.add_button = w.Button(description="Add mapping")
        self.add_button.add_class("atlab-builder-add")
        self.remove_button = w.Button(description="Remove (unmap VA+size)")
        self.remove_button.add_class("atlab-builder-remove")
        self.export_button = w.Button(description="Export scenario")
        self.export_button.add_class("atlab-builder-export")
        self.list_html = w.HTML()
        self.dump_html = w.HTML()
        self.dump_html.add_class("atlab-builder-ptdump")
        self.regs_html = w.HTML()
        self.regs_html.add_class("atlab-builder-registers")
        self.picture = image()
        self.export_text = w.Textarea(layout=w.Layout(width="100%", height="120px"))
        self.export_text.add_class("atlab-builder-scenario")
        self.error = ErrorLine()
        self.mappings: list[Mapping] = []
        self.unmapped: list[tuple[int, int]] = []
        self.builder: S1Builder | None = None
        self.dump: PtDump | None = None
        super().__init__([
            w.HTML("<b>Page-table builder</b>"),
            w.HBox([self.regime, self.granule, self.va_bits]),
            w.HBox([self.va, self.pa, self.size]), w.HBox([self.ap, self.mem, self.xn]),
            w.HBox([self.add_button, self.remove_button, self.export_button]), self.error,
            self.list_html, self.regs_html, self.picture, self.dump_html, self.export_text,
        ])
        self.add_class("atlab-pt-builder")
        for ctl in (self.regime, self.granule, self.va_bits):
            ctl.observe(lambda _c: self.rebuild(), names="value")
        self.add_button.on_click(lambda _b: self.add())
        self.remove_button.on_click(lambda _b: self.remove())
        self.export_button.on_click(lambda _b: self.export())
        self.rebuild()

    def _build(self, mappings: list[Mapping], unmapped: list[tuple[int, int]]) -> S1Builder:
        b = S1Builder(self.regime.value, granule=self.granule.value,
                      va_bits=int(self.va_bits.value), tables=TABLES)
        two = self.regime.value.has_unprivileged
        for m in mappings:
            ap = m.ap if two else ("RO" if "RO" in m.ap else "RW")
            if two:
                b.map(m.va, m.pa, m.size, ap=ap, mem=m.mem, uxn=m.xn, pxn=m.xn)
            else:
                b.map(m.va, m.pa, m.size, ap=ap, mem=m.mem, xn=m.xn)
        for va, size in unmapped:
            b.unmap(va, size)
        return b

    @guarded
    def add(self) -> None:
        m = Mapping(parse_hex(self.va.value, "VA"), parse_hex(self.pa.value, "PA"),
                    parse_hex(self.size.value, "size"), self.ap.value, self.mem.value,
                    bool(self.xn.value))
        self._apply([*self.mappings, m], self.unmapped)

    @guarded
    def remove(self) -> None:
        va, size = parse_hex(self.va.value, "VA"), parse_hex(self.size.value, "size")
        if not self.mappings:
            raise AtlabError("nothing is mapped yet")
        self._apply(self.mappings, [*self.unmapped, (va, size)])

    @guarded
    def rebuild(self) -> None:
        self._apply(self.mappings, self.unmapped)

    def _apply(self, mappings: list[Mapping], unmapped: list[tuple[int, int]]) -> None:
        b = self._build(mappings, unmapped)  # raises (inline) before any state changes
        self.mappings, self.unmapped, self.builder = mappings, unmapped, b
        regs = b.regs()
        self.dump = ptdump(regs, b.memory(), regime=self.regime.value)
        items = [f"<li><code>map {html.escape(str(m))}</code></li>" for m in mappings]
        items += [f"<li><code>unmap {va:#x}+{size:#x}</code></li>" for va, size in unmapped]
        self.list_html.value = f"<b>mappings</b><ol>{''.join(items)}</ol>" if items else ""
        regs_txt = " ".join(f"{k}={v:#x}" for k, v in sorted(b.sysregs().items()))
        self.regs_html.value = f"<b>registers:</b> <code>{html.escape(regs_txt)}</code>"
        self.picture.value = png_of(memory_map(self.dump))
        self.dump_html.value = f"<pre>{html.escape(str(self.dump))}</pre>"

    def scenario(self, name: str = "built") -> dict[str, object]:
        """The tables and registers as a scenario dict (one AT S1E1R/S1E2R per mapping)."""
        if self.builder is None:
            raise AtlabError("nothing built yet")
        op = "S1E1R" if self.regime.value is Regime.EL10 else "S1E2R"
        ops = [{"op": op, "va": f"{m.va:#x}"} for m in self.mappings]
        return self.builder.scenario(name=name, ops=ops)

    @guarded
    def export(self) -> None:
        self.export_text.value = json.dumps(self.scenario(), indent=1)


def make_page_table_builder() -> PageTableBuilder:
    return PageTableBuilder()
