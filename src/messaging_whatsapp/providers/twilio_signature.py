"""Twilio's webhook signature: `X-Twilio-Signature`, the HMAC of the public URL and the sorted form
parameters (or, for JSON bodies, of the URL carrying the body's SHA-256).

It re-implements twilio-python's ``RequestValidator`` rules so the ``twilio`` package stays a
development-only dependency (the tests cross-check against it). The form reader lives here too:
the signature covers the form's fields as they were sent, repeats and all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from messaging_whatsapp.providers.base import PayloadError, WebhookRequest
from messaging_whatsapp.providers.payload import fail

SOURCE = "Twilio"
HashFactory = Callable[[], Any]

SIGNATURE_HEADER = "x-twilio-signature"
# Present when the webhook is signed with a SharedKey (Webhooks configuration API) instead of the
# auth token: "key=<sid>,algorithm=HMAC_SHA1|HMAC_SHA256".
SIGNATURE_SETTINGS_HEADER = "x-twilio-webhooks-signature-settings"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
_BODY_HASH_PARAM = "bodySHA256"
_DEFAULT_PORTS = {"https": "443", "http": "80"}
_HASHES: dict[str, HashFactory] = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}
# Twilio sends a few dozen fields; anything near this is not a Twilio webhook.
MAX_FORM_FIELDS = 1000


def signature_valid(request: WebhookRequest, auth_token: str) -> bool:
    """Whether ``X-Twilio-Signature`` matches the request under this auth token (constant time)."""
    received = request.headers.get(SIGNATURE_HEADER)
    hash_ = _hash_for(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not auth_token or not received or hash_ is None:
        return False
    params = _signed_params(request)
    if params is None:
        return False
    signature = received.strip().encode("utf-8")
    # Evaluate every variant (no early exit) so timing does not reveal which URL form matched.
    matches = [
        hmac.compare_digest(compute_signature(auth_token, url, params, hash_).encode(), signature)
        for url in _url_variants(request.url)
    ]
    return any(matches)


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    """All (name, value) pairs of a form body, repeats kept, in order; PayloadError if it is not a form."""
    try:
        text = body.decode("utf-8")
        return parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError as exc:  # includes UnicodeDecodeError
        raise fail(SOURCE, f"body is not a UTF-8 form ({exc})") from exc


def _hash_for(settings_header: str | None) -> HashFactory | None:
    """The HMAC hash the settings header names (SHA-1 when absent); None for one we do not know."""
    algorithm = "HMAC_SHA1"
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip().lower() == "algorithm" and value.strip():
            algorithm = value.strip().upper()
    return _HASHES.get(algorithm)


def _split_port(hostport: str) -> tuple[str, str | None]:
    # Only trailing digits are a port: a bracketed IPv6 literal ("[::1]") ends in "]".
    head, sep, tail = hostport.rpartition(":")
    if sep and tail.isascii() and tail.isdigit():
        return head, tail
    return hostport, None


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its default port, and with the default port added.

    Twilio is not consistent about including :443/:80 in what it signs, so the official validator
    accepts either form; a non-default port is always kept.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    default = _DEFAULT_PORTS.get(parts.scheme.lower())
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _split_port(hostport)
    variants = [url]
    if default is not None and port in (None, default):
        variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}")))
        variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}:{default}")))
    return list(dict.fromkeys(variants))


def _signed_params(request: WebhookRequest) -> list[tuple[str, str]] | None:
    """The parameters Twilio signed, or None when the body cannot be authenticated."""
    if request.content_type == FORM_CONTENT_TYPE:
        try:
            return form_pairs(request.body)
        except PayloadError:
            return None
    # Non-form (JSON) bodies: Twilio signs the URL alone and puts the body's SHA-256 in the query.
    try:
        body_hashes = parse_qs(urlsplit(request.url).query).get(_BODY_HASH_PARAM)
    except ValueError:
        return None
    if body_hashes:
        actual = hashlib.sha256(request.body).hexdigest().encode("ascii")
        return [] if hmac.compare_digest(actual, body_hashes[0].strip().lower().encode("utf-8")) else None
    # Without a body hash an unsigned body could be swapped under a valid signature; only accept none.
    return [] if not request.body else None


def _string_to_sign(url: str, params: list[tuple[str, str]]) -> str:
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    # Names sorted; a repeated name contributes each distinct value, sorted (as RequestValidator does).
    return url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def compute_signature(
    auth_token: str, url: str, params: list[tuple[str, str]], hash_: HashFactory = hashlib.sha1
) -> str:
    """Base64 HMAC of the URL followed by the sorted parameters, as Twilio computes X-Twilio-Signature."""
    mac = hmac.new(auth_token.encode("utf-8"), _string_to_sign(url, params).encode("utf-8"), hash_)
    return base64.b64encode(mac.digest()).decode("ascii")
