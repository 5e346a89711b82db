"""Who is asking, and which URL Twilio signed: request signatures, trusted proxies, hosts.

Twilio signs the URL *it* requested. Behind a proxy (ngrok, a load balancer) that is the
public URL, not the one our server sees, so: PUBLIC_BASE_URL when set, else the scheme and
host from X-Forwarded-Proto / X-Forwarded-Host / Forwarded — but only when the socket's peer
is a proxy we trust (FORWARDED_ALLOW_IPS, loopback by default, as hypercorn and uvicorn do),
else the request's own. Pure functions; the app passes the request's pieces in.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

# Every header a proxy (or someone pretending to be one) uses to say who the client was.
# Their mere presence means "this request did not come straight from the peer".
PROXY_HEADERS = (
    "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port",
    "X-Forwarded-Server", "X-Forwarded-Prefix", "X-Real-IP", "X-Client-IP", "True-Client-IP",
    "CF-Connecting-IP", "X-Original-Forwarded-For", "X-Cluster-Client-IP", "Fastly-Client-IP",
)

LOCAL_HOST_NAMES = ("localhost", "127.0.0.1", "::1")


class TrustedProxies:
    """FORWARDED_ALLOW_IPS: comma list of IPs / CIDRs whose forwarded headers are believed;
    ``*`` (explicitly) trusts every peer, ``none`` (or an empty list) nobody."""

    def __init__(self, spec: str | None = "127.0.0.1,::1") -> None:
        self.everyone = False
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for part in (spec or "").split(","):
            part = part.strip()
            if not part or part.lower() == "none":
                continue
            if part == "*":
                self.everyone = True
                continue
            try:
                self._nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or network") from None

    def trusts(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        addr = _ip(peer)
        return addr is not None and any(addr in net for net in self._nets)


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = (value or "").strip().strip('"')
    if host.startswith("["):  # [v6]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:  # v4:port
        host = host.partition(":")[0]
    host = host.split("%")[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def has_proxy_headers(headers: Mapping[str, str]) -> bool:
    return any(headers.get(name) for name in PROXY_HEADERS)


@dataclass(frozen=True, slots=True)
class ClientView:
    """How the client reached us: after believing a trusted proxy's headers, or not."""

    scheme: str  # http | https (a websocket's ws/wss are mapped to these)
    host: str  # host[:port] the client asked for
    client: str | None  # the client's address (None: a unix socket / in-process)
    forwarded_host: str | None  # a trusted proxy's forwarded host, if it sent one
    proxied: bool  # a trusted proxy said something about the client


def client_view(
    peer: str | None, scheme: str, host: str, headers: Mapping[str, str], proxies: TrustedProxies
) -> ClientView:
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    if not proxies.trusts(peer) or not has_proxy_headers(headers):
        return ClientView(scheme, host, peer, None, False)
    fwd = _forwarded(headers.get("Forwarded"))
    proto = fwd.get("proto") or _first(headers.get("X-Forwarded-Proto"))
    fwd_host = fwd.get("host") or _first(headers.get("X-Forwarded-Host"))
    client = fwd.get("for") or _client_from_chain(headers.get("X-Forwarded-For"), proxies) \
        or _first(headers.get("X-Real-IP"))
    proto = {"ws": "http", "wss": "https"}.get((proto or "").lower(), (proto or "").lower())
    return ClientView(
        proto if proto in ("http", "https") else scheme,
        fwd_host or host,
        client or peer,
        fwd_host,
        True,
    )


def _forwarded(value: str | None) -> dict[str, str]:
    """RFC 7239 ``Forwarded``: the first (client-facing) element's for / proto / host."""
    if not value:
        return {}
    out: dict[str, str] = {}
    for pair in value.split(",")[0].split(";"):
        key, sep, val = pair.strip().partition("=")
        if sep and key.strip().lower() in ("for", "proto", "host"):
            out[key.strip().lower()] = val.strip().strip('"')
    return out


def _client_from_chain(value: str | None, proxies: TrustedProxies) -> str | None:
    """X-Forwarded-For, walked from the right: the first hop we do not trust is the client."""
    if not value:
        return None
    hops = [h.strip() for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        if not proxies.trusts(hop):
            return hop
    return hops[0] if hops else None


def request_base(
    public_base_url: str | None, scheme: str, host: str, headers: Mapping[str, str], trusted: bool = False
) -> str:
    """`scheme://host` the caller used to reach us (no trailing slash). Forwarded headers
    count only when ``trusted`` (the peer is a trusted proxy); PUBLIC_BASE_URL beats both."""
    if public_base_url:
        return public_base_url.rstrip("/")
    proto = (_first(headers.get("X-Forwarded-Proto")) if trusted else None) or scheme
    fwd_host = (_first(headers.get("X-Forwarded-Host")) if trusted else None) or host
    # A websocket request arrives as ws/wss; webhooks and TwiML links are http(s).
    proto = {"ws": "http", "wss": "https"}.get(proto, proto)
    # Twilio reaches public hosts only over https/wss (and signs those URLs), so plain http for
    # a public host means a TLS-terminating proxy that did not say so. Loopback stays as is.
    if proto == "http" and not is_loopback_host(urlsplit(f"http://{fwd_host}").hostname):
        proto = "https"
    return f"{proto}://{fwd_host}"


def view_base(public_base_url: str | None, view: ClientView) -> str:
    """request_base for a :class:`ClientView` (the proxy's word already weighed)."""
    return request_base(public_base_url, view.scheme, view.host, {})


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
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def hostname(host_header: str | None) -> str:
    """`Host` header -> lower-case host name without port or brackets ('' if unusable)."""
    value = (host_header or "").strip().lower()
    if not value or any(c in value for c in " /\\@?#"):
        return ""
    try:
        return (urlsplit(f"http://{value}").hostname or "").rstrip(".")
    except ValueError:
        return ""


def default_allowed_hosts(public_base_url: str | None) -> tuple[str, ...]:
    hosts = list(LOCAL_HOST_NAMES)
    if public_base_url:
        public = urlsplit(public_base_url).hostname
        if public:
            hosts.append(public.lower())
    return tuple(hosts)


def host_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    """DNS rebinding guard: the name the browser used must be one of ours."""
    allowed = tuple(allowed)
    if "*" in allowed:
        return True
    name = hostname(host_header)
    if not name:
        return False
    for pattern in allowed:
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
        if name == pattern.strip("[]"):
            return True
    return False
