"""The command line under outages and bad input: one line on stderr, a sysexits status, no
traceback. Real processes (`python -m worker ...`), real closed ports, real files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import SEED_ORDER
from tests.integration.ops_fixtures import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (
    "DATABASE_URL",
    "BROKER_URL",
    "REDIS_URL",
    "GATEWAY",
    "QUEUE",
    "LOG_FORMAT",
    "DIAN__CERT_PATH",
    "DIAN__CERT_PASSWORD",
)


def closed_port() -> int:
    """A port nothing listens on (bound once to get a free number, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something else already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def cli(
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    **popen: object,
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "worker", *args],
        env={**base, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd,
        text=True,
        timeout=60,
        **streams,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("einvoice: ")
    return lines[0]


DOWN = {
    "DATABASE_URL": f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/einvoice",
    "BROKER_URL": f"redis://127.0.0.1:{closed_port()}/0",
}

DATABASE_COMMANDS = [
    ["list"],
    ["stuck"],
    ["stats"],
    ["status", "POS-100"],
    ["retry", "POS-100"],
    ["export", "--from", "2026-11-01", "--to", "2026-11-30"],
    ["migrate"],
    ["reconcile"],
    ["documents", "POS-100"],
    ["api-key", "list"],
    ["api-key", "revoke", "1"],
]


@pytest.mark.parametrize("args", DATABASE_COMMANDS, ids=lambda a: " ".join(a))
def test_with_the_database_down_every_command_says_so_in_one_line(args: list[str]) -> None:
    result = cli(args, DOWN)
    line = one_line(result)
    assert result.returncode == 69, result.stderr
    assert "database unavailable" in line and "DATABASE_URL" in line


def test_enqueue_with_the_database_down(tmp_path: Path) -> None:
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(SEED_ORDER))
    result = cli(["enqueue", str(orders)], DOWN)
    assert result.returncode == 69 and "database unavailable" in one_line(result)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "invalid DATABASE_URL"),
        ("nosuchdriver://host/db", "unknown driver"),
    ],
)
def test_a_malformed_database_url_is_a_configuration_error(url: str, expected: str) -> None:
    result = cli(["list"], {"DATABASE_URL": url})
    assert result.returncode == 78 and expected in one_line(result)


def test_a_database_without_the_schema_says_to_migrate(tmp_path: Path) -> None:
    result = cli(["status", "POS-100"], {"DATABASE_URL": f"sqlite:///{tmp_path}/empty.sqlite"})
    assert result.returncode == 78
    assert "einvoice migrate" in one_line(result)


@pytest.mark.parametrize("args", [["list"], ["status", "POS-100"], ["worker"], ["--help"]])
def test_invalid_settings_are_a_configuration_error_that_keeps_secrets(
    args: list[str], tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/einvoice.sqlite",
        "WORKER__CONCURRENCY": "many",
        "DIAN__CERT_PASSWORD": "s3cret-value",
        "DIAN__READ_TIMEOUT": "s3cret-value",  # an invalid value is never echoed back
    }
    result = cli(args, env)
    if args == ["--help"]:  # help needs no settings
        assert result.returncode == 0
        return
    line = one_line(result)
    assert result.returncode == 78
    assert "WORKER__CONCURRENCY" in line and "DIAN__READ_TIMEOUT" in line
    assert "s3cret" not in result.stderr + result.stdout


def test_bad_api_settings_break_only_serve_api(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "API_PORT": "eighty"}
    assert cli(["status", "POS-100"], env).returncode == 78  # no schema, not the API setting
    result = cli(["serve-api"], env)
    assert result.returncode == 78 and "API_PORT" in one_line(result)


@pytest.mark.parametrize("command", ["enqueue", "render"])
def test_a_missing_input_file(command: str, tmp_path: Path) -> None:
    result = cli([command, str(tmp_path / "nope.json"), "--test-certificate"][:2], DOWN)
    assert result.returncode == 66
    assert "nope.json" in one_line(result)


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"{not json", "not JSON"), (b"\xff\xfe{}", "not UTF-8")],
)
def test_input_that_is_not_json_is_a_data_error(
    content: bytes, expected: str, tmp_path: Path
) -> None:
    source = tmp_path / "orders.json"
    source.write_bytes(content)
    for command in (["enqueue", str(source)], ["render", str(source), "--test-certificate"]):
        result = cli(command, DOWN)
        assert result.returncode == 65, (command, result.stderr)
        assert expected in one_line(result)


def test_render_of_an_invalid_order_is_a_data_error(tmp_path: Path) -> None:
    source = tmp_path / "order.json"
    source.write_text(json.dumps({**SEED_ORDER, "total_factura": 5}))
    result = cli(["render", str(source), "--test-certificate"])
    assert result.returncode == 65 and "total_factura" in one_line(result)
    without_certificate = cli(["render", str(source.with_name("x.json"))])
    assert without_certificate.returncode == 66
    source.write_text(json.dumps(SEED_ORDER))
    no_certificate = cli(["render", str(source)])
    assert no_certificate.returncode == 78 and "DIAN__CERT_PATH" in one_line(no_certificate)


def test_render_to_a_zip_that_cannot_be_created(tmp_path: Path) -> None:
    source = tmp_path / "order.json"
    source.write_text(json.dumps(SEED_ORDER))
    target = tmp_path / "missing-folder" / "invoice.zip"
    result = cli(["render", str(source), "--test-certificate", "--zip", str(target)])
    assert result.returncode == 73 and "invoice.zip" in one_line(result)


def test_metrics_on_a_busy_port(listening: int) -> None:
    result = cli(["metrics", "--port", str(listening)], DOWN)
    line = one_line(result)
    assert result.returncode == 69
    assert f"127.0.0.1:{listening}" in line and "in use" in line


def test_serve_api_on_a_busy_port(listening: int, tmp_path: Path) -> None:
    env = {**DOWN, "API_PORT": str(listening)}
    result = cli(["serve-api"], env)
    assert result.returncode == 69 and f"127.0.0.1:{listening}" in one_line(result)


def test_usage_errors(tmp_path: Path) -> None:
    assert cli(["list", "--since", "yesterday-ish"], DOWN).returncode == 2
    assert cli(["export", "--from", "2026-11-02", "--to", "2026-11-01"], DOWN).returncode == 2
    assert cli(["no-such-command"]).returncode == 2


def test_flower_without_credentials_is_a_configuration_error() -> None:
    result = cli(["flower"], {**DOWN, "FLOWER_BASIC_AUTH": "", "FLOWER_AUTH": ""})
    assert result.returncode == 78 and "FLOWER_BASIC_AUTH" in one_line(result)


@pytest.fixture
def env_with_an_order(database_url: str, clean_db: object, tmp_path: Path) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "BROKER_URL": REDIS_URL,
        "QUEUE": f"cli-exits-{os.getpid()}",
        "GATEWAY": "simulated",
    }
    orders = tmp_path / "orders.json"
    orders.write_text(json.dumps(SEED_ORDER))
    accepted = cli(["enqueue", str(orders)], env)
    assert accepted.returncode == 0, accepted.stderr
    return env


def test_export_to_a_path_that_cannot_be_created(
    env_with_an_order: dict[str, str], tmp_path: Path
) -> None:
    for target in (tmp_path / "no-folder" / "audit.jsonl", tmp_path):  # missing; a folder
        result = cli(
            ["export", "--from", "2000-01-01", "--to", "2100-01-01", "-o", str(target)],
            env_with_an_order,
        )
        assert result.returncode == 73, result.stderr
        assert f"cannot create {target}" in one_line(result)


def test_unknown_order_is_a_usage_error_and_a_known_one_is_shown(
    env_with_an_order: dict[str, str],
) -> None:
    assert cli(["status", "POS-100"], env_with_an_order).returncode == 0
    unknown = cli(["status", "POS-404"], env_with_an_order)
    assert unknown.returncode == 2 and "no order" in unknown.stderr


def test_a_closed_pipe_ends_the_command_quietly(env_with_an_order: dict[str, str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written, as `| head -0`
    try:
        result = cli(["status", "POS-100", "--json"], env_with_an_order, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == -signal.SIGPIPE, result.stderr
    assert result.stderr == ""
