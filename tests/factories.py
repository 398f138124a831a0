"""Valid POS payloads for tests, built the way a POS computes them."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

CENT = Decimal("0.01")


def line(
    description: str = "Cerveza Artesanal",
    quantity: str | int = 2,
    price: str | int = 10000,
    taxes: tuple[tuple[str, str], ...] = (("INC", "0.08"),),
    product_id: str = "BEB-01",
) -> dict[str, Any]:
    base = (Decimal(str(quantity)) * Decimal(str(price))).quantize(CENT, ROUND_HALF_EVEN)
    impuestos = []
    for name, rate in taxes:
        amount = (base * Decimal(rate)).quantize(Decimal("1"), ROUND_HALF_EVEN)
        impuestos.append({"nombre": name, "tasa": rate, "monto": str(amount)})
    total = base + sum((Decimal(t["monto"]) for t in impuestos), Decimal(0))
    return {
        "id_producto": product_id,
        "descripcion": description,
        "cantidad": str(quantity),
        "precio_unitario": str(price),
        "impuestos": impuestos,
        "total_item": str(total),
    }


def order(
    order_id: str = "POS-100",
    lines: list[dict[str, Any]] | None = None,
    tip: str | int = 0,
    payment: str = "Efectivo",
    buyer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    items = lines if lines is not None else [line()]
    taxes = sum((Decimal(t["monto"]) for i in items for t in i["impuestos"]), Decimal(0))
    subtotal = sum((Decimal(i["total_item"]) for i in items), Decimal(0)) - taxes
    total = subtotal + taxes + Decimal(str(tip))
    payload: dict[str, Any] = {
        "id_pedido_origen": order_id,
        "items": items,
        "subtotal": str(subtotal),
        "propina_voluntaria": str(tip),
        "impuestos_totales": str(taxes),
        "total_factura": str(total),
        "metodos_pago": [{"tipo": payment, "monto": str(total)}],
    }
    if buyer is not None:
        payload["adquirente"] = buyer
    return payload


SEED_ORDER: dict[str, Any] = {
    "id_pedido_origen": "POS-100",
    "items": [
        {
            "id_producto": "BEB-01",
            "descripcion": "Cerveza Artesanal",
            "cantidad": 2,
            "precio_unitario": 10000,
            "impuestos": [{"nombre": "INC", "tasa": 0.08, "monto": 1600}],
            "total_item": 21600,
        }
    ],
    "subtotal": 20000,
    "propina_voluntaria": 3000,
    "impuestos_totales": 1600,
    "total_factura": 24600,
    "metodos_pago": [{"tipo": "Efectivo", "monto": 24600}],
}
