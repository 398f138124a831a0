"""Field paths as the domain writes them (`items[0].cantidad`, `(order)`, `(body)`) turned into
what HTTP answers carry: locations (`["items", 0, "cantidad"]`), JSON Pointers
(`#/items/0/cantidad`) and the value a payload holds there."""

from __future__ import annotations

import re
from typing import Any

Location = tuple[str | int, ...]

_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def location(field: str) -> Location:
    """`items[0].impuestos[1].nombre` -> ("items", 0, "impuestos", 1, "nombre"); the whole
    body or order (`(body)`, `(order)`) -> ()."""
    if field.startswith("("):
        return ()
    return tuple(
        name if name else int(index) for name, index in _STEP.findall(field) if name or index
    )


def pointer(field: str) -> str:
    """The JSON Pointer (RFC 6901, as a URI fragment) of a field in the request body."""
    steps = (str(step).replace("~", "~0").replace("/", "~1") for step in location(field))
    return "#" + "".join(f"/{step}" for step in steps)


_MISSING = object()


def value_at(data: Any, where: Location) -> Any:
    """The value at `where` in `data`, or None when the payload has nothing there."""
    for step in where:
        if isinstance(data, dict) and isinstance(step, str):
            data = data.get(step, _MISSING)
        elif isinstance(data, list) and isinstance(step, int) and 0 <= step < len(data):
            data = data[step]
        else:
            return None
        if data is _MISSING:
            return None
    return data
