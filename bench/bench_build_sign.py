"""How long one signed document takes: UBL build + CUFE/CUDE + XAdES signature + zip + the
signed SOAP envelope (WS-Security) that carries it to SendBillSync.

    python -m bench.bench_build_sign [--count 2000] [--warmup 200] [--lines 3] [--json]
    python -m bench.bench_build_sign --kind pos     # the POS equivalent document (20)
    python -m bench.bench_build_sign --profile      # cProfile of the measured loop

Single process, one signer built once (as in a worker), a self-signed test certificate.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from adapters.dian.client import DianSoapClient
from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory, DianSetup
from adapters.dian.signer import XadesSigner
from domain.documents import DocumentKind, Register, SoftwareFamily, SoftwareMaker
from domain.issuer import IssuerProfile, NumberingRange, SoftwareRegistration
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey, Submission

ISSUER = IssuerProfile(nit="900373076", dv="1", legal_name="Bench S.A.S.", trade_name="Bench")
SOFTWARE = SoftwareRegistration(
    software_id="56f2ae4e-9812-4fad-9255-08fcfcd5ccb0",
    pin="12345",
    provider_nit="900373076",
    provider_dv="1",
)
NUMBERING = NumberingRange(
    resolution="18760000001",
    prefix="SETP",
    first=990000000,
    last=995000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    technical_key="fc8eac422eba16e22ffd8c6f94b3f40a6e38162c",
)
POS_SOFTWARE = SoftwareRegistration(
    software_id="7d5c3a41-2b6e-4f0a-9c1d-5e8f2a7b4c90",
    pin="54321",
    provider_nit="900373076",
    provider_dv="1",
)
POS_NUMBERING = NumberingRange(
    resolution="18760000001",
    prefix="EPOS",
    first=1,
    last=1000000,
    valid_from=date(2019, 1, 19),
    valid_to=date(2030, 1, 19),
    kind=DocumentKind.POS,
)
SETUP = DianSetup(
    issuer=ISSUER,
    software={SoftwareFamily.INVOICE: SOFTWARE, SoftwareFamily.POS: POS_SOFTWARE},
    maker=SoftwareMaker("Equipo Bench", "Bench S.A.S.", "900373076", "einvoice-worker"),
    ranges={DocumentKind.INVOICE: NUMBERING, DocumentKind.POS: POS_NUMBERING},
    register=Register("1", "CAJA-1", "Caja principal", "POS", "Cajero"),
)


def _order(lines: int) -> dict[str, Any]:
    items = [
        {
            "descripcion": f"Cerveza Artesanal {n}",
            "cantidad": "2",
            "precio_unitario": "10000",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
            "total_item": "21600",
        }
        for n in range(lines)
    ]
    subtotal = Decimal(20000) * lines
    taxes = Decimal(1600) * lines
    total = subtotal + taxes + 3000
    return {
        "id_pedido_origen": "BENCH-1",
        "items": items,
        "subtotal": str(subtotal),
        "propina_voluntaria": "3000",
        "impuestos_totales": str(taxes),
        "total_factura": str(total),
        "metodos_pago": [{"tipo": "Efectivo", "monto": str(total)}],
    }


def _percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index]


def run(
    count: int, warmup: int, lines: int, profile: bool, kind: DocumentKind = DocumentKind.INVOICE
) -> dict[str, Any]:
    signer = XadesSigner.from_pkcs12(make_test_pkcs12(ISSUER.nit, "bench"), "bench")
    factory = DianDocumentFactory(SETUP, signer)
    numbering = SETUP.ranges[kind]
    soap = DianSoapClient(
        "https://vpfe-hab.dian.gov.co/WcfDianCustomerServices.svc",
        signer.private_key,
        signer.certificate,
        connect_timeout=5,
        read_timeout=30,
    )

    def one(submission: Submission) -> None:
        invoice = factory.build(submission, issued)
        soap.send_bill_sync_envelope(invoice.zip_name, invoice.zip_bytes)

    order = parse_order(_order(lines))
    issued = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
    submissions = [
        Submission(
            OrderKey(ISSUER.nit, f"B-{n}"),
            order,
            issued,
            DocumentNumber(numbering.prefix, numbering.first + n),
            kind=kind,
        )
        for n in range(warmup + count)
    ]
    for submission in submissions[:warmup]:
        one(submission)
    timings: list[float] = []
    # CPU time of this thread per document: what the code costs, whatever else the shared
    # machine runs (wall time also counts the waits for a core).
    cpu: list[float] = []
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    for submission in submissions[warmup:]:
        start, start_cpu = time.perf_counter(), time.thread_time()
        one(submission)
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    if profiler:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    timings.sort()
    return {
        "kind": kind.word,
        "invoices": count,
        "lines_per_invoice": lines,
        "median_ms": round(statistics.median(timings), 3),
        "p95_ms": round(_percentile(timings, 0.95), 3),
        "p99_ms": round(_percentile(timings, 0.99), 3),
        "mean_ms": round(statistics.fmean(timings), 3),
        "cpu_median_ms": round(statistics.median(cpu), 3),
        "invoices_per_second": round(1000 / statistics.fmean(timings), 1),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--lines", type=int, default=3, help="invoice lines per invoice")
    parser.add_argument(
        "--kind", choices=("invoice", "pos"), default="invoice", help="the document built"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured loop")
    args = parser.parse_args(argv)
    kind = DocumentKind.POS if args.kind == "pos" else DocumentKind.INVOICE
    result = run(args.count, args.warmup, args.lines, args.profile, kind)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['invoices']} documents ({args.kind}) x {result['lines_per_invoice']} lines: "
            f"median {result['median_ms']} ms, p95 {result['p95_ms']} ms, "
            f"p99 {result['p99_ms']} ms, {result['invoices_per_second']} invoices/s; "
            f"CPU median {result['cpu_median_ms']} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
