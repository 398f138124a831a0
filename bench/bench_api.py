"""Requests per second accepted by `POST /api/v1/pedidos`, beside a bare FastAPI baseline.

    python -m bench.bench_api [--tool asyncio|wrk] [--connections 16] [--duration 10]
                              [--workers 2] [--json]

Creates a scratch database on the local PostgreSQL, migrates it, creates an API key, and
measures two servers in turn, each served by uvicorn the same way (`worker.api`'s
`UVICORN_OPTIONS`, `--workers N`) on loopback and loaded by the same client:

- the baseline (`bench.api_baseline`): FastAPI parsing the body and inserting it as one JSONB
  row per request;
- the intake (`python -m worker.api --no-access-log`): API key, issuer check, validation, the
  order and its audit row stored durably, its wake-up published on Redis before the 202.

Each request is a distinct order (the seed's dine-in example with a new `id_pedido_origen`).
For each server: requests/s, latency percentiles, and the server's CPU (every uvicorn process,
from /proc) per request; then the intake's ratio to the baseline. The client is a plain
asyncio HTTP/1.1 client on keep-alive connections (light, so the two cores go to the servers),
or wrk when asked for. No worker consumes the wake-ups. Everything is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import redis
from sqlalchemy import text

from adapters.db.api_keys import SqlApiKeys
from adapters.db.engine import make_engine
from bench.api_baseline import create_table
from bench.common import REDIS_URL, ROOT, scratch_database
from bench.pipeline import tree_cpu_seconds
from worker.api.schemas import SEED_EXAMPLE

PATH = "/api/v1/pedidos"

LUA = """
local counter = 0
local prefix = ""
local threads = {}
local key = "%(key)s"
local body = [==[%(body)s]==]

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = "%(run)s-" .. tid
end

function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  return wrk.format("POST", "%(path)s",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key},
    body:gsub("__ID__", id))
end

function done(summary, latency, requests)
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"duration_us\\": %%d, \\"non_2xx\\": %%d, "
    .. "\\"socket_errors\\": %%d, \\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d, "
    .. "\\"max_us\\": %%d, \\"mean_us\\": %%d}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _order_template() -> str:
    order = dict(SEED_EXAMPLE)
    order["id_pedido_origen"] = "__ID__"
    return json.dumps(order, separators=(",", ":"))


def run_wrk(
    url: str, key: str, connections: int, duration: int, threads: int = 2
) -> dict[str, Any]:
    script = LUA % {
        "key": key,
        "body": _order_template(),
        "run": uuid.uuid4().hex[:8],
        "path": PATH,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "-s", f.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(f.name)
    match = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk gave no result:\n{out}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    return {
        "tool": f"wrk -t{threads} -c{connections} -d{duration}s",
        "requests": raw["requests"],
        "accepted": raw["requests"] - raw["non_2xx"],
        "errors": raw["non_2xx"] + raw["socket_errors"],
        "seconds": round(seconds, 2),
        "rps": round((raw["requests"] - raw["non_2xx"]) / seconds, 1),
        "latency_ms": {
            name: round(raw[f"{name}_us"] / 1000, 2) for name in ("p50", "p90", "p99", "max")
        },
    }


async def _asyncio_load(url: str, key: str, connections: int, duration: int) -> dict[str, Any]:
    """`connections` keep-alive connections, each posting orders one after another."""
    host, port = url.removeprefix("http://").split(":")
    template = _order_template()
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def one_connection(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        count = 0
        try:
            while time.perf_counter() < stop:
                count += 1
                body = template.replace("__ID__", f"{run}-{n}-{count}").encode()
                request = (
                    f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\nX-API-Key: {key}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_connection(n) for n in range(connections)))
    seconds = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "tool": f"asyncio client, {connections} connections, {duration}s",
        "requests": len(latencies),
        "accepted": len(latencies) - errors,
        "errors": errors,
        "seconds": round(seconds, 2),
        "rps": round((len(latencies) - errors) / seconds, 1),
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": round(ordered[-1] * 1000, 2),
            "mean": round(statistics.fmean(ordered) * 1000, 2),
        },
    }


def run_asyncio(url: str, key: str, connections: int, duration: int) -> dict[str, Any]:
    return asyncio.run(_asyncio_load(url, key, connections, duration))


def measure(
    argv: list[str],
    env: dict[str, str],
    load: Callable[[str, str, int, int], dict[str, Any]],
    key: str,
    connections: int,
    duration: int,
) -> dict[str, Any]:
    """Serve `argv` (given `--port`), warm it up for 2 s, then load it for `duration` s and
    count the CPU every process of the server spent meanwhile."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*argv, "--port", str(port)],
        env={**os.environ, **env},
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        _wait_healthy(url)
        load(url, key, connections, 2)
        cpu = tree_cpu_seconds([server.pid])
        result = load(url, key, connections, duration)
        cpu = tree_cpu_seconds([server.pid]) - cpu
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, result["requests"]), 2)
    return result


def run(
    connections: int = 16, duration: int = 10, workers: int = 2, tool: str = "asyncio"
) -> dict[str, Any]:
    """The baseline, then the intake, in one scratch database; their figures and ratios."""
    load = run_wrk if tool == "wrk" else run_asyncio
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with scratch_database() as database_url:
        engine = make_engine(database_url, pool_size=1)
        try:
            _, key = SqlApiKeys(engine).create("bench", "900123456")
            create_table(engine)
            served = ["--workers", str(workers)]
            baseline = measure(
                [sys.executable, "-m", "bench.api_baseline", *served],
                {"BENCH_DATABASE_URL": database_url},
                load,
                key,
                connections,
                duration,
            )
            env = {
                "DATABASE_URL": database_url,
                "BROKER_URL": REDIS_URL,
                "QUEUE": queue,
                "GATEWAY": "simulated",
                "LOG_LEVEL": "WARNING",
            }
            intake = measure(
                [sys.executable, "-m", "worker.api", "--no-access-log", *served],
                env,
                load,
                key,
                connections,
                duration,
            )
            with engine.connect() as conn:
                intake["orders_in_database"] = conn.execute(
                    text("SELECT count(*) FROM orders")
                ).scalar_one()
                baseline["rows_in_database"] = conn.execute(
                    text("SELECT count(*) FROM baseline_requests")
                ).scalar_one()
        finally:
            engine.dispose()
            client = redis.Redis.from_url(REDIS_URL)
            for leftover in client.scan_iter(f"*{queue}*"):
                client.delete(leftover)
            client.close()
    return {
        "baseline": baseline,
        "intake": intake,
        "ratio_rps": round(intake["rps"] / baseline["rps"], 3) if baseline["rps"] else None,
        "ratio_cpu": round(
            intake["server_cpu_ms_per_request"] / baseline["server_cpu_ms_per_request"], 2
        )
        if baseline["server_cpu_ms_per_request"]
        else None,
        "connections": connections,
        "uvicorn_workers": workers,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", choices=["asyncio", "wrk"], default="asyncio")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.tool == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed")
    result = run(args.connections, args.duration, args.workers, args.tool)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for name in ("baseline", "intake"):
        r = result[name]
        lat = r["latency_ms"]
        print(
            f"{name:<9} {r['rps']:>8.1f} req/s  p50 {lat['p50']:>7.2f} ms  "
            f"p99 {lat['p99']:>7.2f} ms  server CPU {r['server_cpu_ms_per_request']:>5.2f} ms/req  "
            f"({r['accepted']} accepted, {r['errors']} errors)"
        )
    print(
        f"intake / baseline: {result['ratio_rps']:.2f} x the requests/s, "
        f"{result['ratio_cpu']:.2f} x the CPU per request  [{result['baseline']['tool']}, "
        f"uvicorn --workers {args.workers}, {result['cpus']} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}]"
    )
    return 0


def _wait_healthy(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API did not come up")


if __name__ == "__main__":
    raise SystemExit(main())
