"""`einvoice flower`: Flower for this deployment's Celery app, behind basic auth by default.

Credentials come from FLOWER_BASIC_AUTH (`user:password`, comma-separated for several) and are
read by Flower from the environment, never put on the command line where `ps` would show them.
Task arguments in Flower are order keys (`ISSUER:ORDER_ID`) only: no customer data, no secrets.
Flower's `/metrics` and `/healthcheck` are served without auth: keep it on an internal network.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from worker.ops.listing import SubParsers

DEFAULT_PORT = 5555
# `args` is the order key alone, so it is safe to show and it is what operators search by;
# `exception` is why an order FAILED (rule codes, field names) or what interrupted a retry
TASK_COLUMNS = "name,args,state,result,received,runtime,worker,exception"


class FlowerRefused(Exception):
    """Flower would start without the protection it needs."""


def flower_argv(
    env: Mapping[str, str],
    port: int | None,
    address: str | None,
    no_auth: bool,
    allow_control: bool,
) -> list[str]:
    """Celery command line for Flower; refuses to run unauthenticated unless told to."""
    if not _auth_configured(env) and not no_auth:
        raise FlowerRefused(
            "Flower needs credentials: set FLOWER_BASIC_AUTH=user:password (or "
            "FLOWER_AUTH with an OAuth provider), or pass --no-auth to run it open "
            "on a trusted network"
        )
    basic = env.get("FLOWER_BASIC_AUTH", "")
    if basic and not all(_is_credential(c) for c in basic.split(",")):
        raise FlowerRefused("FLOWER_BASIC_AUTH must look like user:password[,user2:password2]")
    argv = [
        "flower",
        f"--port={port or int(env.get('FLOWER_PORT', DEFAULT_PORT))}",
        f"--address={address or env.get('FLOWER_ADDRESS', '127.0.0.1')}",
        "--purge_offline_workers=600",
        f"--tasks_columns={TASK_COLUMNS}",
    ]
    if not allow_control:
        argv.append("--read_only=True")
    return argv


def _auth_configured(env: Mapping[str, str]) -> bool:
    return bool(env.get("FLOWER_BASIC_AUTH") or env.get("FLOWER_AUTH"))


def _is_credential(text: str) -> bool:
    user, sep, password = text.partition(":")
    return bool(sep and user.strip() and password)


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "flower",
        help="run Flower (live tasks and workers) for this deployment, with basic auth",
        description="Starts Flower against the same broker and settings as the worker. "
        "Credentials come from FLOWER_BASIC_AUTH=user:password; without them Flower is not "
        "started unless --no-auth is given. Read-only unless --allow-control.",
    )
    p.add_argument("--port", type=int, help=f"default FLOWER_PORT or {DEFAULT_PORT}")
    p.add_argument("--address", help="listen address (default FLOWER_ADDRESS or 127.0.0.1)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="allow starting without credentials (trusted networks only)",
    )
    p.add_argument(
        "--allow-control",
        action="store_true",
        help="enable control actions (revoke, shutdown, pool resize); read-only otherwise",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # FlowerRefused: a configuration error, status 78
    argv = flower_argv(os.environ, args.port, args.address, args.no_auth, args.allow_control)
    from worker.celery_app import app

    app.start(argv)
    return 0
