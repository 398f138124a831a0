"""Exit statuses of the command line, and the one place where errors become them.

A command returns 0 when it did its job and 1 when it found something a script must act on
(stuck orders, a refused retry or order, a failed health check). Anything else is raised and
turned here into one line on stderr and a status from sysexits(3), so a cron job can tell an
outage from a finding:

    0    done
    1    a finding: stuck orders, a refused retry or order, unhealthy, no document
    2    usage: bad arguments, or the order or API key named does not exist
    65   data error: the input file is not what the command reads (not UTF-8, not JSON,
         an invalid order for `render`)
    66   no input: the input file does not exist or cannot be read
    69   unavailable: the database, the broker, Redis or the authority cannot be reached,
         or the port to listen on is taken
    73   cannot create an output file or folder
    74   other I/O error
    78   configuration: invalid settings, a database without the schema, unusable
         credentials or certificate, an exhausted numbering range
    70   a bug: anything else, with its traceback
    130  interrupted (Ctrl-C)
    a closed pipe (`einvoice status X | head`) ends the command quietly through SIGPIPE, as
    it ends `cat` or `grep` (the shell shows 141)
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pydantic
    from sqlalchemy import exc as sa


class Exit(IntEnum):
    OK = 0
    FINDING = 1
    USAGE = 2
    DATAERR = 65
    NOINPUT = 66
    UNAVAILABLE = 69
    SOFTWARE = 70
    CANTCREAT = 73
    IOERR = 74
    CONFIG = 78
    INTERRUPTED = 130


class CommandError(Exception):
    """A failure a command reports as one line; `status` says which kind."""

    status = Exit.SOFTWARE


class UsageError(CommandError):
    status = Exit.USAGE


class BadInput(CommandError):
    status = Exit.DATAERR


class NoInput(CommandError):
    status = Exit.NOINPUT


class CannotCreate(CommandError):
    status = Exit.CANTCREAT


class Misconfigured(CommandError):
    status = Exit.CONFIG


@dataclass(frozen=True)
class Failure:
    status: Exit
    message: str


def _first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0][:300] if text else ""


def _database(exc: sa.DBAPIError) -> Failure:
    from sqlalchemy.exc import InterfaceError, OperationalError

    detail = _first_line(exc.orig) or type(exc.orig).__name__
    missing_table = getattr(exc.orig, "pgcode", None) == "42P01" or "no such table" in detail
    if missing_table:
        return Failure(
            Exit.CONFIG,
            f"the database has no schema or an old one ({detail}): run `einvoice migrate`",
        )
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        return Failure(
            Exit.UNAVAILABLE,
            f"database unavailable ({detail}): check DATABASE_URL and that the database runs",
        )
    return Failure(Exit.SOFTWARE, f"the database refused the operation ({detail})")


def _settings(exc: pydantic.ValidationError) -> Failure:
    if not exc.title.endswith("Settings"):
        return Failure(Exit.SOFTWARE, f"unexpected validation error in {exc.title}")
    prefix = "API_" if exc.title == "ApiSettings" else ""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):  # input may be a secret
        name = "__".join(str(part) for part in error["loc"]).upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{prefix}{name}: {message}" if name else message)
    return Failure(
        Exit.CONFIG, f"invalid settings: {'; '.join(problems)} (fix the environment or .env)"
    )


def _os_error(exc: OSError) -> Failure:
    where = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or _first_line(exc) or type(exc).__name__
    if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
        return Failure(
            Exit.UNAVAILABLE,
            f"cannot listen on{where}: {reason}: stop what holds it or choose another "
            "(--port, --address)",
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return Failure(Exit.UNAVAILABLE, f"connection failed:{where} {reason}")
    return Failure(Exit.IOERR, f"I/O error on{where or ' a file'}: {reason}")


def _describe(exc: BaseException) -> str:
    return _first_line(exc) or type(exc).__name__


Rule = tuple[type[BaseException], Callable[[Any], Failure]]


def _fixed(status: Exit, what: str, hint: str = "") -> Callable[[BaseException], Failure]:
    return lambda e: Failure(status, f"{what} ({_describe(e)}){hint}")


@cache
def rules() -> tuple[Rule, ...]:
    """Error classes and what each becomes, most specific first. Imported on first use, so
    a command that succeeds does not pay for importing every library it did not touch."""
    import kombu.exceptions
    import pydantic
    import pydantic_settings
    import redis.exceptions
    from httpx import TransportError
    from sqlalchemy import exc as sa

    from adapters.db.issuers import IssuerExists, UnknownIssuer
    from adapters.dian.signer import SigningError
    from adapters.factus.client import FactusNotFound, FactusResponseError
    from adapters.secretbox import SecretsKeyError
    from domain import errors as domain
    from worker.ops.flower import FlowerRefused

    return (
        (CommandError, lambda e: Failure(e.status, str(e))),
        (sa.DBAPIError, _database),
        (sa.NoSuchModuleError, _fixed(Exit.CONFIG, "DATABASE_URL names an unknown driver")),
        (sa.ArgumentError, _fixed(Exit.CONFIG, "invalid DATABASE_URL")),
        (sa.TimeoutError, _fixed(Exit.UNAVAILABLE, "database unavailable")),
        (pydantic.ValidationError, _settings),
        (pydantic_settings.SettingsError, _fixed(Exit.CONFIG, "invalid settings")),
        (
            redis.exceptions.AuthenticationError,
            _fixed(Exit.CONFIG, "Redis refused the credentials", ": check REDIS_URL / BROKER_URL"),
        ),
        (
            redis.exceptions.RedisError,
            _fixed(
                Exit.UNAVAILABLE,
                "Redis unavailable",
                ": check BROKER_URL / REDIS_URL and that Redis runs",
            ),
        ),
        (
            kombu.exceptions.OperationalError,
            _fixed(Exit.UNAVAILABLE, "broker unavailable", ": check BROKER_URL and the broker"),
        ),
        (domain.InvalidOrder, lambda e: Failure(Exit.DATAERR, _describe(e))),
        (domain.UnknownOrder, lambda e: Failure(Exit.USAGE, _describe(e))),
        (domain.OrderConflict, lambda e: Failure(Exit.FINDING, _describe(e))),
        (domain.IssuerRefused, lambda e: Failure(Exit.USAGE, _describe(e))),
        (domain.NumberingError, _fixed(Exit.CONFIG, "numbering", ": see NUMBERING__*")),
        (domain.GatewayMisconfigured, _fixed(Exit.CONFIG, "the authority refuses our setup")),
        (domain.GatewayError, _fixed(Exit.UNAVAILABLE, "the authority is unavailable")),
        (domain.DomainError, lambda e: Failure(Exit.DATAERR, _describe(e))),
        (FactusNotFound, _fixed(Exit.FINDING, "Factus has no such document")),
        (FactusResponseError, _fixed(Exit.UNAVAILABLE, "Factus refused the request")),
        (TransportError, _fixed(Exit.UNAVAILABLE, "connection failed")),
        (SigningError, _fixed(Exit.CONFIG, "the signing certificate cannot be used")),
        (UnknownIssuer, lambda e: Failure(Exit.USAGE, str(e))),
        (IssuerExists, lambda e: Failure(Exit.FINDING, str(e))),
        (SecretsKeyError, lambda e: Failure(Exit.CONFIG, str(e))),
        (FlowerRefused, lambda e: Failure(Exit.CONFIG, f"flower not started: {e}")),
        (OSError, _os_error),
    )


def rule_for(kind: type[BaseException]) -> Callable[[Any], Failure] | None:
    """The first rule whose class `kind` is, or None: an error no rule knows is a bug."""
    return next((rule for cls, rule in rules() if issubclass(kind, cls)), None)


def classify(exc: BaseException) -> Failure:
    rule = rule_for(type(exc))
    if rule is None:
        return Failure(Exit.SOFTWARE, f"internal error: {type(exc).__name__}: {_describe(exc)}")
    return rule(exc)


def run_command(command: Callable[[], int], program: str = "einvoice") -> int:
    """Run `command` (argument parsing included) and turn what it raises into a status."""
    try:
        status = command()
        sys.stdout.flush()  # a closed pipe shows here rather than at interpreter exit
        return status
    except BrokenPipeError:
        _end_by_sigpipe()
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except Exception as exc:
        failure = classify(exc)
        if failure.status is Exit.SOFTWARE:
            traceback.print_exc()
        print(f"{program}: {failure.message}", file=sys.stderr)
        return failure.status
    raise AssertionError("unreachable")


def _end_by_sigpipe() -> None:
    """End as a Unix tool ends when its reader goes away: silently, by SIGPIPE.

    Python ignores SIGPIPE and raises BrokenPipeError instead; standard output is pointed at
    /dev/null first so the interpreter's final flush cannot raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # only if the signal did not end the process
