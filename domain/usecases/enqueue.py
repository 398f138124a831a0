"""Accept an order: validate, store it durably with its audit row, then wake a worker."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from domain.documents import DocumentKind, Planner
from domain.errors import InvalidOrder, NumberingError, OrderConflict
from domain.order import ORDER_ID, parse_order
from domain.ports import BatchPublisher, OrderKey, Publisher
from domain.store import Acceptance, DocumentStore, State, ValidOrder

log = logging.getLogger(__name__)
MAX_RECORDED_PAYLOAD = 64 * 1024


@dataclass(frozen=True)
class Enqueued:
    key: OrderKey
    state: State
    created: bool
    number: str | None
    warnings: tuple[str, ...] = ()
    kind: DocumentKind = DocumentKind.INVOICE

    @classmethod
    def of(cls, key: OrderKey, accepted: Acceptance) -> Enqueued:
        record = accepted.record
        number = str(record.number) if record.number else None
        return cls(key, record.state, accepted.created, number, accepted.warnings, record.kind)

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_key": str(self.key),
            "state": str(self.state),
            "created": self.created,
            "kind": self.kind.value,
            "number": self.number,
            "warnings": list(self.warnings),
        }


def enqueue(
    data: Any,
    *,
    issuer: str,
    gateway: str,
    planner: Planner,
    store: DocumentStore,
    publisher: Publisher,
) -> Enqueued:
    """Raises InvalidOrder (recorded as refused input, apart from every document's timeline)
    and OrderConflict (recorded likewise).

    The planner decides the document (kind, till); a till that cannot number it (no range,
    used up, expired) refuses the order as invalid, naming the till and the range, and
    nothing is numbered. The order is committed before the wake-up is published; if
    publishing fails the order stays due and the reconciler publishes it.
    """
    try:
        order = parse_order(data)
        plan = planner.plan(order)
        key = OrderKey(issuer, order.id_pedido_origen)
        accepted = store.accept(key, order, gateway, plan)
    except InvalidOrder as exc:
        store.refuse(_key_of(data, issuer), recordable(data), exc.errors)
        raise
    except NumberingError as exc:
        log.error("numbering: %s", exc)
        store.refuse(_key_of(data, issuer), recordable(data), [exc.error])
        raise InvalidOrder([exc.error]) from exc
    if accepted.created:
        try:
            publisher.publish(key)
        except Exception:  # the broker is a wake-up signal; the database holds the work
            log.warning("publish failed for %s; the reconciler will publish it", key, exc_info=True)
            store.mark_unpublished(key)
    return Enqueued.of(key, accepted)


Answer = Enqueued | InvalidOrder | OrderConflict
"""What `enqueue_many` answers for one order: accepted (now or before), or refused."""


def enqueue_many(
    batch: Sequence[Any],
    *,
    issuer: str,
    gateway: str,
    planner: Planner,
    store: DocumentStore,
    publisher: BatchPublisher,
) -> list[Answer]:
    """`enqueue` for many orders (a till syncing what it sold offline): one answer per order,
    in order, each what `enqueue` would have answered or raised (InvalidOrder, OrderConflict;
    both recorded as refused input). Refused orders do not hold up the others.

    The valid ones are stored in one transaction (numbered gap-free in the order given), then
    their wake-ups are published together. A database error raises and stores nothing of
    the batch, publishes nothing and uses no number: the whole batch can be sent again.
    """
    answers: list[Answer | None] = [None] * len(batch)
    valid: list[tuple[int, ValidOrder]] = []
    for position, data in enumerate(batch):
        try:
            order = parse_order(data)
            key = OrderKey(issuer, order.id_pedido_origen)
            valid.append((position, ValidOrder(key, order, planner.plan(order))))
        except InvalidOrder as exc:
            store.refuse(_key_of(data, issuer), recordable(data), exc.errors)
            answers[position] = exc
    stored = store.accept_many([v for _, v in valid], gateway)
    created: list[OrderKey] = []
    for (position, accepting), answer in zip(valid, stored, strict=True):
        key = accepting.key
        if isinstance(answer, NumberingError):
            log.error("numbering: %s", answer)
            store.refuse(key, recordable(batch[position]), [answer.error])
            answers[position] = InvalidOrder([answer.error])
        elif isinstance(answer, OrderConflict):
            answers[position] = answer
        else:
            answers[position] = Enqueued.of(key, answer)
            if answer.created:
                created.append(key)
    if created:
        try:
            publisher.publish_many(created)
        except Exception:  # the broker is a wake-up signal; the database holds the work
            log.warning(
                "publish failed for %d orders; the reconciler will publish them",
                len(created),
                exc_info=True,
            )
            for key in created:
                store.mark_unpublished(key)
    assert all(a is not None for a in answers)  # every position answered above
    return cast(list[Answer], answers)


def _key_of(data: Any, issuer: str) -> OrderKey | None:
    """The key a refusal is recorded under: only an id that could have been a valid one."""
    if isinstance(data, dict):
        order_id = data.get("id_pedido_origen")
        if isinstance(order_id, str) and ORDER_ID.fullmatch(order_id):
            return OrderKey(issuer, order_id)
    return None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """The same JSON with NUL and lone surrogates replaced: PostgreSQL JSONB refuses them."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def recordable(data: Any) -> dict[str, Any]:
    """What of a refused payload goes on the audit trail: all of it when it is small JSON."""
    try:
        text = json.dumps(data, ensure_ascii=False, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return {"unreadable": True, "type": type(data).__name__}
    if len(text) > MAX_RECORDED_PAYLOAD:
        head: dict[str, Any] = {"truncated": True, "size": len(text)}
        if isinstance(data, dict) and isinstance(data.get("id_pedido_origen"), str):
            head["id_pedido_origen"] = _storable(data["id_pedido_origen"][:100])
        return head
    clean = _storable(json.loads(text))
    return clean if isinstance(clean, dict) else {"value": clean}
