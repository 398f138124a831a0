"""The seed's audit port on a SQLAlchemy connection inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from adapters.db.models import InvoiceLogRow


class SqlAuditLog:
    """`save_log(status, payload_in, response_out=None) -> int` bound to one transaction.

    Rows are correlated to their order through `payload_in["order_key"]`.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def save_log(
        self, status: str, payload_in: dict[str, Any], response_out: dict[str, Any] | None = None
    ) -> int:
        order_key = payload_in.get("order_key")
        row_id = self._connection.execute(
            insert(InvoiceLogRow)
            .values(
                status=status,
                order_key=str(order_key) if order_key is not None else None,
                payload_in=payload_in,
                response_out=response_out,
            )
            .returning(InvoiceLogRow.id)
        ).scalar_one()
        return int(row_id)
