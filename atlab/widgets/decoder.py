"""The decoder: type a hex value, see the fields of a PAR_EL1, a descriptor or a register."""

from __future__ import annotations

import ipywidgets as w

from atlab import sysregs
from atlab.descriptors import decode_descriptor
from atlab.explain import leaf_index_fields
from atlab.granule import Granule
from atlab.par import Par
from atlab.viz import par_fields
from atlab.widgets._common import ErrorLine, guarded, html_table, image, parse_hex, png_of

KINDS = ("PAR_EL1", "descriptor", "register")
_GRANULES = (("4KB", Granule.K4), ("16KB", Granule.K16), ("64KB", Granule.K64))
REGISTERS = tuple(sorted(sysregs.WRITABLE - {"PSTATE_PAN"}))


class Decoder(w.VBox):  # type: ignore[misc]
    """Pick what the value is (PAR_EL1, a descriptor at a level/stage/granule, or a register),
    type it in hex; :attr:`fields` holds the decoded fields of the last valid value."""

    def __init__(self, kind: str = "PAR_EL1", value: int | str = 0) -> None:
        self.kind = w.ToggleButtons(options=list(KINDS), value=kind, description="decode",
                                    style={"button_width": "90px"})
        self.kind.add_class("atlab-decoder-kind")
        text = value if isinstance(value, str) else f"{value:#x}"
        self.value = w.Text(value=text, description="hex", continuous_update=True,
                            layout=w.Layout(width="320px"))
        self.value.add_class("atlab-decoder-value")
        self.level = w.Dropdown(options=[-1, 0, 1, 2, 3], value=3, description="level",
                                layout=w.Layout(width="140px"))
        self.stage = w.Dropdown(options=[("stage 1", 1), ("stage 2", 2)], value=1,
                                description="", layout=w.Layout(width="100px"))
        self.granule = w.Dropdown(options=list(_GRANULES), value=Granule.K4,
                                  description="granule", layout=w.Layout(width="170px"))
        # TCR_ELx.DS / VTCR_EL2.DS (FEAT_LPA2): 52-bit OAs in the descriptor, level -1 (4KB)
        self.ds = w.Checkbox(value=False, description="DS=1 (FEAT_LPA2)", indent=False,
                             layout=w.Layout(width="150px"))
        # The controls that change what a leaf's bits mean (TCR2_ELx.PIE/POE/AIE, VTCR_EL2.S2PIE)
        self.pie = w.Checkbox(value=False, description="PIE (PIIndex)", indent=False,
                              layout=w.Layout(width="130px"))
        self.poe = w.Checkbox(value=False, description="POE (POIndex)", indent=False,
                              layout=w.Layout(width="130px"))
        self.aie = w.Checkbox(value=False, description="AIE (AttrIndx[3])", indent=False,
                              layout=w.Layout(width="150px"))
        self.register = w.Dropdown(options=list(REGISTERS), value="TCR_EL1",
                                   description="register", layout=w.Layout(width="240px"))
        self.e2h = w.Checkbox(value=False, description="HCR_EL2.E2H=1 (TCR_EL2 layout)",
                              indent=False)
        self.fields_html = w.HTML()
        self.fields_html.add_class("atlab-decoder-fields")
        self.picture = image()
        self.picture.add_class("atlab-decoder-picture")
        self.error = ErrorLine()
        self.fields: dict[str, object] = {}
        self.desc_opts = w.VBox([w.HBox([self.level, self.stage, self.granule, self.ds]),
                                 w.HBox([self.pie, self.poe, self.aie])])
        self.reg_opts = w.HBox([self.register, self.e2h])
        super().__init__([w.HTML("<b>Decoder</b>"), self.kind, self.value, self.desc_opts,
                          self.reg_opts, self.error, self.fields_html, self.picture])
        self.add_class("atlab-decoder")
        for ctl in (self.kind, self.value, self.level, self.stage, self.granule, self.register,
                    self.e2h, self.ds, self.pie, self.poe, self.aie):
            ctl.observe(lambda _c: self.update(), names="value")
        self.update()

    @guarded
    def update(self) -> None:
        try:
            self._update()
        except Exception:
            self.fields = {}
            self.fields_html.value = ""
            self.picture.layout.display = "none"
            raise

    def _update(self) -> None:
        kind = self.kind.value
        self.desc_opts.layout.display = "" if kind == "descriptor" else "none"
        self.reg_opts.layout.display = "" if kind == "register" else "none"
        value = parse_hex(self.value.value, kind if kind != "register" else self.register.value)
        if kind == "PAR_EL1":
            par = Par(value)
            fields: dict[str, object] = dict(par.fields())
            rows = [(k, f"{v:#x}" if k == "PA" else str(v)) for k, v in par.fields().items()]
            text = f"<code>{par}</code>" + html_table(rows, ("field", "value"))
            self.picture.value = png_of(par_fields(par))
            self.picture.layout.display = ""
        elif kind == "descriptor":
            stage = int(self.stage.value)
            fields = decode_descriptor(value, level=int(self.level.value),
                                       granule=self.granule.value, stage=stage,
                                       ds=bool(self.ds.value))
            if fields["kind"] in ("page", "block"):
                # FEAT_S1PIE/S2PIE, S1POE, AIE: the index fields the controls make of the bits
                fields.update(leaf_index_fields(value, stage=stage, pie=bool(self.pie.value),
                                                poe=bool(self.poe.value),
                                                aie=bool(self.aie.value)))
            rows = [(k, f"{v:#x}" if k in ("OA", "next_table") and isinstance(v, int)
                     else f"{v:#06b}" if k == "PIIndex" and isinstance(v, int)
                     else f"{v:#05b}" if k == "POIndex" and isinstance(v, int)
                     else str(v)) for k, v in fields.items()]
            text = html_table(rows, ("field", "value"))
            self.picture.layout.display = "none"
        else:
            name = self.register.value
            e2h = int(self.e2h.value)
            decoded = sysregs.decode(name, value, e2h=e2h)
            fields = dict(decoded)
            reg_rows: list[tuple[str, ...]] = []
            for f in sysregs.layout(name, e2h=e2h):
                v = decoded[f.name]
                if not v and not f.values:
                    continue
                bitsel = f"[{f.hi}:{f.lo}]" if f.hi != f.lo else f"[{f.hi}]"
                meaning = f.values.get(v, f.doc) if f.values else f.doc
                reg_rows.append((f.name, bitsel, f"{v:#x}", meaning))
            text = (f"<code>{sysregs.format_fields(name, value, e2h=e2h)}</code>"
                    + html_table(reg_rows, ("field", "bits", "value", "meaning")))
            self.picture.layout.display = "none"
        self.fields = fields
        self.fields_html.value = text  # last: the browser test times updates of this line


def make_decoder(kind: str = "PAR_EL1", value: int | str = 0) -> Decoder:
    return Decoder(kind, value)
