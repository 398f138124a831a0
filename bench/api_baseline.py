"""The bare FastAPI baseline of the intake benchmark: one INSERT of a JSONB row per request.

    python -m bench.api_baseline --port P --workers N      (BENCH_DATABASE_URL: the database)

`POST /api/v1/pedidos` parses the JSON body with FastAPI (a `dict` parameter), inserts it as
one JSONB row in its own transaction through a plain SQLAlchemy pool, and answers 202 with
the row's id. No key, no validation, no audit row, no wake-up: what any FastAPI app that
stores a request pays. It is served by uvicorn exactly as the intake is (`worker.api`'s
`UVICORN_OPTIONS`), so the two differ only in what the application does.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from sqlalchemy import Engine, create_engine, text

DDL = "CREATE TABLE IF NOT EXISTS baseline_requests (id bigserial PRIMARY KEY, body jsonb NOT NULL)"
INSERT = text("INSERT INTO baseline_requests (body) VALUES (CAST(:body AS jsonb)) RETURNING id")


def create_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(DDL))


def baseline_app() -> FastAPI:
    """Factory for uvicorn: one engine per server process, built in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_engine(os.environ["BENCH_DATABASE_URL"], pool_size=10)
        try:
            yield
        finally:
            app.state.engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/v1/pedidos", status_code=status.HTTP_202_ACCEPTED)
    def accept(request: Request, order: dict[str, Any]) -> dict[str, Any]:
        engine: Engine = request.app.state.engine
        with engine.begin() as conn:
            row_id = conn.execute(INSERT, {"body": json.dumps(order)}).scalar_one()
        return {"id": row_id, "created": True}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> int:
    import uvicorn

    from worker.api.__main__ import UVICORN_OPTIONS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "bench.api_baseline:baseline_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        **UVICORN_OPTIONS,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
