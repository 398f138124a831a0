"""`einvoice retry ORDER`: re-drive an order that failed only because the gateway was out.

Safe by construction: `reopen` moves FAILED → EN_ESPERA and keeps `maybe_sent`, so the
worker's claim asks the authority for the document before it sends anything again.
Orders that failed on their content (invalid, or rejected with DIAN rule codes) are refused:
sending the same document again cannot succeed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from dataclasses import dataclass
from typing import Any

from adapters.db.store import SqlDocumentStore
from domain.ports import OrderKey
from domain.store import DocumentRecord, State, StepNote
from worker.ops.database import engine_for
from worker.ops.listing import SubParsers
from worker.ops.reasons import describe_reason
from worker.settings import Settings

log = logging.getLogger(__name__)

RETRYABLE = {
    "gateway_unavailable": "the gateway was unavailable",
    "gateway_misconfigured": "the authority refused our configuration (fix it before retrying)",
}
REFUSED = {
    "too_many_attempts": "it was settled after too many attempts and the authority does not "
    "hold it: the attempt limit stays reached, so a worker would only ask again and give up; "
    "look at `einvoice status` and resolve it by hand",
    "invalid_order": "it failed as invalid: the same data fails the same way; correct it at "
    "the POS and send it as a new order",
    "rejected": "the authority rejected it with rule codes: sending the same document again "
    "cannot succeed; correct the cause and issue a new order",
}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    explanation: str


def judge(record: DocumentRecord, max_claims: int) -> Verdict:
    """May this order be re-driven, and why (not). `max_claims` is WORKER__MAX_CLAIMS: past it a
    worker only asks the authority and never sends."""
    if record.state is not State.FAILED:
        hint = {
            State.SUCCESS: "it is already validated by the authority",
            State.PENDIENTE: "it is still waiting for a worker",
            State.PROCESANDO: "a worker is on it now",
            State.EN_ESPERA: "the authority is being asked about it",
        }[record.state]
        return Verdict(False, f"the order is {record.state}, not FAILED: {hint}")
    kind = str((record.reason or {}).get("error") or "unknown")
    detail = describe_reason(record.reason)
    if kind in RETRYABLE and record.attempts >= max_claims:
        return Verdict(
            False,
            f"it has had {record.attempts} attempts, the limit (WORKER__MAX_CLAIMS={max_claims}) "
            "is reached: a worker would only ask the authority and give up",
        )
    if kind in RETRYABLE:
        return Verdict(True, f"{RETRYABLE[kind]} ({detail})")
    if kind in REFUSED:
        return Verdict(False, f"{REFUSED[kind]} ({detail})")
    return Verdict(
        False, f"it failed for a reason this command cannot judge safe ({detail or kind})"
    )


def add_parser(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "retry",
        help="re-drive an order that failed because the gateway was unavailable",
        description="Move a FAILED order back to EN_ESPERA so a worker takes it again. The "
        "worker asks the authority about the document before sending it, so nothing is "
        "submitted twice. Refused for orders that are not FAILED, or that failed as invalid "
        "or were rejected with DIAN rule codes. Exit status 0 when reopened, 1 when refused, "
        "2 when the order does not exist.",
    )
    p.add_argument("order", help="the POS order id (id_pedido_origen) or ISSUER:ORDER_ID")
    p.add_argument("--issuer", help="issuer NIT (defaults to ISSUER__NIT)")
    p.add_argument(
        "--no-wake",
        action="store_true",
        help="do not publish a wake-up now; the next reconciliation (beat) sends it",
    )
    p.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings()
    key = (
        OrderKey.parse(args.order)
        if ":" in args.order
        else OrderKey(args.issuer or settings.issuer.nit, args.order)
    )
    with engine_for(settings) as engine:
        store = SqlDocumentStore(engine)
        record = store.get(key)
        if record is None:
            return _report(args, 2, {"order_key": str(key), "retried": False, "error": "no order"})
        verdict = judge(record, settings.worker.max_claims)
        if not verdict.allowed:
            return _report(
                args,
                1,
                {"order_key": str(key), "retried": False, "refused": verdict.explanation},
            )
        note = StepNote(
            "REINTENTO",
            {
                "operator_retry": True,
                "requested_by": _operator(),
                "previous_reason": record.reason,
                "ask_authority_first": True,
            },
        )
        reopened = store.reopen(key, note)
    if reopened is None:
        return _report(
            args,
            1,
            {"order_key": str(key), "retried": False, "refused": "the order changed meanwhile"},
        )
    woken = False if args.no_wake else _wake(settings, key)
    return _report(
        args,
        0,
        {
            "order_key": str(key),
            "retried": True,
            "state": str(reopened.state),
            "because": verdict.explanation,
            "wake_up_sent": woken,
        },
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _wake(settings: Settings, key: OrderKey) -> bool:
    from worker.celery_app import create_app
    from worker.publisher import CeleryPublisher

    app = create_app(settings)
    try:
        CeleryPublisher(app, settings.queue, settings.queue_for).publish(key)
    except Exception as exc:  # the reconciler publishes it anyway: due_at is now
        log.warning("could not publish a wake-up for %s: %s", key, type(exc).__name__)
        return False
    finally:
        app.close()
    return True


def _report(args: argparse.Namespace, code: int, result: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
        return code
    key = result["order_key"]
    if code == 2:
        print(f"no order {key}", file=sys.stderr)
    elif code == 1:
        print(f"REFUSED {key}: {result['refused']}", file=sys.stderr)
    else:
        print(f"REOPENED {key}: FAILED -> {result['state']}; {result['because']}")
        print("the worker asks the authority about this document before sending it again")
        print(
            "wake-up sent to the worker"
            if result["wake_up_sent"]
            else "no wake-up sent now: the next reconciliation picks it up"
        )
    return code
