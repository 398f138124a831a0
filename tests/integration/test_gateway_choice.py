"""A deployment that looks like production must say which gateway it issues through: the
simulated default is for the demo and first tries only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
POSTGRES = "postgresql+psycopg2://einvoice_app:pw@127.0.0.1:5432/einvoice"
REDIS = "redis://127.0.0.1:6379/11"
EMBEDDED_BROKER = "sqla+sqlite:///var/broker.sqlite"


@pytest.fixture(autouse=True)
def no_gateway_from_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GATEWAY", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file either


@pytest.mark.parametrize(
    ("database_url", "broker_url", "explicit", "refused"),
    [
        (POSTGRES, REDIS, {}, True),
        (POSTGRES, "amqp://guest:guest@127.0.0.1:5672//", {}, True),
        (POSTGRES, REDIS, {"gateway": "simulated"}, False),  # chosen: a test deployment
        (POSTGRES, REDIS, {"gateway": "dian"}, False),
        ("sqlite:///var/einvoice.sqlite", EMBEDDED_BROKER, {}, False),  # the demo's defaults
        (POSTGRES, EMBEDDED_BROKER, {}, False),
        ("sqlite:///var/einvoice.sqlite", REDIS, {}, False),
    ],
)
def test_which_deployments_must_name_their_gateway(
    database_url: str, broker_url: str, explicit: dict[str, str], refused: bool
) -> None:
    settings = Settings(database_url=database_url, broker_url=broker_url, **explicit)  # type: ignore[arg-type]
    problem = settings.implicit_gateway_problem()
    assert (problem is not None) == refused
    if problem:
        assert "GATEWAY" in problem and "dian" in problem and "factus" in problem


def test_a_gateway_from_the_env_file_counts_as_chosen(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY=simulated\n")
    settings = Settings(database_url=POSTGRES, broker_url=REDIS)
    assert settings.implicit_gateway_problem() is None


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "worker", "worker"],
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker"],
    ],
)
def test_a_worker_refuses_to_start_on_postgresql_and_redis_without_a_gateway(
    command: list[str], tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY"}
    env |= {"DATABASE_URL": POSTGRES, "BROKER_URL": REDIS, "LOG_FORMAT": "json"}
    env["PYTHONPATH"] = str(ROOT)
    started = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert started.returncode == 78  # EX_CONFIG
    assert "worker not started: GATEWAY is not set" in started.stderr
    assert "Traceback" not in started.stderr
