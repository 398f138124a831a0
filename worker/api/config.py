"""Settings of the HTTP intake, read from `API_*` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="API_", env_file=".env", extra="ignore")

    max_body_bytes: int = MIB
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    db_pool_size: int = 10
    # how long a process trusts an API key it verified: a revoked key stops working at most
    # this long after `api-key revoke` (0: every request asks the database)
    key_cache_seconds: float = 5.0
    access_log: bool = True  # one line per request: method, path, status, duration_ms
    # The original path (`POST /api/v1/pedidos/consumo-local/`) answers in the original API's
    # shapes (201 {track_id, cufe, status, message}, FastAPI's 422); false: the native ones.
    compat_mode: bool = True
