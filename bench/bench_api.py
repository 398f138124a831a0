"""Requests per second accepted by `POST /api/v1/pedidos`, with latency.

    python -m bench.bench_api [--tool wrk|httpx] [--connections 32] [--duration 20]
                              [--workers 2] [--json]

Creates a scratch database on the local PostgreSQL, migrates it, creates an API key, serves
the API with uvicorn (`python -m worker.api --workers N`) on loopback and posts distinct
orders (the seed's dine-in example with a new `id_pedido_origen` each time). Every accepted
order is durable in PostgreSQL (order row + audit row) and its wake-up is on Redis before
the 202 leaves; no worker consumes them. Everything is dropped at the end.
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
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text

from adapters.db.api_keys import SqlApiKeys
from adapters.db.engine import make_engine
from worker.api.schemas import SEED_EXAMPLE
from worker.migrations import upgrade

ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
PATH = "/api/v1/pedidos"
ROOT = Path(__file__).resolve().parent.parent

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


def _admin(sql: str) -> None:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


def run_wrk(url: str, key: str, connections: int, duration: int, threads: int) -> dict[str, Any]:
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


async def _httpx_load(url: str, key: str, connections: int, duration: int) -> dict[str, Any]:
    template = _order_template()
    run = uuid.uuid4().hex[:8]
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, limits=limits, timeout=30
    ) as client:

        async def one_connection(n: int) -> None:
            nonlocal errors
            count = 0
            while time.perf_counter() < stop:
                count += 1
                body = template.replace("__ID__", f"{run}-{n}-{count}")
                started = time.perf_counter()
                response = await client.post(
                    PATH, content=body, headers={"content-type": "application/json"}
                )
                latencies.append(time.perf_counter() - started)
                if response.status_code != 202:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_connection(n) for n in range(connections)))
        seconds = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "tool": f"httpx asyncio, {connections} connections, {duration}s",
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tool", choices=["wrk", "httpx"], default=None)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    tool = args.tool or ("wrk" if shutil.which("wrk") else "httpx")

    name = f"einvoice_bench_{uuid.uuid4().hex[:8]}"
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    _admin(f'CREATE DATABASE "{name}"')
    server: subprocess.Popen[bytes] | None = None
    try:
        upgrade(database_url)
        engine = make_engine(database_url, pool_size=1)
        _, key = SqlApiKeys(engine).create("bench", "900123456")
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROKER_URL": REDIS_URL,
            "QUEUE": queue,
            "GATEWAY": "simulated",
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "worker.api",
                "--port",
                str(port),
                "--no-access-log",
                "--workers",
                str(args.workers),
            ],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        _wait_healthy(url)
        warm = run_wrk if tool == "wrk" else None
        if warm is not None:
            warm(url, key, args.connections, 3, args.threads)
        else:
            asyncio.run(_httpx_load(url, key, args.connections, 3))
        if tool == "wrk":
            result = run_wrk(url, key, args.connections, args.duration, args.threads)
        else:
            result = asyncio.run(_httpx_load(url, key, args.connections, args.duration))
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        engine.dispose()
        result.update(
            uvicorn_workers=args.workers,
            orders_in_database=int(stored),
            cpus=os.cpu_count(),
        )
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        for leftover in client.scan_iter(f"*{queue}*"):
            client.delete(leftover)
        client.close()

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        lat = result["latency_ms"]
        print(
            f"{result['rps']} orders/s accepted (202) over {result['seconds']} s, "
            f"{result['accepted']} accepted, {result['errors']} errors; latency ms "
            f"p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}  "
            f"[{result['tool']}, uvicorn --workers {args.workers}, {result['cpus']} CPUs]"
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
