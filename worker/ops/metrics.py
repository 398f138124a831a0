"""`einvoice metrics`: a Prometheus exporter that reads the database on each scrape.

Gauges describe the present (orders by state, oldest open order, FAILED orders by kind and by
DIAN rule code, queue depth). Counters and the attempt-duration histogram are fed from the
audit trail, incrementally: each scrape reads only the audit rows written since the previous
one, so a scrape stays cheap however long the trail is.

The histogram is computed, not timed: for every outcome row (SUCCESS, FAILED, EN_ESPERA,
REINTENTO) it takes the time since the PROCESANDO row that opened the attempt. That span is
the gateway call plus building and signing the document and two short commits, so it is an
upper bound on gateway latency, measured the same way for every worker process.

Audit rows carry the time their transaction began and become visible when it commits, so a
row is counted once it is `settle` seconds old (the steps' transactions last milliseconds).
Counters start `backfill` seconds before the exporter did, and restart with it, as
Prometheus counters may.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from types import FrameType

import redis
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from adapters.db.engine import make_engine
from adapters.db.issuers import Issuer, SqlIssuers
from adapters.db.ranges import RangeStatus, list_ranges
from worker.ops import periods, queries
from worker.ops.broker import queue_depth
from worker.ops.listing import SubParsers
from worker.ops.tables import BOGOTA
from worker.settings import Settings

log = logging.getLogger(__name__)
BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket, the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        index = next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))
        self.counts[index] += 1
        self.total += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for le, n in zip([*map(str, BUCKETS), "+Inf"], self.counts, strict=True):
            running += n
            out.append((le, float(running)))
        return out


def _issuers(
    by_issuer: dict[str, dict[str, int]], stored: list[Issuer], now: datetime
) -> Iterator[Metric]:
    """Per issuer: its documents by state, and days left on its stored certificate."""
    orders = GaugeMetricFamily(
        "einvoice_issuer_orders", "Orders by issuer and state", labels=["issuer", "state"]
    )
    for nit, counts in by_issuer.items():
        for state, n in counts.items():
            orders.add_metric([nit, state], float(n))
    yield orders
    days = GaugeMetricFamily(
        "einvoice_issuer_certificate_days_left",
        "Days until a stored issuer's signing certificate expires (negative: expired)",
        labels=["issuer"],
    )
    for issuer in stored:
        if issuer.certificate:
            ends = datetime.fromisoformat(str(issuer.certificate["not_after"]))
            days.add_metric([issuer.nit], (ends - now).total_seconds() / 86400)
    yield days


def _ranges(stored: list[RangeStatus], today: date) -> Iterator[Metric]:
    """Per active numbering range: what is left of it, and for how long it is valid."""
    labels = ["issuer", "kind", "prefix", "register"]
    remaining = GaugeMetricFamily(
        "einvoice_numbering_range_remaining", "Numbers left in the range", labels=labels
    )
    used = GaugeMetricFamily(
        "einvoice_numbering_range_used_ratio",
        "Share of the range already used (warn at 0.9)",
        labels=labels,
    )
    days = GaugeMetricFamily(
        "einvoice_numbering_range_days_left",
        "Days until the range's authorization ends (warn at 30)",
        labels=labels,
    )
    for s in stored:
        values = [s.issuer, s.range.kind.value, s.range.prefix, s.range.register or ""]
        remaining.add_metric(values, float(s.remaining))
        used.add_metric(values, s.used / s.size)
        days.add_metric(values, float((s.range.valid_to - today).days))
    yield remaining
    yield used
    yield days


class DatabaseCollector(Collector):
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        settle: float = 10.0,
        backfill: float = 3600.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._settle = timedelta(seconds=settle)
        self._clock = clock
        self._watermark = clock() - timedelta(seconds=backfill) - self._settle
        self._audit: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._attempts: dict[str, _Histogram] = {}
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            up = GaugeMetricFamily(
                "einvoice_database_up", "1 when the last scrape could read the database"
            )
            try:
                metrics = list(self._from_database())
            except DBAPIError as exc:
                log.warning("metrics: database unreadable (%s)", type(exc).__name__)
                up.add_metric([], 0.0)
                yield up
                return
            up.add_metric([], 1.0)
            yield up
            yield from metrics
            yield from self._queue()

    def _from_database(self) -> Iterator[Metric]:
        now = self._clock()
        with self._engine.connect() as conn:
            by_state = queries.count_by_state(conn)
            kinds = queries.failures_by_kind(conn)
            rules = queries.rejections_by_rule(conn)
            oldest = queries.oldest_unfinished(conn)
            cutoff = now - self._settle
            new_rows = queries.audit_counts_by_status(conn, self._watermark, cutoff)
            attempts = queries.attempts_finished(conn, self._watermark, cutoff)
            refused = queries.refusals_by_status(conn, self._watermark, cutoff)
            stored_ranges = list_ranges(conn)
            by_issuer = queries.count_by_issuer_and_state(conn)
        issuers = SqlIssuers(self._engine).list()
        self._watermark = cutoff
        self._audit.update(new_rows)
        self._refused.update(refused)
        for attempt in attempts:
            self._attempts.setdefault(attempt.outcome, _Histogram()).observe(attempt.seconds)

        orders = GaugeMetricFamily("einvoice_orders", "Orders by state", labels=["state"])
        for state, n in by_state.items():
            orders.add_metric([state], float(n))
        yield orders
        yield from _issuers(by_issuer, issuers, now)
        age = GaugeMetricFamily(
            "einvoice_oldest_unfinished_order_age_seconds",
            "Seconds since the oldest order that is not final was accepted (0 when none)",
        )
        age.add_metric([], (now - oldest[2]).total_seconds() if oldest else 0.0)
        yield age
        failed = GaugeMetricFamily(
            "einvoice_failed_orders", "FAILED orders by kind of failure", labels=["kind"]
        )
        for kind, n in kinds.items():
            failed.add_metric([kind], float(n))
        yield failed
        rejected = GaugeMetricFamily(
            "einvoice_rejected_orders",
            "FAILED orders the authority rejected, by DIAN rule code",
            labels=["rule"],
        )
        for rule in rules:
            rejected.add_metric([rule.code], float(rule.orders))
        yield rejected
        audit = CounterMetricFamily(
            "einvoice_audit_rows",
            "Audit rows of documents written, by status (PROCESANDO = one gateway attempt begun)",
            labels=["status"],
        )
        for status, n in sorted(self._audit.items()):
            audit.add_metric([status], float(n))
        yield audit
        refusals = CounterMetricFamily(
            "einvoice_intake_refusals",
            "Input the intake refused, apart from the documents: RECHAZADO_ENTRADA (invalid), "
            "CONFLICTO (another payload under an accepted order id)",
            labels=["status"],
        )
        for status, n in sorted(self._refused.items()):
            refusals.add_metric([status], float(n))
        yield refusals
        yield from _ranges(stored_ranges, now.astimezone(BOGOTA).date())
        duration = HistogramMetricFamily(
            "einvoice_gateway_attempt_seconds",
            "From an attempt's PROCESANDO audit row to its outcome row: the gateway call plus "
            "document building and signing (computed from the audit trail)",
            labels=["outcome"],
        )
        for outcome, histogram in sorted(self._attempts.items()):
            duration.add_metric([outcome], histogram.cumulative(), histogram.total)
        yield duration

    def _queue(self) -> Iterator[Metric]:
        try:
            depth = queue_depth(
                self._settings.broker_url, self._settings.queue, lanes=self._settings.queues[1:]
            )
        except redis.RedisError as exc:
            log.warning("metrics: broker unreachable (%s)", type(exc).__name__)
            return
        if depth is None:
            return
        messages = GaugeMetricFamily(
            "einvoice_queue_messages",
            "Messages in the Redis broker: waiting in the queue, or delivered and not acked",
            labels=["queue", "kind"],
        )
        messages.add_metric([depth.queue, "ready"], float(depth.ready))
        messages.add_metric([depth.queue, "unacked"], float(depth.unacked))
        yield messages


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "metrics",
        help="serve Prometheus metrics read from the database (orders, rejections, latency)",
        description="A Prometheus exporter on http://ADDRESS:PORT/metrics. Every scrape reads "
        "the database (and the Redis queue depth when the broker is Redis).",
    )
    p.add_argument("--port", type=int, help="default METRICS__PORT or 9808")
    p.add_argument(
        "--address",
        help="listen address: default METRICS__ADDRESS or 127.0.0.1 (loopback); 0.0.0.0 in a "
        "container whose port is published",
    )
    p.add_argument(
        "--backfill",
        type=periods.seconds,
        default=periods.seconds("1h"),
        metavar="DURATION",
        help="count audit rows from this long before start (default 1h)",
    )
    p.add_argument(
        "--settle",
        type=periods.seconds,
        default=periods.seconds("10s"),
        metavar="DURATION",
        help="count an audit row once it is this old, so no commit is missed (default 10s)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.logs import configure_logging

    settings = Settings()
    configure_logging(settings, capture=True)
    engine = make_engine(settings.database_url, pool_size=1)
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(engine, settings, args.settle, args.backfill))
    address = args.address or settings.metrics.address
    port = args.port or settings.metrics.port
    try:
        server, thread = start_http_server(port, address, registry)
    except OSError as exc:  # name the address; the command line reports it (status 69)
        engine.dispose()
        raise OSError(exc.errno, exc.strerror, f"{address}:{port}") from None
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info(
        "serving metrics on http://%s:%s/metrics",
        address,
        port,
        extra={"fields": {"address": address, "port": port}},
    )
    while not stop.wait(1.0):
        pass
    server.shutdown()
    thread.join(timeout=5)
    engine.dispose()
    return 0
