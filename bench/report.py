"""Render a `bench.run` JSON file as the Markdown table BENCHMARKS.md carries.

python -m bench.report bench/last-run.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| benchmark | figure | value | against | ratio | target met | spread |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for f in report["figures"]:
        met = {True: "yes", False: "**no**", None: ""}[f["met"]]
        ratio = f"{f['ratio']:.2f}" if f["ratio"] is not None else ""
        spread = f"{f['spread_pct']:.0f} %" if f["spread_pct"] is not None else ""
        against = _fmt(f["reference"])
        if f["reference_name"]:
            against = (
                f"{against} ({f['reference_name']})" if f["reference"] else f["reference_name"]
            )
        unit = f" {f['unit']}" if f["unit"] else ""
        lines.append(
            f"| {f['benchmark']} | {f['name']} | {_fmt(f['value'])}{unit} | {against} | "
            f"{ratio} | {met} | {spread} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    path = Path(args[0] if args else "bench/last-run.json")
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
