"""Reading answers (commands/engagement/answers.py): pure, no store."""

from __future__ import annotations

from datetime import date

import pytest

from commands.engagement.answers import AnswerError, read_answer, within_one_edit
from commands.engagement.spec import Option, PollSpec, Question, SurveySpec

TODAY = date(2026, 3, 10)
OPTIONS = [Option(label={"en": "Good", "zh": "满意"}, keywords=["GOOD", "MY"]),
           Option(label={"en": "Average", "zh": "一般"}, keywords=["AVERAGE", "YB"]),
           Option(label={"en": "Bad", "zh": "不满意"}, keywords=["BAD", "BMY"])]
CHOICE = Question(id="q", type="choice", text="?", options=OPTIONS)


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 1), ("２", 2), (" 3. ", 3), ("good", 1), ("ＧＯＯＤ", 1), ("满意", 1), ("一般", 2),
    ("不满意", 3), ("my", 1), ("bmy", 3), ("AVERAGR", 2), ("GOOOD", 1), ("AVRAGE", 2),
])
def test_choice_by_number_word_alias_and_typo(text: str, expected: int) -> None:
    assert read_answer(CHOICE, text, today=TODAY) == expected


@pytest.mark.parametrize("text", ["0", "4", "BA", "GD", "满", "AVERAGEXX", "hello"])
def test_choice_refused(text: str) -> None:
    assert isinstance(read_answer(CHOICE, text, today=TODAY), AnswerError)


def test_typo_close_to_two_options_is_refused() -> None:
    q = Question(id="q", type="choice", text="?",
                 options=[Option(label="CASH"), Option(label="CASE")])
    assert read_answer(q, "CASX", today=TODAY) == AnswerError(
        "ans_choice", {"value": "CASX", "n": 2})


def test_free_text_poll_keeps_the_words() -> None:
    assert read_answer(CHOICE, "faster please", today=TODAY, free_text=True) == {
        "other": "faster please"}


def test_number_range_and_format() -> None:
    q = Question(id="n", type="number", text="?", min=0, max=500)
    assert read_answer(q, "１２", today=TODAY) == 12
    assert read_answer(q, "600", today=TODAY).key == "ans_range"  # type: ignore[union-attr]
    assert read_answer(q, "-1", today=TODAY).key == "ans_range"  # type: ignore[union-attr]
    assert read_answer(q, "lots", today=TODAY).key == "ans_number"  # type: ignore[union-attr]


def test_dates_and_yes_no() -> None:
    d = Question(id="d", type="date", text="?")
    assert read_answer(d, "20260401", today=TODAY) == "2026-04-01"
    assert read_answer(d, "2026-04-01", today=TODAY) == "2026-04-01"
    assert read_answer(d, "0401", today=TODAY) == "2026-04-01"
    assert read_answer(d, "0230", today=TODAY).key == "ans_date_invalid"  # type: ignore[union-attr]
    assert read_answer(d, "soon", today=TODAY).key == "ans_date"  # type: ignore[union-attr]
    yn = Question(id="y", type="yesno", text="?")
    assert [read_answer(yn, t, today=TODAY) for t in ("y", "YES", "是", "n", "否", "不")] == [
        True, True, True, False, False, False]
    assert isinstance(read_answer(yn, "maybe", today=TODAY), AnswerError)


def test_within_one_edit() -> None:
    assert within_one_edit("GOOD", "GOOD")
    assert within_one_edit("GOOD", "GOOOD")
    assert within_one_edit("GOOD", "GOD")
    assert within_one_edit("GOOD", "GOLD")
    assert not within_one_edit("GOOD", "GLAD")
    assert not within_one_edit("GOOD", "GOODIES")


def test_specs_refuse_bad_shapes() -> None:
    with pytest.raises(ValueError, match="at least 2 options"):
        Question(id="q", type="choice", text="?", options=[Option(label="x")])
    with pytest.raises(ValueError, match="min 5 is over max 1"):
        Question(id="q", type="number", text="?", min=5, max=1)
    with pytest.raises(ValueError, match="unique"):
        SurveySpec(questions=[Question(id="a", type="text", text="?")] * 2, final="ok")
    with pytest.raises(ValueError):
        PollSpec(question="?", options=OPTIONS[:1])
