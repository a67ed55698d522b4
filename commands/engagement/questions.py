"""How a question reads on a phone (the poll with its numbered options, a survey question
with its expected format), in one language."""

from __future__ import annotations

from commands.engagement.spec import PollSpec, Question, SurveySpec, pick
from commands.templates import render


def question_text(q: Question, lang: str) -> str:
    text = pick(q.text, lang)
    if q.type == "choice":
        sep = "，" if lang == "zh" else ", "
        options = sep.join(render(lang, "q_option", n=n, label=pick(o.label, lang))
                           for n, o in enumerate(q.options, 1))
        return render(lang, "q_choices", question=text, options=options)
    if q.type == "yesno":
        return render(lang, "q_yesno", question=text)
    if q.type == "number":
        if q.min is None and q.max is None:
            return render(lang, "q_number_any", question=text)
        return render(lang, "q_number", question=text, min="" if q.min is None else q.min,
                      max="" if q.max is None else q.max)
    if q.type == "date":
        return render(lang, "q_date", question=text)
    return text


def opening(spec: PollSpec | SurveySpec, lang: str) -> str:
    """The first message: the poll's question, or the survey's intro and first question."""
    if isinstance(spec, PollSpec):
        return question_text(spec.as_question(), lang)
    first = question_text(spec.questions[0], lang)
    sep = "" if lang == "zh" else " "
    return f"{pick(spec.intro, lang)}{sep}{first}" if spec.intro else first


def option_label(spec: PollSpec, choice: int, lang: str) -> str:
    return pick(spec.options[choice - 1].label, lang)
