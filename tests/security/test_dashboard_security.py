"""Finding 3 (and /metrics of 7): the "local only" dashboard could be read remotely (a second
X-Forwarded-For line, X-Real-IP / Forwarded, any TCP forwarder made visitors look local);
no Host check (DNS rebinding: `Host: evil.example` got the leads); the token travelled in
`?token=` links. Now: local = loopback peer and no proxy headers; a Host allow-list; the
token exchanged once for a signed HttpOnly SameSite=Strict cookie; CSRF tokens; security
headers; /metrics and /version behind METRICS_TOKEN."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from quart_trio import QuartTrio

from server.dashboard import dashboard_bp
from tests.integration.harness import ahttp

from .support import araw, dashboard_server

TEMPLATES = Path(__file__).resolve().parents[2] / "server" / "templates"
STATIC = Path(__file__).resolve().parents[2] / "server" / "static"
TOKEN = "dash-token-1234567890"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
from server.inflow import OWN_AUTH  # the intake, Facebook, the dialer's Twilio callbacks: their own credentials

NOT_COOKIE_ROUTES = {"dashboard.whatsapp_status", "dashboard.login"}  # Twilio-signed; the sign-in itself


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentlocator.db'}"


async def test_dns_rebinding_host_is_refused(db: str) -> None:
    async with dashboard_server(db) as (_, port, _w):
        for path in ("/api/leads", "/api/calls", "/dashboard", "/dashboard/calls/CA1", "/dashboard/static/dashboard.js"):
            status, _, body = await ahttp("GET", port, path, headers={"Host": "evil.example"})
            assert status == 400 and b"leads" not in body, path
            status, _, _ = await ahttp("GET", port, path, headers={"Host": f"evil.example:{port}"})
            assert status == 400, path
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
            assert (await ahttp("GET", port, "/api/leads", headers={"Host": host}))[0] == 200, host
        # no Host at all, or two of them
        assert (await araw(port, "GET /api/leads HTTP/1.1"))[0] == 400
        assert (await araw(port, f"GET /api/leads HTTP/1.1\nHost: 127.0.0.1:{port}\nHost: evil.example"))[0] == 400
    env = {"ALLOWED_HOSTS": "agent.example.com,*.corp.example", "DASHBOARD_TOKEN": TOKEN}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with dashboard_server(db, env) as (_, port, _w):
        assert (await ahttp("GET", port, "/api/leads", headers={**bearer, "Host": "agent.example.com"}))[0] == 200
        assert (await ahttp("GET", port, "/api/leads", headers={**bearer, "Host": "ops.corp.example"}))[0] == 200
        assert (await ahttp("GET", port, "/api/leads", headers={**bearer, "Host": "evil.example"}))[0] == 400
        assert (await ahttp("GET", port, "/api/leads", headers={**bearer, "Host": "127.0.0.1"}))[0] == 400
        # behind a trusted proxy, the forwarded host must be ours too
        fwd = {**bearer, "Host": "agent.example.com", "X-Forwarded-Host": "evil.example"}
        assert (await ahttp("GET", port, "/api/leads", headers=fwd))[0] == 400
    async with dashboard_server(db, {"PUBLIC_BASE_URL": "https://agent.example.com"}) as (_, port, _w):
        assert (await ahttp("GET", port, "/api/leads", headers={"Host": "agent.example.com"}))[0] == 200


@pytest.mark.parametrize("spoof", [
    "X-Forwarded-For: 127.0.0.1",
    "X-Forwarded-For: 127.0.0.1\nX-Forwarded-For: 203.0.113.9",  # a second line
    "X-Forwarded-For: 203.0.113.9\nX-Forwarded-For: 127.0.0.1",
    "X-Real-IP: 127.0.0.1",
    "X-Real-IP: 203.0.113.9",
    "Forwarded: for=127.0.0.1",
    "Forwarded: for=203.0.113.9;proto=https",
    "X-Forwarded-Host: localhost",
    "X-Forwarded-Proto: http",
    "True-Client-IP: 127.0.0.1",
])
async def test_local_only_is_not_fooled_by_proxy_headers(db: str, spoof: str) -> None:
    """A forwarder on this machine (ssh -R, socat, a tunnel, a reverse proxy) connects from
    loopback; if it says anything about a client, that client is not this machine."""
    async with dashboard_server(db) as (_, port, _w):
        host = f"Host: 127.0.0.1:{port}"
        assert (await araw(port, f"GET /api/leads HTTP/1.1\n{host}"))[0] == 200
        status, _, body = await araw(port, f"GET /api/leads HTTP/1.1\n{host}\n{spoof}")
        assert status == 403, body


async def test_a_remote_peer_gets_nothing_without_a_token(db: str) -> None:
    from leads.store import Store

    store = Store.open(db)
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.register_blueprint(dashboard_bp)
    client = app.test_client()
    try:
        for peer in ("203.0.113.9", "10.0.0.7", "::ffff:203.0.113.9"):
            resp = await client.get("/api/leads", scope_base={"client": (peer, 5555)})
            assert resp.status_code == 403, peer
        assert (await client.get("/api/leads", scope_base={"client": ("::ffff:127.0.0.1", 5555)})).status_code == 200
    finally:
        store.close()


def _cookie(headers: dict[str, str]) -> str:
    return headers["set-cookie"].split(";")[0]


async def test_the_token_is_exchanged_once_for_a_session_cookie(db: str) -> None:
    async with dashboard_server(db, {"DASHBOARD_TOKEN": TOKEN}) as (app, port, _w):
        # a page visit with ?token= -> 303 to the same page without it, and the cookie
        status, headers, _ = await ahttp("GET", port, f"/dashboard/calls/CA1?x=1&token={TOKEN}")
        assert status == 303 and headers["location"] == "/dashboard/calls/CA1?x=1" and TOKEN not in headers["location"]
        flags = [f.strip() for f in headers["set-cookie"].split(";")]
        assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
        assert "Secure" not in flags  # plain http on loopback; over https (below) it is Secure
        assert any(f.startswith("Max-Age=") and 0 < int(f[8:]) <= 86400 for f in flags)
        cookie = _cookie(headers)
        assert TOKEN not in cookie
        assert (await ahttp("GET", port, "/api/leads", headers={"Cookie": cookie}))[0] == 200
        page = (await ahttp("GET", port, "/dashboard", headers={"Cookie": cookie}))[2].decode()
        assert TOKEN not in page  # never echoed into a page, link or script
        # wrong token: no cookie, and the API never takes the token from its URL
        status, headers, _ = await ahttp("GET", port, "/dashboard?token=nope")
        assert status == 401 and "set-cookie" not in headers
        assert (await ahttp("GET", port, f"/api/leads?token={TOKEN}"))[0] == 401
        # a tampered, a foreign or an expired cookie is no session
        sid, expires, kind, mac = cookie.split("=", 1)[1].split(".")
        for bad in (f"{sid}.{int(expires) + 99999}.{kind}.{mac}", f"{sid}.{expires}.l.{mac}", f"{sid}.{expires}.{kind}.{'0' * 64}",
                    "al_session_garbage", "x" * 5000):
            assert (await ahttp("GET", port, "/api/leads", headers={"Cookie": f"al_session={bad}"}))[0] == 401, bad
        web = app.extensions["agentlocator.web"]
        clock = web.clock
        web.clock = lambda: clock() + 13 * 3600
        assert (await ahttp("GET", port, "/api/leads", headers={"Cookie": cookie}))[0] == 401
        web.clock = clock
        # the login form does the same exchange; over https (a trusted proxy says so) the cookie is Secure
        status, headers, _ = await ahttp("POST", port, "/dashboard/login", form={"token": TOKEN, "next": "//evil.example/"},
                                         headers={"X-Forwarded-Proto": "https"})
        assert status == 303 and headers["location"] == "/dashboard"  # no open redirect
        assert "Secure" in [f.strip() for f in headers["set-cookie"].split(";")]
        assert (await ahttp("POST", port, "/dashboard/login", form={"token": "nope"}))[0] == 401
        # Bearer stays for scripts
        assert (await ahttp("GET", port, "/api/leads", headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    # a new DASHBOARD_TOKEN ends the sessions opened with the old one (same secret, other token)
    env = {"DASHBOARD_TOKEN": "another-token-0987654321", "AGENTLOCATOR_SECRET": "s" * 32}
    async with dashboard_server(db, {**env, "DASHBOARD_TOKEN": TOKEN}) as (_, port, _w):
        cookie = _cookie((await ahttp("GET", port, f"/dashboard?token={TOKEN}"))[1])
    async with dashboard_server(db, env) as (_, port, _w):
        assert (await ahttp("GET", port, "/api/leads", headers={"Cookie": cookie}))[0] == 401


def _unsafe_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith(("dashboard.", "inflow.")) or rule.endpoint in NOT_COOKIE_ROUTES \
                or rule.endpoint in OWN_AUTH:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        out += [(method, path) for method in sorted(rule.methods & UNSAFE)]
    return out


@pytest.mark.parametrize("token", [TOKEN, None])
async def test_every_state_changing_request_needs_the_csrf_token(db: str, token: str | None) -> None:
    env = {"DASHBOARD_TOKEN": token} if token else {}
    async with dashboard_server(db, env) as (app, port, _w):
        routes = _unsafe_routes(app)
        assert ("POST", "/dashboard/logout") in routes  # the list is not empty by accident
        assert ("POST", "/api/leads/x/opt_out") in routes and ("POST", "/api/leads/x/call") in routes
        if token:
            cookie = _cookie((await ahttp("GET", port, f"/dashboard?token={token}"))[1])
        else:
            cookie = _cookie((await ahttp("GET", port, "/dashboard"))[1])  # a local session, issued on the page
        page = (await ahttp("GET", port, "/dashboard", headers={"Cookie": cookie}))[2].decode()
        csrf = re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page).group(1)
        for method, path in routes:
            for headers in ({"Cookie": cookie}, {"Cookie": cookie, "X-CSRF-Token": "0" * 64},
                            {"Cookie": cookie, "X-CSRF-Token": csrf, "Origin": "https://evil.example"},
                            {"X-CSRF-Token": csrf}):  # the token without its session
                status, _, _ = await ahttp(method, port, path, headers=headers)
                assert status in (401, 403), (method, path, headers)
            status, _, _ = await ahttp(method, port, path, headers={"Cookie": cookie, "X-CSRF-Token": csrf,
                                                                   "Origin": f"http://127.0.0.1:{port}"})
            assert status not in (401, 403), (method, path)
            status, _, _ = await ahttp(method, port, path, form={"csrf_token": csrf}, headers={"Cookie": cookie})
            assert status not in (401, 403), (method, path)


async def test_security_headers_everywhere(db: str) -> None:
    async with dashboard_server(db) as (_, port, _w):
        for method, path in (("GET", "/dashboard"), ("GET", "/dashboard/calls/CA1"), ("GET", "/api/leads"),
                             ("GET", "/api/calls/nope"), ("GET", "/dashboard/static/dashboard.js"),
                             ("GET", "/version"), ("GET", "/metrics"), ("GET", "/nowhere")):
            _, headers, _ = await ahttp(method, port, path)
            csp = headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert headers.get("x-content-type-options") == "nosniff", path
            assert headers.get("referrer-policy") == "no-referrer", path
            assert headers.get("x-frame-options") == "DENY", path
        _, headers, _ = await ahttp("GET", port, "/api/leads")
        assert headers.get("cache-control") == "no-store"


def test_no_inline_script_and_no_token_in_urls() -> None:
    for template in TEMPLATES.glob("*.html"):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"inline script in {template.name}: {tag}"
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), f"inline script body in {template.name}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"inline event handler in {template.name}"
        assert not re.search(r"\sstyle\s*=", html), f"inline style in {template.name}"
    js = (STATIC / "dashboard.js").read_text()
    assert "location.search" not in js and "Authorization" not in js and "token=" not in js
    assert "X-CSRF-Token" in js and 'credentials: "same-origin"' in js


async def test_metrics_and_version_behind_metrics_token(db: str) -> None:
    async with dashboard_server(db, {"METRICS_TOKEN": "prom-scrape-token"}) as (_, port, _w):
        for path in ("/metrics", "/version"):
            assert (await ahttp("GET", port, path))[0] == 401
            assert (await ahttp("GET", port, path, headers={"Authorization": "Bearer wrong"}))[0] == 401
            assert (await ahttp("GET", port, path, headers={"Authorization": "Bearer prom-scrape-token"}))[0] == 200
    async with dashboard_server(db) as (_, port, _w):
        assert (await ahttp("GET", port, "/metrics"))[0] == 200  # unset: open, as before
