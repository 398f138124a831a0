"""How an order's final failure reads in Flower and the task log.

A rejected, invalid or abandoned order is a finished piece of work, not a crash: the task has
already written FAILED and its reason on the audit trail. It then raises `OrderFailed`, which
the task class lists in `throws`, so that Celery reports the task as FAILURE (Flower's "Failed"
filter, `task-failed` events, `flower_events_total{type="task-failed"}`) with this one-line
reason, logs it at INFO without a traceback, acknowledges the message and retries nothing.

The text names the order, the kind of failure and, for rejections, DIAN's rule codes and
texts; for invalid orders the fields and rules only, never the values sent (they can hold
customer data). Secrets never reach the reasons it is built from.
"""

from __future__ import annotations

from typing import Any

from domain.ports import OrderKey

MAX_LENGTH = 600


class OrderFailed(Exception):
    """The order ended FAILED; the message says why."""


def order_failed(key: OrderKey, reason: dict[str, Any] | None) -> OrderFailed:
    text = f"{key} FAILED: {describe_failure(reason or {})}"
    if len(text) > MAX_LENGTH:
        text = text[: MAX_LENGTH - 1] + "…"
    return OrderFailed(text)


def describe_failure(reason: dict[str, Any]) -> str:
    kind = str(reason.get("error") or "failed")
    if kind == "rejected":
        rules = "; ".join(
            f"{r.get('code', '?')} {r.get('kind') or ''}: {r.get('text', '')}".replace(" :", ":")
            for r in reason.get("rules") or []
        )
        return f"rejected by the authority: {rules}" if rules else "rejected by the authority"
    if kind == "invalid_order":
        fields = ", ".join(
            f"{e.get('field', '?')} [{e.get('rule', '?')}]" for e in reason.get("errors") or []
        )
        return f"invalid order: {fields}"
    if kind == "too_many_attempts":
        return f"too_many_attempts: settled after {reason.get('attempts', '?')} attempts"
    detail = reason.get("message") or ""
    if reason.get("gave_up"):
        detail = f"gave up {reason['gave_up']}: {detail}"
    return f"{kind}: {detail}" if detail else kind
