"""POST one operation's messages through the HTTP client's own transport.

`httpx.Client.post` merges the URL, headers and cookies, runs its auth and redirect steps and
reads Set-Cookie through `http.cookiejar` on every request; in the worker that cost about as
much CPU as the HTTP exchange itself (~0.6 ms of a document's ~3 ms in the gateway, py-spy).
`DirectPost` sends the request the client would send (its default headers and the
operation's, its timeouts, to the one transport it uses) and reads the answer as it would.
It steps aside, and the client posts, whenever the client would do more: when it routes by
URL (proxies from the environment: no single transport is given), or when the service has
set a cookie (kept in the client's jar, as the client keeps it, and sent from then on).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.request import getproxies

import httpx


def environment_proxies() -> bool:
    """Whether an `httpx.Client` built without a transport would send through a proxy."""
    found = getproxies()
    return any(found.get(scheme) for scheme in ("http", "https", "all"))


class DirectPost:
    """POSTs to `url` with `headers` exactly as `http.post` does.

    `transport` is the one `http` was built with (httpx then uses it for every URL, with no
    proxy from the environment); None when `http` chose its own, and then `http` posts.
    """

    def __init__(
        self,
        http: httpx.Client,
        transport: httpx.BaseTransport | None,
        url: str,
        headers: Mapping[str, str],
    ) -> None:
        self._http = http
        self._transport = transport
        self._url = httpx.URL(url)
        self._headers = dict(headers)
        self._merged = httpx.Headers(http.headers)
        self._merged.update(self._headers)
        self._extensions = {"timeout": http.timeout.as_dict()}

    def post(self, content: bytes) -> httpx.Response:
        if self._transport is None or self._http.cookies:
            return self._http.post(self._url, content=content, headers=self._headers)
        request = httpx.Request(
            "POST", self._url, content=content, headers=self._merged, extensions=self._extensions
        )
        response = self._transport.handle_request(request)
        response.request = request
        try:
            response.read()
        finally:
            response.close()
        if "set-cookie" in response.headers:
            self._http.cookies.extract_cookies(response)
        return response
