"""The live form of a chapter quiz: radio buttons per question, feedback after each answer."""

from __future__ import annotations

import html

import ipywidgets as w

from atlab.quiz import HEADING, Quiz, QuizResult


class QuizWidget(w.VBox):  # type: ignore[misc]
    """One block per question (prompt, choices, feedback) and a score line.  :meth:`choose`
    answers a question as a click would; :attr:`feedback` holds each question's shown text."""

    def __init__(self, quiz: Quiz) -> None:
        self.quiz = quiz
        self.choices: list[w.RadioButtons] = []
        self.feedback_html: list[w.HTML] = []
        self.feedback: list[str] = ["" for _ in quiz.questions]
        blocks = []
        for n, q in enumerate(quiz.questions):
            radio = w.RadioButtons(options=[(c, i) for i, c in enumerate(q.choices)],
                                   value=None, layout=w.Layout(width="auto"))
            radio.add_class("atlab-quiz-choices")
            note = w.HTML("")
            note.add_class("atlab-quiz-feedback")
            radio.observe(lambda change, n=n: self._answered(n, change["new"]), names="value")
            self.choices.append(radio)
            self.feedback_html.append(note)
            blocks.append(w.VBox([w.HTML(f"<b>{n + 1}.</b> {html.escape(q.prompt)}"), radio,
                                  note]))
        self.score_html = w.HTML("")
        self.score_html.add_class("atlab-quiz-score")
        super().__init__([w.HTML(f"<b>{HEADING}</b>"), *blocks, self.score_html])
        self.add_class("atlab-quiz")
        self._update_score()

    def choose(self, question: int, choice: int) -> str:
        """Answer ``question`` with ``choice`` (0-based), as a click would; the feedback."""
        self.choices[question].value = choice
        return self.feedback[question]

    @property
    def result(self) -> QuizResult:
        return self.quiz.grade([radio.value for radio in self.choices])

    def _answered(self, n: int, choice: int | None) -> None:
        text = "" if choice is None else self.quiz.questions[n].feedback(choice)
        self.feedback[n] = text
        colour = "#009E73" if text.startswith("✓") else "#D55E00"
        self.feedback_html[n].value = (f'<span style="color:{colour}">{html.escape(text)}'
                                       "</span>" if text else "")
        self._update_score()

    def _update_score(self) -> None:
        answered = sum(radio.value is not None for radio in self.choices)
        self.score_html.value = (f"{self.result.score}/{len(self.quiz)} right "
                                 f"({answered} answered)")


__all__ = ["QuizWidget"]
