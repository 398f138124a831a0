"""`DirectPost` sends what `httpx.Client.post` sends, and lets the client post when it would
do more (a cookie to send back, a proxy from the environment)."""

from __future__ import annotations

import httpx

from adapters.dian.direct_post import DirectPost

URL = "http://dian.test/WcfDianCustomerServices.svc"
HEADERS = {"Content-Type": 'application/soap+xml; charset=utf-8; action="urn:SendBillSync"'}


class Service:
    """An in-memory service that keeps every request and may set a cookie."""

    def __init__(self, set_cookie: str | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.set_cookie = set_cookie

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        headers = {"Content-Type": "application/soap+xml"}
        if self.set_cookie:
            headers["Set-Cookie"] = self.set_cookie
        return httpx.Response(200, content=b"<answer/>", headers=headers)


def _client(service: Service) -> tuple[httpx.Client, httpx.MockTransport]:
    transport = httpx.MockTransport(service)
    timeout = httpx.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
    return httpx.Client(timeout=timeout, transport=transport), transport


def _sent(request: httpx.Request) -> tuple[object, ...]:
    return (
        request.method,
        str(request.url),
        request.headers.multi_items(),
        request.content,
        request.extensions["timeout"],
    )


def test_the_request_is_the_one_the_client_sends() -> None:
    service = Service()
    http, transport = _client(service)
    direct = DirectPost(http, transport, URL, HEADERS)
    answer = direct.post(b"<envelope/>")
    http.post(URL, content=b"<envelope/>", headers=HEADERS)
    ours, clients = service.requests
    assert _sent(ours) == _sent(clients)
    assert answer.status_code == 200 and answer.content == b"<answer/>"
    assert answer.headers["content-type"] == "application/soap+xml"


def test_a_cookie_set_by_the_service_is_kept_and_sent_back() -> None:
    service = Service(set_cookie="affinity=node-7; Path=/")
    http, transport = _client(service)
    direct = DirectPost(http, transport, URL, HEADERS)
    direct.post(b"one")
    direct.post(b"two")
    first, second = service.requests
    assert "cookie" not in first.headers
    assert second.headers["cookie"] == "affinity=node-7"
    assert http.cookies["affinity"] == "node-7"


def test_without_a_transport_of_its_own_the_client_posts() -> None:
    service = Service()
    # httpx.Client chose its transport (by URL, say for a proxy): the client posts
    http = httpx.Client(mounts={"http://": httpx.MockTransport(service)})
    DirectPost(http, None, URL, HEADERS).post(b"<envelope/>")
    assert len(service.requests) == 1
