"""Reading a request body with a size cap, and decoding it as exact JSON.

The cap is checked against `Content-Length` before anything is read, and counted while
streaming (chunked bodies have no length), so an oversized body is never held in memory.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from domain.errors import FieldError


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body exceeds {limit} bytes")


class NotJson(Exception):
    """The body is not a UTF-8 JSON document; the message says why, for the client."""


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge(limit)
        except ValueError:
            pass  # the server already refuses malformed lengths; count bytes below anyway
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def decode_json(body: bytes) -> Any:
    """Parse JSON keeping decimals exact (`parse_float=str`; the order model makes Decimals)."""
    if not body.strip():
        raise NotJson("the request body is empty; send the order as a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(f"the request body is not UTF-8 (byte {exc.start})") from None
    try:
        return json.loads(text, parse_float=str, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise NotJson(f"the request body is not acceptable JSON: {exc}") from None


def bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL (\\u0000) characters"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "must not contain unpaired UTF-16 surrogates"
    return None


def unstorable_text(data: Any, limit: int = 20) -> list[FieldError]:
    """Text no legal document (XML 1.0) and no audit row (PostgreSQL JSONB) can hold.

    JSON allows `\\u0000` and lone surrogates; refusing them here keeps them from reaching
    the database, where they would fail the whole request instead of being reported.
    """
    errors: list[FieldError] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack and len(errors) < limit:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = bad_text(value)
            if problem:
                errors.append(FieldError(path or "(order)", "text", f"text {problem}"))
        elif isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else str(key)
                problem = bad_text(str(key))
                if problem:
                    errors.append(FieldError(path or "(order)", "text", f"a field name {problem}"))
                    continue
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
    return errors
