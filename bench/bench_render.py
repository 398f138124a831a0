"""How long the printed copy takes: the graphic representation rendered from a signed
document's XML, as an 80 mm ticket or an A4 page (parse + layout + QR + PDF with the font).

    python -m bench.bench_render [--count 1000] [--kind pos|invoice] [--layout ticket|a4] [--json]

Single process; every document is a different signed document (its own number, CUFE/CUDE and
QR), built before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from adapters.dian.devcert import make_test_pkcs12
from adapters.dian.document import DianDocumentFactory
from adapters.dian.signer import XadesSigner
from adapters.representation.pdf import render_pdf
from bench.bench_build_sign import ISSUER, SETUP, _order, _percentile
from domain.documents import DocumentKind
from domain.order import parse_order
from domain.ports import DocumentNumber, OrderKey, Submission

WARMUP = 20


def run(count: int, kind: DocumentKind, layout: str, lines: int) -> dict[str, Any]:
    signer = XadesSigner.from_pkcs12(make_test_pkcs12(ISSUER.nit, "bench"), "bench")
    factory = DianDocumentFactory(SETUP, signer)
    numbering = SETUP.ranges[kind]
    order = parse_order(_order(lines))
    issued = datetime(2024, 5, 2, 18, 0, tzinfo=UTC)
    documents = [
        factory.build(
            Submission(
                OrderKey(ISSUER.nit, f"R-{n}"),
                order,
                issued,
                DocumentNumber(numbering.prefix, numbering.first + n),
                kind=kind,
            ),
            issued,
        ).xml
        for n in range(WARMUP + count)
    ]
    for xml in documents[:WARMUP]:
        render_pdf(xml, layout)  # type: ignore[arg-type]
    timings: list[float] = []
    cpu: list[float] = []
    size = 0
    for xml in documents[WARMUP:]:
        start, start_cpu = time.perf_counter(), time.thread_time()
        pdf = render_pdf(xml, layout)  # type: ignore[arg-type]
        timings.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        size = len(pdf)
    timings.sort()
    return {
        "kind": kind.word,
        "layout": layout,
        "documents": count,
        "lines_per_document": lines,
        "median_ms": round(statistics.median(timings), 3),
        "p95_ms": round(_percentile(timings, 0.95), 3),
        "cpu_median_ms": round(statistics.median(cpu), 3),
        "pdf_bytes": size,
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--kind", choices=("invoice", "pos"), default="pos")
    parser.add_argument("--layout", choices=("ticket", "a4"), default="ticket")
    parser.add_argument("--lines", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    kind = DocumentKind.POS if args.kind == "pos" else DocumentKind.INVOICE
    result = run(args.count, kind, args.layout, args.lines)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['documents']} {args.kind} documents as {args.layout}: median "
            f"{result['median_ms']} ms, p95 {result['p95_ms']} ms, CPU median "
            f"{result['cpu_median_ms']} ms, {result['pdf_bytes']} bytes"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
