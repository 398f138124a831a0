"""Benchmarks (not tests): run them as modules, e.g. `python -m bench.bench_build_sign`."""
