"""The producer API: `enqueue(order)` from Python.

with Producer() as producer:
    result = producer.enqueue(order_dict)   # durable before it returns
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from domain.usecases.enqueue import Enqueued, enqueue
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
