"""The short fuzz run of issue 19 (the long one is ``make fuzz``, ``python -m tools.fuzz``).

Hypothesis drives the mutators of :mod:`tools.fuzz` (structural and byte-level changes to the
example files) through the four file commands, run in-process, and checks the invariant: exit
0, 1 only for ``--check``/``--wx`` findings, or 2 with exactly one line; no exception escapes;
stdout is UTF-8; each run within 10 s.  Parsers and library calls get hypothesis-built odd
values directly: they return or raise :class:`AtlabError`, nothing else.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlab import AtlabError
from atlab.nv.model import parse_nv_scenario
from atlab.pe import parse_tlb_program
from atlab.scenario import parse_scenario
from tools.fuzz import _ARGV0, _VARIANTS, KNOWN, SEEDS, fuzz_cli_once, lib_once, run_cli

CLI_EXAMPLES = 100
_FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
                 max_examples=CLI_EXAMPLES)


@pytest.fixture(scope="module")
def workdir() -> Any:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@pytest.mark.parametrize("command", list(SEEDS))
def test_seeds_run_clean(command: str) -> None:
    """The unmutated seeds pass with every variant (so a failure below is the mutation's)."""
    assert SEEDS[command], f"no seed files for {command}"
    for seed in SEEDS[command]:
        for extra in _VARIANTS[command]:
            o = run_cli([*_ARGV0[command], *extra, str(seed)])
            assert o.problem is None, o.describe()


@pytest.mark.parametrize("command", list(SEEDS))
@_FAST
@given(rng=st.randoms(use_true_random=False))
def test_cli_survives_mutated_files(command: str, rng: random.Random, workdir: Path) -> None:
    o, _data, _ext = fuzz_cli_once(command, rng, workdir, timeout=10)
    if o.problem in KNOWN:
        return  # fixed elsewhere (see tools.fuzz.KNOWN)
    assert o.problem is None, o.describe()


@settings(deadline=None, max_examples=200)
@given(rng=st.randoms(use_true_random=False))
def test_library_calls_raise_only_atlab_error(rng: random.Random) -> None:
    assert lib_once(rng) is None


# --- parsers over hypothesis-built documents ------------------------------------------------

_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(1 << 70), max_value=1 << 70)
            | st.floats(allow_nan=True) | st.text(max_size=12)
            | st.sampled_from(["0x1000", "0xZZ", "0x", "S1E1R", "TCR_EL1", "VAE1", "ISH",
                               "L2-EL1", "-0x10", "0b11", "1e3"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
_SC_KEYS = ["name", "el", "features", "sysregs", "memory", "ops", "tags", "comment", "program",
            "pes", "tlb", "context", "vsysregs", "l1_memory", "l0_stage2", "shadow_s2",
            "kvm_behaviour"]
_OP_KEYS = ["op", "va", "pan", "expected_par", "expected_exception", "at", "store", "msr",
            "tlbi", "dsb", "isb", "value", "asid", "ipa", "pe", "expected_pa", "expected_hit",
            "ipa", "u64", "pa", "l2_ipa"]
_ENTRY = st.dictionaries(st.sampled_from(_OP_KEYS), _VALUES, max_size=5)
_DOC = st.dictionaries(st.sampled_from(_SC_KEYS),
                       _VALUES | st.lists(_ENTRY, max_size=3)
                       | st.dictionaries(st.sampled_from(["HCR_EL2", "TCR_EL1", "TTBR0_EL1",
                                                          "FEAT_ATS1A", "PAMax", "pa_offset",
                                                          "holes", "capacity", "replacement"]),
                                         _VALUES, max_size=3),
                       max_size=8)


@settings(deadline=None, max_examples=300)
@given(doc=_DOC)
def test_parsers_raise_only_atlab_error(doc: dict[str, Any]) -> None:
    for parse in (parse_scenario, parse_tlb_program, parse_nv_scenario):
        try:
            parse(doc)
        except AtlabError as exc:
            assert "\n" not in str(exc) and len(str(exc)) <= 500


@settings(deadline=None, max_examples=300)
@given(text=st.text(max_size=40) | st.from_regex(r"[a-z0-9.\-]{0,12}:[0-9]{0,7}", fullmatch=True))
def test_snapshot_gdb_address_is_parsed_or_refused_in_one_line(text: str) -> None:
    """``atlab snapshot --gdb`` (issue 17): PORT or HOST:PORT, else one AtlabError line."""
    from atlab.cli import _gdb_address

    try:
        host, port = _gdb_address(text)
    except AtlabError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 200
        return
    assert 0 < port < 65536 and host and text.endswith(str(port))


_DECODE_VALUE = (st.integers(0, (1 << 64) - 1).map(hex)
                 | st.sampled_from(["", "0x", "-1", "0x1" + "0" * 16, "0b101", "12", "zz", "0x-3",
                                    "9" * 100, "\u00e9", "0x\u0663"]))
_DECODE_FLAG = st.sampled_from(["--pie", "--poe", "--aie", "--ds"]).map(lambda o: [o])
_DECODE_OPTION = _DECODE_FLAG | st.tuples(
    st.sampled_from(["--pir", "--pire0", "--por", "--por-el0", "--mair", "--mair2", "--level",
                     "--stage", "--granule", "--regime"]),
    _DECODE_VALUE | st.sampled_from(["-1", "0", "2", "4", "16K", "64K", "EL2", "EL20", "EL3"]),
).map(list)


@settings(deadline=None, max_examples=300)
@given(value=_DECODE_VALUE, options=st.lists(_DECODE_OPTION, max_size=6))
def test_decode_desc_options_decode_or_refuse_in_one_line(value: str,
                                                          options: list[list[str]]) -> None:
    """``atlab decode desc VALUE`` with the PIE/POE/AIE flags and register values in any
    combination: exit 0, or 2 with one line (the fuzzer's invariant, :func:`run_cli`)."""
    o = run_cli(["decode", "desc", value, *(a for opt in options for a in opt)])
    assert o.problem is None and o.rc in (0, 2), o.describe()
