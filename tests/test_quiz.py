"""atlab.quiz (the "Check your understanding" machinery) and atlab.quizzes (the chapters'
quizzes): grading, the static text form, the live widget, and each chapter's copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlab import AtlabError
from atlab.quiz import HEADING, Question, Quiz
from atlab.quizzes import QUIZZES

ROOT = Path(__file__).resolve().parent.parent
Q = Quiz("demo", (
    Question("Which level runs the kernel?", ("EL0", "EL1", "EL2"), 1, "EL1 is the kernel's.",
             verify=lambda: True),
    Question("How many bits per 4KB level?", ("9", "12"), 0, "512 entries."),
))


def test_grade_and_feedback() -> None:
    assert Q.answers == (1, 0) and len(Q) == 2
    assert str(Q.grade([1, 0])) == "2/2 right"
    assert Q.grade([0, None]).correct == (False, False) and Q.grade([1, 1]).score == 1
    assert Q.questions[0].feedback(1).startswith("✓ Right. EL1 is the kernel's.")
    assert Q.questions[0].feedback(2) == ("✗ Not quite: the answer is (b) EL1. "
                                          "EL1 is the kernel's.")
    with pytest.raises(AtlabError):
        Q.grade([1])
    with pytest.raises(AtlabError):
        Q.questions[0].feedback(3)


@pytest.mark.parametrize(("choices", "answer"), [(("only",), 0), (("a", "b"), 2)],
                         ids=["one-choice", "answer-out-of-range"])
def test_bad_questions_are_refused(choices: tuple[str, ...], answer: int) -> None:
    with pytest.raises(AtlabError):
        Question("?", choices, answer, "")


def test_static_form_reads_without_a_kernel() -> None:
    text = Q.markdown()
    assert text.splitlines()[0] == f"## {HEADING}" == "## Check your understanding"
    assert "**1.** Which level runs the kernel?" in text and "- (b) EL1" in text
    # The answer and its explanation are there, folded.
    assert text.count("<details><summary>Answer</summary>") == 2
    assert "(b) EL1. EL1 is the kernel's." in text
    assert Q._repr_markdown_() == text


def test_widget_gives_feedback_after_each_answer_and_never_displays_itself() -> None:
    import ipywidgets as w

    widget = Q.widget()
    assert isinstance(widget, w.VBox) and widget.feedback == ["", ""]
    assert "0/2 right (0 answered)" in widget.score_html.value
    assert widget.choose(0, 2).startswith("✗ Not quite")
    assert "EL1 is the kernel&#x27;s." in widget.feedback_html[0].value  # escaped HTML
    assert widget.feedback[1] == "" and widget.result.score == 0
    assert widget.choose(0, 1).startswith("✓ Right")
    assert widget.choose(1, 0).startswith("✓ Right")
    assert widget.result.score == 2 and "2/2 right (2 answered)" in widget.score_html.value
    assert all(radio.value is not None for radio in widget.choices)


@pytest.mark.parametrize("name", list(QUIZZES))
def test_each_chapter_quiz_is_short_checked_and_in_its_notebook(name: str) -> None:
    quiz = QUIZZES[name]
    assert 3 <= len(quiz) <= 6 and quiz.chapter == name
    assert quiz.verify(), "a right answer disagrees with the library"
    assert all(q.explanation for q in quiz.questions)
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())
    sources = ["".join(c["source"]) for c in nb["cells"]]
    heads = [i for i, s in enumerate(sources) if s.startswith(f"## {HEADING}")]
    assert len(heads) == 1, "one quiz, headed exactly 'Check your understanding'"
    assert sources[heads[0]] == quiz.markdown(), "the static copy is stale"
    live = sources[heads[0] + 1]
    assert f'QUIZZES["{name}"]' in live and "widget()" in live
    assert "sanity-check" in nb["cells"][heads[0] + 2]["metadata"].get("tags", [])


def test_every_chapter_has_a_quiz() -> None:
    chapters = {p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
    assert chapters - set(QUIZZES) == {"00_start_here"}
