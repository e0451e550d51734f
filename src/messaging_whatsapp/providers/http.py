"""What every provider's REST calls share: transport errors classified, Retry-After, JSON answers.

The one distinction that matters for never messaging a customer twice: a request that certainly did
not leave (connection refused, pool exhausted) is safe to retry; one that may have reached the
provider (read timeout, reset after writing) is an unknown outcome and is never retried blindly.
"""

from __future__ import annotations

import email.utils
import functools
import time
from typing import Any

import httpx

from messaging_whatsapp.providers.outbound import ErrorClass, SendError
from messaging_whatsapp.providers.trace import record_response
from messaging_whatsapp.providers.transport import DestinationRefused, LeanTransport

# Timeouts for provider calls: connecting is quick or not at all; a send may take a few seconds.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0, pool=5.0)
# Retry-After values beyond this are clamped: the sender re-queues rather than sleeping for hours.
MAX_RETRY_AFTER_SECONDS = 3600.0

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


async def request(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """Make one provider call; transport failures become a classified SendError."""
    try:
        parsed = _parsed_url(url)
    except httpx.InvalidURL as exc:
        # Nothing was sent; the number's address must be fixed (bind-tenant checks it since).
        raise SendError(
            ErrorClass.PAUSE_CHANNEL, "invalid_url", f"the number's API URL is invalid: {exc}"
        ) from exc
    try:
        return await client.request(method, parsed, **kwargs)
    except DestinationRefused as exc:
        # The number's address is wrong or hostile; nothing was sent, and retrying will not help.
        raise SendError(
            ErrorClass.PAUSE_CHANNEL,
            "destination_refused",
            f"{exc}; OUTBOUND_ALLOW_PRIVATE=true lets the engine call private addresses",
        ) from exc
    except _NOT_SENT as exc:
        raise SendError(
            ErrorClass.RETRY, "connect_error", f"provider unreachable: {type(exc).__name__}"
        ) from exc
    except httpx.TransportError as exc:
        # The request may have been received and acted on; only the receipts can tell.
        raise SendError(
            ErrorClass.UNKNOWN_OUTCOME, "unknown_outcome", f"no answer from provider: {type(exc).__name__}"
        ) from exc


@functools.lru_cache(maxsize=4096)
def _parsed_url(url: str) -> httpx.URL:
    """The URL parsed once: a number calls the same few URLs over and over, and parsing one cost
    about 7% of the sender's CPU per message (httpx.URL is immutable, so sharing it is safe)."""
    return httpx.URL(url)


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Ignore the response's Set-Cookie headers."""

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        """Refuse: one store serves every provider client."""
        raise AttributeError("a provider client keeps no cookies")


class ProviderClient(httpx.AsyncClient):
    """httpx.AsyncClient without cookies: provider APIs authenticate every call by its headers, a
    client shared by many numbers must not carry a cookie from one tenant's call to another's,
    and reading Set-Cookie cost about a tenth of the sender's CPU per message."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        """Always empty."""
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise AttributeError("a provider client keeps no cookies")


def provider_client(
    *, max_connections: int = 100, timeout: httpx.Timeout = DEFAULT_TIMEOUT, guarded: bool = False
) -> httpx.AsyncClient:
    """A client for provider calls on the lean transport (providers/transport.py), at most
    `max_connections` per provider host; `guarded` for URLs a tenant gave (a gateway's address):
    it refuses hosts that are not on the public internet."""
    transport = LeanTransport(max_connections=max_connections, guarded=guarded)
    # Each answer goes to the send's trace (providers/trace.py), for the campaign logs.
    return ProviderClient(transport=transport, timeout=timeout, event_hooks={"response": [record_response]})


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if _looks_like_date(value) else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _looks_like_date(value: str) -> bool:
    try:
        email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return True


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it has none or it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def http_error_class(status: int) -> ErrorClass:
    """The class of an HTTP error status when the provider's own error code says nothing better."""
    if status == 429 or status >= 500:
        return ErrorClass.RETRY
    if status in (401, 403):
        return ErrorClass.PAUSE_CHANNEL
    return ErrorClass.FIX_REQUEST
