"""Gateway settings, read from the environment (prefix SMSGW_) and overridable by CLI flags."""

from __future__ import annotations

import socket

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance() -> str:
    # Stable across restarts: on start an instance takes back the rows it had claimed when it
    # stopped. Several instances on one host must each set SMSGW_INSTANCE.
    return socket.gethostname() or "smsgw"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMSGW_", extra="ignore", populate_by_name=True)

    # Store. DATABASE_URL (no prefix) is the conventional name; SMSGW_DATABASE_URL also works.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "SMSGW_DATABASE_URL"))

    # SMSC to bind to. No host → the bundled simulator is started in-process.
    smsc_host: str | None = None
    smsc_port: int = Field(default=2775, ge=1, le=65535)
    smsc_system_id: str = "smsgw"
    smsc_password: str = "secret"
    smsc_system_type: str = ""
    connection_name: str = "smsc1"
    # SMPP over TLS to the SMSC (gateway/tls.py). smsc_tls_ca: a PEM CA file trusted instead
    # of the system store (a private CA or a self-signed SMSC certificate); smsc_tls_verify
    # false skips the certificate check entirely (test SMSCs only).
    smsc_tls: bool = False
    smsc_tls_ca: str | None = None
    smsc_tls_verify: bool = True

    # The address our MTs come from (the service short code handsets text).
    source_addr: str = "10690"

    # SMPP session behaviour.
    window: int = Field(default=10, ge=1, le=1000)
    response_timeout: float = Field(default=10.0, gt=0)
    enquire_link_interval: float = Field(default=30.0, gt=0)
    enquire_link_timeout: float = Field(default=10.0, gt=0)
    max_pdu_length: int = Field(default=70_000, ge=64)
    reconnect_min: float = Field(default=0.5, gt=0)
    reconnect_max: float = Field(default=30.0, gt=0)

    # In-process simulator (only when smsc_host is unset).
    sim_port: int = Field(default=2775, ge=0, le=65535)
    sim_control_port: int = Field(default=2776, ge=0, le=65535)
    sim_receipt_delay: float = Field(default=0.2, ge=0)

    # SMPP server for upstream applications (they bind to us as their SMSC); None = off.
    smpp_server_host: str = "127.0.0.1"
    smpp_server_port: int | None = Field(default=2777, ge=0, le=65535)
    # Parts of a concatenated submit wait this long for their siblings; then every part gets
    # a failure receipt.
    upstream_reassembly_timeout: float = Field(default=300.0, gt=0)
    # Its listener limits (gateway/smpp/listener.py): connections open at once, in total and
    # per source address (more are closed at once, logged); seconds a connection may stay
    # unbound; seconds a started PDU may take to arrive in full (slow-loris); requests per
    # session awaiting our answer (more get ESME_RTHROTTLED).
    smpp_max_connections: int = Field(default=200, ge=1)
    smpp_max_connections_per_source: int = Field(default=20, ge=1)
    smpp_bind_timeout: float = Field(default=10.0, gt=0)
    smpp_pdu_read_timeout: float = Field(default=10.0, gt=0)
    smpp_max_unanswered: int = Field(default=100, ge=1)
    # TLS on that listener: a PEM certificate (chain) and its key (unset = plain TCP).
    smpp_server_tls_cert: str | None = None
    smpp_server_tls_key: str | None = None

    # Admin HTTP API.
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    # Keyless admin access for local development only (`smsgw up --insecure-dev`). Off by
    # default: every API request needs a key, whatever its source address.
    insecure_dev: bool = False
    # Reverse proxies in front of the API whose X-Forwarded-For names the client (comma-
    # separated addresses, e.g. "127.0.0.1"); unset = the TCP peer is the client.
    api_trusted_proxies: str | None = None
    # Connections the API serves at once (more get 503), seconds a request's headers may
    # take to arrive (slow-header clients are closed), seconds an idle keep-alive lasts.
    api_max_connections: int = Field(default=100, ge=1)
    api_header_timeout: float = Field(default=10.0, gt=0)
    api_keep_alive_timeout: int = Field(default=5, ge=1)

    # Failed authentication (API keys, upstream SMPP binds; gateway/auth_throttle.py): a
    # source address or system_id failing auth_max_failures times within auth_failure_window
    # seconds is refused for auth_lockout seconds.
    auth_max_failures: int = Field(default=10, ge=1)
    auth_failure_window: float = Field(default=60.0, gt=0)
    auth_lockout: float = Field(default=300.0, gt=0)

    # Redelivery or a person's repeat (gateway/inbound.py, gateway/mo_acks.py): an MO
    # identical to an earlier one is a redelivery unless the earlier one's deliver_sm_resp
    # went out on a session that stayed up for smsc_response_timeout afterwards (the SMSC's
    # own response timeout: past it the SMSC surely has our ack). Set it to the SMSC's value
    # or above; shorter risks taking a redelivery for a new message. A redelivery is
    # recognised however late it comes, within mo_identity_hours.
    smsc_response_timeout: float = Field(default=30.0, gt=0)
    mo_identity_hours: float = Field(default=48.0, gt=0)

    # The key of the PINs' keyed hash (commands/pins.py, docs/security.md): a file the
    # operator controls, outside the database. Unset: pin.key next to the SQLite file, or in
    # the data directory ($XDG_DATA_HOME/smsgw) for PostgreSQL; created (0600) on first start.
    pin_key_file: str | None = None

    # Command processing.
    rules_file: str | None = None  # YAML loaded into the rules table at first start
    # Per sender: at most this many messages handled … per this many seconds (then one E12
    # a window). 20 a minute: the README walkthrough (about 12 commands typed in two
    # minutes) never trips it; a phone stuck resending is still stopped within a minute.
    # Opt-outs (STOP, TD, 退订, UNSUB) are applied whatever the limit says.
    rate_limit_messages: int = Field(default=20, ge=1)
    rate_limit_seconds: float = Field(default=60.0, gt=0)
    reassembly_timeout: float = Field(default=120.0, gt=0)  # long MO parts wait this long

    # Stopping (SIGTERM / Ctrl-C): /readyz turns 503 at once, no new claims, submit_sm
    # already on the wire get up to this many seconds for their responses; whatever is left
    # goes back to the queue (flagged possibly duplicated if a part may have been sent).
    drain_timeout: float = Field(default=10.0, ge=0)

    # Dispatcher.
    claim_batch: int = Field(default=50, ge=1, le=10_000)
    poll_interval: float = Field(default=0.5, gt=0)
    # Claiming pauses while the SMSC keeps our deliver_sm window full with receipts due
    # (gateway/inbound_window.py), and in any case while this many submitted parts (of the
    # last 10 s) still await their receipt: receipts then keep pace with submits instead of
    # piling up at the SMSC in front of MOs (gateway/mt_outcomes.py). 0 = no count bound.
    max_awaiting_receipts: int = Field(default=5000, ge=0)
    # Outbound connections and routing (gateway/routing.py). A YAML file listing the SMSC
    # connections (name, host, port, system_id, password, system_type, window, tps,
    # prefixes, ucs2, cost_per_part, weight); unset = the single smsc_* connection above.
    connections_file: str | None = None
    smsc_tps: float = Field(default=0.0, ge=0)  # the single connection's send rate; 0 = off
    route_seed: int | None = None  # seeds the weighted choice among equal-cost connections
    # ESME_RTHROTTLED / ESME_RMSGQFUL pause the connection: exponential, these bounds (s).
    throttle_pause_min: float = Field(default=0.2, gt=0)
    throttle_pause_max: float = Field(default=10.0, gt=0)
    # Receipts parked unmatched (gateway/receipt_sweep.py) are matched again this often (s),
    # and reported (log + smsgw_receipts_unmatched_aged) once older than this (s).
    receipt_retry_interval: float = Field(default=2.0, gt=0)
    receipt_unmatched_age: float = Field(default=600.0, gt=0)
    # PostgreSQL: how often (s) to look for tables that grew by half since they were last
    # analysed, and analyse them (gateway/planner_stats.py); 0 = leave it all to autovacuum.
    pg_analyze_interval: float = Field(default=5.0, ge=0)
    # A part without its receipt this long after submission (s) is followed up with query_sm
    # (gateway/receipt_followup.py); still unknown receipt_grace (s) later, or when query_sm
    # fails, it is final `unknown`. receipt_check_interval: how often to look (s).
    receipt_deadline: float = Field(default=48 * 3600.0, gt=0)
    receipt_grace: float = Field(default=3600.0, ge=0)
    receipt_check_interval: float = Field(default=60.0, gt=0)
    # POST /messages and /messages/bulk: an Idempotency-Key's answer is kept this long (s).
    idempotency_ttl: float = Field(default=24 * 3600.0, gt=0)

    # Notices (gateway/notices): quiet hours holding priority-3 messages, local "HH:MM-HH:MM"
    # (e.g. "21:00-08:00"); unset = off. Event → template/recipients/priority configuration
    # (default gateway/notices.yaml). Order events (order.received / approved / rejected,
    # funds.insufficient) derived from order_history rows: off by default, since an SMS order
    # already gets its reply. The scheduler runs gateway/notices.yaml's jobs.
    quiet_hours: str | None = None
    notices_file: str | None = None
    notices_poll_interval: float = Field(default=1.0, gt=0)
    order_events: bool = False
    scheduler_enabled: bool = True
    scheduler_tick: float = Field(default=30.0, gt=0)

    # Several service numbers / sub-codes, each with its keywords and language (YAML,
    # gateway/numbers.py); unset = the one number source_addr.
    numbers_file: str | None = None

    # Webhooks (gateway/webhooks/, docs/webhooks.md). Callbacks without a subscription (a
    # message's callback_url) are signed with webhook_secret; unset, a secret made at first
    # start and kept in the database (GET /webhooks/default-secret). A delivery is tried
    # webhook_max_attempts times, waiting backoff_min·2^n (capped at backoff_max, with
    # jitter) between tries, then it is dead (re-triable through the API).
    webhook_secret: str | None = None
    webhook_max_attempts: int = Field(default=10, ge=1, le=100)
    webhook_backoff_min: float = Field(default=2.0, gt=0)
    webhook_backoff_max: float = Field(default=3600.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_concurrency: int = Field(default=4, ge=1)  # per target, callback_url targets
    webhook_poll_interval: float = Field(default=0.5, gt=0)

    instance: str = Field(default_factory=_default_instance)

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str | None) -> str | None:
        from store.notices import parse_quiet_hours

        parse_quiet_hours(v)  # ValueError → a clear settings error at start
        return v

    @field_validator("database_url")
    @classmethod
    def _strip(cls, v: str | None) -> str | None:
        return v.strip() or None if v else None

    @property
    def embedded_simulator(self) -> bool:
        return not self.smsc_host
