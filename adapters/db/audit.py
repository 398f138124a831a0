"""The seed's audit port on a SQLAlchemy connection inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from adapters.db.models import IntakeRefusalRow, InvoiceLogRow


class SqlAuditLog:
    """`save_log(status, payload_in, response_out=None) -> int` bound to one transaction.

    Rows are correlated to their document through `payload_in["order_key"]`. The same port
    writes refused input to its own table (`IntakeRefusalRow`), apart from the trail.
    """

    def __init__(
        self,
        connection: Connection,
        table: type[InvoiceLogRow] | type[IntakeRefusalRow] = InvoiceLogRow,
    ) -> None:
        self._connection = connection
        self._table = table

    def save_log(
        self, status: str, payload_in: dict[str, Any], response_out: dict[str, Any] | None = None
    ) -> int:
        order_key = payload_in.get("order_key")
        row_id = self._connection.execute(
            insert(self._table)
            .values(
                status=status,
                order_key=str(order_key) if order_key is not None else None,
                payload_in=payload_in,
                response_out=response_out,
            )
            .returning(self._table.id)
        ).scalar_one()
        return int(row_id)
