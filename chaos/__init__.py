"""Chaos and abuse suite: real worker, beat, Redis, PostgreSQL and simulators, under faults.

`python -m chaos.run` runs every scenario and prints one row per scenario.
"""
