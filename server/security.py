"""Twilio request signatures, and which URL Twilio actually signed.

Twilio signs the URL *it* requested. Behind a proxy (ngrok, a load balancer) that is the
public URL, not the one our server sees, so: PUBLIC_BASE_URL when set, else the scheme and
host from X-Forwarded-Proto / X-Forwarded-Host, else the request's own. Pure functions; the
app passes the request's pieces in.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from typing import Mapping

from twilio.request_validator import RequestValidator


def request_base(
    public_base_url: str | None, scheme: str, host: str, headers: Mapping[str, str]
) -> str:
    """`scheme://host` the caller used to reach us (no trailing slash)."""
    if public_base_url:
        return public_base_url.rstrip("/")
    proto = _first(headers.get("X-Forwarded-Proto")) or scheme
    fwd_host = _first(headers.get("X-Forwarded-Host")) or host
    # A websocket request arrives as ws/wss; webhooks and TwiML links are http(s).
    proto = {"ws": "http", "wss": "https"}.get(proto, proto)
    # Twilio reaches public hosts only over https/wss (and signs those URLs), so plain http for
    # a public host means a TLS-terminating proxy that did not say so. Loopback stays as is.
    if proto == "http" and not is_loopback_host(urlsplit(f"http://{fwd_host}").hostname):
        proto = "https"
    return f"{proto}://{fwd_host}"


def _first(value: str | None) -> str | None:
    # Chained proxies append: "https, http" -> the client-facing one is first.
    if not value:
        return None
    return value.split(",")[0].strip() or None


def signed_urls(base: str, path: str, query_string: str, websocket: bool = False) -> list[str]:
    """The URL(s) Twilio may have signed for this request.

    For the websocket upgrade Twilio signs the stream URL (wss://...); some setups have been
    seen signing the https form, and both are HMACs of our own token, so both are accepted.
    """
    suffix = path + (f"?{query_string}" if query_string else "")
    url = base + suffix
    if not websocket:
        return [url]
    scheme, sep, rest = base.partition("://")
    ws_scheme = "wss" if scheme == "https" else "ws"
    return [ws_scheme + sep + rest + suffix, url]


class SignatureChecker:
    """Valid iff X-Twilio-Signature matches one of the candidate URLs with these params."""

    def __init__(self, auth_token: str) -> None:
        self._validator = RequestValidator(auth_token)

    def valid(self, urls: list[str], params: Mapping[str, str], signature: str | None) -> bool:
        if not signature:
            return False
        return any(self._validator.validate(url, dict(params), signature) for url in urls)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """What Twilio would send (used by the simulated caller and the tests)."""
        return self._validator.compute_signature(url, dict(params))


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (a zone suffix like ``%lo`` and brackets are ignored)."""
    host = (host or "").strip("[]").split("%")[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
