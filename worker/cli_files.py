"""Files the commands read and write, with failures named for what they are to the user:
an input that is not there (66) is not an output that cannot be created (73)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from worker.cli_exits import CannotCreate, NoInput


def read_input(path: str) -> bytes:
    """The bytes of `path`, or of standard input for `-`."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise NoInput(f"cannot read {path}: {exc.strerror or exc}") from None


@contextmanager
def text_output(path: str) -> Iterator[TextIO]:
    """`path` opened for writing text (created or truncated)."""
    try:
        stream = Path(path).open("w", encoding="utf-8", newline="")  # noqa: SIM115 (with below)
    except OSError as exc:
        raise CannotCreate(f"cannot create {path}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def write_output(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` (created or truncated)."""
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise CannotCreate(f"cannot write {path}: {exc.strerror or exc}") from None


def output_folder(path: str) -> Path:
    """`path` as a folder that exists, created with its parents when needed."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CannotCreate(f"cannot create the folder {path}: {exc.strerror or exc}") from None
    return folder
