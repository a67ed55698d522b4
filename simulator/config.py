"""Simulator settings: one validated object, from defaults, a YAML/JSON file, the
environment and command-line flags (in that order; later wins).

Every value has a default that works with the gateway out of the box (account
``smsgw`` / ``secret`` on port 2775, control API on 2776), so ``smsgw simulator`` needs no
configuration at all. A bad value fails at start with a message that names the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway.smpp.text import RECEIPT_STATS
from simulator.handsets import DEFAULT_INBOX_LIMIT

DEFAULT_PORT = 2775
DEFAULT_CONTROL_PORT = 2776

# Environment variables read by `SimulatorConfig.load` (the same names the gateway uses
# for its embedded simulator, see gateway/config.py).
ENV_VARS = {
    "port": "SMSGW_SIM_PORT",
    "control_port": "SMSGW_SIM_CONTROL_PORT",
    "host": "SMSGW_SIM_HOST",
    "receipt_delay": "SMSGW_SIM_RECEIPT_DELAY",
    "seed": "SMSGW_SIM_SEED",
}

# SMPP 3.4 §4.1: system_id is a C-Octet String of at most 16 octets, password of 9,
# both including the terminating NUL.
MAX_SYSTEM_ID = 15
MAX_PASSWORD = 8


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and the problem."""


class SimulatorConfig(BaseModel):
    """Everything the simulator can be told. Construct directly in tests, or use `load`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    host: str = Field("127.0.0.1", description="address to listen on (SMPP and control API)")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535,
                      description="SMPP port; 0 picks a free one (see Simulator.port)")
    control_port: int | None = Field(
        DEFAULT_CONTROL_PORT, ge=0, le=65535,
        description="HTTP control API port; 0 picks a free one, None disables the API")
    accounts: dict[str, str] = Field(
        default_factory=lambda: {"smsgw": "secret"},
        description="system_id -> password of the ESMEs allowed to bind")
    receipt_delay: float = Field(0.2, ge=0, description="seconds from submit to receipt")
    receipt_outcomes: dict[str, float] = Field(
        default_factory=lambda: {"DELIVRD": 1.0},
        description="receipt stat -> relative weight, e.g. DELIVRD 0.9, UNDELIV 0.1")
    receipt_tlvs: bool = Field(
        True, description="add receipted_message_id and message_state TLVs to receipts")
    message_id_format: Literal["hex", "decimal"] = "hex"
    throttle_tps: float = Field(
        0, ge=0, description="submit_sm per second above which ESME_RTHROTTLED; 0 = off")
    seed: int | None = Field(None, description="seed for outcome choices; None = random")
    mo_retry_interval: float = Field(
        2.0, gt=0, description="seconds before an MO/receipt refused or unanswered is resent")
    response_timeout: float = Field(
        5.0, gt=0, description="seconds to wait for deliver_sm_resp before retrying")
    window: int = Field(10, ge=1, le=1000, description="deliver_sm in flight per bind")
    enquire_link_interval: float = Field(30.0, gt=0)
    reassembly_timeout: float = Field(
        300.0, gt=0, description="seconds a handset waits for missing parts of a long MT")
    inbox_limit: int | None = Field(
        DEFAULT_INBOX_LIMIT, ge=1,
        description="inbox messages kept across all handsets; past it the oldest are "
                    "forgotten (memory stays flat in long load tests); None = keep all")
    default_short_code: str = Field(
        "10690", min_length=1, max_length=20,
        description="destination of an injected MO when none is given")
    fault_prefix: str = Field(
        "86999", pattern=r"^[0-9]{0,12}$",
        description="destinations starting with these digits cause faults (the number plan "
                    "in simulator/faults.py); empty turns the plan off")
    system_id: str = Field("smsgw-sim", min_length=1, max_length=MAX_SYSTEM_ID,
                           description="our system_id in bind responses")
    # Listener limits (gateway/smpp/listener.py). Generous defaults: tests open many binds
    # from one address; a simulator exposed to a network should lower them.
    max_connections: int | None = Field(
        1000, ge=1, description="SMPP connections open at once; more are closed at once")
    max_connections_per_source: int | None = Field(
        200, ge=1, description="SMPP connections open at once from one address")
    bind_timeout: float = Field(30.0, gt=0, description="seconds a connection may stay unbound")
    pdu_read_timeout: float | None = Field(
        30.0, gt=0, description="seconds a started PDU may take to arrive in full")
    max_unanswered: int | None = Field(
        1000, ge=1, description="requests per session awaiting our answer; more get "
                                "ESME_RTHROTTLED")
    tls_cert: str | None = Field(
        None, description="PEM certificate (chain): serve SMPP over TLS instead of plain TCP")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert (if separate)")

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("at least one account is needed, e.g. {'smsgw': 'secret'}")
        for system_id, password in v.items():
            if not system_id or len(system_id) > MAX_SYSTEM_ID:
                raise ValueError(f"system_id {system_id!r} must be 1..{MAX_SYSTEM_ID} "
                                 "characters (SMPP 3.4 §4.1)")
            if len(password) > MAX_PASSWORD:
                raise ValueError(f"password of {system_id!r} is longer than {MAX_PASSWORD} "
                                 "characters (SMPP 3.4 §4.1)")
            if not (system_id + password).isascii():
                raise ValueError(f"account {system_id!r}: system_id and password must be ASCII")
        return v

    @field_validator("receipt_outcomes")
    @classmethod
    def _check_outcomes(cls, v: dict[str, float]) -> dict[str, float]:
        out: dict[str, float] = {}
        for stat, weight in v.items():
            key = stat.strip().upper()
            if key not in RECEIPT_STATS:
                raise ValueError(f"unknown receipt stat {stat!r}; use one of "
                                 f"{', '.join(sorted(RECEIPT_STATS))}")
            if weight < 0:
                raise ValueError(f"weight of {key} is negative ({weight})")
            out[key] = float(weight)
        if not out or sum(out.values()) <= 0:
            raise ValueError("the outcome weights must add up to more than 0")
        return out

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
             overrides: Mapping[str, Any] | None = None) -> SimulatorConfig:
        """Defaults, then the file at ``path`` (YAML or JSON), then the environment
        (`ENV_VARS`), then ``overrides`` (keys whose value is None are ignored).

        Raises ConfigError with a readable message for any bad value.
        """
        data: dict[str, Any] = {}
        if path is not None:
            data.update(read_file(path))
        environ = os.environ if env is None else env
        for field, var in ENV_VARS.items():
            raw = environ.get(var)
            if raw is not None and raw.strip() != "":
                data[field] = raw.strip()
        for key, value in (overrides or {}).items():
            if value is not None:
                data[key] = value
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_errors(exc, source=str(path) if path else None)) from None


def read_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict (JSON is valid YAML, but a .json file is
    parsed as JSON so its error messages point at the right place)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise ConfigError(f"config file {p} is not valid {p.suffix.lstrip('.') or 'YAML'}: "
                          f"{exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of settings, "
                          f"not {type(data).__name__}")
    # Accept "receipt-delay" as well as "receipt_delay": file keys often mirror flags.
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def format_errors(exc: ValidationError, source: str | None = None) -> str:
    where = f" in {source}" if source else ""
    lines = [f"invalid simulator configuration{where}:"]
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown setting (known: {', '.join(SimulatorConfig.model_fields)})"
        lines.append(f"  {loc}: {msg} (got {err.get('input')!r})")
    return "\n".join(lines)


def parse_outcomes(spec: str) -> dict[str, float]:
    """'DELIVRD=0.9,UNDELIV=0.1' -> {'DELIVRD': 0.9, 'UNDELIV': 0.1}. Raises ConfigError."""
    out: dict[str, float] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        stat, sep, weight = item.partition("=")
        if not sep:
            raise ConfigError(f"outcome {item!r} must look like STAT=WEIGHT, e.g. DELIVRD=0.9")
        try:
            out[stat.strip().upper()] = float(weight)
        except ValueError:
            raise ConfigError(f"outcome {item!r}: weight {weight!r} is not a number") from None
    if not out:
        raise ConfigError("no outcomes given; example: DELIVRD=0.9,UNDELIV=0.1")
    return out


def parse_account(spec: str) -> tuple[str, str]:
    """'system_id:password' -> (system_id, password). Raises ConfigError."""
    system_id, sep, password = spec.partition(":")
    if not sep or not system_id:
        raise ConfigError(f"account {spec!r} must look like system_id:password")
    return system_id, password
