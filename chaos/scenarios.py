"""Fault scenarios: each starts a deployment, breaks something on purpose, and returns a Row.

Expected of every one: 0 lost, 0 submitted twice, every order final once the reconciler has
run, with no manual action (workers are only restarted after a SIGKILL, as a supervisor does).
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.authorities import SECRETS, Dian, Factus, Simulated
from chaos.harness import Deployment, Row, until
from chaos.rabbitmq import RabbitServer
from chaos.services import PgCluster
from tests.factories import line, order


@dataclass
class Context:
    cluster: PgCluster
    workdir: Path
    orders: int
    short: bool
    seed: int = 20261122

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.seed}:{name}")

    def drain_timeout(self) -> float:
        return 120 if self.short else 420


def make_orders(prefix: str, n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        lines = [
            line(f"Plato {j}", rng.choice(["1", "2", "0.5", "3"]), rng.choice([4500, 12000, 31900]))
            for j in range(rng.randint(1, 4))
        ]
        out.append(order(f"{prefix}-{i:05d}", lines, tip=rng.choice([0, 0, 1000, 2500])))
    return out


def _deploy(
    ctx: Context, name: str, authority: str = "simulated", broker: str = "redis", **env: str
) -> tuple[Deployment, Any]:
    workdir = ctx.workdir / name
    workdir.mkdir(parents=True, exist_ok=True)
    from chaos.services import RedisServer

    redis_server = RedisServer(workdir)
    redis_server.start()
    auth: Any
    if authority == "dian":
        auth = Dian(workdir, checks=True)
        env = {**auth.env(), **env}
    elif authority == "factus":
        auth = Factus(workdir)
        env = {**auth.env(redis_server.url), **env}
    else:
        auth = Simulated(workdir)
        env = {**auth.env(), **env}
    secrets = {
        "NUMBERING__TECHNICAL_KEY": SECRETS["technical_key"],
        "DIAN__CERT_PASSWORD": SECRETS["cert_password"],
        "DIAN__SOFTWARE_PIN": SECRETS["software_pin"],
        "FACTUS__PASSWORD": SECRETS["factus_password"],
        "FACTUS__CLIENT_SECRET": SECRETS["factus_client_secret"],
    }
    env = {**secrets, **env}
    rabbit = RabbitServer(workdir) if broker == "rabbitmq" else None
    d = Deployment(name, ctx.cluster, workdir, redis_server=redis_server, rabbit=rabbit, **env)
    return d, auth


def _finish(
    ctx: Context,
    d: Deployment,
    auth: Any,
    name: str,
    started: float,
    notes: list[str],
    expect_failed: int = 0,
) -> Row:
    drain = d.wait_drained(started, ctx.drain_timeout())
    submissions = auth.submissions()
    soft = d.count_in_logs("SoftTimeLimitExceeded")
    if soft:
        notes.append(f"{soft} SoftTimeLimitExceeded in logs")
    tracebacks = d.count_in_logs("Traceback")
    if tracebacks:
        notes.append(f"{tracebacks} tracebacks in logs")
    leaks = _leaked_secrets(d)
    if leaks:
        notes.append(f"LEAKED secret values: {leaks}")
    row = d.measure(name, drain, submissions, notes, expect_failed)
    row.ok = row.ok and not leaks
    if name in WORKERS_MUST_SURVIVE:
        exited = {n: k for n, k in d.restarts.items() if n.startswith("w")}
        if exited:
            row.notes.append(f"workers ended on their own: {exited}")
            row.ok = False
    return row


# the broker goes away and comes back: workers reconnect, none of them ends (beat may: it
# stops when it loses its lock, and is started again)
WORKERS_MUST_SURVIVE = {"redis_restart_empty", "rabbitmq_restart"}


def _leaked_secrets(d: Deployment) -> list[str]:
    """Every scenario runs with the known secret values: none may reach a row or a log line."""
    blob = d.log_text()
    for table in ("orders", "documents", "invoice_log", "intake_refusals"):
        blob += "\n".join(r[0] for r in d.query(f"SELECT t::text FROM {table} t"))
    return sorted(name for name, value in SECRETS.items() if value in blob)


def _run(
    ctx: Context,
    name: str,
    body: Callable[[Deployment, Any, list[str]], float],
    authority: str = "simulated",
    expect_failed: int = 0,
    broker: str = "redis",
    **env: str,
) -> Row:
    d, auth = _deploy(ctx, name, authority, broker, **env)
    notes: list[str] = []
    try:
        started = body(d, auth, notes)
        return _finish(ctx, d, auth, name, started, notes, expect_failed)
    finally:
        d.stop_all()
        auth.stop()


# -- 1. workers killed with SIGKILL --------------------------------------------------------


def _kill_loop(
    d: Deployment, rng: random.Random, workers: dict[str, Any], kills: int, notes: list[str]
) -> None:
    mid_call = 0
    done = 0
    # the first calls wait for the workers to start, which takes more than 10 s on a busy machine
    until(lambda: d.states().get("PROCESANDO", 0) > 0 or d.open_orders() == 0, 120, 0.1)
    while done < kills and d.open_orders() > 0:
        if not until(lambda: d.states().get("PROCESANDO", 0) > 0, 10, 0.05):
            break
        time.sleep(rng.uniform(0.05, 0.6))
        name = rng.choice(sorted(workers))
        proc = workers[name]
        in_flight = d.states().get("PROCESANDO", 0)
        children = d.pool_children(proc)
        if children and rng.random() < 0.4:
            victim = rng.choice(children)  # one pool process, mid-task: the parent survives
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                continue
        else:
            d.kill(proc)  # the whole node: main process and every pool child
            time.sleep(rng.uniform(0.0, 1.0))
            workers[name] = d.start_worker(name)
        done += 1
        mid_call += in_flight > 0
    notes.append(f"{done} SIGKILLs, {mid_call} with gateway calls in flight")


def _sigkill_workers(ctx: Context, name: str, broker: str) -> Row:
    rng = ctx.rng(name)

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.enqueue(make_orders(name.upper()[:6], ctx.orders, rng))
        started = time.monotonic()
        workers = {n: d.start_worker(n) for n in ("w1", "w2")}
        d.start_beat()
        _kill_loop(d, rng, workers, 8 if ctx.short else 30, notes)
        return started

    return _run(ctx, name, body, broker=broker, SIMULATED__LATENCY="0.3")


def sigkill_workers(ctx: Context) -> Row:
    return _sigkill_workers(ctx, "sigkill_workers", "redis")


def rabbitmq_sigkill_workers(ctx: Context) -> Row:
    """Consumers killed mid-task on RabbitMQ: the broker hands the unacknowledged message to
    another consumer as soon as the dead one's channel closes (no visibility timeout)."""
    return _sigkill_workers(ctx, "rabbitmq_sigkill_workers", "rabbitmq")


def sigkill_workers_dian(ctx: Context) -> Row:
    rng = ctx.rng("sigkill-dian")
    n = ctx.orders if not ctx.short else 40

    def body(d: Deployment, auth: Dian, notes: list[str]) -> float:
        auth.control(latency=0.4)
        d.enqueue(make_orders("KILLD", n, rng))
        started = time.monotonic()
        workers = {n: d.start_worker(n) for n in ("w1", "w2")}
        d.start_beat()
        _kill_loop(d, rng, workers, 6 if ctx.short else 20, notes)
        return started

    return _run(ctx, "sigkill_workers_dian", body, "dian")


def notes_in_flight(ctx: Context) -> Row:
    """Returns and voids accepted while their sales are still being issued and workers are
    killed mid-call: each note waits for its sale, goes out once, and nothing is credited
    beyond what was sold."""
    rng = ctx.rng("notes")
    n = ctx.orders if not ctx.short else 40

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        sales = make_orders("NOTE", n, rng)
        d.enqueue(sales)
        started = time.monotonic()
        workers = {name: d.start_worker(name) for name in ("w1", "w2")}
        d.start_beat()
        requests: list[tuple[str, dict[str, Any]]] = []
        for i, sale in enumerate(sales):
            order_id = sale["id_pedido_origen"]
            if i % 3 == 0:
                requests.append((order_id, {"id_nota": f"V-{i}", "tipo": "anulacion"}))
            requests.append(
                (
                    order_id,
                    {
                        "id_nota": f"R-{i}",
                        "tipo": "devolucion",
                        "lineas": [{"linea": 1, "cantidad": sale["items"][0]["cantidad"]}],
                    },
                )
            )
        accepted = d.enqueue_notes(requests)
        notes.append(f"{len(accepted)} of {len(requests)} notes accepted while sales were open")
        _kill_loop(d, rng, workers, 6 if ctx.short else 20, notes)
        return started

    return _run(ctx, "notes_in_flight", body, SIMULATED__LATENCY="0.3")


# -- 2. the broker loses everything -----------------------------------------------------------


def _wake_ups_lost(ctx: Context, name: str, broker: str) -> Row:
    """Orders accepted with no worker running, then every queued wake-up dropped (FLUSHALL on
    Redis, a purge on RabbitMQ): the reconciler publishes them again from the database."""
    rng = ctx.rng(name)

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.enqueue(make_orders(name.upper()[:6], ctx.orders, rng))
        if d.rabbit is not None:
            notes.append(f"purge dropped {d.rabbit.purge(d.queue)} queued wake-ups")
        else:
            queued = d.redis_llen()
            d.redis.flushall()
            notes.append(f"FLUSHALL dropped {queued} queued wake-ups")
        started = time.monotonic()
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        return started

    return _run(ctx, name, body, broker=broker)


def redis_flushall(ctx: Context) -> Row:
    return _wake_ups_lost(ctx, "redis_flushall", "redis")


def rabbitmq_purge(ctx: Context) -> Row:
    return _wake_ups_lost(ctx, "rabbitmq_purge", "rabbitmq")


def redis_restart_empty(ctx: Context) -> Row:
    rng = ctx.rng("redis-restart")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        started = time.monotonic()
        d.enqueue(make_orders("RRST", ctx.orders, rng))
        until(lambda: d.states().get("SUCCESS", 0) >= ctx.orders // 5, 60)
        d.redis.kill()
        notes.append(f"redis SIGKILLed with {d.open_orders()} open orders")
        time.sleep(3)
        d.redis.start()  # same port, empty: no persistence
        until(lambda: d.states().get("SUCCESS", 0) >= ctx.orders // 2, 90)
        d.redis.flushall()
        notes.append("then FLUSHALL mid-run")
        return started

    return _run(ctx, "redis_restart_empty", body, SIMULATED__LATENCY="0.05")


def rabbitmq_restart(ctx: Context) -> Row:
    """The broker SIGKILLed while orders flow and started again on its data (durable quorum
    queue, confirmed messages kept), then killed again and started with its data lost."""
    rng = ctx.rng("rabbitmq-restart")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        assert d.rabbit is not None
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        started = time.monotonic()
        d.enqueue(make_orders("RRMQ", ctx.orders, rng))
        rabbit = d.rabbit
        for fraction, restart, how in (
            (5, rabbit.restart, "back on its data"),
            (2, rabbit.restart_empty, "back with its data lost"),
        ):
            until(lambda f=fraction: d.states().get("SUCCESS", 0) >= ctx.orders // f, 90)
            open_orders = d.open_orders()
            t0 = time.monotonic()
            restart()
            notes.append(
                f"rabbitmq SIGKILLed with {open_orders} open orders, {how} in "
                f"{time.monotonic() - t0:.0f} s"
            )
        return started

    return _run(ctx, "rabbitmq_restart", body, broker="rabbitmq", SIMULATED__LATENCY="0.05")


# -- 3. PostgreSQL restarted in the middle of a run -------------------------------------------


def postgres_restart(ctx: Context) -> Row:
    rng = ctx.rng("pg-restart")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        started = time.monotonic()
        d.enqueue(make_orders("PGR", ctx.orders, rng))
        for fraction in (4, 2):
            until(lambda f=fraction: d.states().get("SUCCESS", 0) >= ctx.orders // f, 90)
            t0 = time.monotonic()
            d.cluster.restart("immediate")
            d.engine.dispose()
            notes.append(f"pg restart (immediate) took {time.monotonic() - t0:.1f}s")
        return started

    return _run(ctx, "postgres_restart", body, SIMULATED__LATENCY="0.05")


def database_late(ctx: Context) -> Row:
    rng = ctx.rng("db-late")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.enqueue(make_orders("LATE", ctx.orders, rng))
        d.engine.dispose()
        d.cluster.stop("fast")
        started = time.monotonic()
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        time.sleep(15)
        alive = sum(p.poll() is None for p in d.processes)
        notes.append(f"{alive}/{len(d.processes)} processes alive after 15 s without a database")
        d.cluster.start()
        return started

    return _run(ctx, "database_late", body)


# -- 4. the gateway misbehaves ------------------------------------------------------------------


def _fault_loop(
    auth: Any,
    d: Deployment,
    rng: random.Random,
    faults: list[dict[str, Any]],
    stop: threading.Event,
    notes: list[str],
) -> threading.Thread:
    injected: dict[str, int] = {}

    def loop() -> None:
        while not stop.is_set():
            fault = rng.choice(faults)
            try:
                auth.control(**fault)
            except Exception:  # the simulator is not what is under test here
                continue
            for k, v in fault.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    injected[k] = injected.get(k, 0) + v
            stop.wait(rng.uniform(0.5, 1.5))
        notes.append("injected " + json.dumps(injected, sort_keys=True))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _gateway_faults(
    ctx: Context,
    name: str,
    authority: str,
    faults: list[dict[str, Any]],
    n: int,
    settle: dict[str, Any] | None = None,
    setup: dict[str, Any] | None = None,
    window: float | None = None,
    **env: str,
) -> Row:
    rng = ctx.rng(name)

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        if setup:
            auth.control(**setup)
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        stop = threading.Event()
        started = time.monotonic()
        thread = _fault_loop(auth, d, rng, faults, stop, notes)
        d.enqueue(make_orders(name.upper()[:6], n, rng))
        if window:
            time.sleep(window)
        else:
            until(lambda: d.states().get("SUCCESS", 0) >= int(n * 0.8), ctx.drain_timeout() / 2)
        stop.set()
        thread.join()
        if settle:
            auth.control(**settle)
        return started

    return _run(ctx, name, body, authority, **env)


def _dian_n(ctx: Context) -> int:
    return ctx.orders if not ctx.short else max(30, ctx.orders // 2)


def dian_5xx_and_soap_faults(ctx: Context) -> Row:
    faults = [{"http_errors": 25}, {"server_faults": 15}, {"http_errors": 5, "server_faults": 5}]
    return _gateway_faults(
        ctx,
        "dian_5xx_soap_faults",
        "dian",
        faults,
        _dian_n(ctx),
        settle={"http_errors": 0, "server_faults": 0},
    )


def dian_timeouts_and_drops(ctx: Context) -> Row:
    # timeouts: the answer comes after the client's read timeout (3 s), yet DIAN processes it;
    # drops: DIAN processes and stores it, then closes the socket without an answer.
    faults = [{"timeouts": 4}, {"drops": 6}, {"timeouts": 2, "drops": 2}]
    return _gateway_faults(
        ctx,
        "dian_timeouts_drops",
        "dian",
        faults,
        _dian_n(ctx),
        settle={"timeouts": 0, "drops": 0},
        setup={"timeout_seconds": 4.0},
    )


def dian_malformed(ctx: Context) -> Row:
    faults = [{"malformed": 8}, {"malformed": 3}]
    return _gateway_faults(
        ctx, "dian_malformed_xml", "dian", faults, _dian_n(ctx), settle={"malformed": 0}
    )


def dian_slower_than_soft_limit(ctx: Context) -> Row:
    # soft limit 4 s, read timeout 2.5 s. Answers take 1.5 s: a GetStatus followed by a
    # SendBillSync overruns the soft limit, so the task is interrupted (SoftTimeLimitExceeded)
    # in the middle of the second call; in bursts answers take 4.5 s, longer than the soft limit
    # (the client gives up at its read timeout, and DIAN processes the document anyway).
    n = ctx.orders if not ctx.short else 20
    env = {
        "DIAN__CONNECT_TIMEOUT": "0.5",
        "DIAN__READ_TIMEOUT": "2.5",
        "WORKER__SOFT_TIME_LIMIT": "4",
        "WORKER__HARD_TIME_LIMIT": "5",
        "WORKER__LEASE_SECONDS": "8",
        "WORKER__CONCURRENCY": "8",
    }
    faults = [
        {"http_errors": 4},
        {"latency": 4.5},
        {"latency": 1.5},
        {"latency": 1.5},
        {"drops": 3},
    ]
    return _gateway_faults(
        ctx,
        "dian_slower_than_soft_limit",
        "dian",
        faults,
        n,
        settle={"http_errors": 0, "drops": 0, "latency": 0.0},
        setup={"latency": 1.5, "timeout_seconds": 1.0},
        window=20 if ctx.short else 60,
        **env,
    )


def factus_faults(ctx: Context) -> Row:
    faults = [
        {"fail_next": 20},
        {"hang_next": 3},
        {"drop_next": 4},
        {"revoke_tokens": True},
        {"fail_next": 5, "drop_next": 2},
    ]
    return _gateway_faults(
        ctx,
        "factus_faults",
        "factus",
        faults,
        _dian_n(ctx),
        settle={"fail_next": 0, "hang_next": 0, "drop_next": 0},
        setup={"hang_seconds": 4.0},
    )


# -- 5. two beats and two reconcilers at once ----------------------------------------------------


def two_beats_two_reconcilers(ctx: Context) -> Row:
    rng = ctx.rng("two-beats")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat("beat1")
        d.start_beat("beat2")
        stop = threading.Event()
        passes = [0]

        def reconcilers() -> None:
            while not stop.is_set():
                a = d.start("reconcile", name="reconcile-a")
                b = d.start("reconcile", name="reconcile-b")
                a.wait(60)
                b.wait(60)
                passes[0] += 2

        thread = threading.Thread(target=reconcilers, daemon=True)
        thread.start()
        started = time.monotonic()
        d.enqueue(make_orders("BEATS", ctx.orders, rng))
        until(lambda: d.open_orders() == 0, ctx.drain_timeout())
        stop.set()
        thread.join()
        notes.append(f"2 beats + {passes[0]} concurrent CLI reconcile passes")
        return started

    # pending answers keep orders cycling through EN_ESPERA, so reconcilers always have work
    return _run(
        ctx,
        "two_beats_two_reconcilers",
        body,
        SIMULATED__LATENCY="0.05",
        SIMULATED__PENDING_CHECKS="2",
        SIMULATED__DROP_RATE="0.1",
        WORKER__REPUBLISH_AFTER="1",
        WORKER__RECONCILE_INTERVAL="0.5",
    )


def simulated_drops_and_unavailable(ctx: Context) -> Row:
    rng = ctx.rng("sim-faults")

    def body(d: Deployment, auth: Any, notes: list[str]) -> float:
        d.start_worker("w1")
        d.start_worker("w2")
        d.start_beat()
        started = time.monotonic()
        d.enqueue(make_orders("SIMF", ctx.orders, rng))
        return started

    return _run(
        ctx,
        "simulated_unavailable_drops",
        body,
        SIMULATED__LATENCY="0.02",
        SIMULATED__UNAVAILABLE_RATE="0.3",
        SIMULATED__DROP_RATE="0.2",
    )


SCENARIOS: dict[str, Callable[[Context], Row]] = {
    "sigkill_workers": sigkill_workers,
    "sigkill_workers_dian": sigkill_workers_dian,
    "redis_flushall": redis_flushall,
    "redis_restart_empty": redis_restart_empty,
    "rabbitmq_sigkill_workers": rabbitmq_sigkill_workers,
    "rabbitmq_purge": rabbitmq_purge,
    "rabbitmq_restart": rabbitmq_restart,
    "postgres_restart": postgres_restart,
    "database_late": database_late,
    "simulated_unavailable_drops": simulated_drops_and_unavailable,
    "dian_5xx_soap_faults": dian_5xx_and_soap_faults,
    "dian_timeouts_drops": dian_timeouts_and_drops,
    "dian_malformed_xml": dian_malformed,
    "dian_slower_than_soft_limit": dian_slower_than_soft_limit,
    "factus_faults": factus_faults,
    "two_beats_two_reconcilers": two_beats_two_reconcilers,
    "notes_in_flight": notes_in_flight,
}
SHORT = [  # the broker faults on RabbitMQ too; Redis' restart is tests/e2e/test_broker_restart.py
    "sigkill_workers",
    "redis_flushall",
    "rabbitmq_purge",
    "rabbitmq_restart",
    "postgres_restart",
    "dian_timeouts_drops",
    "two_beats_two_reconcilers",
    "notes_in_flight",
]
