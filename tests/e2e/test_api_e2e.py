"""End to end over HTTP: the served API (`python -m worker.api`) and a real worker process on
real Redis and PostgreSQL; an order POSTed by a POS comes back as SUCCESS with its CUFE, and
the notes POSTed against it come back SUCCESS with their CUDEs, each submitted once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from adapters.db.api_keys import SqlApiKeys
from adapters.db.engine import make_engine
from adapters.gateways.simulated import SimulatedAuthority
from domain.ports import OrderKey
from tests.integration.api_fixtures import (
    ISSUER,
    REDIS_URL,
    create_database,
    drop_database,
    free_port,
    seed_order,
    unique_id,
)
from worker.migrations import upgrade
from worker.publisher import task_id_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class Deployment:
    def __init__(self, database_url: str, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "BROKER_URL": REDIS_URL,
            "QUEUE": f"api-e2e-{uuid.uuid4().hex[:8]}",
            "GATEWAY": "simulated",
            "SIMULATED__STATE_PATH": str(workdir / "authority.sqlite"),
            "WORKER__RECONCILE_INTERVAL": "2",
            "ISSUER__NIT": ISSUER,
            "LOG_LEVEL": "INFO",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in self.workdir.glob("*.log")
        )

    def wait_for_api(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the API did not come up\n{self.logs()}")


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    url = create_database("einvoice_api")
    upgrade(url)
    deployment = Deployment(url, tmp_path)
    yield deployment
    deployment.stop()
    drop_database(url)
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    client.close()


def test_an_order_posted_over_http_is_read_back_as_success(deployment: Deployment) -> None:
    engine = make_engine(deployment.env["DATABASE_URL"], pool_size=1)
    _, key = SqlApiKeys(engine).create("caja-e2e", ISSUER)
    engine.dispose()
    deployment.start("worker", "-m", "worker", "worker", "--pool", "solo")
    deployment.start("api", "-m", "worker.api", "--port", str(deployment.port))
    deployment.wait_for_api()

    order_id = unique_id()
    order = seed_order(order_id)
    with httpx.Client(base_url=deployment.base_url, headers={"X-API-Key": key}, timeout=10) as http:
        posted = http.post("/api/v1/pedidos", json=order)
        assert posted.status_code == 202, posted.text
        location = posted.headers["location"]

        view: dict[str, Any] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = http.get(location).json()
            if view["state"] in ("SUCCESS", "FAILED"):
                break
            time.sleep(0.25)

        # a POS of the original API sending the same order again reads the outcome in its shape
        original = http.post("/api/v1/pedidos/consumo-local/", json=order)

    assert view.get("state") == "SUCCESS", f"{view}\n{deployment.logs()}"
    assert view["number"] == posted.json()["number"]
    assert view["cufe"] and len(view["cufe"]) == 96
    statuses = [e["status"] for e in view["timeline"]]
    assert statuses[0] == "RECIBIDO"
    assert statuses[-1] == "SUCCESS"
    assert "PROCESANDO" in statuses
    assert original.status_code == 201, original.text
    assert original.json() == {
        "track_id": task_id_for(OrderKey(ISSUER, order_id)),
        "cufe": view["cufe"],
        "status": "SUCCESS",
        "message": f"order {order_id} is issued; the document is accepted",
    }
    assert key not in deployment.logs()


def _final(http: httpx.Client, location: str, timeout: float = 90) -> dict[str, Any]:
    view: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = http.get(location).json()
        if view.get("state") in ("SUCCESS", "FAILED"):
            break
        time.sleep(0.25)
    return view


def test_notes_posted_over_http_go_out_through_a_real_worker(deployment: Deployment) -> None:
    engine = make_engine(deployment.env["DATABASE_URL"], pool_size=1)
    _, key = SqlApiKeys(engine).create("caja-e2e", ISSUER)
    engine.dispose()
    deployment.start("worker", "-m", "worker", "worker", "--pool", "solo")
    deployment.start("beat", "-m", "worker", "beat")  # wakes a note once its sale is issued
    deployment.start("api", "-m", "worker.api", "--port", str(deployment.port))
    deployment.wait_for_api()

    order_id = unique_id()
    notes = f"/api/v1/pedidos/{order_id}/notas"
    give_back: dict[str, Any] = {
        "id_nota": f"DEV-{order_id}",
        "tipo": "devolucion",
        "lineas": [{"linea": 1, "cantidad": 1}],
    }
    with httpx.Client(base_url=deployment.base_url, headers={"X-API-Key": key}, timeout=10) as http:
        assert http.post("/api/v1/pedidos", json=seed_order(order_id)).status_code == 202
        returned = http.post(notes, json=give_back)  # at once: it may wait for its sale
        assert returned.status_code == 201, returned.text
        sale = _final(http, f"/api/v1/pedidos/{order_id}")
        first = _final(http, returned.headers["location"])

        void = http.post(notes, json={"id_nota": f"VOID-{order_id}", "tipo": "anulacion"})
        assert void.status_code == 201, void.text
        assert void.json()["waits_for_document"] is False  # its sale is SUCCESS: out at once
        voided = _final(http, void.headers["location"])
        again = http.post(notes, json=give_back)
        order_view = http.get(f"/api/v1/pedidos/{order_id}").json()

    assert sale["state"] == "SUCCESS", f"{sale}\n{deployment.logs()}"
    for note in (first, voided):
        assert note.get("state") == "SUCCESS", f"{note}\n{deployment.logs()}"
        assert note["document_type"] == "91" and note["number"].startswith("NC")
        assert note["cude"] and len(note["cude"]) == 96 and note["cude"] != sale["cufe"]
        assert note["corrects"]["cufe"] == sale["cufe"]
        assert note["corrects"]["number"] == sale["number"]
        statuses = [e["status"] for e in note["timeline"]]
        assert statuses[0] == "RECIBIDO" and statuses[-1] == "SUCCESS"
        assert "PROCESANDO" in statuses
    assert voided["total"] == "13800.00"  # the other beer, its tax and the tip
    assert again.status_code == 200 and again.json()["state"] == "SUCCESS"
    assert again.json()["cude"] == first["cude"]
    assert [(n["id_nota"], n["state"], n["cude"]) for n in order_view["notes"]] == [
        (first["id_nota"], "SUCCESS", first["cude"]),
        (voided["id_nota"], "SUCCESS", voided["cude"]),
    ]
    assert order_view["creditable"]["total"] == "0.00"
    submissions = SimulatedAuthority(deployment.workdir / "authority.sqlite").submissions()
    assert sorted(submissions.values()) == [1, 1, 1], "the sale and each note submitted once"
    assert key not in deployment.logs()
