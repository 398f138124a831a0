"""HTTP intake for POS systems: `POST /api/v1/pedidos` (and the original API's
`POST /api/v1/pedidos/consumo-local/`), read-back, health.

The service only accepts and reads back: it calls the same `enqueue` use case as the CLI and
the Python producer, and the worker does the rest.
"""

from worker.api.app import create_api

__all__ = ["create_api"]
