"""A fuzzer for atlab's input paths: the CLI's four file commands, snapshots and the library
calls.

Usage: ``python -m tools.fuzz [--runs N] [--jobs J] [--seed S] [--timeout T] [COMMAND ...]``
(COMMANDs: ``run``, ``ptdump``, ``nv``, ``tlb``, ``snapshot``, ``lib``; default: all).
``snapshot`` mutates a gzipped snapshot of a real system (its JSON or its gzip bytes) and
runs ``atlab run``/``atlab ptdump`` on it.  ``make fuzz`` runs
it with ``--runs 10000``.

Each CLI run takes a valid example file (``examples/*.yaml``, ``examples/*.json``,
``examples/tlb/*.yaml``), mutates it structurally (values replaced by odd ones, keys dropped,
added or moved, containers emptied, wrapped or duplicated, hex values bit-flipped) and/or at
the byte level (bit flips, inserted or deleted bytes and YAML/JSON tokens, splices,
truncation, other encodings, deep nesting, long numbers), or turns memory words into table
descriptors pointing at other tables (loops, shared tables), or shares one node many times
over (YAML anchors and aliases, "billion laughs"), writes it to a file and calls
:func:`atlab.cli.main` in-process with stdout and stderr captured.  The invariant (issue 19):

- exit status 0; 1 only for ``--check``/``--wx`` findings; or 2 with exactly one line on
  stderr (``atlab: error: ...``);
- no exception escapes ``main`` (no traceback), stdout is valid UTF-8;
- each run ends within ``--timeout`` seconds (SIGALRM) and the worker stays within its
  address-space limit (``RLIMIT_AS``; a ``MemoryError`` is a failure).

The library runs call :class:`~atlab.memory.PhysMem`, the builders and
:class:`~atlab.builder.TableAllocator` with odd arguments: each call returns or raises
:class:`~atlab.errors.AtlabError`, and a builder call that raises leaves the tables as they
were.

The report prints, per command, the runs, the failure classes found (exception type and
place, or the broken rule) with a saved example under ``artifacts/fuzz/``, and the figures:
runs per second, the slowest run and the largest resident set of a worker.  Exit status 1 when
a class was found.  The same mutators drive the hypothesis tests in ``tests/test_fuzz.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import io
import json
import os
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent

#: The seed files of each CLI command.
SEEDS: dict[str, list[Path]] = {
    "run": sorted(p for p in (ROOT / "examples").glob("*.yaml")),
    "ptdump": sorted(p for p in (ROOT / "examples").glob("*.yaml")),
    "nv": sorted((ROOT / "examples").glob("nv_*.json")),
    "tlb": sorted((ROOT / "examples" / "tlb").glob("*.yaml")),
    # gzipped snapshots of a real system (atlab.snapshot), read by run and ptdump
    "snapshot": [ROOT / "tests" / "data" / "realsys" / "fuzz-seed-snapshot.json.gz"],
}
COMMANDS = (*SEEDS, "lib")

#: Extra arguments tried with each command.
_VARIANTS: dict[str, list[list[str]]] = {
    "run": [[], ["--full"], ["--check"]],
    "ptdump": [[], ["--regime", "S2"], ["--regime", "EL20"], ["--ttbr", "1"], ["--wx"],
               ["--regime", "EL2"]],
    "nv": [[], ["--full"], ["--kvm"]],
    "tlb": [[], ["--json"], ["--check"]],
    "snapshot": [["run"], ["run", "--full"], ["ptdump", "--regime", "EL20", "--ttbr", "1"],
                 ["ptdump", "--regime", "EL20", "--wx"]],
}
_ARGV0 = {"run": ["run"], "ptdump": ["ptdump"], "nv": ["nv", "run"], "tlb": ["tlb", "run"],
          "snapshot": []}

#: Failure classes that are known and fixed elsewhere: reported, not counted as crashes.
#: Failure classes known and not counted (none: the NV "shadow stage 2 did not converge"
#: AssertionError is now a one-line AtlabError, tests/test_nv.py).
KNOWN: dict[str, str] = {}

_INTERESTING: list[Any] = [
    None, True, False, 0, 1, -1, 2, 3, 7, 255, 1 << 16, 1 << 40, (1 << 63), (1 << 64) - 1,
    1 << 64, (1 << 64) + 1, 1 << 100, -(1 << 64), 1.5, float("nan"), float("inf"), "", " ",
    "0x", "0xZZ", "0x" + "f" * 17, "0x" + "f" * 16, "-0x1000", "0b102", "1e3", "0o777", "1_0",
    "S1E1R", "S12E0W", "VAE1IS", "TCR_EL1", "HCR_EL2", "PSTATE_PAN", "L2-EL1", "ISH", "é",
    "\u2028", "\x00", "x" * 300, [], {}, [1, 2], {"a": 1}, [[[]]], {"op": "S1E1R", "va": 0},
]
_TOKENS = [b"&a ", b"*a", b"*b", b"[", b"]", b"{", b"}", b"!!binary ", b"!!set ", b"<<: ",
           b": ", b"- ", b"\t", b'"', b"'", b"\\", b"\n", b"\r\n", b"#", b"%YAML 1.1\n",
           b"---\n", b"...\n", b"? ", b"|", b">", b"!!python/object ", b"0x", b"\xef\xbb\xbf",
           b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\\ud800", b"NaN", b"1e999", b",", b"null"]


# --- structural mutation ---------------------------------------------------------------------

def _paths(doc: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*path, i))


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _keys(doc: Any) -> set[str]:
    out: set[str] = set()
    for p in _paths(doc):
        if p and isinstance(p[-1], str):
            out.add(p[-1])
    return out


def _odd_value(rng: random.Random, near: Any) -> Any:
    if isinstance(near, str) and re.fullmatch(r"0x[0-9a-fA-F]+", near) and rng.random() < 0.5:
        return hex(int(near, 16) ^ (1 << rng.randrange(64)))
    if isinstance(near, int) and not isinstance(near, bool) and rng.random() < 0.5:
        return near ^ (1 << rng.randrange(66))
    return copy.deepcopy(rng.choice(_INTERESTING))


def mutate_doc(doc: Any, rng: random.Random, keys: list[str]) -> Any:
    """1-4 structural mutations of a parsed document (a fresh copy is changed)."""
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 4)):
        paths = list(_paths(doc))
        path = rng.choice(paths)
        node = _get(doc, path)
        op = rng.randrange(10)
        if op <= 2:
            doc = _set(doc, path, _odd_value(rng, node))
        elif op == 3 and path:
            parent = _get(doc, path[:-1])
            del parent[path[-1]]
        elif op == 4 and isinstance(node, list) and node:
            node.insert(rng.randrange(len(node) + 1), copy.deepcopy(rng.choice(node)))
        elif op == 5 and isinstance(node, dict):
            node[rng.choice(keys)] = _odd_value(rng, None)
        elif op == 6:
            donor = copy.deepcopy(_get(doc, rng.choice(paths)))
            doc = _set(doc, path, donor)
        elif op == 7:
            doc = _set(doc, path, [node] if rng.random() < 0.5 else {rng.choice(keys): node})
        elif op == 8 and isinstance(node, list | dict):
            if isinstance(node, list):
                del node[rng.randrange(len(node) + 1):]
            else:
                node.clear()
        elif op == 9 and not path:
            doc = rng.choice([[doc], [], [doc, doc], doc])
    return doc


def flip_values(doc: Any, rng: random.Random) -> Any:
    """1-3 bit flips in the numbers and hex strings of a document: the shape stays valid, so
    the run reaches the walkers, the TLB model and the dumps with odd register and
    descriptor values."""
    doc = copy.deepcopy(doc)
    paths = [p for p in _paths(doc) if isinstance(_get(doc, p), int | str)
             and not isinstance(_get(doc, p), bool)
             and re.fullmatch(r"0x[0-9a-fA-F]+|\d+", str(_get(doc, p)))]
    for path in rng.sample(paths, min(len(paths), rng.randint(1, 3))):
        node = _get(doc, path)
        width = rng.choice((4, 12, 16, 48, 56, 64))
        if isinstance(node, str):
            value = int(node, 0) ^ (1 << rng.randrange(width))
            doc = _set(doc, path, hex(value) if node.startswith("0x") else str(value))
        else:
            doc = _set(doc, path, node ^ (1 << rng.randrange(width)))
    return doc


def point_tables(doc: Any, rng: random.Random) -> Any:
    """1-3 memory words turned into table descriptors pointing at the page of another word:
    loops (a table pointing back at itself or an ancestor) and tables shared by many entries."""
    doc = copy.deepcopy(doc)
    words = [p for p in _paths(doc) if isinstance(_get(doc, p), dict)
             and {"u64"} <= set(_get(doc, p)) and ({"pa", "ipa"} & set(_get(doc, p)))]
    if not words:
        return doc
    for _ in range(rng.randint(1, 3)):
        word = _get(doc, rng.choice(words))
        target = _get(doc, rng.choice(words))
        addr = target.get("pa", target.get("ipa"))
        try:
            page = int(str(addr), 0) & ~0xFFF
        except ValueError:
            continue
        word["u64"] = hex(page | 3)
    return doc


def alias_bomb(doc: Any, rng: random.Random) -> Any:
    """A node replaced by ``depth`` levels of lists that share one child ``fan`` times:
    safe_dump writes them as YAML anchors and aliases (a "billion laughs" when large)."""
    doc = copy.deepcopy(doc)
    paths = list(_paths(doc))
    node: Any = ["lol"]
    fan = rng.randint(2, 10)
    for _ in range(rng.randint(2, 9)):
        node = [node] * fan
    return _set(doc, rng.choice(paths), node)


def dump(doc: Any, ext: str) -> bytes:
    """The document as JSON or YAML bytes."""
    if ext == ".json":
        return json.dumps(doc).encode()
    try:
        return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")
    except (yaml.YAMLError, RecursionError, ValueError):
        return json.dumps(doc).encode()  # JSON is YAML


# --- byte-level mutation ---------------------------------------------------------------------

def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """1-3 byte-level mutations."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        n = len(buf)
        op = rng.randrange(9)
        at = rng.randrange(n + 1)
        if op == 0 and n:
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(n)
                buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[at:at] = rng.choice(_TOKENS) * rng.choice((1, 1, 2, 3))
        elif op == 2:
            buf[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:
            del buf[at:at + rng.randint(1, 64)]
        elif op == 4 and n:
            start = rng.randrange(n)
            piece = buf[start:start + rng.randint(1, 400)]
            buf[at:at] = piece * rng.choice((1, 2, 8))
        elif op == 5:
            del buf[at:]
        elif op == 6 and rng.random() < 0.3:
            try:
                text = bytes(buf).decode("utf-8")
                buf = bytearray(text.encode(rng.choice(["utf-16", "latin-1", "utf-32"]),
                                            "replace"))
            except UnicodeDecodeError:
                pass
        elif op == 7:
            depth = rng.choice((70, 500, 1100, 5000))
            opener, closer = rng.choice(((b"[", b"]"), (b"{a: ", b"}"), (b"- ", b"")))
            buf[at:at] = opener * depth + b"1" + closer * depth
        else:
            buf[at:at] = rng.choice((b"9" * 5000, b"0x" + b"f" * 200, b"1" + b"0" * 120,
                                     b"1:" * 300 + b"1", b"-" + b"9" * 4400))
    return bytes(buf)


# --- running one input -----------------------------------------------------------------------

class _Timeout(BaseException):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    """One run: its exit status, output, time, and the broken rule (``problem``) if any."""

    argv: tuple[str, ...]
    rc: int | None
    out: str
    err: str
    seconds: float
    problem: str | None = None  # a failure class, e.g. "IndexError at cli.py:123"

    def describe(self) -> str:
        return (f"{self.problem}: atlab {' '.join(self.argv)} -> rc={self.rc}; stderr: "
                f"{self.err[-2000:]!r}")


def _crash_class(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/atlab/" in f.filename]
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    msg = str(exc).splitlines()[0][:60] if str(exc) else ""
    name = f"{type(exc).__name__}: {msg}" if isinstance(exc, AssertionError) else \
        type(exc).__name__
    return f"{name}{where}"


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise _Timeout

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_cli(argv: list[str], *, timeout: float = 10.0) -> Outcome:
    """``atlab ARGV`` in-process, checked against the invariant."""
    from atlab.cli import main

    out, err = io.StringIO(), io.StringIO()
    rc: int | None = None
    problem = None
    t0 = time.perf_counter()
    try:
        with _alarm(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
    except _Timeout:
        problem = f"hang (over {timeout:g} s)"
    except RecursionError as exc:
        problem = _crash_class(exc)
    except Exception as exc:  # every escaping exception is a failure class
        problem = _crash_class(exc)
    seconds = time.perf_counter() - t0
    o, e = out.getvalue(), err.getvalue()
    if problem is None:
        problem = check_outcome(argv, rc, o, e)
    return Outcome(tuple(argv), rc, o, e, seconds, problem)


def check_outcome(argv: list[str], rc: int | None, out: str, err: str) -> str | None:
    """The rule an outcome breaks, or None."""
    if "Traceback" in err:
        return "traceback on stderr"
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        return "stdout is not UTF-8 (a lone surrogate)"
    if rc == 2:
        if err.count("\n") != 1 or not err.startswith("atlab: error: "):
            return "exit 2 without exactly one 'atlab: error:' line"
        if "out of memory" in err:
            return "MemoryError"
        return None
    lines = err.splitlines()
    if rc == 1:
        if "--check" not in argv and "--wx" not in argv:
            return "exit 1 without --check or --wx"
        if "--check" in argv and not (lines and lines[-1].startswith("checked")):
            return "exit 1 without the 'checked ...' summary"
        return None
    if rc == 0:
        bad = [ln for ln in lines if not ln.startswith("checked")]
        if bad or ("--check" not in argv and lines):
            return "exit 0 with text on stderr"
        return None
    return f"exit status {rc}"


def cli_input(command: str, rng: random.Random) -> tuple[bytes, str, list[str]]:
    """A mutated input for ``command``: (file bytes, extension, extra arguments)."""
    seed = rng.choice(SEEDS[command])
    if command == "snapshot":
        return snapshot_input(seed.read_bytes(), rng), ".gz", rng.choice(_VARIANTS[command])
    text = seed.read_text(encoding="utf-8")
    ext = seed.suffix
    how = rng.random()
    if how < 0.75:  # structural: bit flips in values (45 %) or any change (30 %)
        doc = yaml.safe_load(text) if ext != ".json" else json.loads(text)
        if how < 0.35:
            doc = flip_values(doc, rng)
        elif how < 0.45:
            doc = point_tables(doc, rng)
        else:
            doc = mutate_doc(doc, rng, sorted(_keys(doc)))
        ext = rng.choice([ext, ext, ".json" if ext != ".json" else ".yaml"])
        if ext != ".json" and rng.random() < 0.03:
            doc = alias_bomb(doc, rng)  # YAML only: JSON would write it out in full
        data = dump(doc, ext)
        if how > 0.7:
            data = mutate_bytes(data, rng)
    else:  # byte level
        data = mutate_bytes(text.encode(), rng)
    return data, ext, rng.choice(_VARIANTS[command])


def snapshot_input(raw: bytes, rng: random.Random) -> bytes:
    """A mutated snapshot: its JSON changed structurally or byte by byte and gzipped again, or
    the gzip bytes themselves mutated (bad CRC, cut short, not gzip at all)."""
    how = rng.random()
    if how < 0.6:
        doc = json.loads(gzip.decompress(raw))
        doc = flip_values(doc, rng) if how < 0.3 else mutate_doc(doc, rng, sorted(_keys(doc)))
        return gzip.compress(json.dumps(doc).encode(), 1)
    if how < 0.85:
        return gzip.compress(mutate_bytes(gzip.decompress(raw), rng), 1)
    return mutate_bytes(raw, rng)


def fuzz_cli_once(command: str, rng: random.Random, workdir: Path, *,
                  timeout: float = 10.0) -> tuple[Outcome, bytes, str]:
    data, ext, extra = cli_input(command, rng)
    path = workdir / f"input{ext}"
    path.write_bytes(data)
    return run_cli([*_ARGV0[command], *extra, str(path)], timeout=timeout), data, ext


# --- library calls ---------------------------------------------------------------------------

_ODD_ARGS: list[Any] = [0, 8, 0x1000, 0x40000000, 0x200000, -1, -0x1000, 1 << 56, 1 << 64,
                        (1 << 48) - 0x1000, 3, 0x1001, "0x1000", 1.5, None, True, (), 2, 5]


def lib_once(rng: random.Random) -> str | None:
    """One odd library call; the rule it breaks, or None."""
    from atlab.builder import S1Builder, S2Builder, TableAllocator
    from atlab.errors import AtlabError
    from atlab.memory import PhysMem
    from atlab.scenario import scenarios_to_yaml

    def arg() -> Any:
        return rng.choice(_ODD_ARGS) if rng.random() < 0.6 else rng.randrange(0, 1 << 49, 0x1000)

    kw_pool = {"af": [True, False, 5, 0, "yes"], "dbm": [True, 2, None], "xn": [True, 3, 4, -1],
               "uxn": [1, 2], "ng": [True, 7], "ap": ["EL1 RW", "EL0 RW", 3, ""],
               "mem": ["normal-wb", "device", 0x44, 300, -1, 16, True],
               "sh": ["ISH", 1, "bogus", 3], "s2ap": ["RO", "bogus", 3], "bogus": [1]}

    def kws(names: list[str]) -> dict[str, Any]:
        return {k: rng.choice(kw_pool[k]) for k in rng.sample(names, rng.randint(0, 2))}

    b1: Any = None
    b2: Any = None
    calls: list[Callable[[], object]] = [
        lambda: PhysMem({arg(): arg()}),
        lambda: PhysMem().write64(arg(), arg(), big_endian=rng.random() < 0.5),
        lambda: PhysMem().read64(arg()),
        lambda: PhysMem().poke(arg(), arg()),
        lambda: TableAllocator(arg(), arg()).alloc(arg()),
        lambda: TableAllocator(0x1000, 0x100000).alloc(rng.choice([0, -4096, 3, 24, 0x1000])),
        lambda: S1Builder(tables=(0x40000000, 0x40100000), asid=arg()),
        lambda: S1Builder(tables=(0x40000000, 0x40100000), mair=rng.choice([1 << 64, -1, 0xff])),
        lambda: S2Builder(tables=(0x40000000, 0x40100000), vmid=arg()),
        lambda: scenarios_to_yaml(rng.choice([[{}], [], [{"name": None}], [1], [{"ops": [{}]}]])),
    ]
    try:
        rng.choice(calls)()
    except AtlabError:
        pass
    except Exception as exc:
        return _crash_class(exc)
    # a builder call that raises changes nothing
    b1 = S1Builder(tables=(0x40000000, 0x40100000))
    b1.map(0x400000, 0x80000000, 0x200000)
    b2 = S2Builder(ipa_bits=40, tables=(0x40200000, 0x40300000))
    b2.map(0x80000000, 0x40000000, 0x200000)
    for b, names in ((b1, ["af", "dbm", "xn", "uxn", "ng", "ap", "mem", "sh", "bogus"]),
                     (b2, ["af", "dbm", "xn", "mem", "sh", "s2ap", "bogus"])):
        before = b.memory().words()
        method = rng.choice(["map", "unmap", "protect"])
        args = [arg(), arg()] if method == "map" else [arg()]
        try:
            getattr(b, method)(arg(), *args, **(kws(names) if method != "unmap" else {}))
        except AtlabError:
            if b.memory().words() != before:
                return f"{type(b).__name__}.{method} raised and half-applied"
        except Exception as exc:
            return _crash_class(exc)
    return None


# --- the long run ----------------------------------------------------------------------------

@dataclass(slots=True)
class Stats:
    runs: int = 0
    seconds: float = 0.0
    max_run: float = 0.0
    max_rss_mb: float = 0.0
    classes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # class -> saved input


def _limit_memory(limit_mb: int) -> None:
    lim = limit_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def _chunk(command: str, seed: int, runs: int, timeout: float, mem_mb: int) -> Stats:
    _limit_memory(mem_mb)
    rng = random.Random(seed)
    st = Stats()
    save = ROOT / "artifacts" / "fuzz"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        for _ in range(runs):
            if command == "lib":
                t1 = time.perf_counter()
                problem = lib_once(rng)
                took, data, ext = time.perf_counter() - t1, b"", ".txt"
            else:
                o, data, ext = fuzz_cli_once(command, rng, Path(d), timeout=timeout)
                problem, took = o.problem, o.seconds
                if problem is not None:
                    data = data + b"\n# " + o.describe().encode("utf-8", "replace")
            st.runs += 1
            st.max_run = max(st.max_run, took)
            if problem is not None:
                st.classes[problem] = st.classes.get(problem, 0) + 1
                if problem not in st.examples:
                    save.mkdir(parents=True, exist_ok=True)
                    name = f"{command}-{seed}-{len(st.examples)}{ext}"
                    (save / name).write_bytes(data)
                    st.examples[problem] = str(save / name)
    st.seconds = time.perf_counter() - t0
    st.max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return st


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("commands", nargs="*", metavar="COMMAND",
                   help=f"any of {', '.join(COMMANDS)} (default: all)")
    p.add_argument("--runs", type=int, default=1000, help="inputs per command")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=19)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per run")
    p.add_argument("--memory", type=int, default=2048, help="MB of address space per worker")
    args = p.parse_args(argv)
    commands = args.commands or list(COMMANDS)
    unknown = sorted(set(commands) - set(COMMANDS))
    if unknown:
        p.error(f"unknown command(s) {', '.join(unknown)}; use {', '.join(COMMANDS)}")
    chunks = max(1, args.jobs) * 4
    per = [args.runs // chunks + (i < args.runs % chunks) for i in range(chunks)]
    failed = 0
    print(f"fuzz: {args.runs} inputs per command, {args.jobs} workers, seed {args.seed}, "
          f"{args.timeout:g} s per run, {args.memory} MB per worker")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for command in commands:
            t0 = time.perf_counter()
            futs = [pool.submit(_chunk, command, args.seed * 1000 + i, n, args.timeout,
                                args.memory) for i, n in enumerate(per) if n]
            total = Stats()
            for f in futs:
                st = f.result()
                total.runs += st.runs
                total.max_run = max(total.max_run, st.max_run)
                total.max_rss_mb = max(total.max_rss_mb, st.max_rss_mb)
                for k, v in st.classes.items():
                    total.classes[k] = total.classes.get(k, 0) + v
                    total.examples.setdefault(k, st.examples[k])
            wall = time.perf_counter() - t0
            new = {k: v for k, v in total.classes.items() if k not in KNOWN}
            failed += bool(new)
            print(f"{command:>7}: {total.runs} runs in {wall:.1f} s ({total.runs / wall:.0f} "
                  f"runs/s), slowest run {total.max_run * 1000:.0f} ms, max RSS "
                  f"{total.max_rss_mb:.0f} MB, {sum(new.values())} failures in {len(new)} "
                  "classes")
            for k, v in sorted(total.classes.items(), key=lambda kv: -kv[1]):
                tag = f" [known: {KNOWN[k]}]" if k in KNOWN else ""
                print(f"         {v:6d} x {k}{tag}\n                  e.g. {total.examples[k]}")
    print("fuzz: " + ("FAILED: new failure classes (see above)" if failed else
                      "no new failure classes"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
