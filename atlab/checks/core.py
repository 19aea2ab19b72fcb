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
    """The first failing case: its input, what atlab expects, what the function gave."""

    case: str
    expected: str
    got: str
    hint: str


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What a checker found: the status and how many cases passed and failed."""

    exercise: str
    status: Status
    passed: int = 0
    failed: int = 0
    first_failure: Failure | None = None

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


def check(ex: Exercise, fn: Callable[..., Any], *, quiet: bool = False,
          file: TextIO | None = None) -> CheckResult:
    """Run ``fn`` on every case of ``ex``; print ✓/✗ per group and the first failure."""
    out = file if file is not None else sys.stdout

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out)

    cases = ex.cases()
    groups: dict[str, list[int]] = {}
    first: Failure | None = None
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
        if first is None:
            hint = "" if error else _mistake_hint(ex, case, got)
            if error and got is None:
                got_text = f"raised {error}"
            elif error:
                got_text = f"{_describe(got, repr)} ({error})"
            else:
                got_text = _describe(got, ex.show)
            first = Failure(case.label, _describe(expected, ex.show), got_text,
                            hint or case.hint or ex.hint)
    say(f"Checking {ex.name} against atlab ({len(cases)} cases)")
    for group, (good, bad) in groups.items():
        mark = "✓" if not bad else "✗"
        say(f"{mark} {group}: {good}/{good + bad}")
    if first is not None:
        say(f"✗ first failing case: {first.case}")
        say(f"    expected: {first.expected}")
        say(f"    got:      {first.got}")
        say(f"    hint: {first.hint}")
    status = Status.PASSED if failed == 0 else Status.FAILED
    verdict = "all cases pass" if failed == 0 else f"{passed}/{passed + failed} cases pass"
    say(f"{'✓' if failed == 0 else '✗'} {ex.name}: {verdict}")
    return CheckResult(ex.name, status, passed, failed, first)
