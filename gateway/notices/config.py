"""The notice configuration (gateway/notices.yaml): event → template, recipients, priority;
order_history status → events; scheduled jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "notices.yaml"
RECIPIENT_KINDS = ("account", "manager", "phone")


class NoticeConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class EventRule:
    template: str  # may hold "{field}" parts filled from the payload
    recipients: tuple[str, ...]
    priority: int = 2


@dataclass(frozen=True, slots=True)
class NoticeConfig:
    events: dict[str, EventRule]
    order_history: dict[str, tuple[str, ...]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    default_lang: str = "zh"


def load_config(path: str | Path | None = None) -> NoticeConfig:
    p = Path(path) if path else DEFAULT_PATH
    try:
        data = yaml.safe_load(p.read_text("utf-8")) or {}
    except OSError as exc:
        raise NoticeConfigError(f"cannot read notice configuration {p}: {exc}") from exc
    return parse_config(data, source=str(p))


def parse_config(data: dict[str, Any], *, source: str = "<dict>") -> NoticeConfig:
    if not isinstance(data, dict):
        raise NoticeConfigError(f"{source}: must be a mapping")
    rules: dict[str, EventRule] = {}
    for name, spec in (data.get("events") or {}).items():
        if not isinstance(spec, dict) or not spec.get("template"):
            raise NoticeConfigError(f"{source}: event {name!r} needs a template")
        recipients = spec.get("recipients") or ["account"]
        if isinstance(recipients, str):
            recipients = [recipients]
        bad = [r for r in recipients if r not in RECIPIENT_KINDS]
        if bad:
            raise NoticeConfigError(f"{source}: event {name!r}: unknown recipients {bad}; "
                                    f"use {RECIPIENT_KINDS}")
        priority = int(spec.get("priority", 2))
        if not 0 <= priority <= 3:
            raise NoticeConfigError(f"{source}: event {name!r}: priority must be 0..3")
        rules[str(name)] = EventRule(str(spec["template"]), tuple(recipients), priority)
    history: dict[str, tuple[str, ...]] = {}
    for status, names in (data.get("order_history") or {}).items():
        names = [names] if isinstance(names, str) else list(names or [])
        history[str(status)] = tuple(str(n) for n in names)
    jobs = {str(k): dict(v or {}) for k, v in (data.get("jobs") or {}).items()}
    lang = str(data.get("default_lang", "zh"))
    return NoticeConfig(rules, history, jobs, lang)
