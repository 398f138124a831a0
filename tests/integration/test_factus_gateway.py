"""The Factus adapter against the local Factus simulator, over real HTTP, with real Redis."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import redis

from adapters.factus.auth import OAuthEndpoint, RedisTokenProvider
from adapters.factus.client import (
    FactusClient,
    FactusConflict,
    FactusNotFound,
    FactusUnprocessable,
)
from adapters.factus.config import FactusConfig, build_factus_gateway
from adapters.factus.gateway import FactusGateway
from adapters.factus.ratelimit import InMemoryRateLimiter, RedisRateLimiter
from adapters.factus.simulator import SimulatorServer, start_simulator
from domain.errors import (
    GatewayError,
    GatewayMisconfigured,
    GatewayUnavailable,
    InvalidOrder,
    OutcomeUnknown,
)
from domain.order import parse_order
from domain.ports import OrderKey, Rule, Submission, Verdict

REDIS_URL = "redis://127.0.0.1:6379/14"
CLIENT_ID = "it-client-7f3a"
CLIENT_SECRET = "it-secret-Q9zX81"
USERNAME = "caja@restaurante.test"
PASSWORD = "it-password-Lm22Rt"

ORDER: dict[str, Any] = {
    "id_pedido_origen": "POS-100",
    "items": [
        {
            "id_producto": "CERV-1",
            "descripcion": "Cerveza Artesanal",
            "cantidad": "2",
            "precio_unitario": "10000",
            "impuestos": [{"nombre": "INC", "tasa": "0.08", "monto": "1600"}],
            "total_item": "21600",
        }
    ],
    "subtotal": "20000",
    "propina_voluntaria": "3000",
    "impuestos_totales": "1600",
    "total_factura": "24600",
    "metodos_pago": [{"tipo": "Efectivo", "monto": "24600"}],
}


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    server, _ = start_simulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, username=USERNAME, password=PASSWORD
    )
    yield server
    server.stop()


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    control(simulator, reset=True, **DEFAULTS)
    return simulator


DEFAULTS: dict[str, Any] = {
    "rate_limit": 80,
    "rate_limit_window": 60.0,
    "latency": 0.0,
    "dian_slow": 0,
    "dian_rejections": {},
    "dian_notifications": {},
    "refresh_fails": False,
    "reject_all_tokens": False,
    "maintenance": False,
    "payment_required": False,
    "fail_next": 0,
    "hang_next": 0,
    "drop_next": 0,
    "conflict_next": 0,
    "token_ttl": 600,
}


@pytest.fixture
def store() -> Iterator[redis.Redis[bytes]]:
    client: redis.Redis[bytes] = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(store: redis.Redis[bytes]) -> Iterator[str]:
    value = f"test-factus-{uuid.uuid4().hex[:8]}"
    yield value
    for key in store.scan_iter(f"{value}:*"):
        store.delete(key)


def control(server: SimulatorServer, **changes: Any) -> None:
    httpx.post(server.base_url + "/_control", json=changes, timeout=5).raise_for_status()


def stats(server: SimulatorServer) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(server.base_url + "/_stats", timeout=5).json()
    return answer


def config_for(server: SimulatorServer, **overrides: Any) -> FactusConfig:
    base = FactusConfig(
        base_url=server.base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username=USERNAME,
        password=PASSWORD,
        numbering_range_id=8,
        connect_timeout=1.0,
        read_timeout=2.0,
    )
    return replace(base, **overrides)


@pytest.fixture
def gateway_factory(sim: SimulatorServer, prefix: str) -> Iterator[Any]:
    made: list[FactusGateway] = []

    def make(**overrides: Any) -> FactusGateway:
        gateway = build_factus_gateway(config_for(sim, **overrides), REDIS_URL, key_prefix=prefix)
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


def submission(order_id: str = "POS-100") -> Submission:
    order = parse_order({**ORDER, "id_pedido_origen": order_id})
    return Submission(OrderKey("900123456", order_id), order, datetime.now(UTC))


SEEN_TEXT: list[str] = []  # every result and exception text, checked for secrets at the end


T = TypeVar("T")


def record(value: T) -> T:
    SEEN_TEXT.append(repr(value))
    SEEN_TEXT.append(str(value.as_dict()) if hasattr(value, "as_dict") else str(value))
    return value


# -- outcomes ----------------------------------------------------------------------------------


def test_validated_bill_is_accepted_with_its_references(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    result = record(gateway_factory().submit(submission()))
    assert result.verdict is Verdict.ACCEPTED
    refs = result.references
    assert refs["reference_code"] == "900123456-POS-100"
    assert refs["number"].startswith("SETP")
    assert len(refs["cufe"]) == 96
    assert refs["qr"].endswith(refs["cufe"])
    assert refs["public_url"]
    assert "qr_image" not in result.response
    assert result.response["totals"]["total"] == "24600.00"
    assert stats(sim)["bills_created"] == {"900123456-POS-100": 1}


def test_notifications_are_kept_as_warnings_on_accepted(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, dian_notifications={"FAJ44b": "El nombre no coincide con el RUT"})
    result = gateway_factory().submit(submission())
    assert result.verdict is Verdict.ACCEPTED
    assert result.rules == (Rule("FAJ44b", "Notificación", "El nombre no coincide con el RUT"),)


def test_dian_slow_is_pending_and_status_resends_the_same_payload(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, dian_slow=2)
    gateway = gateway_factory()
    first = gateway.submit(submission())
    assert first.verdict is Verdict.PENDING
    assert first.references["number"].startswith("SETP")
    assert gateway.status(submission()).verdict is Verdict.PENDING
    final = gateway.status(submission())
    assert final.verdict is Verdict.ACCEPTED
    assert final.references["number"] == first.references["number"]
    counts = stats(sim)
    assert counts["bills_created"] == {"900123456-POS-100": 1}
    assert counts["validate_requests"] == {"900123456-POS-100": 3}


def test_field_errors_raise_invalid_order(sim: SimulatorServer, gateway_factory: Any) -> None:
    with pytest.raises(InvalidOrder) as caught:
        gateway_factory(numbering_range_id=99).submit(submission())
    record(caught.value)
    assert [(e.field, e.rule) for e in caught.value.errors] == [
        ("numbering_range_id", "factus_validation")
    ]
    assert stats(sim)["bills_created"] == {}


def test_dian_rejection_is_final_with_every_rule_and_unblocks_factus(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, dian_rejections={"FAK24": "No está informado el DV del NIT", "FAJ21": "Nombre"})
    gateway = gateway_factory()
    result = record(gateway.submit(submission("POS-1")))
    assert result.verdict is Verdict.REJECTED
    assert {(r.code, r.kind) for r in result.rules} == {("FAK24", "Rechazo"), ("FAJ21", "Rechazo")}
    # the rejected bill was deleted, so Factus does not block the next order with a 409
    assert stats(sim)["deleted"] == {"900123456-POS-1": 1}
    control(sim, dian_rejections={})
    assert gateway.submit(submission("POS-2")).verdict is Verdict.ACCEPTED


def test_conflict_on_a_validated_bill_keeps_it(sim: SimulatorServer, gateway_factory: Any) -> None:
    gateway = gateway_factory()
    first = gateway.submit(submission())
    again = gateway.submit(submission())
    assert again.verdict is Verdict.ACCEPTED
    assert again.references["cufe"] == first.references["cufe"]
    counts = stats(sim)
    assert counts["conflicts"] == 1
    assert counts["bills_created"] == {"900123456-POS-100": 1}
    assert counts["deleted"] == {}


def test_conflict_on_a_rejected_bill_deletes_and_resends_once(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    gateway = gateway_factory(delete_rejected=False)
    control(sim, dian_rejections={"FAK24": "No está informado el DV del NIT"})
    assert gateway.submit(submission()).verdict is Verdict.REJECTED
    control(sim, dian_rejections={})  # the cause was fixed (e.g. configuration at Factus)
    result = gateway.submit(submission())
    assert result.verdict is Verdict.ACCEPTED
    counts = stats(sim)
    assert counts["conflicts"] == 1
    assert counts["deleted"] == {"900123456-POS-100": 1}
    assert counts["bills_created"] == {"900123456-POS-100": 2}


def test_conflict_on_a_pending_bill_resends_the_same_payload(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    gateway = gateway_factory()
    control(sim, dian_slow=1)
    assert gateway.submit(submission()).verdict is Verdict.PENDING
    control(sim, conflict_next=1)
    assert gateway.submit(submission()).verdict is Verdict.ACCEPTED
    counts = stats(sim)
    assert counts["deleted"] == {}
    assert counts["bills_created"] == {"900123456-POS-100": 1}


def test_conflict_caused_by_another_bill_is_unavailable(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, dian_rejections={"FAK24": "No está informado el DV del NIT"})
    assert gateway_factory(delete_rejected=False).submit(submission("POS-1")).verdict is (
        Verdict.REJECTED
    )
    control(sim, dian_rejections={})
    with pytest.raises(GatewayUnavailable):
        gateway_factory().submit(submission("POS-2"))


def test_status_not_found_and_accepted(sim: SimulatorServer, gateway_factory: Any) -> None:
    gateway = gateway_factory()
    assert gateway.status(submission()).verdict is Verdict.NOT_FOUND
    gateway.submit(submission())
    assert gateway.status(submission()).verdict is Verdict.ACCEPTED
    assert stats(sim)["validate_requests"] == {"900123456-POS-100": 1}


def test_the_lookup_reads_every_page_and_matches_the_code_exactly(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, rate_limit=100_000)
    gateway = gateway_factory(rate_limit_per_minute=100_000)
    # Factus filters partially: `POS-1` also lists POS-11000 … POS-11149, over two pages
    for n in range(1000, 1150):
        gateway.submit(submission(f"POS-1{n}"))
    assert gateway.status(submission("POS-1")).verdict is Verdict.NOT_FOUND
    last = gateway.submit(submission("POS-1"))
    assert last.verdict is Verdict.ACCEPTED
    found = gateway.status(submission("POS-1"))
    assert found.verdict is Verdict.ACCEPTED
    assert found.references["reference_code"] == "900123456-POS-1"
    assert stats(sim)["validate_requests"]["900123456-POS-1"] == 1


def test_status_of_a_rejected_bill_is_rejected_and_unblocks_factus(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    control(sim, dian_rejections={"FAK24": "No está informado el DV del NIT"})
    assert gateway_factory(delete_rejected=False).submit(submission()).verdict is Verdict.REJECTED
    result = gateway_factory().status(submission())
    assert result.verdict is Verdict.REJECTED
    assert [r.code for r in result.rules] == ["FAK24"]
    assert stats(sim)["deleted"] == {"900123456-POS-100": 1}


def test_timeout_after_processing_is_outcome_unknown_then_status_finds_it(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    gateway = gateway_factory(read_timeout=0.5)
    control(sim, hang_next=1, hang_seconds=1.5)
    with pytest.raises(OutcomeUnknown) as caught:
        gateway.submit(submission())
    record(caught.value)
    assert gateway.status(submission()).verdict is Verdict.ACCEPTED
    assert stats(sim)["bills_created"] == {"900123456-POS-100": 1}


def test_dropped_connection_after_processing_is_outcome_unknown(
    sim: SimulatorServer, gateway_factory: Any
) -> None:
    gateway = gateway_factory()
    control(sim, drop_next=1)
    with pytest.raises(OutcomeUnknown):
        gateway.submit(submission())
    assert gateway.status(submission()).verdict is Verdict.ACCEPTED
    assert stats(sim)["bills_created"] == {"900123456-POS-100": 1}


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"maintenance": True}, GatewayUnavailable),
        ({"fail_next": 5}, GatewayUnavailable),
        ({"payment_required": True}, GatewayMisconfigured),
        ({"reject_all_tokens": True}, GatewayMisconfigured),
    ],
)
def test_factus_failures_map_to_what_the_caller_does_next(
    sim: SimulatorServer, gateway_factory: Any, changes: dict[str, Any], error: type[Exception]
) -> None:
    control(sim, **changes)
    with pytest.raises(error) as caught:
        gateway_factory().submit(submission())
    record(caught.value)
    assert stats(sim)["bills_created"] == {}


def test_unreachable_factus_is_unavailable(gateway_factory: Any) -> None:
    with socket_port() as port:
        pass  # the port is free and nobody listens on it any more
    gateway = gateway_factory(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(GatewayUnavailable):
        gateway.submit(submission())


class socket_port:
    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def test_downloads_decode_base64_files(sim: SimulatorServer, gateway_factory: Any) -> None:
    gateway = gateway_factory()
    result = gateway.submit(submission())
    number = result.references["number"]
    pdf = gateway.client.download_pdf(number)
    xml = gateway.client.download_xml(number)
    assert pdf.file_name == xml.file_name == f"fv{number}"  # as Factus names them
    assert pdf.content.startswith(b"%PDF") and result.references["cufe"].encode() in xml.content
    with pytest.raises(FactusNotFound):
        gateway.client.download_pdf("SETP1")


def test_embedded_mode_without_redis(sim: SimulatorServer) -> None:
    gateway = build_factus_gateway(config_for(sim), None)
    try:
        assert gateway.submit(submission()).verdict is Verdict.ACCEPTED
    finally:
        gateway.close()


# -- tokens ------------------------------------------------------------------------------------


def test_401_reauthenticates_once_and_retries(sim: SimulatorServer, gateway_factory: Any) -> None:
    gateway = gateway_factory()
    gateway.status(submission())  # logs in
    control(sim, revoke_tokens=True)
    assert gateway.submit(submission()).verdict is Verdict.ACCEPTED
    counts = stats(sim)
    assert counts["unauthorized"] == 1
    assert counts["logins"] == 2
    assert counts["bills_created"] == {"900123456-POS-100": 1}


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def provider(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str, clock: FakeClock | None = None
) -> tuple[RedisTokenProvider, httpx.Client]:
    http = httpx.Client(timeout=httpx.Timeout(5.0, connect=1.0))
    kwargs: dict[str, Any] = {"clock": clock} if clock else {}
    oauth = OAuthEndpoint(
        http,
        sim.base_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username=USERNAME,
        password=PASSWORD,
        **kwargs,
    )
    return RedisTokenProvider(store, oauth, key_prefix=prefix, **kwargs), http


def test_token_is_refreshed_before_it_expires(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str
) -> None:
    clock = FakeClock()
    tokens, http = provider(sim, store, prefix, clock)
    with http:
        first = tokens.get()
        clock.now += 500  # 600 s token, 60 s margin: still fresh
        assert tokens.get() == first
        clock.now += 45  # 55 s left: inside the margin, not yet expired
        second = tokens.get()
    assert second != first
    counts = stats(sim)
    assert (counts["logins"], counts["refreshes"]) == (1, 1)


def test_failed_refresh_falls_back_to_a_full_login(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str
) -> None:
    clock = FakeClock()
    tokens, http = provider(sim, store, prefix, clock)
    with http:
        first = tokens.get()
        control(sim, refresh_fails=True)
        clock.now += 700  # expired
        assert tokens.get() != first
    counts = stats(sim)
    assert (counts["logins"], counts["failed_refreshes"], counts["refreshes"]) == (2, 1, 0)


def test_many_workers_asking_at_once_log_in_once(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str
) -> None:
    control(sim, latency=0.3)  # a slow token endpoint widens the race
    workers = [provider(sim, redis.Redis.from_url(REDIS_URL), prefix) for _ in range(20)]
    barrier = threading.Barrier(len(workers))
    got: list[str] = []

    def ask(tokens: RedisTokenProvider) -> None:
        barrier.wait()
        got.append(tokens.get())

    threads = [threading.Thread(target=ask, args=(tokens,)) for tokens, _ in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    for _, http in workers:
        http.close()
    assert len(got) == 20 and len(set(got)) == 1
    assert stats(sim)["logins"] == 1


def test_wrong_credentials_are_misconfigured(sim: SimulatorServer, gateway_factory: Any) -> None:
    with pytest.raises(GatewayMisconfigured) as caught:
        gateway_factory(password="not-the-password").submit(submission())
    record(caught.value)


# -- rate limit --------------------------------------------------------------------------------


def test_burst_drains_at_the_allowed_rate_without_429(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str
) -> None:
    control(sim, rate_limit=10, rate_limit_window=1.5)
    tokens, http = provider(sim, store, prefix)
    limiter = RedisRateLimiter(store, f"{prefix}:ratelimit:u", limit=8, window_seconds=1.5)
    client = FactusClient(http, sim.base_url, tokens, limiter, max_wait=10)
    tokens.get()
    started = time.monotonic()

    def burst() -> None:
        for _ in range(4):
            assert client.find_by_reference("none") is None

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    elapsed = time.monotonic() - started
    http.close()
    counts = stats(sim)
    assert counts["requests"] == 16
    assert counts["rate_limited"] == 0
    assert counts["max_requests_in_window"] <= 10
    assert elapsed >= 1.4  # 16 requests at 8 per 1.5 s need a second window


def test_limiter_gives_up_with_retry_after(store: redis.Redis[bytes], prefix: str) -> None:
    limiter = RedisRateLimiter(store, f"{prefix}:ratelimit:u", limit=1, window_seconds=5)
    limiter.acquire(0.1)
    with pytest.raises(GatewayUnavailable) as caught:
        limiter.acquire(0.1)
    assert caught.value.retry_after is not None and 4 < caught.value.retry_after <= 5


def test_429_from_factus_is_unavailable_with_retry_after(
    sim: SimulatorServer, store: redis.Redis[bytes], prefix: str
) -> None:
    control(sim, rate_limit=3, rate_limit_window=30)
    tokens, http = provider(sim, store, prefix)
    client = FactusClient(http, sim.base_url, tokens, InMemoryRateLimiter(100), max_wait=1)
    with http:
        for _ in range(3):
            client.find_by_reference("none")
        with pytest.raises(GatewayUnavailable) as caught:
            client.find_by_reference("none")
    assert caught.value.retry_after is not None and 0 < caught.value.retry_after <= 30
    assert stats(sim)["rate_limited"] == 1


# -- the translation is total ------------------------------------------------------------------


class StaticTokens:
    def get(self) -> str:
        return "static-token"

    def invalidate(self, token: str) -> None:
        pass


def _request_error_classes() -> list[type[httpx.RequestError]]:
    found: list[type[httpx.RequestError]] = []
    pending: list[type[httpx.RequestError]] = [httpx.RequestError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


ALLOWED = (GatewayError, InvalidOrder, FactusNotFound, FactusConflict, FactusUnprocessable)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_status_and_transport_error_maps_to_a_known_outcome(method: str) -> None:
    outcomes: dict[str, str] = {}

    def run(handler: Any) -> str:
        http = httpx.Client(transport=httpx.MockTransport(handler))
        client = FactusClient(
            http, "http://factus.test", StaticTokens(), InMemoryRateLimiter(10**6)
        )
        try:
            if method == "POST":
                client.create_and_validate({"reference_code": "R"})
            else:
                client.find_by_reference("R")
        except ALLOWED as exc:
            return type(exc).__name__
        return "ok"

    for status in range(200, 600):
        body: dict[str, Any] = {"data": {"data": []}}
        outcomes[str(status)] = run(lambda request, s=status, b=body: httpx.Response(s, json=b))
    for cls in _request_error_classes():

        def boom(request: httpx.Request, cls: type[httpx.RequestError] = cls) -> httpx.Response:
            raise cls("boom", request=request)

        outcomes[cls.__name__] = run(boom)

    assert outcomes["429"] == outcomes["503"] == outcomes["500"] == "GatewayUnavailable"
    assert outcomes["402"] == outcomes["401"] == outcomes["400"] == "GatewayMisconfigured"
    assert outcomes["409"] == "FactusConflict" and outcomes["422"] == "FactusUnprocessable"
    assert outcomes["ConnectError"] == outcomes["ConnectTimeout"] == "GatewayUnavailable"
    unsent_kind = "OutcomeUnknown" if method == "POST" else "GatewayUnavailable"
    assert outcomes["ReadTimeout"] == outcomes["RemoteProtocolError"] == unsent_kind
    assert outcomes["ReadError"] == unsent_kind
    assert outcomes["200"] == outcomes["201"] == "ok"
    no_bill = run(lambda request: httpx.Response(201, text="<html>proxy</html>"))
    assert no_bill == ("OutcomeUnknown" if method == "POST" else "GatewayUnavailable")


# -- secrets -----------------------------------------------------------------------------------


def test_no_secret_or_token_in_results_or_errors(
    sim: SimulatorServer, gateway_factory: Any, store: redis.Redis[bytes], prefix: str
) -> None:
    gateway = gateway_factory()
    record(gateway.submit(submission("POS-S1")))
    control(sim, dian_slow=1)
    record(gateway.submit(submission("POS-S2")))
    control(sim, reject_all_tokens=True)
    with pytest.raises(GatewayMisconfigured) as caught:
        gateway.submit(submission("POS-S3"))
    record(caught.value)
    record(caught.value.__cause__)
    record(config_for(sim))
    tokens, http = provider(sim, store, prefix)
    with http:
        live_token = tokens.get()
    texts = "\n".join(SEEN_TEXT)
    assert len(SEEN_TEXT) >= 10  # the other tests recorded theirs too
    for secret in (CLIENT_SECRET, PASSWORD, live_token, "Bearer"):
        assert secret not in texts
