"""Reading a request body with a size cap, and decoding it as exact JSON.

The cap is checked against `Content-Length` before anything is read, and counted while
streaming (chunked bodies have no length), so an oversized body is never held in memory.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import Request

from domain.errors import FieldError


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body exceeds {limit} bytes")


class NotJson(Exception):
    """The body is not a UTF-8 JSON document; the message says why, for the client.

    `position` is the character (or byte, for bad UTF-8) where reading failed, None for an
    empty body; `reason` the parser's own words.
    """

    def __init__(self, message: str, position: int | None, reason: str = "") -> None:
        self.position = position
        self.reason = reason or message
        super().__init__(message)


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
    """Parse JSON keeping numbers exact: a number with a fraction or exponent becomes a
    `Decimal` (never a binary float), so it stays a number, exactly as written."""
    if not body.strip():
        raise NotJson("the request body is empty; send the order as a JSON object", None)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotJson(f"the request body is not UTF-8 (byte {exc.start})", exc.start) from None
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            exc.pos,
            exc.msg,
        ) from None
    except (ValueError, RecursionError) as exc:
        raise NotJson(f"the request body is not acceptable JSON: {exc}", 0) from None


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
