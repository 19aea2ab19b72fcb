"""group_order (issue 16): a learner with mistakes in two groups of cases gets two reports,
the more instructive group first, whatever order the cases run in."""

from __future__ import annotations

from typing import Any

import pytest

from atlab.checks import EXERCISES, Exercise, Status, check

MULTI = {name: ex for name, ex in EXERCISES.items()
         if len({c.group for c in ex.cases()}) > 1}


def _two_mistakes(ex: Exercise, wrong: set[str]) -> Any:
    """The solution, except on the cases of the groups in ``wrong``: there it answers with
    a value no checker accepts. ``check`` calls the learner once per case, in case order, so
    the n-th call is the n-th case."""
    groups = [case.group for case in ex.cases()]
    calls = iter(groups)
    assert ex.solution is not None

    def learner(*args: Any) -> Any:
        if next(calls) in wrong:
            return "a wrong answer"
        return ex.solution(*args)  # type: ignore[misc]

    return learner


def test_every_exercise_with_groups_orders_them() -> None:
    assert set(MULTI) == set(EXERCISES) - {"08_s1e1r_in_el20"}
    for name, ex in MULTI.items():
        groups = {c.group for c in ex.cases()}
        assert len(ex.group_order) >= 2, name
        assert set(ex.group_order) <= groups and len(set(ex.group_order)) == len(ex.group_order)


@pytest.mark.parametrize("name", list(MULTI))
def test_two_mistakes_give_two_reports_most_instructive_first(name: str) -> None:
    ex = MULTI[name]
    case_order = list(dict.fromkeys(c.group for c in ex.cases()))
    first = ex.group_order[0]
    # The other mistaken group: a later one in group_order that runs *before* ``first`` when
    # there is one (so the order cannot come from the cases), else the next in group_order.
    earlier = [g for g in ex.group_order[1:] if case_order.index(g) < case_order.index(first)]
    second = earlier[0] if earlier else ex.group_order[1]
    result = check(ex, _two_mistakes(ex, {first, second}), quiet=True)
    assert result.status is Status.FAILED
    assert [f.group for f in result.failures] == [first, second]
    assert all(f.hint for f in result.failures)
    n_wrong = sum(c.group in (first, second) for c in ex.cases())
    assert result.failed == n_wrong and result.passed == len(ex.cases()) - n_wrong


@pytest.mark.parametrize("name", list(MULTI))
def test_the_solution_still_passes(name: str) -> None:
    ex = MULTI[name]
    assert check(ex, ex.solution, quiet=True).ok  # type: ignore[arg-type]
