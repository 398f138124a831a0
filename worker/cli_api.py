"""CLI commands of the HTTP intake: `serve-api` and `api-key create|revoke|list`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from worker.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from adapters.db.api_keys import SqlApiKeys


def cmd_serve_api(args: argparse.Namespace) -> int:
    from worker.api.__main__ import serve
    from worker.api.config import ApiSettings

    defaults = ApiSettings()  # read here, not when the parser is built: a bad API_* setting
    serve(  # must not break every other command
        args.host or defaults.host,
        args.port or defaults.port,
        args.workers or defaults.workers,
        access_log=not args.no_access_log,
    )
    return 0


def _engine() -> Engine:
    from adapters.db.engine import make_engine

    return make_engine(Settings().database_url, pool_size=1)


def _keys(engine: Engine | None = None) -> SqlApiKeys:
    from adapters.db.api_keys import SqlApiKeys

    return SqlApiKeys(engine or _engine())


def cmd_key_create(args: argparse.Namespace) -> int:
    settings = Settings()
    issuer = args.issuer or settings.issuer.nit
    if not issuer.isdigit():
        print(f"--issuer must be a NIT (digits only), got {issuer!r}", file=sys.stderr)
        return 2
    from worker.issuers import IssuerDirectory

    engine = _engine()
    setup = IssuerDirectory(settings, engine).setup(issuer)
    refusal = setup.refusal
    if refusal is not None and setup.incomplete:
        print(f"warning: {refusal}; its orders are refused until then", file=sys.stderr)
    elif refusal is not None:
        print(f"api-key create: --issuer: {refusal}", file=sys.stderr)
        return 2
    client, key = _keys(engine).create(args.name, issuer)
    print(
        f"created API key {client.id} ({client.name}) for issuer {client.issuer}", file=sys.stderr
    )
    print("store it now: it is shown only once and kept only as a hash", file=sys.stderr)
    print(key)
    return 0


def cmd_key_revoke(args: argparse.Namespace) -> int:
    if _keys().revoke(args.id):
        print(
            f"revoked API key {args.id}; running intakes refuse it within "
            "API_KEY_CACHE_SECONDS (5 s unless set)"
        )
        return 0
    print(f"no active API key with id {args.id}", file=sys.stderr)
    return 1


def cmd_key_list(args: argparse.Namespace) -> int:
    clients = _keys().all()
    if not clients:
        print("no API keys")
    for c in clients:
        revoked = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "active"
        print(f"{c.id:>4}  {c.name:<30}  issuer {c.issuer:<12}  {revoked}")
    return 0


def add_api_commands(sub: Any) -> None:
    """Register `serve-api` and `api-key` on the main parser's subcommands."""
    p = sub.add_parser("serve-api", help="serve the HTTP intake for POS systems (uvicorn)")
    p.add_argument("--host", help="default API_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, help="default API_PORT or 8000")
    p.add_argument("--workers", type=int, help="default API_WORKERS or 1")
    p.add_argument("--no-access-log", action="store_true")
    p.set_defaults(func=cmd_serve_api)

    p = sub.add_parser("api-key", help="create, revoke or list the POS clients' API keys")
    keys = p.add_subparsers(dest="api_key_command", required=True)
    c = keys.add_parser("create", help="create a key and print it once")
    c.add_argument("--name", required=True, help="which POS client holds it")
    c.add_argument("--issuer", help="issuer NIT its orders belong to (default ISSUER__NIT)")
    c.set_defaults(func=cmd_key_create)
    r = keys.add_parser("revoke", help="revoke a key by its id")
    r.add_argument("id", type=int)
    r.set_defaults(func=cmd_key_revoke)
    ls = keys.add_parser("list", help="list keys (never the keys themselves)")
    ls.set_defaults(func=cmd_key_list)
