"""Short conceptual quizzes ("Check your understanding") at the end of the chapters.

A :class:`Quiz` is data: questions with a few choices, the right one, and the explanation the
learner sees after answering.  It has two faces:

- a static text form, :meth:`Quiz.markdown` (also the notebook's ``_repr_markdown_``): the
  questions with their choices, each answer and explanation folded in a ``<details>`` block,
  so the page reads without a kernel;
- a live form, :meth:`Quiz.widget`: one set of radio buttons per question; choosing an answer
  shows ✓ or ✗ and the explanation (:class:`atlab.widgets.quiz.QuizWidget`).  Nothing here
  calls ``display()``: a notebook shows the widget by making it the value of a cell.

A question may carry ``verify``: a function that checks the right answer *with the library*
(e.g. that the 4KB granule resolves 9 bits per level), so a quiz cannot teach something the
model contradicts.  :meth:`Quiz.verify` runs them all; the notebooks assert it.

>>> q = Quiz("demo", (Question("2 + 2?", ("3", "4"), 1, "Count them.",
...                            verify=lambda: 2 + 2 == 4),))
>>> q.grade([1]).score, q.grade([0]).correct, q.verify()
(1, (False,), True)
>>> print(q.markdown().splitlines()[0])
## Check your understanding
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atlab.errors import AtlabError

if TYPE_CHECKING:
    from atlab.widgets.quiz import QuizWidget

#: The heading every chapter's quiz carries.
HEADING = "Check your understanding"
_LETTERS = "abcdefgh"


@dataclass(frozen=True, slots=True)
class Question:
    """One multiple-choice question: ``answer`` is the index of the right choice."""

    prompt: str
    choices: tuple[str, ...]
    answer: int
    explanation: str
    verify: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if not 2 <= len(self.choices) <= len(_LETTERS):
            raise AtlabError(f"a question needs 2..{len(_LETTERS)} choices: {self.prompt!r}")
        if not 0 <= self.answer < len(self.choices):
            raise AtlabError(f"answer {self.answer} is not a choice of {self.prompt!r}")

    def feedback(self, choice: int) -> str:
        """What the learner reads after choosing ``choice``: the verdict and the explanation."""
        if not 0 <= choice < len(self.choices):
            raise AtlabError(f"choice {choice} is not one of 0..{len(self.choices) - 1}")
        right = f"({_LETTERS[self.answer]}) {self.choices[self.answer]}"
        verdict = "✓ Right." if choice == self.answer else f"✗ Not quite: the answer is {right}."
        return f"{verdict} {self.explanation}"


@dataclass(frozen=True, slots=True)
class QuizResult:
    """The grade of a set of answers (None: not answered)."""

    correct: tuple[bool, ...]

    @property
    def score(self) -> int:
        return sum(self.correct)

    @property
    def total(self) -> int:
        return len(self.correct)

    def __str__(self) -> str:
        return f"{self.score}/{self.total} right"


@dataclass(frozen=True, slots=True)
class Quiz:
    """A chapter's quiz: ``chapter`` names it (e.g. ``"02_stage1_walk"``)."""

    chapter: str
    questions: tuple[Question, ...]

    def __post_init__(self) -> None:
        if not self.questions:
            raise AtlabError(f"quiz {self.chapter!r} has no questions")

    def __len__(self) -> int:
        return len(self.questions)

    @property
    def answers(self) -> tuple[int, ...]:
        """The right choice of each question."""
        return tuple(q.answer for q in self.questions)

    def grade(self, answers: Sequence[int | None]) -> QuizResult:
        """Grade one answer per question (None counts as wrong)."""
        if len(answers) != len(self.questions):
            raise AtlabError(f"{len(answers)} answers for {len(self.questions)} questions")
        return QuizResult(tuple(a == q.answer for a, q in zip(answers, self.questions,
                                                                strict=True)))

    def verify(self) -> bool:
        """Every question's ``verify`` (the right answer checked with the library) holds."""
        return all(q.verify() for q in self.questions if q.verify is not None)

    def markdown(self) -> str:
        """The static form: questions and choices, each answer folded in ``<details>``."""
        out = [f"## {HEADING}", "",
               "Answer each question, then open its answer (or use the live quiz below)."]
        for n, q in enumerate(self.questions, 1):
            out += ["", f"**{n}.** {q.prompt}", ""]
            out += [f"- ({_LETTERS[i]}) {choice}" for i, choice in enumerate(q.choices)]
            out += ["", "<details><summary>Answer</summary>", "",
                    f"({_LETTERS[q.answer]}) {q.choices[q.answer]}. {q.explanation}", "",
                    "</details>"]
        return "\n".join(out)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return f"{HEADING}: {len(self.questions)} questions ({self.chapter})"

    def widget(self) -> QuizWidget:
        """The live quiz (needs ipywidgets)."""
        from atlab.widgets.quiz import QuizWidget

        return QuizWidget(self)


__all__ = ["HEADING", "Question", "Quiz", "QuizResult"]
