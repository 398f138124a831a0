"""Every line a long-running process writes is one JSON object (LOG_FORMAT=json).

Logging is configured to write JSON, but not everything a process prints goes through
logging: Celery writes its shutdown notices straight to the stdout file descriptor, a library
may `print`, an interpreter error goes to stderr, and the processes a worker forks or beat
spawns inherit both descriptors. So file descriptors 1 and 2 are pointed at pipes; a thread
reads them and writes each line that is already a JSON object through unchanged, and turns
the other lines into events (logger `stdout` or `stderr`; consecutive lines of one write form
one event, so a multi-line message stays together). The log handler itself writes to a copy
of the original stderr, past the pipes.

The thread writes with `os.write`, taking no lock a forked child could inherit held.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import sys
import termios
import threading
import time
from typing import TextIO

_installed: TextIO | None = None


def captured_stream() -> TextIO | None:
    """The log handler's stream once output is captured in this process."""
    return _installed


def capture_output(formatter: logging.Formatter) -> TextIO:
    """Point fds 1 and 2 at pipes read by a thread; return a stream on the original stderr
    for the log handler. Installed once per process; later calls return the same stream."""
    global _installed
    if _installed is not None:
        return _installed
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.dup(2)
    readers = []
    for fd, name, level in ((1, "stdout", logging.INFO), (2, "stderr", logging.WARNING)):
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        reader = _Reader(read_end, target, name, level, formatter)
        reader.start()
        readers.append(reader)
    atexit.register(_drain, readers)
    _installed = open(target, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    return _installed


class _Reader(threading.Thread):
    def __init__(
        self, fd: int, target: int, name: str, level: int, formatter: logging.Formatter
    ) -> None:
        super().__init__(name=f"log-capture-{name}", daemon=True)
        self.fd = fd
        self.target = target
        self.logger = name
        self.level = level
        self.formatter = formatter
        self.idle = threading.Event()

    def run(self) -> None:
        pending = b""
        while True:
            self.idle.set()
            chunk = os.read(self.fd, 65536)
            self.idle.clear()
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            self._write(lines)
        if pending:
            self._write([pending])

    def _write(self, lines: list[bytes]) -> None:
        out: list[str] = []
        plain: list[str] = []
        for raw in lines:
            line = raw.decode("utf-8", errors="replace").rstrip("\r")
            if _is_json_object(line):
                if plain:
                    out.append(self._event(plain))
                    plain = []
                out.append(line)
            elif line.strip():
                plain.append(line)
        if plain:
            out.append(self._event(plain))
        if out:
            os.write(self.target, ("\n".join(out) + "\n").encode("utf-8"))

    def _event(self, lines: list[str]) -> str:
        record = logging.LogRecord(
            self.logger, self.level, "", 0, "\n".join(lines), None, None, func=None
        )
        record.processName = "MainProcess"  # the writer is unknown: say nothing about it
        return self.formatter.format(record)


def _is_json_object(line: str) -> bool:
    if not (line.startswith("{") and line.endswith("}")):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _drain(readers: list[_Reader], timeout: float = 1.0) -> None:
    """At exit, give the threads what was written last (Celery's shutdown notice)."""
    sys.stdout.flush()
    sys.stderr.flush()
    deadline = time.monotonic() + timeout
    for reader in readers:
        while time.monotonic() < deadline and (_unread(reader.fd) or not reader.idle.is_set()):
            time.sleep(0.01)


def _unread(fd: int) -> int:
    buffer = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buffer)
    return int.from_bytes(buffer, sys.byteorder)
