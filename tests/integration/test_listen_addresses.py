"""Where the metrics exporter and Flower listen: loopback by default, every interface when a
container publishes their port. 127.0.0.2 is a loopback address a socket bound to 127.0.0.1
does not answer on, so it tells the two apart on any machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.integration import ops_fixtures as fx
from tests.integration.ops_fixtures import free_port
from worker.ops.flower import flower_argv

ROOT = Path(__file__).resolve().parents[2]
database_url = fx.database_url
ops_env = fx.ops_env
queue_name = fx.queue_name


@contextmanager
def running(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                httpx.get(ready_url, timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, f"{args[0]} did not start"
                time.sleep(0.2)
        yield
    finally:
        process.terminate()
        process.wait(timeout=20)


def reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return False
    return True


def test_the_metrics_exporter_listens_on_loopback_unless_told(ops_env: str) -> None:
    port = free_port()
    env = {**os.environ, "METRICS__PORT": str(port)}
    env.pop("METRICS__ADDRESS", None)
    with running(["metrics"], env, f"http://127.0.0.1:{port}/metrics"):
        assert not reachable(f"http://127.0.0.2:{port}/metrics")

    port = free_port()
    env = {**env, "METRICS__PORT": str(port), "METRICS__ADDRESS": "0.0.0.0"}
    with running(["metrics"], env, f"http://127.0.0.1:{port}/metrics"):
        response = httpx.get(f"http://127.0.0.2:{port}/metrics", timeout=10)
        assert response.status_code == 200 and "einvoice_database_up 1.0" in response.text


@pytest.mark.parametrize(
    ("env", "flag", "expected"),
    [
        ({}, None, "127.0.0.1"),
        ({"FLOWER_ADDRESS": "0.0.0.0"}, None, "0.0.0.0"),
        ({"FLOWER_ADDRESS": "0.0.0.0"}, "127.0.0.1", "127.0.0.1"),
    ],
)
def test_flower_listens_on_loopback_unless_told(
    env: dict[str, str], flag: str | None, expected: str
) -> None:
    argv = flower_argv({"FLOWER_BASIC_AUTH": "ops:pw", **env}, None, flag, False, False)
    assert f"--address={expected}" in argv


def test_flower_on_every_interface_answers_its_health_check_without_credentials(
    ops_env: str,
) -> None:
    port = free_port()
    env = {**os.environ, "FLOWER_BASIC_AUTH": "ops:s3cret-pass"}
    args = ["flower", "--port", str(port), "--address", "0.0.0.0"]
    with running(args, env, f"http://127.0.0.1:{port}/healthcheck"):
        response = httpx.get(f"http://127.0.0.2:{port}/healthcheck", timeout=10)
        assert (response.status_code, response.text) == (200, "OK")  # the compose probe
        assert httpx.get(f"http://127.0.0.2:{port}/tasks", timeout=10).status_code == 401
