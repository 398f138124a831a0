"""Every benchmark, one command: each figure beside its baseline or target, and the ratio.

    python -m bench.run                      # full sizes (about 20 minutes on 2 cores)
    python -m bench.run --quick              # small sizes (a few minutes)
    python -m bench.run --only pipeline --only build_sign --repeat 3
    python -m bench.run --json out.json      # default: bench/last-run.json

Benchmarks: pipeline (vs a bare Celery baseline), brokers (the pipeline on Redis and on
RabbitMQ), dian, latency, build_sign, render (the printed copy), reconcile, producer, delivery
(buyers' copies e-mailed per second to a local SMTP server), fairness (between issuers), api
(the HTTP intake vs a bare FastAPI app with one INSERT per request). Each
runs `--repeat` times (default 2); the best run is reported with the spread of all runs,
because the machine is shared and figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, best_of


@dataclass(frozen=True)
class Sizes:
    pipeline: int
    dian: int
    latency: int
    latency_configs: tuple[str, ...]
    build_sign: int
    reconcile: int
    producer: int
    render: int
    delivery: int
    fairness: int  # issuer A's backlog
    producer_many: int = 10_000  # a till syncing after being offline: enqueue_many
    api_seconds: int = 20  # each of the intake and its FastAPI baseline under load


FULL = Sizes(
    5000, 2000, 3000, ("threads:128", "2xthreads:100"), 2000, 1_000_000, 2000, 300, 1000, 5000
)
QUICK = Sizes(
    500, 300, 600, ("2xthreads:100",), 500, 100_000, 300, 100, 300, 500, 2000, api_seconds=5
)
PRODUCER_BATCH = 500
API_RATIO_TARGET = 0.7  # intake requests/s over the bare FastAPI + one INSERT baseline's
API_P99_TARGET_MS = 150.0
LATENCY_TARGET = 150.0  # orders/s against an authority that takes 1 s per call, 2 cores
LATENCY_RSS_TARGET_MB = 200.0  # per worker process
DELIVERY_TARGET = 50.0  # e-mails per second with the default worker settings


@dataclass(frozen=True)
class Figure:
    benchmark: str
    name: str
    value: float | None
    unit: str
    reference: float | None
    reference_name: str
    higher_is_better: bool = True
    spread_pct: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.reference:
            return None
        return round(self.value / self.reference, 3)

    @property
    def met(self) -> bool | None:
        if self.value is None or self.reference is None:
            return None
        if self.reference_name.startswith("info"):
            return None
        if self.higher_is_better:
            return self.value >= self.reference
        return self.value <= self.reference


PIPELINE_RATIO_TARGET = 0.6  # orders/s over the bare Celery baseline's
PIPELINE_CPU_TARGET = 2.5  # worker CPU per order over the baseline's, at most
ROUND_TRIP_ORDERS = 500  # the counted runs (relays add latency: their rates are not used)


def _pipeline(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.pipeline import run_baseline, run_pipeline

    pipes, bases = [], []
    for _ in range(repeat):
        pipes.append(run_pipeline(sizes.pipeline))
        bases.append(run_baseline(sizes.pipeline))
    counted = min(sizes.pipeline, ROUND_TRIP_ORDERS)
    pipe_trips = run_pipeline(counted, round_trips=True)["round_trips_per_order"]
    base_trips = run_baseline(counted, round_trips=True)["round_trips_per_order"]
    pipe = best_of(pipes, "steady_per_second")
    base = best_of(bases, "steady_per_second")
    raw = {
        "pipeline": pipe,
        "baseline": base,
        "all_pipeline": pipes,
        "all_baseline": bases,
        "round_trips_per_order": {"pipeline": pipe_trips, "baseline": base_trips},
    }

    def cpu(runs: list[dict[str, Any]], process: str) -> float:
        return min(r["cpu_ms_per_order_by_process"][process] for r in runs)

    figures = [
        Figure(
            "pipeline",
            "orders/s, pipeline (steady)",
            pipe["steady_per_second"],
            "/s",
            base["steady_per_second"],
            "bare Celery baseline",
            True,
            pipe["spread_pct"],
        ),
        Figure(
            "pipeline",
            f"target: >= {PIPELINE_RATIO_TARGET:.0%} of baseline",
            pipe["steady_per_second"],
            "/s",
            base["steady_per_second"] * PIPELINE_RATIO_TARGET,
            f"{PIPELINE_RATIO_TARGET:.0%} of baseline",
            True,
        ),
        Figure(
            "pipeline",
            "baseline tasks/s (steady)",
            base["steady_per_second"],
            "/s",
            None,
            "",
            True,
            base["spread_pct"],
        ),
        Figure(
            "pipeline",
            "CPU ms per order, all processes",
            min(p["cpu_ms_per_order"] for p in pipes),
            "ms",
            min(b["cpu_ms_per_order"] for b in bases),
            "info: baseline CPU ms per task",
            False,
        ),
        Figure(
            "pipeline",
            f"worker CPU ms per order (target: <= {PIPELINE_CPU_TARGET}x baseline)",
            cpu(pipes, "worker"),
            "ms",
            cpu(bases, "worker") * PIPELINE_CPU_TARGET,
            f"{PIPELINE_CPU_TARGET}x baseline worker ({cpu(bases, 'worker'):.2f} ms)",
            False,
        ),
    ]
    for process in ("postgres", "redis"):
        figures.append(
            Figure(
                "pipeline",
                f"{process} CPU ms per order",
                cpu(pipes, process),
                "ms",
                cpu(bases, process),
                "info: baseline",
                False,
            )
        )
    for side, most in (("postgres", 4.0), ("broker", 3.0)):
        figures.append(
            Figure(
                "pipeline",
                f"{side} round trips per order (target: <= {most:.0f}; baseline "
                f"{base_trips[side]:.2f})",
                pipe_trips[side],
                "",
                most,
                "target",
                False,
            )
        )
    figures.append(
        Figure(
            "pipeline",
            "peak RSS, worker processes together",
            pipe["peak_rss_total_mb"],
            "MB",
            base["peak_rss_total_mb"],
            "info: baseline",
            False,
        )
    )
    return raw, figures


RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _brokers(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    """The same pipeline (simulated gateway, prefork:2) on Redis and on RabbitMQ (quorum queue,
    publisher confirms), runs interleaved so both see the same machine load."""
    from bench.common import REDIS_URL
    from bench.pipeline import run_pipeline

    urls = {"Redis": REDIS_URL, "RabbitMQ": RABBITMQ_URL}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for _ in range(repeat):
        for name, url in urls.items():
            runs[name].append(run_pipeline(sizes.pipeline, extra_env={"BROKER_URL": url}))
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    redis_best = best_of(runs["Redis"], "steady_per_second")
    for name in urls:
        best = best_of(runs[name], "steady_per_second")
        raw[name] = {"best": best, "all": runs[name]}
        figures += [
            Figure(
                "brokers",
                f"orders/s, pipeline on {name} (steady)",
                best["steady_per_second"],
                "/s",
                redis_best["steady_per_second"] if name != "Redis" else None,
                "info: on Redis" if name != "Redis" else "",
                True,
                best["spread_pct"],
            ),
            Figure(
                "brokers",
                f"enqueue/s, 2 producers, {name}",
                max(r["enqueue"]["per_second"] for r in runs[name]),
                "/s",
                None,
                "",
            ),
            Figure(
                "brokers",
                f"CPU ms per order, all processes, {name}",
                min(r["cpu_ms_per_order"] for r in runs[name]),
                "ms",
                None,
                "",
                False,
            ),
        ]
    return raw, figures


def _dian(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.pipeline import run_pipeline

    raw: dict[str, Any] = {}
    figures = []
    for concurrency in (2, 8):  # the default, and more processes than cores
        runs = [
            run_pipeline(sizes.dian, gateway="dian", concurrency=concurrency) for _ in range(repeat)
        ]
        best = best_of(runs, "steady_per_second")
        raw[f"prefork:{concurrency}"] = {"best": best, "all": runs}
        figures += [
            Figure(
                "dian",
                f"signed invoices/s end to end, prefork:{concurrency}",
                best["steady_per_second"],
                "/s",
                150.0,
                "target",
                True,
                best["spread_pct"],
            ),
            Figure(
                "dian",
                f"CPU ms per invoice, prefork:{concurrency}",
                min(r["cpu_ms_per_order"] for r in runs),
                "ms",
                None,
                "",
            ),
            Figure(
                "dian",
                f"worker RSS total, prefork:{concurrency}",
                best["rss_total_mb"],
                "MB",
                None,
                "",
            ),
            Figure(
                "dian",
                f"submitted twice (authority), prefork:{concurrency}",
                float(max(r.get("authority_duplicates", 0) for r in runs)),
                "",
                0.0,
                "info: must be 0",
                False,
            ),
        ]
    return raw, figures


def _latency(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.latency import run

    by_config: dict[str, list[dict[str, Any]]] = {}
    for _ in range(repeat):
        for result in run(sizes.latency, 1.0, sizes.latency_configs):
            by_config.setdefault(result["config"], []).append(result)
    raw: dict[str, Any] = {}
    figures = []
    for config, runs in by_config.items():
        best = best_of(runs, "steady_per_second")
        raw[config] = {"best": best, "all": runs}
        figures.append(
            Figure(
                "latency",
                f"orders/s at 1 s per call, {config}",
                best["steady_per_second"],
                "/s",
                LATENCY_TARGET,
                "target",
                True,
                best["spread_pct"],
            )
        )
        figures.append(
            Figure(
                "latency",
                f"peak RSS of the largest worker process, {config}",
                best["peak_rss_process_mb"],
                "MB",
                LATENCY_RSS_TARGET_MB,
                "target",
                False,
            )
        )
        figures.append(
            Figure(
                "latency",
                f"CPU ms per order, all processes, {config}",
                best["cpu_ms_per_order"],
                "ms",
                None,
                f"by process: {best['cpu_ms_per_order_by_process']}",
            )
        )
    return raw, figures


def _build_sign(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    for kind, label in (("invoice", "invoice (01)"), ("pos", "POS document (20)")):
        runs = []
        for _ in range(repeat):
            code = (
                "import os, sys; os.sched_setaffinity(0, {max(os.sched_getaffinity(0))}); "
                "from bench.bench_build_sign import main; "
                f"sys.exit(main(['--count', '{sizes.build_sign}', '--kind', '{kind}', '--json']))"
            )
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        best = best_of(runs, "median_ms", higher=False)
        raw[kind] = {"best": best, "all": runs}
        figures += [
            Figure(
                "build_sign",
                f"median ms per {label} (1 core)",
                best["median_ms"],
                "ms",
                2.0,
                "target",
                False,
                best["spread_pct"],
            ),
            Figure("build_sign", f"p95 ms per {label}", best["p95_ms"], "ms", None, ""),
            Figure(
                "build_sign",
                f"CPU median ms per {label}",
                best.get("cpu_median_ms"),
                "ms",
                None,
                "",
            ),
        ]
    return raw, figures


RENDER_TARGETS_MS = {"ticket": 15.0, "a4": 30.0}


def _render(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    raw: dict[str, Any] = {}
    figures: list[Figure] = []
    for kind, label in (("pos", "POS document"), ("invoice", "invoice")):
        for layout, target in RENDER_TARGETS_MS.items():
            runs = []
            for _ in range(repeat):
                code = (
                    "import os, sys; os.sched_setaffinity(0, {max(os.sched_getaffinity(0))}); "
                    "from bench.bench_render import main; sys.exit(main(['--count', "
                    f"'{sizes.render}', '--kind', '{kind}', '--layout', '{layout}', '--json']))"
                )
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            best = best_of(runs, "median_ms", higher=False)
            raw[f"{kind}:{layout}"] = {"best": best, "all": runs}
            figures += [
                Figure(
                    "render",
                    f"median ms per {label}, {layout} PDF (1 core)",
                    best["median_ms"],
                    "ms",
                    target,
                    "target",
                    False,
                    best["spread_pct"],
                ),
                Figure(
                    "render",
                    f"CPU median ms per {label}, {layout}",
                    min(r["cpu_median_ms"] for r in runs),
                    "ms",
                    target,
                    "target (the code's own cost)",
                    False,
                ),
                Figure("render", f"p95 ms per {label}, {layout}", best["p95_ms"], "ms", None, ""),
            ]
    return raw, figures


def _reconcile(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.reconcile_scale import run

    result = run(sizes.reconcile, 500, repeat=repeat)
    sweeps = result["passes"]
    medians = [s["median_ms_full_batch"] for s in sweeps if s["median_ms_full_batch"]]
    worst = [s["max_ms_full_batch"] for s in sweeps if s["max_ms_full_batch"]]
    spread = round((max(medians) - min(medians)) / max(medians) * 100, 1) if medians else None
    return result, [
        Figure(
            "reconcile",
            f"median ms per 500-batch, {sizes.reconcile:,} orders",
            min(medians) if medians else None,
            "ms",
            50.0,
            "target",
            False,
            spread,
        ),
        Figure(
            "reconcile",
            "slowest batch ms",
            min(worst) if worst else None,
            "ms",
            50.0,
            "target",
            False,
        ),
        Figure(
            "reconcile",
            "ms for a pass with nothing due",
            min(s["ms_empty_pass"] for s in sweeps),
            "ms",
            50.0,
            "target",
            False,
        ),
        Figure(
            "reconcile",
            "plan uses ix_orders_due_at_open",
            float(all(s["uses_index"] for s in sweeps)),
            "",
            1.0,
            "info: 1 = yes",
        ),
    ]


def _producer(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.producer import run

    runs = [
        run(sizes.producer, 8, many=sizes.producer_many, batch=PRODUCER_BATCH)
        for _ in range(repeat)
    ]
    bare = best_of([r["bare"] for r in runs], "per_second")
    single = best_of([r["single"] for r in runs], "per_second")
    many = best_of([r["many"] for r in runs], "per_second")
    parallel = best_of([r["parallel"] for r in runs], "per_second")
    check = min((r["validation"] for r in runs), key=lambda v: v["validate_and_fingerprint_us"])
    raw = {"bare": bare, "single": single, "many": many, "parallel": parallel, "all": runs}
    return raw, [
        Figure(
            "producer",
            "bare INSERT + LPUSH/s, 1 process",
            bare["per_second"],
            "/s",
            None,
            "",
            True,
            bare["spread_pct"],
        ),
        Figure(
            "producer",
            "enqueue/s, 1 process",
            single["per_second"],
            "/s",
            bare["per_second"],
            "bare INSERT + LPUSH",
            True,
            single["spread_pct"],
        ),
        Figure(
            "producer",
            "target: enqueue >= 0.5x bare",
            single["per_second"],
            "/s",
            bare["per_second"] * 0.5,
            "50% of bare",
            True,
        ),
        Figure(
            "producer",
            "CPU ms per order, enqueue",
            single["cpu_ms_per_order"],
            "ms",
            bare["cpu_ms_per_order"],
            "info: bare CPU ms per order",
            False,
        ),
        Figure(
            "producer",
            f"enqueue_many/s, {sizes.producer_many:,} in batches of {PRODUCER_BATCH}",
            many["per_second"],
            "/s",
            2000.0,
            "target",
            True,
            many["spread_pct"],
        ),
        Figure(
            "producer",
            "CPU ms per order, enqueue_many",
            many["cpu_ms_per_order"],
            "ms",
            None,
            "",
            False,
        ),
        Figure(
            "producer",
            "us to validate + fingerprint a typical order",
            check["validate_and_fingerprint_us"],
            "us",
            300.0,
            "target",
            False,
        ),
        Figure(
            "producer", "pydantic's share of it", check["pydantic_share_pct"], "%", None, "", False
        ),
        Figure(
            "producer",
            "enqueue/s, 8 processes",
            parallel["per_second"],
            "/s",
            single["per_second"],
            "1 process",
            True,
            parallel["spread_pct"],
        ),
    ]


def _delivery(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.delivery import run

    defaults = [run(sizes.delivery) for _ in range(repeat)]
    threads = [run(sizes.delivery, "threads", 16) for _ in range(repeat)]
    best, best_threads = best_of(defaults, "per_second"), best_of(threads, "per_second")
    return {"defaults": best, "threads16": best_threads}, [
        Figure(
            "delivery",
            "e-mails/s, default worker (prefork 2)",
            best["per_second"],
            "/s",
            DELIVERY_TARGET,
            "target",
            True,
            best["spread_pct"],
        ),
        Figure(
            "delivery",
            "e-mails/s, threads pool 16",
            best_threads["per_second"],
            "/s",
            best["per_second"],
            "default worker",
            True,
            best_threads["spread_pct"],
        ),
    ]


def _fairness(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    from bench.fairness import run

    lanes = [run(sizes.fairness) for _ in range(repeat)]
    single = run(sizes.fairness, lanes=1)
    best = best_of(lanes, "b_last_final_seconds", higher=False)
    return {"lanes": lanes, "one_queue": single}, [
        Figure(
            "fairness",
            f"s to issuer B's 20 orders final behind {sizes.fairness} of A",
            best["b_last_final_seconds"],
            "s",
            10.0,
            "target: 10 s",
            False,
        ),
        Figure(
            "fairness",
            "the same with one queue for every issuer",
            single["b_last_final_seconds"],
            "s",
            None,
            "",
            False,
        ),
    ]


def _api(sizes: Sizes, repeat: int) -> tuple[dict[str, Any], list[Figure]]:
    """The HTTP intake beside a bare FastAPI app doing one INSERT per request, 16 connections;
    each run measures both, and the run with the best ratio is reported."""
    from bench.bench_api import run

    runs = [run(connections=16, duration=sizes.api_seconds) for _ in range(repeat)]
    best = best_of(runs, "ratio_rps")
    intake, baseline = best["intake"], best["baseline"]
    spread = best_of([r["intake"] for r in runs], "rps")["spread_pct"]
    return {"best": best, "all": runs}, [
        Figure(
            "api",
            "requests/s, intake, 16 connections",
            intake["rps"],
            "/s",
            baseline["rps"],
            "FastAPI + one INSERT",
            True,
            spread,
        ),
        Figure(
            "api",
            f"target: >= {API_RATIO_TARGET:.0%} of baseline",
            intake["rps"],
            "/s",
            baseline["rps"] * API_RATIO_TARGET,
            f"{API_RATIO_TARGET:.0%} of baseline",
        ),
        Figure(
            "api",
            "p99 ms, intake, 16 connections",
            intake["latency_ms"]["p99"],
            "ms",
            API_P99_TARGET_MS,
            "target",
            False,
        ),
        Figure(
            "api",
            "server CPU ms per request, intake",
            intake["server_cpu_ms_per_request"],
            "ms",
            baseline["server_cpu_ms_per_request"],
            "info: baseline's",
            False,
        ),
    ]


BENCHMARKS: dict[str, Callable[[Sizes, int], tuple[dict[str, Any], list[Figure]]]] = {
    "build_sign": _build_sign,
    "render": _render,
    "producer": _producer,
    "pipeline": _pipeline,
    "brokers": _brokers,
    "dian": _dian,
    "latency": _latency,
    "reconcile": _reconcile,
    "delivery": _delivery,
    "fairness": _fairness,
    "api": _api,
}


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def print_table(figures: list[Figure]) -> None:
    print(
        f"{'benchmark':<11} {'figure':<46} {'value':>10} {'vs':>10} {'ratio':>7}  "
        f"{'met':<4} {'spread':>7}  reference"
    )
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.met]
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        spread = f"{f.spread_pct:.0f}%" if f.spread_pct is not None else ""
        print(
            f"{f.benchmark:<11} {f.name:<46} {_fmt(f.value):>10} {_fmt(f.reference):>10} "
            f"{ratio:>7}  {met:<4} {spread:>7}  {f.reference_name}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", default=str(ROOT / "bench" / "last-run.json"))
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    names = args.only or list(BENCHMARKS)
    report: dict[str, Any] = {
        "machine": machine(),
        "sizes": sizes.__dict__,
        "repeat": args.repeat,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": {},
        "figures": [],
    }
    figures: list[Figure] = []
    for name in names:
        start = time.perf_counter()
        print(f"# {name} ...", file=sys.stderr, flush=True)
        try:
            raw, produced = BENCHMARKS[name](sizes, args.repeat)
        except Exception as exc:  # one broken benchmark must not hide the others
            raw, produced = {"error": repr(exc)}, [Figure(name, "error", None, "", None, repr(exc))]
        raw["seconds"] = round(time.perf_counter() - start, 1)
        report["results"][name] = raw
        figures.extend(produced)
    report["figures"] = [{**f.__dict__, "ratio": f.ratio, "met": f.met} for f in figures]
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    print_table(figures)
    print(
        f"\nload average {report['machine']['load_average_at_start']} -> "
        f"{report['load_average_at_end']}; JSON: {args.json}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
