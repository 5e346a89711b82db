"""Who may use the dashboard and the JSON API, and how a browser stays signed in.

- The Host must be one of ours (ALLOWED_HOSTS; default the localhost names and
  PUBLIC_BASE_URL's host): a DNS-rebinding page cannot read the API through a name it owns.
- DASHBOARD_TOKEN set: a script sends ``Authorization: Bearer <token>``; a browser exchanges
  the token once (the login form, or a first visit to ``/dashboard?token=`` that redirects
  to the same page without it) for a session cookie: signed, expiring, HttpOnly,
  SameSite=Strict, Secure over https. The token never appears in a URL again.
- DASHBOARD_TOKEN unset: only local requests — the socket's peer is loopback and the request
  carries no proxy headers (a local proxy or tunnel forwarding outside traffic is not local).
- Every state-changing request (anything but GET/HEAD/OPTIONS) made with the cookie needs
  the session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field) and, when
  the browser sends one, an Origin of ours. Bearer requests are not ambient: exempt.

Pure functions over the request's pieces plus :class:`WebSecurity` (per app).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, MutableMapping
from urllib.parse import urlsplit

from server.calltokens import subkey
from server.security import (
    ClientView, TrustedProxies, default_allowed_hosts, has_proxy_headers, host_allowed, hostname,
    is_loopback_host,
)

COOKIE = "al_session"
SESSION_TTL_S = 12 * 3600
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebSecurity:
    """The app's settings for the dashboard / API guard (built once at startup)."""

    token: str | None
    proxies: TrustedProxies
    allowed_hosts: tuple[str, ...]
    master: bytes
    clock: Callable[[], float] = time.time
    _session_key: bytes = field(init=False, repr=False)
    _csrf_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._session_key = subkey(self.master, "dashboard-session")
        self._csrf_key = subkey(self.master, "dashboard-csrf")

    @classmethod
    def build(cls, token: str | None, forwarded_allow_ips: str, allowed_hosts: tuple[str, ...],
              public_base_url: str | None, master: bytes) -> "WebSecurity":
        return cls(token or None, TrustedProxies(forwarded_allow_ips),
                   allowed_hosts or default_allowed_hosts(public_base_url), master)

    # -- the session cookie --------------------------------------------------------------------

    def _fingerprint(self) -> str:
        # A session belongs to the token it was opened with: a new DASHBOARD_TOKEN ends it.
        return hashlib.sha256((self.token or "").encode()).hexdigest()[:16]

    def _mac(self, sid: str, expires: int, kind: str) -> str:
        msg = f"{sid}|{expires}|{kind}|{self._fingerprint()}".encode()
        return hmac.new(self._session_key, msg, hashlib.sha256).hexdigest()

    def new_session(self, kind: str) -> tuple[str, str]:
        """(sid, cookie value) of a fresh session; kind: 't' (signed in with the token) or 'l' (local)."""
        sid = secrets.token_hex(16)
        expires = int(self.clock() + SESSION_TTL_S)
        return sid, f"{sid}.{expires}.{kind}.{self._mac(sid, expires, kind)}"

    def session(self, cookie: str | None) -> tuple[str, str] | None:
        """(sid, kind) of a valid, unexpired cookie; None otherwise."""
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4 or not parts[1].isdigit() or parts[2] not in ("t", "l"):
            return None
        sid, expires, kind, mac = parts[0], int(parts[1]), parts[2], parts[3]
        if not hmac.compare_digest(self._mac(sid, expires, kind).encode(), mac.encode()):
            return None
        if self.clock() > expires:
            return None
        return sid, kind

    def csrf(self, sid: str) -> str:
        return hmac.new(self._csrf_key, sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, sid: str, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf(sid).encode(), (given or "").encode())

    # -- the rules -----------------------------------------------------------------------------

    def token_ok(self, given: str | None) -> bool:
        return bool(self.token) and given is not None and hmac.compare_digest(given.encode(), self.token.encode())  # type: ignore[union-attr]

    def host_ok(self, host: str | None, view: ClientView) -> bool:
        if not host_allowed(host, self.allowed_hosts):
            return False
        return view.forwarded_host is None or host_allowed(view.forwarded_host, self.allowed_hosts)

    def origin_ok(self, origin: str | None) -> bool:
        """A browser's Origin on a state-changing request: absent, opaque, or one of our hosts.
        Our pages send Referrer-Policy: no-referrer, under which browsers send ``Origin: null``
        on form posts; that is not a foreign origin, and the CSRF token still has to match."""
        if origin is None or origin == "null":
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and host_allowed(parts.netloc, self.allowed_hosts)


def bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, value = (headers.get("Authorization") or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def is_local(peer: str | None, headers: Mapping[str, str]) -> bool:
    """This machine, talking to us directly: a loopback (or unix-socket / in-process) peer and
    no proxy headers at all — whoever sent them, a forwarder makes outside traffic look local."""
    if has_proxy_headers(headers):
        return False
    return peer is None or is_loopback_host(peer)


def cookie_header(value: str, secure: bool, max_age: int = SESSION_TTL_S) -> str:
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


__all__ = ["WebSecurity", "bearer", "is_local", "cookie_header", "hostname", "security_headers", "COOKIE", "CSRF_HEADER",
           "CSRF_FIELD", "SAFE_METHODS"]


# No inline script anywhere (the pages load /dashboard/static/*.js); nothing may frame us.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def security_headers(headers: MutableMapping[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
