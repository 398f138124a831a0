"""`einvoice resend ORDER [--to ADDRESS]`: send a document's copy to its buyer again.

A new round: the copy is PENDIENTE at once, with a new Message-ID, to the order's address or
to ADDRESS (which then replaces it). The command returns once that is durable; a delivery
worker sends it, and `status ORDER` shows the attempts.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from domain.order import is_mailbox
from domain.ports import OrderKey
from worker.cli_exits import UsageError
from worker.settings import Settings


def add_delivery_commands(sub: Any) -> None:
    p = sub.add_parser(
        "resend",
        help="send an issued document's copy (PDF + AttachedDocument) to its buyer again",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("order", help="the POS order id (id_pedido_origen) or ISSUER:ORDER_ID[/NOTE]")
    p.add_argument("--to", metavar="ADDRESS", help="send it to this address instead (kept)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_resend)


def cmd_resend(args: argparse.Namespace) -> int:
    from worker.bootstrap import container
    from worker.celery_app import app

    settings = Settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(settings.issuer.nit, args.order)
    )
    if args.to is not None and not is_mailbox(args.to):
        raise UsageError(f"--to: not an e-mail address (name@domain.tld): {args.to!r}")
    c = container(settings, app)
    resent = c.deliveries.resend(key, args.to)
    if resent.delivery is None:
        print(f"{key}: {resent.reason}", file=sys.stderr)
        return 1
    woken = True
    try:
        assert c.delivery_publisher is not None
        c.deliveries.mark_published(key)
        c.delivery_publisher.publish(key)
    except Exception:  # the reconciler wakes it: the resend is durable already
        woken = False
    about: dict[str, Any] = {
        "order_key": str(key),
        "round": resent.delivery.round,
        "channel": resent.delivery.channel.value,
        "state": resent.delivery.state.value,
        "woken": woken,
    }
    if args.json:
        print(json.dumps(about))
    else:
        to = "the new address" if args.to else "the buyer's address"
        print(f"{key}: copy round {resent.delivery.round} pending, to {to}")
    return 0
