"""`render ORDER_FILE --kind pos|invoice`: the signed document the worker would send, from the
same settings the worker reads (DIAN__POS_*, POS_NUMBERING__*, SOFTWARE__*, REGISTERS,
DOCUMENTS__MODE), with the register named by the payload's `caja` / `cajero`."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

from lxml import etree

from tests.factories import SEED_ORDER
from tests.integration.test_cli import run

NS = {
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
    "sts": "dian:gov:co:facturaelectronica:Structures-2-1",
    "inv": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
}
ISSUED = ["--issued-at", "2026-11-22T10:30:00-05:00", "--test-certificate"]
POS_ENV = {
    "DIAN__POS_SOFTWARE_ID": "0b6e3c1a-5d2f-4e8b-9a7c-3f1d2e4b5a69",
    "DIAN__POS_SOFTWARE_PIN": "24680",
    "DIAN__POS_ENVIRONMENT": "1",
    "DIAN__ENVIRONMENT": "2",
    "POS_NUMBERING__RESOLUTION": "18764000077",
    "POS_NUMBERING__PREFIX": "BAR",
    "POS_NUMBERING__FIRST": "100",
    "POS_NUMBERING__LAST": "900",
    "POS_NUMBERING__VALID_FROM": "2026-01-01",
    "POS_NUMBERING__VALID_TO": "2027-12-31",
    "SOFTWARE__MAKER_NAME": "Ana María Pérez",
    "SOFTWARE__NAME": "Caja Rápida",
    "REGISTERS": json.dumps(
        {
            "1": {"plate": "CAJA-1", "location": "Salón", "kind": "POS", "cashier": "Turno día"},
            "T2": {"plate": "TERR-2", "location": "Terraza", "kind": "Tablet", "cashier": "Eva"},
        }
    ),
}


def _write(tmp_path: Path, **changes: Any) -> str:
    source = tmp_path / "order.json"
    source.write_text(json.dumps({**SEED_ORDER, **changes}))
    return str(source)


def _pairs(root: etree._Element, group: str) -> dict[str, str]:
    found = root.find(f".//inv:{group}", NS)
    assert found is not None, group
    children = list(found)
    return {str(n.text): str(v.text) for n, v in zip(children[0::2], children[1::2], strict=True)}


def test_render_kind_pos_honours_the_pos_settings_and_the_payloads_register(
    tmp_path: Path,
) -> None:
    source = _write(tmp_path, caja="T2", cajero="Sofía")
    result = run(["render", source, "--kind", "pos", "--number", "123", *ISSUED], POS_ENV)
    assert result.returncode == 0, result.stderr
    root = etree.fromstring(result.stdout.strip().encode())
    assert root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "20"
    assert root.findtext("cbc:ProfileID", namespaces=NS) == "DIAN 2.1: Documento Equivalente POS"
    assert root.findtext("cbc:ID", namespaces=NS) == "BAR123"
    assert root.findtext("cbc:ProfileExecutionID", namespaces=NS) == "1"
    assert root.findtext(".//sts:SoftwareID", namespaces=NS) == POS_ENV["DIAN__POS_SOFTWARE_ID"]
    assert root.findtext(".//sts:InvoiceAuthorization", namespaces=NS) == "18764000077"
    expected_ssc = hashlib.sha384(
        (POS_ENV["DIAN__POS_SOFTWARE_ID"] + "24680" + "BAR123").encode()
    ).hexdigest()
    assert root.findtext(".//sts:SoftwareSecurityCode", namespaces=NS) == expected_ssc
    till = _pairs(root, "InformacionCajaVenta")
    assert (till["PlacaCaja"], till["UbicaciónCaja"], till["TipoCaja"]) == (
        "TERR-2",
        "Terraza",
        "Tablet",
    )
    assert till["Cajero"] == "Sofía" and till["CódigoVenta"] == "POS-100"
    maker = _pairs(root, "InformacionDelFabricanteDelSoftware")
    assert maker["NombreApellido"] == "Ana María Pérez"
    assert maker["NombreSoftware"] == "Caja Rápida"


def test_render_without_kind_chooses_as_the_worker_does(tmp_path: Path) -> None:
    source = _write(tmp_path)
    as_pos = run(["render", source, *ISSUED], {**POS_ENV, "DOCUMENTS__MODE": "pos"})
    assert as_pos.returncode == 0, as_pos.stderr
    pos_root = etree.fromstring(as_pos.stdout.strip().encode())
    assert pos_root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "20"
    assert pos_root.findtext("cbc:ID", namespaces=NS) == "BAR100"  # the range's first number
    till = _pairs(pos_root, "InformacionCajaVenta")
    assert (till["PlacaCaja"], till["Cajero"]) == ("CAJA-1", "Turno día")  # the default till

    as_invoice = run(["render", source, *ISSUED], {**POS_ENV, "DOCUMENTS__MODE": "invoice"})
    assert as_invoice.returncode == 0, as_invoice.stderr
    invoice_root = etree.fromstring(as_invoice.stdout.strip().encode())
    assert invoice_root.findtext("cbc:InvoiceTypeCode", namespaces=NS) == "01"
    assert invoice_root.findtext("cbc:ProfileExecutionID", namespaces=NS) == "2"

    refused = run(
        ["render", _write(tmp_path, documento="factura"), *ISSUED],
        {**POS_ENV, "DOCUMENTS__MODE": "pos"},
    )
    assert refused.returncode == 65 and "identified buyer" in refused.stderr  # invalid input


def test_render_zip_of_a_pos_document(tmp_path: Path) -> None:
    out = tmp_path / "pos.zip"
    source = _write(tmp_path)
    result = run(["render", source, "--kind", "pos", *ISSUED, "--zip", str(out)], POS_ENV)
    assert result.returncode == 0, result.stderr
    assert "CUDE " in result.stderr
    with zipfile.ZipFile(out) as archive:
        (entry,) = archive.infolist()
        assert entry.filename.startswith("ds0900123456000") and entry.filename.endswith(".xml")


def test_render_refuses_an_unknown_register(tmp_path: Path) -> None:
    result = run(["render", _write(tmp_path, caja="NOPE"), "--kind", "pos", *ISSUED], POS_ENV)
    assert result.returncode == 65  # an order this deployment cannot issue: invalid input
    assert "caja: unknown register 'NOPE'" in result.stderr


def _note(tmp_path: Path, request: dict[str, Any]) -> str:
    source = tmp_path / "note.json"
    source.write_text(json.dumps(request))
    return str(source)


def test_render_note_prints_the_note_against_the_document_the_order_becomes(
    tmp_path: Path,
) -> None:
    order = _write(tmp_path)
    void = _note(tmp_path, {"id_nota": "V-1", "tipo": "anulacion"})
    env = {**POS_ENV, "DOCUMENTS__MODE": "pos", "NOTE_NUMBERING__POS_CREDIT_PREFIX": "AJC"}
    sale = run(["render", order, "--number", "123", *ISSUED], env)
    note = run(["render", order, "--number", "123", "--note", void, *ISSUED], env)
    assert sale.returncode == 0 and note.returncode == 0, note.stderr
    ticket = etree.fromstring(sale.stdout.strip().encode())
    root = etree.fromstring(note.stdout.strip().encode())
    assert etree.QName(root).localname == "CreditNote"
    assert root.findtext("cbc:CreditNoteTypeCode", namespaces=NS) == "94"
    assert root.findtext("cbc:ID", namespaces=NS) == "AJC1"  # the first of its own range
    reference = ".//cac:BillingReference/cac:InvoiceDocumentReference/cbc:"
    ns = {**NS, "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    assert root.findtext(reference + "ID", namespaces=ns) == "BAR123"
    assert root.findtext(reference + "UUID", namespaces=ns) == ticket.findtext(
        "cbc:UUID", namespaces=NS
    )
    assert root.findtext(".//sts:SoftwareID", namespaces=NS) == POS_ENV["DIAN__POS_SOFTWARE_ID"]
    assert root.findtext("cbc:ProfileExecutionID", namespaces=NS) == "1"  # the POS family's

    increase = _note(
        tmp_path, {"id_nota": "A-1", "tipo": "aumento", "monto": "100", "motivo": "precio"}
    )
    as_invoice = run(
        ["render", order, "--kind", "invoice", "--note", increase, "--note-number", "7", *ISSUED],
        env,
    )
    assert as_invoice.returncode == 0, as_invoice.stderr
    debit = etree.fromstring(as_invoice.stdout.strip().encode())
    assert etree.QName(debit).localname == "DebitNote"
    assert debit.findtext("cbc:CustomizationID", namespaces=NS) == "30"
    assert debit.findtext("cbc:ID", namespaces=NS) == "ND7"
    assert debit.findtext("cbc:ProfileExecutionID", namespaces=NS) == "2"  # the invoices'
    assert debit.find(".//sts:InvoiceControl", namespaces=NS) is None

    bad = _note(tmp_path, {"id_nota": "R-1", "tipo": "devolucion", "lineas": [{"linea": 9}]})
    refused = run(["render", order, "--note", bad, *ISSUED], env)
    assert refused.returncode == 65 and "lineas[0].cantidad" in refused.stderr
