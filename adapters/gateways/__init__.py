"""Gateways that are not a real authority."""
