"""The map from what a command raises to its exit status is total over the errors commands
can meet, and only an error nobody foresaw is reported as a bug (70, with its traceback)."""

from __future__ import annotations

import builtins
import errno
from collections.abc import Iterator

import httpx
import kombu.exceptions
import pydantic
import pydantic_settings
import pytest
import redis.exceptions
from sqlalchemy import exc as sa

from adapters.dian.signer import SigningError
from adapters.factus.client import FactusResponseError
from domain import errors as domain
from worker.api.config import ApiSettings
from worker.cli_exits import (
    CommandError,
    Exit,
    Misconfigured,
    NoInput,
    classify,
    rule_for,
    run_command,
)
from worker.ops.flower import FlowerRefused
from worker.settings import Settings

# The families of errors a command meets: its own, the domain's, the store's, Redis, the
# broker, the settings, HTTP to the authority, signing, Flower, and the operating system.
FAMILIES: list[type[BaseException]] = [
    CommandError,
    domain.DomainError,
    sa.DBAPIError,
    sa.ArgumentError,
    sa.TimeoutError,
    redis.exceptions.RedisError,
    kombu.exceptions.OperationalError,
    pydantic.ValidationError,
    pydantic_settings.SettingsError,
    httpx.TransportError,
    FactusResponseError,
    SigningError,
    FlowerRefused,
    *(c for c in vars(builtins).values() if isinstance(c, type) and issubclass(c, OSError)),
]


def _with_subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _with_subclasses(sub)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda c: c.__qualname__)
def test_every_error_of_each_family_has_a_rule(family: type[BaseException]) -> None:
    unmapped = [c.__qualname__ for c in _with_subclasses(family) if rule_for(c) is None]
    assert not unmapped


def _settings_error() -> pydantic.ValidationError:
    try:
        Settings(worker={"concurrency": "many"}, dian={"cert_password": 42})  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("Settings accepted an invalid value")


def _api_settings_error() -> pydantic.ValidationError:
    try:
        ApiSettings(port="eighty")  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("ApiSettings accepted an invalid value")


class _DriverError(Exception):
    pgcode: str | None = None


def _undefined_table() -> _DriverError:
    error = _DriverError('relation "orders" does not exist')
    error.pgcode = "42P01"
    return error


CASES = [
    (sa.OperationalError("SELECT 1", {}, _DriverError("connection refused")), Exit.UNAVAILABLE),
    (sa.InterfaceError("SELECT 1", {}, _DriverError("connection already closed")), 69),
    (sa.ProgrammingError("SELECT 1", {}, _undefined_table()), Exit.CONFIG),
    (sa.OperationalError("SELECT 1", {}, _DriverError("no such table: orders")), Exit.CONFIG),
    (sa.IntegrityError("INSERT", {}, _DriverError("duplicate key")), Exit.SOFTWARE),
    (sa.ArgumentError("Could not parse SQLAlchemy URL"), Exit.CONFIG),
    (sa.NoSuchModuleError("Can't load plugin: sqlalchemy.dialects:foo"), Exit.CONFIG),
    (redis.exceptions.ConnectionError("Error 111 connecting"), Exit.UNAVAILABLE),
    (redis.exceptions.AuthenticationError("invalid password"), Exit.CONFIG),
    (kombu.exceptions.OperationalError("connection refused"), Exit.UNAVAILABLE),
    (_settings_error(), Exit.CONFIG),
    (_api_settings_error(), Exit.CONFIG),
    (domain.InvalidOrder([domain.FieldError("total_factura", "required", "missing")]), 65),
    (domain.NumberingError("range exhausted"), Exit.CONFIG),
    (domain.GatewayUnavailable("503"), Exit.UNAVAILABLE),
    (domain.OutcomeUnknown("read timeout"), Exit.UNAVAILABLE),
    (domain.GatewayMisconfigured("certificate revoked"), Exit.CONFIG),
    (httpx.ConnectError("connection refused"), Exit.UNAVAILABLE),
    (SigningError("wrong password"), Exit.CONFIG),
    (FlowerRefused("set FLOWER_BASIC_AUTH"), Exit.CONFIG),
    (NoInput("cannot read x.json"), Exit.NOINPUT),
    (Misconfigured("set DIAN__CERT_PATH"), Exit.CONFIG),
    (OSError(errno.EADDRINUSE, "Address already in use", "127.0.0.1:9808"), 69),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), Exit.UNAVAILABLE),
    (PermissionError(errno.EACCES, "Permission denied", "/var/x"), Exit.IOERR),
    (ValueError("something nobody foresaw"), Exit.SOFTWARE),
]


@pytest.mark.parametrize(("error", "status"), CASES, ids=lambda v: type(v).__name__)
def test_each_error_gets_its_status_and_one_line(error: BaseException, status: int) -> None:
    failure = classify(error)
    assert failure.status == status
    assert failure.message and "\n" not in failure.message


def test_settings_errors_name_the_variables_and_never_the_values() -> None:
    message = classify(_settings_error()).message
    assert "WORKER__CONCURRENCY" in message and "DIAN__CERT_PASSWORD" in message
    assert "many" not in message and "42" not in message
    assert "API_PORT" in classify(_api_settings_error()).message


def test_a_bug_keeps_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    def broken() -> int:
        raise KeyError("unexpected")

    assert run_command(broken) == Exit.SOFTWARE
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.rstrip().endswith("einvoice: internal error: KeyError: 'unexpected'")


def test_a_known_failure_is_one_line_and_an_interrupt_is_130(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def down() -> int:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command(down) == 69
    assert capsys.readouterr().err.count("\n") == 1
    assert run_command(interrupted) == 130
    assert run_command(lambda: 1) == 1  # a finding passes through
