"""What an operator configures for a poll or a survey: one pydantic model per shape, used by
the API, the demo data and the reply handling alike (one validator for each field).

Texts the phone sees may be one string or one per language (``{"en": …, "zh": …}``): the
broadcast goes out in the engagement's language, re-asks and follow-ups in the phone's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from commands.normalize import normalize

LocalText = str | dict[Literal["en", "zh"], str]

KINDS = ("campaign", "poll", "survey")
QUESTION_TYPES = ("choice", "number", "date", "yesno", "text")
# An engagement keyword is what a phone texts to join (an open poll / survey) or to name the
# question it answers when it has two open ("SAT 2"): letters, digits or Chinese, no spaces.
KEYWORD_PATTERN = r"^[0-9A-Za-z\u3400-\u4dbf\u4e00-\u9fff]{2,16}$"


def pick(text: LocalText, lang: str) -> str:
    """The text in ``lang``, else in the other language (a one-language engagement)."""
    if isinstance(text, str):
        return text
    return text.get(lang) or next(iter(text.values()))  # type: ignore[call-overload]


class Option(BaseModel):
    """One answer of a poll or a choice question: chosen by its number (1-based place), by
    its label or by any of its keywords (English, Chinese, pinyin initials: configured)."""

    model_config = ConfigDict(extra="forbid")
    label: LocalText
    keywords: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default_factory=list, description="extra words that pick this option, e.g. "
        "[\"GOOD\", \"满意\", \"MY\"]; matched after the protocol's normalisation")

    def words(self) -> list[str]:
        labels = [self.label] if isinstance(self.label, str) else list(self.label.values())
        return [normalize(w).upper() for w in (*labels, *self.keywords) if normalize(w)]


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$",
                    description="column name in the CSV export")
    type: Literal["choice", "number", "date", "yesno", "text"]
    text: LocalText
    options: list[Option] = Field(default_factory=list, description="choice only")
    min: int | None = Field(default=None, description="number only")
    max: int | None = Field(default=None, description="number only")

    @model_validator(mode="after")
    def _shape(self) -> Question:
        if self.type == "choice" and len(self.options) < 2:
            raise ValueError(f"question {self.id!r}: a choice needs at least 2 options")
        if self.type != "choice" and self.options:
            raise ValueError(f"question {self.id!r}: only a choice has options")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"question {self.id!r}: min {self.min} is over max {self.max}")
        return self


class PollSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: LocalText
    options: list[Option] = Field(min_length=2, max_length=9)
    free_text: bool = Field(default=False, description="an answer matching no option is "
                            "kept as 'other' (otherwise it is re-asked)")
    counts: Literal["last", "first"] = Field(default="last", description="which vote of a "
                                             "phone counts when it answers again")
    confirm: bool = Field(default=True, description="reply to each vote")

    def as_question(self) -> Question:
        """The poll as a one-question choice (so one matcher reads both)."""
        return Question(id="vote", type="choice", text=self.question, options=self.options)


class SurveySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intro: LocalText | None = None
    questions: list[Question] = Field(min_length=1, max_length=20)
    final: LocalText = Field(description="sent after the last answer")
    timeout_minutes: float = Field(default=1440, gt=0, le=60 * 24 * 31,
                                   description="a respondent silent this long is timed out")

    @model_validator(mode="after")
    def _unique_ids(self) -> SurveySpec:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        return self


def parse_config(kind: str, config: dict[str, Any]) -> PollSpec | SurveySpec | None:
    """The stored JSON config as its model (None for a campaign, which has none)."""
    if kind == "poll":
        return PollSpec.model_validate(config)
    if kind == "survey":
        return SurveySpec.model_validate(config)
    return None
