"""Prometheus metrics: one registry per process, scraped at /metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages_in = Counter("smsgw_messages_in", "MOs received (new, not redeliveries)",
                                   registry=r)
        self.mo_duplicates = Counter("smsgw_mo_duplicates", "MO redeliveries recognised",
                                     registry=r)
        self.mo_dispositions = Counter(
            "smsgw_mo_dispositions", "MOs by how they ended (store.models.MO_DISPOSITIONS)",
            ["disposition"], registry=r)
        self.messages_out = Counter("smsgw_messages_out", "MT outcomes at submit time",
                                    ["status"], registry=r)
        self.submit_latency = Histogram(
            "smsgw_submit_latency_seconds", "submit_sm to submit_sm_resp",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r)
        self.receipts = Counter("smsgw_receipts", "Delivery receipts by state", ["state"],
                                registry=r)
        self.receipts_matched_late = Counter(
            "smsgw_receipts_matched_late",
            "Parked delivery receipts matched by the receipt sweep", registry=r)
        self.receipts_unmatched_aged = Gauge(
            "smsgw_receipts_unmatched_aged",
            "Delivery receipts parked unmatched for longer than the unmatched age",
            registry=r)
        self.binds_up = Gauge("smsgw_binds_up", "SMPP binds currently up", ["connection"],
                              registry=r)
        self.queue_depth = Gauge("smsgw_queue_depth", "Queued MTs by priority", ["priority"],
                                 registry=r)
        self.auth_failures = Counter("smsgw_auth_failures",
                                     "Failed authentications (wrong API key, bind refused)",
                                     ["kind"], registry=r)
        self.auth_lockouts = Counter("smsgw_auth_lockouts",
                                     "Lockouts after repeated failed authentications",
                                     ["kind", "scope"], registry=r)


METRICS = Metrics()
