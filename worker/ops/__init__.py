"""Operator commands: read-only views of the order store, a safe retry, export, metrics, health.

Every command builds its own engine from `Settings` and disposes of it; none holds a
transaction open longer than one query (export streams through one server-side cursor).
"""
