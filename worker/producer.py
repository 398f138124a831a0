"""The producer API: `enqueue(order)` from Python.

with Producer() as producer:
    result = producer.enqueue(order_dict)   # durable before it returns
    answers = producer.enqueue_many(orders) # one transaction per batch (a till back online)

`Producer(issuer=NIT)` enqueues for a stored issuer (see `einvoice issuer`); the default is the
settings' issuer (ISSUER__NIT).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from types import TracebackType
from typing import Any

from domain.errors import IssuerRefused
from domain.usecases.enqueue import Answer, Enqueued, enqueue, enqueue_many
from domain.usecases.notes import enqueue_note
from worker.bootstrap import Container
from worker.settings import Settings

BATCH = 500  # orders per transaction in `enqueue_many`


class Producer:
    def __init__(self, settings: Settings | None = None, issuer: str | None = None) -> None:
        from worker.celery_app import create_app
        from worker.publisher import CeleryPublisher

        self.settings = settings or Settings()
        self.issuer = issuer or self.settings.issuer.nit
        self._app = create_app(self.settings)
        self._publisher = CeleryPublisher(self._app, self.settings.queue, self.settings.queue_for)
        self._container = Container(self.settings, self._publisher)

    def enqueue(self, order: Any) -> Enqueued:
        """Validate, store durably with its audit row, then publish the wake-up.

        Raises InvalidOrder and OrderConflict (both recorded as refused input).
        """
        c = self._container
        assert c.publisher is not None
        issuing = self._issuing()
        return enqueue(
            order,
            issuer=self.issuer,
            gateway=issuing.gateway,
            planner=c.planner_for(self.issuer),
            store=c.store,
            publisher=c.publisher,
        )

    def enqueue_many(self, orders: Iterable[Any], batch: int = BATCH) -> list[Answer]:
        """`enqueue` for many orders, `batch` of them per transaction: one answer per order, in
        order, an `Enqueued` or the `InvalidOrder` / `OrderConflict` that `enqueue` would have
        raised (refused orders do not hold up the others).

        Each batch is durable, numbered gap-free, before its wake-ups are published. A
        database error raises: the batches answered before it stand, the failing one stored
        nothing and used no number, so sending the same orders again finishes the job.
        """
        c = self._container
        issuing = self._issuing()
        planner = c.planner_for(self.issuer)
        answers: list[Answer] = []
        items = iter(orders)
        while chunk := list(islice(items, batch)):
            answers += enqueue_many(
                chunk,
                issuer=self.issuer,
                gateway=issuing.gateway,
                planner=planner,
                store=c.store,
                publisher=self._publisher,
            )
        return answers

    def note(self, order_id: str, request: Any) -> Enqueued:
        """A note (void, return, discount, price change) against an order's document: durable
        before it returns; it goes out once the document is SUCCESS.

        `request` is the note as `POST /api/v1/pedidos/{id}/notas` takes it (`id_nota`,
        `tipo`, `lineas`, `monto`, `motivo`). Raises InvalidOrder and OrderConflict (both
        recorded as refused input) and UnknownOrder.
        """
        from worker.bootstrap import offered_notes

        c = self._container
        assert c.publisher is not None
        issuing = self._issuing()
        c.planner_for(self.issuer)  # the ranges the settings describe are stored first
        return enqueue_note(
            request,
            issuer=self.issuer,
            order_id=order_id,
            gateway=issuing.gateway,
            numbered=issuing.needs_numbering,
            store=c.store,
            publisher=c.publisher,
            offered=offered_notes(issuing),
        )

    def _issuing(self) -> Settings:
        """The settings as the producer's issuer's; IssuerRefused while it cannot be issued
        for (unknown, disabled, not ready)."""
        refusal = self._container.issuers.refusal(self.issuer)
        if refusal is not None:
            raise IssuerRefused(refusal)
        return self._container.issuers.settings(self.issuer)

    def close(self) -> None:
        self._container.dispose()
        self._app.close()

    def __enter__(self) -> Producer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def enqueue_order(order: Any, settings: Settings | None = None) -> Enqueued:
    """One-shot convenience: open a producer, enqueue one order, close."""
    with Producer(settings) as producer:
        return producer.enqueue(order)
