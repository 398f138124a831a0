"""The authorities a deployment talks to, each with its own books of what it received.

- the simulated gateway: books in a SQLite file shared by every worker process;
- the DIAN simulator (SOAP 1.2, full checks) as its own process: `/_stats` submissions per number;
- the Factus simulator (REST + OAuth) as its own process: `/_stats` bills_created per reference.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from adapters.dian.devcert import make_test_pkcs12
from adapters.gateways.simulated import SimulatedAuthority
from chaos.services import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]

# Known secret values: after a run none of them may appear in the database, logs or messages.
SECRETS = {
    "cert_password": "Chaos-CertPass-7731!",
    "software_pin": "chaos-pin-40417",
    "technical_key": "9d3c2e1f0a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d",
    "factus_password": "Chaos-OAuth-Pw-3377",
    "factus_client_secret": "chaos-client-secret-8812",
}
ISSUER_NIT = "900123456"


class Simulated:
    name = "simulated"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "authority.sqlite"

    def env(self) -> dict[str, str]:
        return {"GATEWAY": "simulated", "SIMULATED__STATE_PATH": str(self.path)}

    def submissions(self) -> dict[str, int]:
        return SimulatedAuthority(self.path).submissions()

    def stop(self) -> None:
        pass


class _HttpSimulator:
    name = "http"
    module = ""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = (workdir / f"{self.name}-simulator.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "--port", str(self.port), *args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: httpx.get(f"{self.url}/_stats", timeout=1).is_success, 20, self.name)

    def control(self, **changes: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_control", json=changes, timeout=10)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/_stats", timeout=10).json()
        return data

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Dian(_HttpSimulator):
    name = "dian"
    module = "adapters.dian.simulator"

    def __init__(self, workdir: Path, checks: bool = True) -> None:
        args = ["--technical-key", f"SETP={SECRETS['technical_key']}", "--batch-polls", "0"]
        if not checks:
            args.append("--no-checks")
        super().__init__(workdir, *args)
        self.cert = workdir / "issuer.p12"
        self.cert.write_bytes(make_test_pkcs12(ISSUER_NIT, SECRETS["cert_password"]))

    def env(self, connect: float = 1, read: float = 3) -> dict[str, str]:
        return {
            "GATEWAY": "dian",
            "DIAN__ENDPOINT": self.url,
            "DIAN__CERT_PATH": str(self.cert),
            "DIAN__CERT_PASSWORD": SECRETS["cert_password"],
            "DIAN__SOFTWARE_PIN": SECRETS["software_pin"],
            "DIAN__CONNECT_TIMEOUT": str(connect),
            "DIAN__READ_TIMEOUT": str(read),
            "NUMBERING__TECHNICAL_KEY": SECRETS["technical_key"],
            "ISSUER__NIT": ISSUER_NIT,
        }

    def submissions(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.stats()["submissions"].items()}


class Factus(_HttpSimulator):
    name = "factus"
    module = "adapters.factus.simulator"
    client_id = "chaos-client"
    username = "chaos@factus.test"

    def __init__(self, workdir: Path) -> None:
        super().__init__(
            workdir,
            "--client-id",
            self.client_id,
            "--client-secret",
            SECRETS["factus_client_secret"],
            "--username",
            self.username,
            "--password",
            SECRETS["factus_password"],
            "--rate-limit",
            "100000",
        )

    def env(self, redis_url: str, connect: float = 1, read: float = 3) -> dict[str, str]:
        return {
            "GATEWAY": "factus",
            "FACTUS__BASE_URL": self.url,
            "FACTUS__CLIENT_ID": self.client_id,
            "FACTUS__CLIENT_SECRET": SECRETS["factus_client_secret"],
            "FACTUS__USERNAME": self.username,
            "FACTUS__PASSWORD": SECRETS["factus_password"],
            "FACTUS__NUMBERING_RANGE_ID": "8",
            "FACTUS__RATE_LIMIT_PER_MINUTE": "100000",
            "FACTUS__CONNECT_TIMEOUT": str(connect),
            "FACTUS__READ_TIMEOUT": str(read),
            "REDIS_URL": redis_url,
            "ISSUER__NIT": ISSUER_NIT,
        }

    def submissions(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.stats()["bills_created"].items()}
