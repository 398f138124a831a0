"""Reasons in words: why an order failed, and why an open order has not finished yet."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.ops.queries import OrderLine
from worker.ops.tables import duration, local_time


def describe_reason(reason: dict[str, Any] | None) -> str:
    """`FAD06 Rechazo: ...; FAK24 ...` for rule codes, `field: message [rule]` for invalid
    orders, otherwise the error kind and its message."""
    if not reason:
        return ""
    rules = reason.get("rules")
    if rules:
        return "; ".join(
            f"{r.get('code', '?')} {r.get('kind') or ''}: {r.get('text', '')}".replace(" :", ":")
            for r in rules
        )
    errors = reason.get("errors")
    if errors:
        return "; ".join(
            f"{e.get('field', '?')}: {e.get('message', '')} [{e.get('rule', '')}]" for e in errors
        )
    warnings = reason.get("warnings")
    if warnings:
        return "accepted with notices: " + "; ".join(
            f"{w.get('code', '?')}: {w.get('text', '')}" for w in warnings
        )
    if reason.get("error") == "too_many_attempts":
        last = describe_reason(reason.get("last_reason"))
        head = f"too_many_attempts: settled after {reason.get('attempts', '?')} attempts"
        return f"{head} (last: {last})" if last else head
    kind = reason.get("error") or reason.get("waiting") or reason.get("verdict")
    message = reason.get("message") or reason.get("gave_up") or ""
    parts = [str(p) for p in (kind, message) if p]
    return ": ".join(parts) if parts else str(reason)


def why_open(order: OrderLine, now: datetime) -> str:
    """Why an order that is not final has not finished, and what will happen next."""
    due = order.due_at
    overdue = due is not None and due <= now
    since = f"{duration((now - due).total_seconds())} ago" if due is not None and overdue else ""
    detail = describe_reason(order.reason)
    if order.state == "PROCESANDO":
        if not overdue:
            return f"a worker holds it (attempt {order.attempts}) until {local_time(due)}"
        return (
            f"the worker's lease ended {since} with no outcome (worker stopped mid-call?); "
            "the reconciler asks the authority before anything is sent again"
        )
    if order.state == "EN_ESPERA":
        head = "the authority may hold the document"
        tail = (
            f"asked again at {local_time(due)}"
            if not overdue
            else f"due to be asked since {since}; is beat running?"
        )
        return f"{head} ({detail}); {tail}" if detail else f"{head}; {tail}"
    if order.attempts == 0:
        if overdue:
            return (
                f"accepted, not picked up by a worker for {since.removesuffix(' ago')}: "
                "check that workers and beat run and the broker is reachable"
            )
        return f"accepted, due at {local_time(due)}"
    if not overdue:
        return f"retry at {local_time(due)} after: {detail or 'a failed attempt'}"
    return (
        f"retry due since {since} after: {detail or 'a failed attempt'}; "
        "not picked up yet, check workers, beat and the broker"
    )
