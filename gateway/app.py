"""The gateway process: store, optional in-process simulator, ESME bind, dispatcher, admin API.

`Gateway` is what `smsgw up` runs and what the end-to-end tests start, so both exercise the
same wiring.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from commands import pins
from commands.guards import SenderGuards
from commands.rules import RuleCache, default_rules_path, seed_from_yaml
from common.phones import default_country
from gateway.auth_throttle import AuthLimits
from gateway.config import Settings
from gateway.connectors import Connector
from gateway.connectors.registry import ConnectorContext
from gateway.connectors.registry import build as build_connector
from gateway.dispatcher import Dispatcher
from gateway.http_server import EmbeddedHttpServer
from gateway.inbound import InboundHandler
from gateway.instance_lease import InstanceLease
from gateway.limits import api_http_limits, smpp_listener_limits
from gateway.mo_acks import AckTracker
from gateway.mo_processor import MoProcessor
from gateway.notices.service import NoticeService
from gateway.numbers import load_numbers
from gateway.planner_stats import PlannerStats
from gateway.receipt_followup import ReceiptFollowUp
from gateway.receipt_sweep import ReceiptSweep
from gateway.routing import specs_from_settings
from gateway.smpp.session import SessionConfig
from gateway.smpp_server import UpstreamServer
from gateway.tls import server_context
from gateway.webhooks.worker import WebhookWorker
from store import outbound, webhooks
from store.store import Store

log = logging.getLogger("smsgw")


class Gateway:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store: Store | None = None
        self.simulator = None
        self.client: Connector
        self.clients: list[Connector] = []
        self.dispatcher: Dispatcher
        self.inbound: InboundHandler
        self._api: EmbeddedHttpServer | None = None
        self.upstream_server: UpstreamServer | None = None
        self.api_port: int | None = None
        self.notices: NoticeService | None = None
        self.receipt_sweep: ReceiptSweep | None = None
        self.planner_stats: PlannerStats | None = None
        self.receipt_followup: ReceiptFollowUp | None = None
        self.webhooks: WebhookWorker | None = None
        self.draining = False  # set by stop(): /readyz answers 503 from then on
        self.lease: InstanceLease | None = None

    async def start(self, *, api: bool = True) -> None:
        s = self.settings
        default_country()  # a bad SMSGW_DEFAULT_COUNTRY stops the start, not the first MO
        self.store = await asyncio.to_thread(Store.open, s.database_url)
        log.info("store ready: %s", _redact(self.store.url))
        await self._open_pin_key()
        released = await self.store.write(lambda c: outbound.release_claims(
            c, instance=s.instance, now=datetime.now(UTC)))
        if released:
            log.warning("%d messages claimed before a stop were put back in the queue "
                        "(flagged possibly duplicated)", released)
        # Heartbeat: if this instance dies for good, a live one releases its claims.
        self.lease = InstanceLease(self.store, s.instance)
        await self.lease.tick()
        self.lease.start()
        # Outbound connections: SMSGW_CONNECTIONS_FILE, else the single one of the settings
        # (with the bundled simulator when no host is set).
        specs = specs_from_settings(s)
        if s.embedded_simulator and not s.connections_file:
            host, port = await self._start_simulator()
            specs = [replace(specs[0], host=host, port=port)]
        now = datetime.now(UTC)
        seeded = await self.store.write(lambda c: seed_from_yaml(c, s.rules_file, now=now))
        if seeded:
            log.info("rules: %d loaded from %s (first start)", seeded,
                     s.rules_file or default_rules_path())
        self.rules = RuleCache()
        self.processor = MoProcessor(self.store, source_addr=s.source_addr, rules=self.rules,
                                     guards=SenderGuards(s.rate_limit_messages,
                                                         s.rate_limit_seconds),
                                     reassembly_timeout=s.reassembly_timeout,
                                     numbers=load_numbers(s.numbers_file)
                                     if s.numbers_file else None)
        self.acks = AckTracker(self.store, peer_timeout=s.smsc_response_timeout,
                               instance=s.instance)
        self.inbound = InboundHandler(self.store, self.processor, acks=self.acks,
                                      identity_hours=s.mo_identity_hours)
        # One connector per connection, of its kind (smpp, http, or a plug-in's).
        ctx = ConnectorContext(inbound=self.inbound, settings=s)
        self.clients = [build_connector(sp, ctx) for sp in specs]
        self.client = self.clients[0]  # the first connection (readiness, single-bind callers)
        self.dispatcher = Dispatcher(self.store, list(zip(specs, self.clients, strict=True)),
                                     instance=s.instance, source_addr=s.source_addr,
                                     batch=s.claim_batch, poll_interval=s.poll_interval,
                                     seed=s.route_seed, pause_min=s.throttle_pause_min,
                                     pause_max=s.throttle_pause_max,
                                     outcomes=self.inbound.outcomes,
                                     max_awaiting_receipts=s.max_awaiting_receipts)
        self.processor.on_enqueued = self.dispatcher.wake
        self.processor.start()
        self.acks.start()
        for client in self.clients:
            client.start()
        self.dispatcher.start()
        self.notices = NoticeService(self.store, s, on_enqueued=lambda: self.dispatcher.wake())
        await self.notices.start()
        backlog = await self.processor.recover()
        if backlog:
            log.warning("%d MOs left unprocessed by a previous stop are being processed",
                        backlog)
        if s.smpp_server_port is not None:
            await self._start_smpp_server()
        self.receipt_sweep = ReceiptSweep(
            self.store, interval=s.receipt_retry_interval,
            unmatched_age=s.receipt_unmatched_age,
            on_matched=lambda: self.inbound.on_upstream_owed())
        self.receipt_sweep.start()
        self.planner_stats = PlannerStats(self.store, interval=s.pg_analyze_interval)
        if self.planner_stats.wanted:
            self.planner_stats.start()
        self.receipt_followup = ReceiptFollowUp(
            self.store,  # query_sm goes on the bound connection that carried the MT
            lambda name: next((getattr(c, "connection", None) for c in self.clients
                               if c.name == name and c.bound), None),
            deadline=s.receipt_deadline,
            grace=s.receipt_grace, interval=s.receipt_check_interval,
            default_source=s.source_addr, on_final=lambda: self.inbound.on_upstream_owed())
        self.receipt_followup.start()
        await self._start_webhooks()
        if api:
            await self._start_api()

    async def _start_webhooks(self) -> None:
        assert self.store is not None
        s = self.settings
        secret = s.webhook_secret or await self.store.write(webhooks.default_secret)
        self.webhooks = WebhookWorker(
            self.store, instance=s.instance, default_secret=secret,
            max_attempts=s.webhook_max_attempts, backoff_min=s.webhook_backoff_min,
            backoff_max=s.webhook_backoff_max, timeout=s.webhook_timeout,
            concurrency=s.webhook_concurrency, poll_interval=s.webhook_poll_interval,
            on_enqueued=self.dispatcher.wake)
        self.webhooks.start()

    async def _open_pin_key(self) -> None:
        assert self.store is not None
        path = Path(self.settings.pin_key_file or pins.default_key_file(self.store.url))
        existed = path.exists()
        keys = await self.store.read(lambda c: pins.open_key_file(c, path))
        pins.install(keys)
        log.info("PIN key %s %s (key id %s)", "read from" if existed else "created in", path,
                 keys.current_id)

    async def _start_simulator(self) -> tuple[str, int]:
        from simulator.config import SimulatorConfig
        from simulator.smsc import Simulator

        s = self.settings
        config = SimulatorConfig(
            host="127.0.0.1", port=s.sim_port, control_port=s.sim_control_port,
            accounts={s.smsc_system_id: s.smsc_password}, receipt_delay=s.sim_receipt_delay)
        self.simulator = Simulator(config)
        await self.simulator.start()
        log.info("simulator: SMPP on 127.0.0.1:%d, control API on http://127.0.0.1:%d",
                 self.simulator.port, self.simulator.control_port)
        return "127.0.0.1", self.simulator.port

    async def _start_smpp_server(self) -> None:
        s = self.settings
        self.upstream_server = UpstreamServer(
            self.store, host=s.smpp_server_host, port=s.smpp_server_port or 0,
            session_config=SessionConfig(window=s.window, response_timeout=s.response_timeout,
                                         enquire_link_interval=s.enquire_link_interval,
                                         enquire_link_timeout=s.enquire_link_timeout,
                                         max_pdu_length=s.max_pdu_length),
            on_enqueued=self.dispatcher.wake,
            reassembly_timeout=s.upstream_reassembly_timeout,
            auth_limits=AuthLimits.from_settings(s), limits=smpp_listener_limits(s),
            tls=(server_context(s.smpp_server_tls_cert, s.smpp_server_tls_key)
                 if s.smpp_server_tls_cert else None))
        self.inbound.on_upstream_owed = self.upstream_server.wake
        await self.upstream_server.start()

    async def _start_api(self) -> None:
        from gateway.api.app import create_app

        self._api = EmbeddedHttpServer(create_app(self), self.settings.api_host,
                                       self.settings.api_port, name="admin API",
                                       trusted_proxies=self.settings.api_trusted_proxies,
                                       limits=api_http_limits(self.settings))
        self.api_port = await self._api.start()
        log.info("admin API on http://%s:%d (docs at /docs)", self.settings.api_host,
                 self.api_port)

    async def enqueue(self, to: str, text: str, *, priority: int = 2,
                      schedule_at: datetime | None = None,
                      expires_at: datetime | None = None, callback_url: str | None = None,
                      api_key_id: int | None = None) -> int:
        """Queue one MT. ``callback_url`` (else the API key's default) is owed its final
        state; set in the enqueue's own transaction, so no state can slip by."""
        assert self.store is not None

        def run(c: Connection) -> int:
            mt_id = outbound.enqueue_mt(
                c, dest_addr=to, text=text, priority=priority, now=datetime.now(UTC),
                source_addr=self.settings.source_addr, schedule_at=schedule_at,
                expires_at=expires_at)
            webhooks.set_callback(c, mt_id, callback_url or webhooks.key_callback(c, api_key_id))
            return mt_id

        mt_id = await self.store.write(run)
        log.info("mt=%d queued to=%s priority=%d", mt_id, to, priority)
        self.dispatcher.wake()
        return mt_id

    async def stop(self) -> None:
        """Graceful (SIGTERM, Ctrl-C): drain, unbind, then close the store.

        /readyz answers 503 from the first moment; the dispatcher claims nothing more and
        gives submit_sm already on the wire up to `drain_timeout` s for their responses,
        then puts the rest back in the queue, so nothing is left 'sending'. The binds are
        unbound after that; the admin API stops last (it keeps answering, not ready, while
        the gateway drains, and what it accepts meanwhile is queued for the next start).
        """
        self.draining = True
        if self.upstream_server is not None:
            await self.upstream_server.stop()
        if self.receipt_sweep is not None:
            await self.receipt_sweep.stop()
        if self.planner_stats is not None:
            await self.planner_stats.stop()
        if self.receipt_followup is not None:
            await self.receipt_followup.stop()
        if self.notices is not None:
            await self.notices.stop()
        if self.webhooks is not None:
            await self.webhooks.stop()
        if hasattr(self, "dispatcher"):
            await self.dispatcher.stop(grace=self.settings.drain_timeout)
        for client in getattr(self, "clients", []):
            await client.stop()
        if hasattr(self, "processor"):
            await self.processor.stop()
            await self.acks.stop()
        if hasattr(self, "inbound"):
            await self.inbound.outcomes.drain()  # batched submit responses and receipts
        if self._api is not None:
            await self._api.stop()
        if self.simulator is not None:
            await self.simulator.stop()
        if self.lease is not None:
            await self.lease.stop()
        if self.store is not None:
            await self.store.close()
        log.info("stopped")


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
