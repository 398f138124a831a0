"""The buyer's printable copy of an order's issued document, for the POS to print or show."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from adapters.representation.content import UnreadableDocument
from domain.errors import GatewayError
from domain.ports import OrderKey
from worker.api.auth import Client, services
from worker.api.intake import ORDERS_PATH
from worker.api.problems import problem, problem_response
from worker.document_files import NoDocumentFile, representation

log = logging.getLogger(__name__)
copy_router = APIRouter()
PDF = "application/pdf"


@copy_router.get(
    f"{ORDERS_PATH}/{{id_pedido}}/representacion",
    operation_id="readRepresentation",
    summary="The graphic representation of the order's document, as PDF",
    description=(
        "Rendered from the signed XML the authority holds (DIAN's `GetXmlByDocumentKey`, or "
        "Factus's XML), so it shows only what the document says: the denomination, seller and "
        "buyer, number with its numbering authorization, items, taxes by rate, tip, total, "
        "payment means, CUFE/CUDE and the QR (DIAN's catalogue URL, at least 2 cm). "
        "`formato=ticket` is an 80 mm roll; `a4` pages carry the QR on each."
    ),
    response_class=Response,
    responses={
        200: {"description": "The PDF.", "content": {PDF: {"schema": {"type": "string"}}}},
        401: problem_response("Missing or invalid API key."),
        404: problem_response("No such order."),
        409: problem_response("The order has no issued document the authority keeps."),
        422: problem_response("Invalid request."),
        500: problem_response("Unexpected error (nothing leaked)."),
        502: problem_response("The authority's XML is not a document that can be printed."),
        503: problem_response("The database or the authority is unavailable."),
    },
)
def read_representation(
    id_pedido: str,
    request: Request,
    client: Client,
    formato: Literal["ticket", "a4"] = Query("ticket", description="80 mm ticket or A4."),
) -> Response:
    svc = services(request)
    key = OrderKey(client.issuer, id_pedido)
    path = request.url.path
    record = svc.store.get(key)
    if record is None:
        return problem(status.HTTP_404_NOT_FOUND, f"no order {id_pedido!r} for this issuer", path)
    try:
        issuing, signer = svc.issuers.signing(client.issuer)  # the document's own issuer
        file = representation(issuing, record, formato, signer)
    except NoDocumentFile as exc:
        return problem(status.HTTP_409_CONFLICT, str(exc), path)
    except UnreadableDocument as exc:
        return problem(status.HTTP_502_BAD_GATEWAY, f"the authority's XML: {exc}", path)
    except GatewayError as exc:
        log.warning("representation: the authority is unavailable: %s", exc)
        return problem(status.HTTP_503_SERVICE_UNAVAILABLE, "the authority is unavailable", path)
    disposition = f'inline; filename="{file.name}"'
    return Response(file.content, media_type=PDF, headers={"Content-Disposition": disposition})
