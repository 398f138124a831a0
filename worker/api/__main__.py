"""`python -m worker.api [--host H] [--port P] [--workers N]`: serve the HTTP intake.

`python -m worker.api --write-openapi docs/openapi.json` writes the OpenAPI document instead.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from worker.api.config import ApiSettings

UVICORN_OPTIONS: dict[str, Any] = {
    "loop": "auto",  # uvloop where installed (a dependency, except on Windows)
    "http": "auto",  # httptools where installed (a dependency)
    "timeout_graceful_shutdown": 10,
}
"""How uvicorn serves the intake (the benchmark's baseline app is served the same way)."""


def serve(host: str, port: int, workers: int = 1, access_log: bool = True) -> None:
    import uvicorn

    from worker.logs import configure_logging
    from worker.settings import Settings

    configure_logging(Settings(), capture=True)
    _check_address_free(host, port)
    if not access_log:  # read by each server process (worker.api.access_log)
        os.environ["API_ACCESS_LOG"] = "false"
    uvicorn.run(
        "worker.api.app:served_api",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,  # the app logs each request itself, with its duration
        **UVICORN_OPTIONS,
    )


def _check_address_free(host: str, port: int) -> None:
    """Bind the address once first: uvicorn logs a taken port and exits 1, which a caller
    cannot tell from other failures; this raises the OSError the command line reports."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, f"{host}:{port}") from None


def openapi_text() -> str:
    """The OpenAPI document as kept in the repository (`docs/openapi.json`)."""
    from worker.api.app import create_api

    doc = create_api().openapi()
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    defaults = ApiSettings()
    parser = argparse.ArgumentParser(prog="python -m worker.api", description=__doc__)
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--write-openapi", metavar="PATH", help="write the OpenAPI document")
    args = parser.parse_args(argv)
    if args.write_openapi:
        Path(args.write_openapi).write_text(openapi_text(), encoding="utf-8")
        return 0
    serve(args.host, args.port, args.workers, access_log=not args.no_access_log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
