"""Scenario files: registers, memory and AT operations, in JSON or YAML.

Format (one scenario, or a list of them)::

    {"name": "...", "comment": "...", "tags": ["..."],      # optional
     "el": 2,                          # EL that executes the ops: 1, 2 or 3 (default 2)
     "features": {"FEAT_ATS1A": false}, # optional; default: everything atlab models
     "sysregs": {"HCR_EL2": "0x80000000", "PSTATE_PAN": 0},   # registers not given are 0
     "memory": [{"pa": "0x40200120", "u64": "0x0000000040201003"}],
     "ops": [{"op": "S1E1R", "va": "0x123456789abc", "pan": 1}]}

Unknown keys are ignored (annotated files work); anything malformed raises
:class:`~atlab.errors.AtlabError` with a one-line message naming the place.
The ops of a scenario run in order on one memory, so hardware Access-flag updates made by
one op are seen by the next, as on a real CPU.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from atlab.at import AtResult, run_at
from atlab.errors import AtlabError, clip
from atlab.features import FeatureSet
from atlab.memory import PhysMem
from atlab.regime import AtOp
from atlab.sysregs import SysRegs, parse_int


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


@dataclass(frozen=True, slots=True)
class OpSpec:
    """One AT operation of a scenario, with the expected outcome when the file gives one."""

    op: AtOp
    va: int
    pan: int | None = None
    expected_par: int | _Missing | None = MISSING
    expected_exception: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    el: int
    regs: SysRegs
    memory: tuple[tuple[int, int], ...]
    ops: tuple[OpSpec, ...]
    features: FeatureSet = field(default_factory=FeatureSet.all)
    comment: str = ""
    tags: tuple[str, ...] = ()

    def fresh_memory(self) -> PhysMem:
        return PhysMem(dict(self.memory))

    def run(self, *, trace: bool = True, mem: PhysMem | None = None) -> list[AtResult]:
        """Run every op in order on one memory (AF updates persist between ops)."""
        mem = mem if mem is not None else self.fresh_memory()
        return [self._run(spec, mem, trace) for spec in self.ops]

    def run_op(self, spec: OpSpec, *, trace: bool = True, mem: PhysMem | None = None) -> AtResult:
        """Run one op on a fresh copy of the scenario's memory."""
        return self._run(spec, mem if mem is not None else self.fresh_memory(), trace)

    def _run(self, spec: OpSpec, mem: PhysMem, trace: bool) -> AtResult:
        return run_at(spec.op, spec.va, regs=self.regs, mem=mem, features=self.features,
                      cur_el=self.el, pan=spec.pan, trace=trace)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name}
        if self.comment:
            out["comment"] = self.comment
        if self.tags:
            out["tags"] = list(self.tags)
        out["el"] = self.el
        missing = sorted(f.value for f in FeatureSet.all().features - self.features.features)
        if missing or self.features.pa_max != 52:
            feats: dict[str, object] = {name: False for name in missing}
            if self.features.pa_max != 52:
                feats["PAMax"] = self.features.pa_max
            out["features"] = feats
        out["sysregs"] = self.regs.to_dict()
        out["memory"] = [{"pa": f"{pa:#x}", "u64": f"0x{v:016x}"} for pa, v in self.memory]
        ops = []
        for spec in self.ops:
            o: dict[str, object] = {"op": spec.op.name, "va": f"{spec.va:#x}"}
            if spec.pan is not None:
                o["pan"] = spec.pan
            if not isinstance(spec.expected_par, _Missing):
                o["expected_par"] = (None if spec.expected_par is None
                                     else f"0x{spec.expected_par:016x}")
            if spec.expected_exception is not None:
                o["expected_exception"] = dict(spec.expected_exception)
            ops.append(o)
        out["ops"] = ops
        return out


def _where(source: str, idx: int | None, name: str | None) -> str:
    parts = [source]
    if idx is not None:
        parts.append(f"scenario {idx}" + (f" ({clip(name)})" if name else ""))
    return ": ".join(parts)


def parse_scenario(
    obj: object, *, source: str = "<scenario>", index: int | None = None
) -> Scenario:
    """Validate and build one scenario from parsed JSON/YAML."""
    if not isinstance(obj, Mapping):
        raise AtlabError(f"{_where(source, index, None)}: a scenario must be a mapping, "
                         f"not {type(obj).__name__}")
    raw_name = obj.get("name", f"scenario{'' if index is None else index}")
    if isinstance(raw_name, Mapping | list):
        raise AtlabError(f"{_where(source, index, None)}: 'name' must be text, not "
                         f"{clip(raw_name)}")
    name = str(raw_name)
    where = _where(source, index, name)
    try:
        el = obj.get("el", 2)
        if isinstance(el, bool) or not isinstance(el, int) or el not in (1, 2, 3):
            raise AtlabError(f"'el' must be 1, 2 or 3, not {clip(el)}")
        feats = _or_default(obj.get("features"), {})
        if not isinstance(feats, Mapping):
            raise AtlabError("'features' must be a mapping of feature names to true/false")
        features = FeatureSet.from_mapping({str(k): v for k, v in feats.items()})
        sysregs = _or_default(obj.get("sysregs"), {})
        if not isinstance(sysregs, Mapping):
            raise AtlabError("'sysregs' must be a mapping of register names to values")
        regs = SysRegs.from_mapping({str(k): v for k, v in sysregs.items()})
        memory = _parse_memory(_or_default(obj.get("memory"), []))
        raw_ops = obj.get("ops", [])
        if not isinstance(raw_ops, Sequence) or isinstance(raw_ops, str | bytes):
            raise AtlabError("'ops' must be a list")
        ops = tuple(_parse_op(o, i) for i, o in enumerate(raw_ops))
        tags = _or_default(obj.get("tags"), [])
        if not isinstance(tags, Sequence) or isinstance(tags, str | bytes):
            raise AtlabError("'tags' must be a list of strings")
        return Scenario(name, el, regs, memory, ops, features, str(obj.get("comment", "") or ""),
                        tuple(str(t) for t in tags))
    except AtlabError as exc:
        raise AtlabError(f"{where}: {exc}") from None


def _or_default(value: object, default: object) -> object:
    """A missing or null key takes the default; anything else is validated as given."""
    return default if value is None else value


def _parse_memory(raw: object) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise AtlabError("'memory' must be a list of {\"pa\": ..., \"u64\": ...}")
    words: dict[int, int] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or "pa" not in entry or "u64" not in entry:
            raise AtlabError(f"memory entry {i} must have 'pa' and 'u64'")
        pa = parse_int(entry["pa"], what=f"memory entry {i} pa")
        value = parse_int(entry["u64"], what=f"memory entry {i} u64")
        if pa & 7 or pa >= 1 << 56:
            raise AtlabError(f"memory entry {i}: pa {pa:#x} must be 8-byte aligned and below 2^56")
        if value >> 64:
            raise AtlabError(f"memory entry {i}: u64 {value:#x} does not fit in 64 bits")
        if pa in words and words[pa] != value:
            raise AtlabError(f"memory entry {i}: pa {pa:#x} is given twice with different values")
        words[pa] = value
    return tuple(sorted(words.items()))


def _parse_op(raw: object, i: int) -> OpSpec:
    if not isinstance(raw, Mapping):
        raise AtlabError(f"op {i} must be a mapping with 'op' and 'va'")
    if "op" not in raw or "va" not in raw:
        raise AtlabError(f"op {i} must have 'op' and 'va'")
    try:
        op = AtOp.parse(str(raw["op"]))
        va = parse_int(raw["va"], what="va")
        if va >> 64:
            raise AtlabError(f"va {va:#x} does not fit in 64 bits")
        pan = raw.get("pan")
        if pan is not None and pan not in (0, 1):
            raise AtlabError(f"'pan' must be 0 or 1, not {clip(pan)}")
        expected: int | _Missing | None = MISSING
        if "expected_par" in raw:
            ep = raw["expected_par"]
            expected = None if ep is None else parse_int(ep, what="expected_par")
        exc = raw.get("expected_exception")
        if exc is not None and not isinstance(exc, Mapping):
            raise AtlabError("'expected_exception' must be a mapping")
    except AtlabError as e:
        raise AtlabError(f"op {i}: {e}") from None
    return OpSpec(op, va, None if pan is None else int(pan), expected, exc)


def parse_scenarios(obj: object, *, source: str = "<scenarios>") -> tuple[list[Scenario], bool]:
    """Parse one scenario or a list; also return whether the input was a list."""
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [parse_scenario(o, source=source, index=i) for i, o in enumerate(obj)], True
    return [parse_scenario(obj, source=source)], False


#: Input limits (the README's "Input guarantees"): the largest file read, the deepest nesting
#: of lists and mappings, the most values a YAML file may expand to through its aliases, and
#: the longest integer literal.
MAX_FILE_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_NODES = 1_000_000
MAX_INT_DIGITS = 100

_YamlBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_YamlBase):  # type: ignore[misc]
    """PyYAML's safe loader (the C one when libyaml is there) with integer and float
    literals of at most :data:`MAX_INT_DIGITS` characters."""


def _short_number(kind: str, base: object) -> object:
    construct = getattr(yaml.SafeLoader, f"construct_yaml_{kind}")

    def constructor(loader: object, node: yaml.ScalarNode) -> object:
        if len(node.value) > MAX_INT_DIGITS:
            line = node.start_mark.line + 1 if node.start_mark is not None else 0
            raise AtlabError(f"line {line}: a number of {len(node.value)} characters is too "
                             f"long (at most {MAX_INT_DIGITS})")
        return construct(loader, node)

    return constructor


_YamlLoader.add_constructor("tag:yaml.org,2002:int", _short_number("int", int))
_YamlLoader.add_constructor("tag:yaml.org,2002:float", _short_number("float", float))


def json_int(text: str) -> int:
    """``json.loads``'s ``parse_int``: integer literals of at most :data:`MAX_INT_DIGITS`
    characters (scenario files and snapshots)."""
    if len(text) > MAX_INT_DIGITS:
        raise AtlabError(f"a number of {len(text)} digits is too long (at most "
                         f"{MAX_INT_DIGITS})")
    return int(text)


def _read_bytes(path: str | Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_FILE_BYTES`; never blocks on a FIFO
    or reads a device."""
    if str(path) == "":
        raise AtlabError("no file name given")
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise AtlabError(f"{path}: cannot read ({kind})")
        if st.st_size > MAX_FILE_BYTES:
            raise AtlabError(f"{path}: {st.st_size} bytes is too large (at most "
                             f"{MAX_FILE_BYTES >> 20} MB)")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):  # replaced since the stat
                raise AtlabError(f"{path}: cannot read (not a regular file)")
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AtlabError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise AtlabError(f"{path}: too large (at most {MAX_FILE_BYTES >> 20} MB)")
    return data


def _decode(path: str | Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            what = "UTF-16 text"
        else:
            what = f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})"
        raise AtlabError(f"{path}: {what}; save the file as UTF-8") from None


def _check_tree(path: str | Path, doc: object) -> None:
    """Nesting at most :data:`MAX_DEPTH` deep, no lone surrogates in strings (iterative)."""
    stack: list[tuple[object, int]] = [(doc, 0)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, str):
            try:
                obj.encode("utf-8")
            except UnicodeEncodeError:
                raise AtlabError(f"{path}: the string {clip(obj)} holds a lone surrogate, "
                                 "which is not Unicode text") from None
        elif isinstance(obj, list | dict):
            if depth >= MAX_DEPTH:
                raise AtlabError(f"{path}: nested more than {MAX_DEPTH} levels deep")
            items = [*obj.keys(), *obj.values()] if isinstance(obj, dict) else obj
            stack.extend((o, depth + 1) for o in items)


@dataclass(slots=True)
class _Frame:
    """An open YAML collection while checking events: its anchor, the values inside it so far
    (itself included) and its height so far."""

    anchor: str | None
    size: int = 1
    height: int = 0


def _line(mark: object) -> str:
    line = getattr(mark, "line", None)
    return "" if line is None else f" (line {line + 1})"


def _check_yaml_events(path: str | Path, text: str) -> None:
    """Bound a YAML document before it is built: nesting depth and the number of values it
    expands to through aliases ("billion laughs"); an alias inside its own anchor is refused.
    One pass over the parser's events, so a deep file cannot exhaust the stack."""
    frames: list[_Frame] = []
    done: dict[str, tuple[int, int]] = {}  # anchor -> (values, height)
    total = 0
    for ev in yaml.parse(text, Loader=_YamlLoader):
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(frames) >= MAX_DEPTH:
                raise AtlabError(f"{path}: nested more than {MAX_DEPTH} levels deep"
                                 f"{_line(ev.start_mark)}")
            frames.append(_Frame(ev.anchor))
            total += 1
            continue
        if isinstance(ev, yaml.CollectionEndEvent):
            frame = frames.pop()
            size, height = frame.size, frame.height + 1
            if frame.anchor is not None:
                done[frame.anchor] = (size, height)
        elif isinstance(ev, yaml.AliasEvent):
            anchor = str(ev.anchor)
            if anchor not in done:
                raise AtlabError(f"{path}: alias *{anchor[:30]}{_line(ev.start_mark)} refers "
                                 "to an unknown anchor or to one it is inside of")
            size, height = done[anchor]
            total += size
            if total > MAX_NODES:
                raise AtlabError(f"{path}: more than {MAX_NODES} values once aliases are "
                                 "expanded")
            if len(frames) + height > MAX_DEPTH:
                raise AtlabError(f"{path}: nested more than {MAX_DEPTH} levels deep through "
                                 "aliases")
        elif isinstance(ev, yaml.ScalarEvent):
            size, height = 1, 0
            total += 1
            if ev.anchor is not None:
                done[ev.anchor] = (1, 0)
        else:
            continue
        if frames:
            frames[-1].size += size
            frames[-1].height = max(frames[-1].height, height)


def read_file(path: str | Path) -> object:
    """Load JSON or YAML (by extension; ``.json`` is JSON, anything else is tried as YAML),
    or a gzipped snapshot of a real system (:mod:`atlab.snapshot`), as a scenario.

    Only regular files of at most :data:`MAX_FILE_BYTES`, UTF-8 text, nested at most
    :data:`MAX_DEPTH` deep, expanding to at most :data:`MAX_NODES` values through YAML aliases,
    with number literals of at most :data:`MAX_INT_DIGITS` characters; anything else is an
    :class:`AtlabError` with one line.
    """
    data = _read_bytes(path)
    if data[:2] == b"\x1f\x8b":  # gzip: a snapshot of a real system (atlab.snapshot)
        from atlab.snapshot import read_snapshot_bytes, snapshot_to_scenario

        return snapshot_to_scenario(read_snapshot_bytes(data, str(path)), str(path))
    text = _decode(path, data)
    try:
        if Path(path).suffix.lower() == ".json":
            try:
                doc: object = json.loads(text, parse_int=json_int)
            except RecursionError:
                raise AtlabError(f"nested more than {MAX_DEPTH} levels deep") from None
        else:
            _check_yaml_events(path, text)
            doc = yaml.load(text, Loader=_YamlLoader)  # a safe loader
        _check_tree(path, doc)
        return doc
    except json.JSONDecodeError as exc:
        raise AtlabError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                         f"{exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        if len(problem) > 120:
            problem = problem[:119] + "…"
        raise AtlabError(f"{path}: invalid YAML{loc}: {problem}") from None
    except AtlabError as exc:
        msg = str(exc)
        raise AtlabError(msg if msg.startswith(f"{path}: ") else f"{path}: {msg}") from None


def load_scenarios(path: str | Path) -> list[Scenario]:
    """Every scenario in a JSON or YAML file."""
    return parse_scenarios(read_file(path), source=str(path))[0]


# --- saving ------------------------------------------------------------------------------------

#: Keys whose hex-string values are written as YAML hex integers (``0x40200000``, unquoted):
#: YAML 1.1 reads them back as the same integers, so the round trip is exact.
_TEXT_KEYS = frozenset({"name", "comment", "tags", "op", "context", "note",
                        # expected_exception fields are kept as given (int or string)
                        "taken_to_el", "esr", "far", "hpfar", "elr"})
_HEX = re.compile(r"0[xX][0-9a-fA-F]+\Z")


def _yaml_printable(ch: str) -> bool:
    """YAML 1.1's printable set (c-printable), minus NEL, which PyYAML treats as a break."""
    c = ord(ch)
    return (0x20 <= c <= 0x7E or 0xA0 <= c <= 0xD7FF or 0xE000 <= c <= 0xFFFD
            or 0x10000 <= c <= 0x10FFFF)


def _yaml_quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON escapes, plus ``\\u``/``\\U`` for the rest)."""
    out = []
    for ch in json.dumps(value, ensure_ascii=False)[1:-1]:
        if _yaml_printable(ch):
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _yaml_scalar(value: object, key: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if key not in _TEXT_KEYS and _HEX.match(value):
            return value.lower()
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", value) and value.lower() not in (
                "null", "true", "false", "yes", "no", "on", "off", "y", "n", "nan", "inf"):
            return value
        return _yaml_quoted(value)
    raise AtlabError(f"cannot write {type(value).__name__} {clip(value)} to YAML")


def _yaml_flow(value: object, key: str) -> str | None:
    """A one-line flow form for scalars, lists of scalars and flat mappings; else None."""
    if isinstance(value, Mapping):
        if all(not isinstance(v, Mapping | list | tuple) for v in value.values()):
            return "{" + ", ".join(f"{k}: {_yaml_scalar(v, str(k))}"
                                   for k, v in value.items()) + "}"
        return None
    if isinstance(value, list | tuple):
        if all(not isinstance(v, Mapping | list | tuple) for v in value):
            return "[" + ", ".join(_yaml_scalar(v, key) for v in value) + "]"
        return None
    return _yaml_scalar(value, key)


def _yaml_block(value: object, indent: int, key: str) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for k, v in value.items():
            flow = None if (isinstance(v, Mapping) and v) else _yaml_flow(v, str(k))
            if flow is not None and not (isinstance(v, list | tuple) and len(flow) > 80):
                lines.append(f"{pad}{k}: {flow}")
            else:
                lines.append(f"{pad}{k}:")
                lines += _yaml_block(v, indent + 2, str(k))
        return lines
    if isinstance(value, list | tuple):
        for item in value:
            flow = _yaml_flow(item, key)
            if flow is not None:
                lines.append(f"{pad}- {flow}")
            else:
                sub = _yaml_block(item, indent + 2, key)
                lines.append(f"{pad}- {sub[0].lstrip()}")
                lines += sub[1:]
        return lines
    return [pad + _yaml_scalar(value, key)]


def _comment_lines(text: str, width: int = 96) -> list[str]:
    out: list[str] = []
    text = "".join(ch if ch.isprintable() or ch == "\n" else "?" for ch in text)
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            if line and len(line) + 1 + len(word) > width - 2:
                out.append(f"# {line}")
                line = word
            else:
                line = f"{line} {word}" if line else word
        out.append(f"# {line}".rstrip())
    return out


def scenarios_to_yaml(scenarios: Sequence[Scenario | Mapping[str, object]]) -> str:
    """YAML text for a list of scenarios: addresses and register values as hex integers,
    each scenario's ``comment`` also written as ``#`` comment lines above it.

    >>> print(scenarios_to_yaml([{"name": "s", "comment": "one word", "el": 2,
    ...                           "sysregs": {"TCR_EL1": "0x5b5103510"},
    ...                           "memory": [{"pa": "0x40200000", "u64": "0x40201003"}],
    ...                           "ops": [{"op": "S1E1R", "va": "0x1000"}]}]))
    # s: one word
    - name: s
      comment: "one word"
      el: 2
      sysregs:
        TCR_EL1: 0x5b5103510
      memory:
        - {pa: 0x40200000, u64: 0x40201003}
      ops:
        - {op: S1E1R, va: 0x1000}
    <BLANKLINE>
    """
    lines: list[str] = []
    for n, sc in enumerate(scenarios):
        if not isinstance(sc, Scenario | Mapping):
            raise AtlabError(f"scenario {n}: a scenario or a mapping, not {clip(sc)}")
        d = sc.to_dict() if isinstance(sc, Scenario) else dict(sc)
        comment = str(d.get("comment") or "")
        if lines:
            lines.append("")
        lines += _comment_lines(f"{d.get('name', '')}: {comment}" if comment
                                else str(d.get("name", "")))
        block = _yaml_block(d, 2, "") or ["{}"]
        lines.append(f"- {block[0].lstrip()}")
        lines += block[1:]
    return "\n".join(lines) + "\n"


def save_scenarios(path: str | Path, scenarios: Sequence[Scenario | Mapping[str, object]]
                   ) -> None:
    """Write scenarios (objects or dicts) as a list, JSON for ``.json`` and YAML otherwise
    (``.yaml``/``.yml``); :func:`load_scenarios` reads them back exactly."""
    p = Path(path)
    dicts = [sc.to_dict() if isinstance(sc, Scenario) else dict(sc) for sc in scenarios]
    if p.suffix.lower() == ".json":
        text = json.dumps(dicts, indent=1) + "\n"
    elif p.suffix.lower() in (".yaml", ".yml"):
        text = scenarios_to_yaml(dicts)
    else:
        raise AtlabError(f"{path}: unknown scenario file type; use .json, .yaml or .yml")
    try:
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AtlabError(f"{path}: cannot write ({exc.strerror or exc})") from None
