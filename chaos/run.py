"""`python -m chaos.run [--short] [--only NAME ...] [--orders N] [--json out.json]`

Runs the chaos scenarios and the abuse checks against real processes on this machine and
prints one row per scenario. Exit status 1 when any row breaks an invariant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from chaos.harness import Row
from chaos.scenarios import SCENARIOS, SHORT, Context
from chaos.services import PgCluster


def table(rows: list[Row]) -> str:
    head = ("scenario", "orders", "lost", "submitted twice", "not final", "drain s", "result")
    lines = [head]
    for r in rows:
        drain = "-" if r.drain_seconds is None else f"{r.drain_seconds:.1f}"
        lines.append(
            (
                r.scenario,
                str(r.orders),
                str(r.lost),
                str(r.twice),
                str(r.not_final),
                drain,
                "PASS" if r.ok else "FAIL",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"- {r.scenario}: {'; '.join(r.notes)}" for r in rows if r.notes]
    return "\n".join([*out, "", *notes] if notes else out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.run", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the CI subset, fewer orders")
    parser.add_argument("--only", action="append", default=[], metavar="NAME")
    parser.add_argument("--orders", type=int, help="orders per scenario (default 500, short 60)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument("--list", action="store_true", help="list the scenario names")
    args = parser.parse_args(argv)

    from chaos.abuse import ABUSE, ABUSE_SHORT

    checks = {**SCENARIOS, **ABUSE}
    if args.list:
        print("\n".join(checks))
        return 0
    names = args.only or (SHORT + ABUSE_SHORT if args.short else list(checks))
    unknown = [n for n in names if n not in checks]
    if unknown:
        parser.error(f"unknown scenario(s): {unknown}; see --list")
    workdir = Path(tempfile.mkdtemp(prefix="chaos-run-"))
    orders = args.orders or (60 if args.short else 500)
    cluster = PgCluster()
    rows: list[Row] = []
    began = time.monotonic()
    try:
        cluster.init()
        ctx = Context(cluster, workdir, orders, args.short)
        for name in names:
            t0 = time.monotonic()
            print(f"... {name}", file=sys.stderr, flush=True)
            try:
                row = checks[name](ctx)
            except Exception as exc:
                traceback.print_exc()
                row = Row(name, 0, 0, 0, 0, None, False, [f"harness error: {exc!r}"[:300]])
            print(
                f"    {'PASS' if row.ok else 'FAIL'} in {time.monotonic() - t0:.0f}s "
                f"{row.states} {'; '.join(row.notes)}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    finally:
        cluster.destroy()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - began
    print(table(rows))
    print(f"\n{len(rows)} checks in {elapsed:.0f} s; {sum(not r.ok for r in rows)} failing")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "elapsed_seconds": round(elapsed, 1),
                    "orders": orders,
                    "rows": [r.as_dict() for r in rows],
                },
                indent=2,
            )
        )
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
