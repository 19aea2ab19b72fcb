"""atlab.practice: seeded problems whose stated answer is atlab's walker run on the problem
*as its text states it* (registers, memory, ATs parsed back from the text)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlab import AtlabError, AtOp, PhysMem, SysRegs, run_at
from atlab.practice import GENERATORS, Problem, permission_problem, stage2_problem, walk_problem

GENS = list(GENERATORS.values())


def _from_text(text: str) -> tuple[SysRegs, PhysMem, list[tuple[AtOp, int]], int, int]:
    """Everything a learner has: what the printed problem says, nothing else."""
    regs = {m[1]: int(m[2], 16) for m in re.finditer(r"^  (\w+_EL\d) = (0x[0-9a-f]+)$", text,
                                                     re.M)}
    words = {int(m[1], 16): int(m[2], 16)
             for m in re.finditer(r"^  (0x[0-9a-f]+): (0x[0-9a-f]+)$", text, re.M)}
    ops = [(AtOp[m[1]], int(m[2], 16))
           for m in re.finditer(r"^  AT (\w+), VA (0x[0-9a-f]+)$", text, re.M)]
    el, pan = re.search(r"^Execute at EL(\d), PSTATE.PAN=(\d):$", text, re.M).groups()  # type: ignore[union-attr]
    return SysRegs(regs), PhysMem(words), ops, int(el), int(pan)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**64), gen=st.sampled_from(GENS))
def test_the_answer_is_run_at_on_the_problem_as_stated(seed: int,
                                                       gen: Callable[[int], Problem]) -> None:
    problem = gen(seed)
    regs, mem, ops, el, pan = _from_text(problem.text())
    assert ops == list(problem.ops) and ops
    answer = problem.answer()
    for (op, va), res in zip(ops, answer.results, strict=True):
        mine = run_at(op, va, regs=regs, mem=mem.copy(), cur_el=el, pan=pan)
        assert mine.par == res.par and mine.exception == res.exception
        assert str(res.par) in answer.text()


@pytest.mark.parametrize("gen", GENS, ids=lambda g: g.__name__)
def test_deterministic_per_seed_and_different_across_seeds(gen: Callable[[int], Problem]) -> None:
    assert gen(12345) == gen(12345) and gen(12345).text() == gen(12345).text()
    assert len({gen(s).text() for s in range(20)}) == 20


@pytest.mark.parametrize("seed", ["3", 2.0, -1, True, None], ids=repr)
def test_a_bad_seed_is_one_line(seed: object) -> None:
    for gen in GENS:
        with pytest.raises(AtlabError, match="seed must be a non-negative int") as info:
            gen(seed)  # type: ignore[arg-type]
        assert "\n" not in str(info.value)


def test_the_problems_cover_the_outcomes_the_chapters_teach() -> None:
    """Across seeds: walks that succeed and that end in Translation, Access flag and Address
    size faults; permissions that pass and fault; two-stage walks that succeed and fault at
    stage 2 on a stage 1 table (PTW=1) and on the final IPA (PTW=0)."""
    kinds = {0: "address size", 1: "translation", 2: "access flag", 3: "permission"}
    walks = Counter(kinds[r.par.fault_status >> 2] if r.par.f else "ok"  # type: ignore[union-attr]
                    for s in range(120) for r in walk_problem(s).answer().results)
    assert {"ok", "translation", "access flag", "address size"} <= set(walks)
    perms = Counter(r.par.f for s in range(40)  # type: ignore[union-attr]
                    for r in permission_problem(s).answer().results)
    assert perms[0] and perms[1]
    s2 = Counter((r.par.s, r.par.ptw) if r.par.f else "ok"  # type: ignore[union-attr]
                 for s in range(80) for r in stage2_problem(s).answer().results)
    assert {"ok", (1, 1), (1, 0)} <= set(s2)


def test_the_answer_is_hidden_until_asked() -> None:
    problem = walk_problem(3)
    par = str(problem.answer().results[0].par)
    assert par not in problem.text() and par not in problem._repr_markdown_()
    box = problem.widget()
    assert box.answer_html.value == "" and "atlab-practice" in box._dom_classes
    button = box.children[1]
    assert button.description == "show answer" and not button.disabled
    button.click()  # as the browser's click would
    assert par in box.answer_html.value and button.disabled
    assert problem.widget().answer_html.value == ""  # a fresh widget hides it again


_ODD = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.text(max_size=20),
                 st.integers(min_value=-(2**70), max_value=2**70), st.binary(max_size=8),
                 st.lists(st.integers(), max_size=3), st.complex_numbers())


@settings(max_examples=150, deadline=None)
@given(seed=_ODD, gen=st.sampled_from(GENS))
def test_fuzz_seeds_give_a_problem_or_one_line(seed: object,
                                               gen: Callable[[int], Problem]) -> None:
    """Any value as a seed: a problem (non-negative ints) or one AtlabError line."""
    try:
        problem = gen(seed)  # type: ignore[arg-type]
    except AtlabError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 200
        assert not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0)
        return
    assert isinstance(seed, int) and seed >= 0 and problem.ops
