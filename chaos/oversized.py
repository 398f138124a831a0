"""Oversized and malformed input through the CLI (`python -m worker enqueue -`) and the
producer API (`Producer.enqueue`), each in its own process so its peak RSS can be measured.

`python -m chaos.oversized CASE` is the producer probe: it builds the payload, enqueues it
with the settings from the environment, and prints one JSON line with the outcome.
"""

from __future__ import annotations

import contextlib
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chaos.harness import ROOT, Row
from chaos.scenarios import Context, _deploy
from tests.factories import line, order

MAX_RSS_MB = 600  # a worker-sized budget: anything above is "unbounded" for this check


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def producer_cases() -> dict[str, Callable[[], Any]]:
    return {
        "baseline_valid": lambda: order("OV-OK"),
        "payload_10mb": lambda: order("OV-10MB", [line("A" * 10_000_000, 1, 1000)]),
        "items_100k": lambda: order("OV-100K", [line(f"i{n}", 1, 100) for n in range(100_000)]),
        "nested_100k": lambda: {**order("OV-DEEP"), "items": _deep(100_000)},
        "huge_int": lambda: {**order("OV-HUGEINT"), "subtotal": 10**5000},
        "huge_decimal_text": lambda: {**order("OV-HUGEDEC"), "subtotal": "9" * 100_000},
        "nan": lambda: {**order("OV-NAN"), "subtotal": float("nan")},
        "infinity": lambda: {**order("OV-INF"), "total_factura": float("inf")},
        "bytes_not_utf8": lambda: order("OV-BYTES", [line(b"\xff\xfe\xfa", 1, 100)]),  # type: ignore[arg-type]
        "lone_surrogate": lambda: order("OV-SURR", [line("caf\udcff", 1, 100)]),
        "nul_char": lambda: order("OV-NUL", [line("caf\x00e", 1, 100)]),
    }


def cli_cases() -> dict[str, Callable[[], bytes]]:
    def ok() -> bytes:
        return json.dumps(order("CLI-OK")).encode()

    def base() -> str:
        return json.dumps(order("CLI-X"))[:-1]

    return {
        "baseline_valid": ok,
        "payload_10mb": lambda: json.dumps(
            order("CLI-10MB", [line("A" * 10_000_000, 1, 1000)])
        ).encode(),
        "items_100k": lambda: json.dumps(
            order("CLI-100K", [line(f"i{n}", 1, 100) for n in range(100_000)])
        ).encode(),
        "nested_100k": lambda: (
            base() + ', "extra": ' + "[" * 100_000 + "]" * 100_000 + "}"
        ).encode(),
        "huge_int": lambda: (base() + ', "subtotal": 1' + "0" * 5000 + "}").encode(),
        "huge_exponent": lambda: (base() + ', "subtotal": 1e400}').encode(),
        "nan_infinity": lambda: (base() + ', "subtotal": NaN, "total_factura": Infinity}').encode(),
        "not_utf8": lambda: ok().replace(b"Cerveza", b"Cerv\xff\xfeza"),
        "nul_char": lambda: ok().replace(b"Cerveza", b"Cerv\\u0000eza"),
        "not_json": lambda: b"\x00\x01 this is not json {",
    }


# The measuring process stays tiny and imports nothing of ours: its RUSAGE_CHILDREN peak is
# the probed process's own peak resident set.
_MEASURE = """
import json, resource, subprocess, sys, time
a = json.loads(sys.argv[1])
stdin = open(a["stdin"], "rb") if a["stdin"] else None
t = time.monotonic()
p = subprocess.run(a["cmd"], stdin=stdin, capture_output=True, timeout=240)
print(json.dumps({
    "rc": p.returncode,
    "stdout": p.stdout.decode(errors="replace")[-600:],
    "stderr": p.stderr.decode(errors="replace")[-1500:],
    "seconds": round(time.monotonic() - t, 1),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
}))
"""


def _measure_one(kind: str, case: str, env: dict[str, str], workdir: Path) -> dict[str, Any]:
    stdin = None
    if kind == "cli":
        stdin = workdir / f"cli-{case}.json"
        stdin.write_bytes(cli_cases()[case]())
        cmd = [sys.executable, "-m", "worker", "enqueue", "-"]
    else:
        cmd = [sys.executable, "-m", "chaos.oversized", case]
    spec = json.dumps({"cmd": cmd, "stdin": str(stdin) if stdin else None})
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, spec], env=env, cwd=ROOT, capture_output=True, timeout=300
    )
    try:
        result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        result = {"rc": out.returncode, "stderr": out.stderr.decode(errors="replace")[-800:]}
    if stdin is not None:
        stdin.unlink()
    return result


def _verdict(kind: str, case: str, r: dict[str, Any]) -> tuple[str, bool]:
    text = r.get("stdout", "") + r.get("stderr", "")
    crashed = "Traceback" in text
    if case == "baseline_valid":
        good = r.get("rc") == 0 and not crashed
        return ("accepted" if good else "FAILED"), good
    if kind == "producer":
        outcome = r.get("outcome", "")
        good = outcome == "refused" and not crashed
        return (outcome or "crash"), good
    clear = any(word in text for word in ("INVALID", "REFUSED", "not JSON", "not UTF-8"))
    refused = r.get("rc") not in (0, None) and clear
    good = refused and not crashed
    return ("refused" if good else ("crash" if crashed else "accepted?")), good


def oversized_input(ctx: Context) -> Row:
    d, auth = _deploy(ctx, "oversized_input")
    notes: list[str] = []
    ok = True
    try:
        worker = d.start_worker("w1")
        results: dict[str, Any] = {}
        for kind, cases in (("cli", list(cli_cases())), ("producer", list(producer_cases()))):
            for case in cases:
                r = _measure_one(kind, case, d.env, d.workdir)
                if kind == "producer" and "stdout" in r:
                    with contextlib.suppress(IndexError, ValueError):
                        r.update(json.loads(r["stdout"].strip().splitlines()[-1]))
                verdict, good = _verdict(kind, case, r)
                rss = r.get("peak_rss_mb", -1)
                bounded = isinstance(rss, int) and 0 < rss < MAX_RSS_MB
                good = good and bounded
                ok = ok and good
                first = r.get("first_error") or _first_line(r)
                notes.append(
                    f"{kind}/{case}: {verdict}, {rss} MB, {r.get('seconds')} s"
                    f"{'' if good else ' <-- FAIL'} [{first}]"
                )
                results[f"{kind}/{case}"] = r
        (d.workdir / "oversized.json").write_text(json.dumps(results, indent=1, default=str))
        alive = worker.poll() is None
        notes.append(f"worker alive afterwards: {alive}")
        row = d.measure("oversized_input", 0.0, auth.submissions(), notes)
        row.ok = ok and alive and row.ok
        return row
    finally:
        d.stop_all()


def _first_line(r: dict[str, Any]) -> str:
    text = (r.get("stdout") or "").strip() or (r.get("stderr") or "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:160]


def main(case: str) -> None:
    from domain.errors import InvalidOrder, NumberingError, OrderConflict
    from worker.producer import Producer

    data = producer_cases()[case]()
    result: dict[str, Any] = {"case": case}
    with Producer() as producer:
        try:
            enq = producer.enqueue(data)
            result.update(outcome="accepted", state=str(enq.state))
        except InvalidOrder as exc:
            errs = exc.as_dicts()
            result.update(
                outcome="refused",
                errors=len(errs),
                first_error=f"{errs[0]['field']}: {errs[0]['message'][:80]}",
            )
        except (OrderConflict, NumberingError) as exc:
            result.update(outcome="refused", first_error=str(exc)[:120])
        except Exception as exc:  # what the suite is looking for: anything else is a crash
            result.update(outcome="crash", first_error=f"{type(exc).__name__}: {exc}"[:200])
    result["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
