"""The producer API: `enqueue(order)` from Python.

with Producer() as producer:
    result = producer.enqueue(order_dict)   # durable before it returns
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from domain.usecases.enqueue import Enqueued, enqueue
from domain.usecases.notes import enqueue_note
from worker.bootstrap import Container
from worker.settings import Settings


class Producer:
    def __init__(self, settings: Settings | None = None) -> None:
        from worker.celery_app import create_app
        from worker.publisher import CeleryPublisher

        self.settings = settings or Settings()
        self._app = create_app(self.settings)
        self._container = Container(self.settings, CeleryPublisher(self._app, self.settings.queue))

    def enqueue(self, order: Any) -> Enqueued:
        """Validate, store durably with its audit row, then publish the wake-up.

        Raises InvalidOrder and OrderConflict (both recorded as refused input).
        """
        c = self._container
        assert c.publisher is not None
        return enqueue(
            order,
            issuer=self.settings.issuer.nit,
            gateway=self.settings.gateway,
            planner=c.planner,
            store=c.store,
            publisher=c.publisher,
        )

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
        c.planner  # noqa: B018  (the ranges the settings describe are stored first)
        return enqueue_note(
            request,
            issuer=self.settings.issuer.nit,
            order_id=order_id,
            gateway=self.settings.gateway,
            numbered=self.settings.needs_numbering,
            store=c.store,
            publisher=c.publisher,
            offered=offered_notes(self.settings),
        )

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
