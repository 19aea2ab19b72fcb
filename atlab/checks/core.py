"""The checkers' shared machinery: cases, groups, hints and the report."""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO


class _Todo:
    """The sentinel an unfinished exercise function may return instead of raising."""

    def __repr__(self) -> str:
        return "TODO"


#: Return this from an exercise function to mark it unfinished ("not attempted").
TODO: Any = _Todo()


# --- results ---------------------------------------------------------------------------------


class Status(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


@dataclass(frozen=True, slots=True)
class Failure:
    """A failing case: its input, what atlab expects, what the function gave, the hint, and
    the group of cases it stands for (the first failing case of that group)."""

    case: str
    expected: str
    got: str
    hint: str
    group: str = ""
    diagnosed: bool = False  # the answer matched a catalogued typical mistake


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a checker found: the status, how many cases passed and failed, and one failure
    per failing group of cases, most instructive first."""

    exercise: str
    status: Status
    passed: int = 0
    failed: int = 0
    failures: tuple[Failure, ...] = ()

    @property
    def first_failure(self) -> Failure | None:
        """The most instructive failure (the first reported), or None."""
        return self.failures[0] if self.failures else None

    @property
    def total(self) -> int:
        return self.passed + self.failed

    @property
    def ok(self) -> bool:
        return self.status is Status.PASSED

    def __str__(self) -> str:
        if self.status is Status.NOT_ATTEMPTED:
            return f"{self.exercise}: not attempted"
        return f"{self.exercise}: {self.status.value} ({self.passed}/{self.total} cases)"


# --- exercises as data -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One input: ``make()`` builds the arguments (fresh objects for each call)."""

    label: str
    group: str
    make: Callable[[], tuple[Any, ...]]
    hint: str = ""


def _case(label: str, group: str, *args: Any, hint: str = "") -> Case:
    return Case(label, group, lambda: args, hint)


@dataclass(frozen=True, slots=True)
class Mistake:
    """A typical wrong answer, as a function with the exercise's signature, and its hint."""

    name: str
    fn: Callable[..., Any]
    hint: str


def _identity(args: tuple[Any, ...], got: Any) -> Any:
    return got


@dataclass(frozen=True, slots=True)
class Exercise:
    """One exercise: the learner's function name, the cases, the reference answer (from the
    library), how to read the learner's answer, and the typical mistakes."""

    name: str
    title: str
    cases: Callable[[], list[Case]]
    reference: Callable[..., Any]  # the expected answer, comparable form
    show: Callable[[Any], str] = repr
    interpret: Callable[[tuple[Any, ...], Any], Any] = _identity  # learner's answer, same form
    mistakes: tuple[Mistake, ...] = ()
    hint: str = ""
    solution: Callable[..., Any] | None = None  # a function with the learner's signature
    #: Groups whose failure teaches most, in order; they are reported first (others follow in
    #: case order).
    group_order: tuple[str, ...] = ()


def _describe(value: Any, show: Callable[[Any], str]) -> str:
    try:
        return show(value)
    except Exception:  # the learner's value may be anything
        return repr(value)


def _run(ex: Exercise, fn: Callable[..., Any], case: Case) -> tuple[bool, Any, Any, str]:
    """(ok, expected, got, error text); raises NotImplementedError through."""
    expected = ex.reference(*case.make())
    args = case.make()
    raw = fn(*args)
    if raw is TODO:
        raise NotImplementedError
    try:
        got = ex.interpret(args, raw)
    except Exception as exc:
        return False, expected, raw, f"{type(exc).__name__}: {exc}"
    return got == expected, expected, got, ""


def _mistake_hint(ex: Exercise, case: Case, got: Any) -> str:
    for m in ex.mistakes:
        try:
            args = case.make()
            wrong = ex.interpret(args, m.fn(*args))
        except Exception:
            continue
        if wrong == got:
            return m.hint
    return ""


def _order(ex: Exercise, failures: list[Failure]) -> tuple[Failure, ...]:
    """Most instructive first: the groups ``ex.group_order`` names, in that order, then a
    failure that matches a catalogued typical mistake before one without, then case order."""
    rank = {group: index for index, group in enumerate(ex.group_order)}
    keyed = sorted(enumerate(failures), key=lambda item: (
        rank.get(item[1].group, len(rank)), not item[1].diagnosed, item[0]))
    return tuple(failure for _, failure in keyed)


def check(ex: Exercise, fn: Callable[..., Any], *, quiet: bool = False,
          file: TextIO | None = None) -> CheckResult:
    """Run ``fn`` on every case of ``ex``; print ✓/✗ per group, then one failing case per
    failing group (most instructive first), each with its hint."""
    out = file if file is not None else sys.stdout

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out)

    cases = ex.cases()
    groups: dict[str, list[int]] = {}
    firsts: dict[str, Failure] = {}  # the first failing case of each group
    passed = failed = 0
    for index, case in enumerate(cases):
        tally = groups.setdefault(case.group, [0, 0])
        try:
            ok, expected, got, error = _run(ex, fn, case)
        except NotImplementedError:
            if index == 0:
                say(f"○ {ex.name}: not attempted (the stub is untouched). "
                    "Write the function body, then run this cell again.")
                return CheckResult(ex.name, Status.NOT_ATTEMPTED)
            ok, expected, got, error = (False, ex.reference(*case.make()), None,
                                        "NotImplementedError (this case is not handled yet)")
        except Exception as exc:  # the learner's code may raise anything
            ok, expected, got = False, ex.reference(*case.make()), None
            error = f"{type(exc).__name__}: {exc}"
        tally[0 if ok else 1] += 1
        if ok:
            passed += 1
            continue
        failed += 1
        if case.group not in firsts:
            hint = "" if error else _mistake_hint(ex, case, got)
            if error and got is None:
                got_text = f"raised {error}"
            elif error:
                got_text = f"{_describe(got, repr)} ({error})"
            else:
                got_text = _describe(got, ex.show)
            firsts[case.group] = Failure(case.label, _describe(expected, ex.show), got_text,
                                         hint or case.hint or ex.hint, case.group, bool(hint))
    failures = _order(ex, list(firsts.values()))
    say(f"Checking {ex.name} against atlab ({len(cases)} cases)")
    for group, (good, bad) in groups.items():
        mark = "✓" if not bad else "✗"
        say(f"{mark} {group}: {good}/{good + bad}")
    hinted: dict[str, int] = {}  # hint -> the failing case that printed it
    for number, failure in enumerate(failures, 1):
        if failure.hint in hinted:  # the same hint again: one line, nothing hidden
            say(f"✗ failing case {number}/{len(failures)} ({failure.group}): {failure.case}: "
                f"expected {failure.expected}, got {failure.got} "
                f"(the hint of failing case {hinted[failure.hint]})")
            continue
        hinted[failure.hint] = number
        say(f"✗ failing case {number}/{len(failures)} ({failure.group}): {failure.case}")
        say(f"    expected: {failure.expected}")
        say(f"    got:      {failure.got}")
        say(f"    hint: {failure.hint}")
    status = Status.PASSED if failed == 0 else Status.FAILED
    verdict = "all cases pass" if failed == 0 else f"{passed}/{passed + failed} cases pass"
    say(f"{'✓' if failed == 0 else '✗'} {ex.name}: {verdict}")
    return CheckResult(ex.name, status, passed, failed, failures)
