"""Reading one answer: pure, text in, a value or an `AnswerError` out (no store).

Typo tolerance (a decision, not a guess): a Latin word of 4 letters or more matches an option
keyword one edit away (Levenshtein distance 1: `GOOOD`, `GOD` is too short), and only when
exactly one option is that close. Chinese words and short codes must match exactly: one
character off is another word there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from commands.engagement.spec import Option, Question
from commands.normalize import normalize, strip_trailing_punctuation

TYPO_MIN_LENGTH = 4

YES_WORDS = frozenset({"Y", "YES", "YEP", "OK", "1", "是", "是的", "对", "有", "好", "S", "SD"})
NO_WORDS = frozenset({"N", "NO", "NOPE", "0", "2", "否", "不", "不是", "没有", "无", "F", "BS"})


@dataclass(frozen=True, slots=True)
class AnswerError:
    """Why an answer was refused: a template key (commands/templates/*/engagement.yaml)."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


def clean(text: str) -> str:
    """The protocol's normalisation (NFKC, full-width, separators), trailing '.' dropped."""
    return strip_trailing_punctuation(normalize(text))


def read_answer(question: Question, text: str, *, today: date,
                free_text: bool = False) -> Any | AnswerError:
    """The answer's value: an option number (1-based) for a choice, an int, an ISO date, a
    bool, or the text. With ``free_text`` a choice answer matching no option is kept as
    ``{"other": text}``."""
    answer = clean(text)
    if not answer:
        return AnswerError("ans_empty")
    shown = answer[:20]
    if question.type == "choice":
        picked = match_option(answer, question.options)
        if picked is not None:
            return picked
        if free_text:
            return {"other": answer}
        return AnswerError("ans_choice", {"value": shown, "n": len(question.options)})
    if question.type == "number":
        return _number(answer, question, shown)
    if question.type == "date":
        return _date(answer, today, shown)
    if question.type == "yesno":
        word = answer.upper()
        if word in YES_WORDS:
            return True
        if word in NO_WORDS:
            return False
        return AnswerError("ans_yesno", {"value": shown})
    return answer  # free text: anything said counts


def match_option(answer: str, options: list[Option]) -> int | None:
    """1-based option picked by number, word or a one-letter typo; None when none (or when
    the typo is equally close to two options)."""
    word = answer.upper()
    if word.isascii() and word.isdigit():
        n = int(word)
        return n if 1 <= n <= len(options) else None
    for i, option in enumerate(options, 1):
        if word in option.words():
            return i
    if len(word) < TYPO_MIN_LENGTH or not word.isascii():
        return None
    close = {i for i, option in enumerate(options, 1)
             for w in option.words()
             if w.isascii() and len(w) >= TYPO_MIN_LENGTH and within_one_edit(word, w)}
    return close.pop() if len(close) == 1 else None


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance <= 1, in one pass (no table: the words are short)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = edits = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        edits += 1
        if edits > 1:
            return False
        if len(a) == len(b):
            i += 1
        j += 1
    return edits + (len(b) - j) + (len(a) - i) <= 1


def _number(answer: str, question: Question, shown: str) -> int | AnswerError:
    digits = answer[1:] if answer[:1] == "-" else answer
    if not (digits.isascii() and digits.isdigit()):
        return AnswerError("ans_number", {"value": shown})
    value = int(answer)
    low, high = question.min, question.max
    if (low is not None and value < low) or (high is not None and value > high):
        return AnswerError("ans_range", {"value": shown, "min": "" if low is None else low,
                                         "max": "" if high is None else high})
    return value


def _date(answer: str, today: date, shown: str) -> str | AnswerError:
    """YYYYMMDD, YYYY-MM-DD or MMDD (this year)."""
    tok = answer.replace("-", "").replace("/", "").replace(".", "")
    if not (tok.isascii() and tok.isdigit() and len(tok) in (4, 8)):
        return AnswerError("ans_date", {"value": shown})
    year, rest = (today.year, tok) if len(tok) == 4 else (int(tok[:4]), tok[4:])
    try:
        return date(year, int(rest[:2]), int(rest[2:])).isoformat()
    except ValueError:
        return AnswerError("ans_date_invalid", {"value": shown})
