"""Throughput of the whole pipeline against a bare Celery baseline, measured in the same run.

    python -m bench.pipeline [--orders 5000] [--gateway simulated|dian] [--pool prefork]
                             [--concurrency 2] [--profile] [--json]

Pipeline: N orders are accepted by the producer (durable rows + Redis wake-ups) before any
worker runs; then one worker (`python -m worker worker`) starts and drains them through the
gateway into PostgreSQL (claim + PROCESANDO row, gateway call, final state + SUCCESS row).
Baseline: N wake-ups pre-published to a bare Celery app (`bench.baseline`) whose task writes
two rows in one transaction, same broker, database, pool and concurrency.

Two rates per side: `wall` from the moment the worker logs that it is ready to the moment the
last order is final (polled every 0.1 s), and `steady` from the database's own timestamps of
the first and last final row (start-up and polling excluded). Ratios use `steady`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

from bench import baseline
from bench.common import (
    REDIS_URL,
    Processes,
    flush_redis,
    py_spy_top,
    queue_name,
    rss_tree_mb,
    scratch_database,
    span_rate,
    wait_count,
    wait_for_log,
    worker_argv,
)
from bench.producer import produce_parallel, producer_env
from bench.wire import TurnCounter, port_of

FINAL_SQL = "SELECT count(*) FROM documents WHERE state IN ('SUCCESS', 'FAILED')"
RATE_SQL = (
    "SELECT count(*), min(finished_at), max(finished_at) FROM documents "
    "WHERE state IN ('SUCCESS', 'FAILED')"
)
TECHNICAL_KEY = "fc8eac422eba16e22ffd8c6f94b3f40a6e38162c"
READY = "ready."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stat(pid: int) -> list[int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(f) for f in fields[11:15]]  # utime, stime, cutime, cstime


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds consumed so far by `pids` (from /proc/<pid>/stat)."""
    import os

    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += sum(_stat(pid)[:2])
    return total / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(roots: list[int]) -> float:
    """CPU seconds of each root, of the children it has reaped (pool processes replaced after
    `worker_max_tasks_per_child`), and of its live descendants."""
    import os

    total = 0
    for root in roots:
        with contextlib.suppress(OSError):
            total += sum(_stat(root))
        for key in rss_tree_mb(root):
            pid = int(key.split()[0])
            if pid != root:
                with contextlib.suppress(OSError):
                    total += sum(_stat(pid)[:2])
    return total / os.sysconf("SC_CLK_TCK")


class _ConnectionPeak(threading.Thread):
    """The most connections our database had open at once, sampled every 0.25 s, and the CPU
    each backend had used when last seen: a backend whose connection closed during the run
    (a pool process replaced after `worker_max_tasks_per_child`) is gone from /proc by the
    end, and its CPU would otherwise be missed."""

    def __init__(self, engine: Engine, name: str) -> None:
        super().__init__(daemon=True)
        self._engine, self._name = engine, name
        self._stop_event = threading.Event()
        self.value = 0
        self.backend_cpu: dict[int, float] = {}

    def run(self) -> None:
        sql = text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
        )
        while not self._stop_event.wait(0.25):
            with contextlib.suppress(Exception), self._engine.connect() as conn:
                pids = [int(p) for p in conn.execute(sql, {"n": self._name}).scalars()]
                self.value = max(self.value, len(pids))  # not counting this sampler
                for pid in pids:
                    self.backend_cpu[pid] = cpu_seconds([pid])

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=2)


def _postgres_pids(database_url: str) -> list[int]:
    engine = create_engine(database_url)
    name = database_url.rsplit("/", 1)[1]
    with engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"),
            {"n": name},
        ).scalars()
        result = [int(p) for p in pids]
    engine.dispose()
    return result


RABBITMQ_PID_FILE = Path("/var/lib/rabbitmq/mnesia/rabbit@localhost.pid")


def rabbitmq_pid() -> int | None:
    """The machine's RabbitMQ node, for its CPU share; None when it cannot be read."""
    try:
        return int(RABBITMQ_PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def delete_amqp_queue(broker_url: str, queue: str) -> None:
    """The benchmark's quorum queue and exchange, off the shared broker."""
    from kombu.connection import Connection

    with contextlib.suppress(Exception), Connection(broker_url) as conn:  # type: ignore[no-untyped-call]
        channel = conn.channel()
        channel.queue_delete(queue)
        channel.exchange_delete(queue)


def _redis_pid() -> int:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


# Experiment only: the simulator as it would run with TCP_NODELAY on its sockets. Its handler
# writes the headers and the body in two sends; with Nagle on, the body waits for the client's
# delayed ACK (~40 ms) on every request after the first on a keep-alive connection.
NODELAY_SIMULATOR = (
    "import sys; from adapters.dian.simulator.app import _Handler; "
    "_Handler.disable_nagle_algorithm = True; "
    "from adapters.dian.simulator.__main__ import main; main(sys.argv[1:])"
)


@contextlib.contextmanager
def dian_simulator(procs: Processes, nodelay: bool = False) -> Iterator[str]:
    """The DIAN simulator in its own process, checks off, no latency."""
    import sys

    port = _free_port()
    entry = ["-c", NODELAY_SIMULATOR] if nodelay else ["-m", "adapters.dian.simulator"]
    proc = procs.start(
        [
            sys.executable,
            *entry,
            "--port",
            str(port),
            "--no-checks",
            "--technical-key",
            f"SETP={TECHNICAL_KEY}",
        ],
        {},
        "dian-simulator",
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{url}/_stats", timeout=1)
            break
        time.sleep(0.1)
    try:
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()


def gateway_env(
    gateway: str, workdir: Path, dian_url: str | None, latency: float
) -> dict[str, str]:
    if gateway == "simulated":
        return {
            "GATEWAY": "simulated",
            "SIMULATED__STATE_PATH": str(workdir / "authority.sqlite"),
            "SIMULATED__LATENCY": str(latency),
        }
    from adapters.dian.devcert import make_test_pkcs12

    cert = workdir / "issuer.p12"
    cert.write_bytes(make_test_pkcs12("900123456", "bench"))
    assert dian_url is not None
    return {
        "GATEWAY": "dian",
        "DIAN__ENDPOINT": dian_url,
        "DIAN__CERT_PATH": str(cert),
        "DIAN__CERT_PASSWORD": "bench",
        "DIAN__CONNECT_TIMEOUT": "2",
        "DIAN__READ_TIMEOUT": "20",
        "ISSUER__NIT": "900123456",
    }


def _measure(
    procs: Processes,
    names: list[str],
    roots: list[int],
    database_url: str,
    count_sql: str,
    rate_sql: str,
    orders: int,
    timeout: float,
    profile_dir: Path | None,
    extra_pids: dict[str, int] | None = None,
    relays: dict[str, TurnCounter] | None = None,
) -> dict[str, Any]:
    ready = max(wait_for_log(procs, name, READY) for name in names)
    for relay in (relays or {}).values():
        relay.reset()  # from the worker's first order on, not its start-up
    watched = {
        "postgres": _postgres_pids(database_url),
        "redis": [_redis_pid()],
        **{k: [v] for k, v in (extra_pids or {}).items()},
    }
    cpu_before = {k: cpu_seconds(v) for k, v in watched.items()}
    backends_before = {pid: cpu_seconds([pid]) for pid in watched["postgres"]}
    worker_before = tree_cpu_seconds(roots)
    engine = create_engine(database_url)
    collect = None
    if profile_dir:
        # skip the first tenth (children warming up: certificate, WSDL, connections)
        wait_count(engine, count_sql, orders // 10, timeout)
        live = [int(k.split()[0]) for root in roots for k in rss_tree_mb(root)]
        collect = py_spy_top(live, 10.0, profile_dir / f"{names[0]}.txt")
    peak = _ConnectionPeak(engine, database_url.rsplit("/", 1)[1])
    peak.start()
    done, finished = wait_count(engine, count_sql, orders, timeout)
    peak.stop()
    watched["postgres"] = sorted(set(watched["postgres"]) | set(_postgres_pids(database_url)))
    elapsed = finished - ready
    cpu = {"worker": round(tree_cpu_seconds(roots) - worker_before, 2)}
    cpu.update({k: round(cpu_seconds(v) - cpu_before[k], 2) for k, v in watched.items()})
    # each backend's CPU now, or when last seen if it ended during the run
    last = {**peak.backend_cpu, **{p: cpu_seconds([p]) for p in _postgres_pids(database_url)}}
    for pid in backends_before:
        last.setdefault(pid, backends_before[pid])
    used = sum(max(0.0, v - backends_before.get(pid, 0.0)) for pid, v in last.items())
    cpu["postgres"] = round(used, 2)
    cpu_ms = sum(cpu.values()) * 1000 / max(1, done)
    memory = {k: v for root in roots for k, v in rss_tree_mb(root).items()}
    peaks = [_peak_rss_mb(int(k.split()[0])) for k in memory]
    steady = span_rate(engine, rate_sql)
    engine.dispose()
    result: dict[str, Any] = {
        "orders": orders,
        "final": done,
        "complete": done >= orders,
        "wall_s": round(elapsed, 3),
        "wall_per_second": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        "steady_per_second": steady["per_second"],
        "steady_span_s": steady["span_s"],
        "cpu_s": cpu,
        "cpu_ms_per_order": round(cpu_ms, 2),
        # what the same CPU cost would allow on 2 otherwise idle cores
        "projected_idle_per_second": round(2000 / cpu_ms, 1) if cpu_ms else 0.0,
        "cpu_share_pct": {k: round(v * 100 / max(1e-9, elapsed * 2), 1) for k, v in cpu.items()},
        "rss_mb": memory,
        "rss_total_mb": round(sum(memory.values()), 1),
        # the most each process ever held (VmHWM), summed, and the largest one
        "peak_rss_total_mb": round(sum(peaks), 1),
        "peak_rss_process_mb": round(max(peaks, default=0.0), 1),
        "postgres_connections_peak": peak.value,
    }
    result["cpu_ms_per_order_by_process"] = {
        k: round(v * 1000 / max(1, done), 3) for k, v in cpu.items()
    }
    if relays:
        result["round_trips_per_order"] = {
            k: round(r.turns / max(1, done), 2) for k, r in relays.items()
        }
    if collect:
        result["profile"] = collect()
    return result


def _peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def counted(env: dict[str, str], keys: dict[str, str]) -> Iterator[dict[str, TurnCounter]]:
    """`env` rewritten so that the URLs under `keys` (name: variable) go through relays that
    count round trips (bench.wire); yields the relays by name."""
    with contextlib.ExitStack() as stack:
        relays = {
            name: stack.enter_context(TurnCounter(port_of(env[variable])))
            for name, variable in keys.items()
        }
        for name, variable in keys.items():
            env[variable] = relays[name].through(env[variable])
        yield relays


def run_pipeline(
    orders: int,
    gateway: str = "simulated",
    pool: str = "prefork",
    concurrency: int = 2,
    latency: float = 0.0,
    timeout: float = 600.0,
    profile: bool = False,
    extra_env: dict[str, str] | None = None,
    workers: int = 1,
    simulator_nodelay: bool = False,
    round_trips: bool = False,
) -> dict[str, Any]:
    """Pre-enqueue `orders`, start `workers` worker processes, time the drain. `round_trips`:
    the workers reach PostgreSQL and the broker through relays that count round trips (the
    relays add a little latency: rates of such a run are not compared)."""
    with (
        tempfile.TemporaryDirectory(prefix="einvoice-bench-") as tmp,
        scratch_database() as url,
    ):
        workdir = Path(tmp)
        procs = Processes(workdir)
        queue = queue_name(gateway)
        try:
            extra: dict[str, int] = {}
            broker_url = (extra_env or {}).get("BROKER_URL", "")
            if broker_url.startswith("amqp"):
                rabbit = rabbitmq_pid()
                if rabbit:
                    extra["rabbitmq"] = rabbit
                stack_cleanup = delete_amqp_queue
            else:
                stack_cleanup = None
            with contextlib.ExitStack() as stack:
                if stack_cleanup is not None:
                    stack.callback(stack_cleanup, broker_url, queue)
                dian_url = None
                if gateway == "dian":
                    dian_url = stack.enter_context(dian_simulator(procs, simulator_nodelay))
                    extra["dian_simulator"] = procs.started[-1].pid
                env = {
                    **producer_env(url, queue, gateway),
                    **gateway_env(gateway, workdir, dian_url, latency),
                    "LOG_LEVEL": "INFO",
                    "WORKER__POOL": pool,
                    "WORKER__CONCURRENCY": str(concurrency),
                    **(extra_env or {}),
                }
                start = time.perf_counter()
                producers = 2
                produced = produce_parallel(env, "PIPE", orders - producers, producers)
                enqueue_s = time.perf_counter() - start
                relays: dict[str, TurnCounter] = {}
                if round_trips:
                    env = dict(env)
                    wired = {"postgres": "DATABASE_URL", "broker": "BROKER_URL"}
                    relays = stack.enter_context(counted(env, wired))
                names = [f"worker{n}" for n in range(1, workers + 1)]
                roots = [
                    procs.start(worker_argv(pool, concurrency, queue, name=n), env, n).pid
                    for n in names
                ]
                result = _measure(
                    procs,
                    names,
                    roots,
                    url,
                    FINAL_SQL,
                    RATE_SQL,
                    orders,
                    timeout,
                    workdir if profile else None,
                    extra,
                    relays,
                )
                result["states"] = _states(url)
                result["enqueue"] = {**produced, "seconds_with_startup": round(enqueue_s, 2)}
                if gateway == "dian" and dian_url:
                    stats = httpx.get(f"{dian_url}/_stats", timeout=5).json()
                    subs = stats.get("submissions", {})
                    result["authority_duplicates"] = sum(1 for n in subs.values() if n > 1)
                if not result["complete"]:
                    result["worker_log_tail"] = procs.log(names[0])
        finally:
            procs.stop()
            flush_redis()
    return {
        "gateway": gateway,
        "pool": pool,
        "concurrency": concurrency,
        "workers": workers,
        "simulator_nodelay": simulator_nodelay,
        **result,
    }


def run_baseline(
    orders: int,
    pool: str = "prefork",
    concurrency: int = 2,
    timeout: float = 600.0,
    profile: bool = False,
    round_trips: bool = False,
) -> dict[str, Any]:
    """Pre-publish `orders` wake-ups to the bare app, start its worker, time the drain
    (`round_trips`: as for `run_pipeline`)."""
    with (
        tempfile.TemporaryDirectory(prefix="einvoice-bench-") as tmp,
        scratch_database(migrate=False) as url,
    ):
        workdir = Path(tmp)
        procs = Processes(workdir)
        queue = queue_name("baseline")
        try:
            baseline.create_tables(url)
            publish_s = baseline.publish(REDIS_URL, queue, orders)
            env = baseline.env(REDIS_URL, url, queue)
            relays = contextlib.ExitStack()
            wired = {"postgres": "BENCH_DATABASE_URL", "broker": "BENCH_BROKER_URL"}
            counters = relays.enter_context(counted(env, wired)) if round_trips else {}
            worker = procs.start(
                worker_argv(pool, concurrency, queue, app="bench.baseline"), env, "baseline"
            )
            result = _measure(
                procs,
                ["baseline"],
                [worker.pid],
                url,
                baseline.COUNT_SQL,
                baseline.RATE_SQL,
                orders,
                timeout,
                workdir if profile else None,
                relays=counters,
            )
            result["publish_per_second"] = round(orders / publish_s, 1)
        finally:
            procs.stop()
            relays.close()
            flush_redis()
    return {"pool": pool, "concurrency": concurrency, **result}


def _states(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT state, count(*) FROM documents GROUP BY state")).all()
        audit = conn.execute(text("SELECT status, count(*) FROM invoice_log GROUP BY status")).all()
    engine.dispose()
    return {**{s: int(n) for s, n in rows}, **{f"audit {s}": int(n) for s, n in audit}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--gateway", default="simulated", choices=["simulated", "dian"])
    parser.add_argument("--pool", default="prefork", choices=["prefork", "threads", "solo"])
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--simulator-nodelay",
        action="store_true",
        help="experiment: the DIAN simulator with TCP_NODELAY (see NODELAY_SIMULATOR)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the workers")
    parser.add_argument(
        "--round-trips", action="store_true", help="count round trips (bench.wire) per order"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {
        "pipeline": run_pipeline(
            args.orders,
            args.gateway,
            args.pool,
            args.concurrency,
            profile=args.profile,
            simulator_nodelay=args.simulator_nodelay,
            round_trips=args.round_trips,
        )
    }
    if not args.no_baseline:
        out["baseline"] = run_baseline(
            args.orders,
            args.pool,
            args.concurrency,
            profile=args.profile,
            round_trips=args.round_trips,
        )
        out["ratio"] = round(
            out["pipeline"]["steady_per_second"] / max(1e-9, out["baseline"]["steady_per_second"]),
            3,
        )
    print(json.dumps(out, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
