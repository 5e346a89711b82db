"""The dashboard blueprint: pages, the JSON API over the store, and Twilio's message status
callback for the WhatsApp follow-ups.

It finds the store in ``app.config["STORE"]`` or, in the full app, on the wiring's recorder
(:class:`leads.store.SqlRecorder`). Protection (:mod:`server.webauth`): a Host allow-list on
every request; with DASHBOARD_TOKEN set, a Bearer token or the session cookie the token is
exchanged for once; unset, local requests only (loopback peer, no proxy headers); a CSRF
token on every state-changing request; security headers on every answer.
"""
from __future__ import annotations

import logging
import os
import secrets
from typing import Any, Callable
from urllib.parse import urlencode

from quart import Blueprint, Response, abort, current_app, g, redirect, render_template, request

from leads import queries
from leads.outbox import apply_status_callback
from leads.store import Store
from telemetry.logs import log_event
from server.security import SignatureChecker, client_view, request_base, signed_urls
from server.webauth import (
    COOKIE, CSRF_FIELD, CSRF_HEADER, SAFE_METHODS, WebSecurity, bearer, cookie_header, is_local,
    security_headers,
)

dashboard_bp = Blueprint(
    "dashboard", __name__, static_folder="static", static_url_path="/dashboard/static",
    template_folder="templates",
)

# The user's targets (mission.md item 6) and the turn-taking ones, drawn on the charts; each
# talk-over (agent over the caller, per agent turn) and dead air (caller's voice ended -> agent
# heard again) at or under its target.
TARGETS = {"turn_latency_ms": 1200, "asr_latency_ms": 700, "halt_ms": 200, "talk_over_ms": 100,
           "dead_air_ms": 2000}
WEB_KEY = "agentlocator.web"
LOGIN_ENDPOINTS = ("dashboard.login_page", "dashboard.login")


def token_of(app: Any) -> str | None:
    """app.config["DASHBOARD_TOKEN"] if given (tests), else the app's settings, else the env."""
    token = app.config.get("DASHBOARD_TOKEN")
    if token is None:
        settings = getattr(app, "settings", None)
        token = getattr(settings, "dashboard_token", None) if settings else os.environ.get("DASHBOARD_TOKEN")
    return token or None


def web_of(app: Any) -> WebSecurity:
    """The app's guard settings (server.app sets them at startup); a bare app (tests) gets
    them from its config and the environment, with a random per-process secret."""
    web = app.extensions.get(WEB_KEY)
    if web is None:
        from server.settings import Settings

        settings = getattr(app, "settings", None) or Settings.from_env()
        web = WebSecurity.build(token_of(app), settings.forwarded_allow_ips, settings.allowed_hosts,
                                settings.public_base_url, secrets.token_bytes(32))
        app.extensions[WEB_KEY] = web
    return web


def store_of(app: Any) -> Store:
    store = app.config.get("STORE")
    if store is None:
        wiring = getattr(app, "wiring", None)
        store = getattr(getattr(wiring, "recorder", None), "store", None)
    if store is None:
        abort(503, "no store configured")
    return store


def protection_note(token: str | None) -> str:
    if token:
        return "dashboard: /dashboard and /api/* require DASHBOARD_TOKEN (Bearer, or the sign-in cookie)"
    return "dashboard: DASHBOARD_TOKEN is not set - /dashboard and /api/* answer only local requests"


@dashboard_bp.record_once
def _say_protection(state: Any) -> None:
    token = token_of(state.app)
    log_event("STARTUP", logging.INFO if token else logging.WARNING, note=protection_note(token))


def _peer() -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


def _secure() -> bool:
    return bool(getattr(g, "al_https", False))


async def _login_form(status: int, error: str | None = None, next_path: str = "/dashboard") -> Response:
    html = await render_template("login.html", error=error, next_path=next_path)
    return Response(html, status, content_type="text/html; charset=utf-8")


def _safe_next(path: str | None) -> str:
    # only our own pages: never an absolute URL, a scheme-relative one or a backslash trick
    if not path or not path.startswith("/dashboard") or path.startswith("//") or "\\" in path:
        return "/dashboard"
    return path


def _without_token() -> str:
    query = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
    return request.path + (f"?{urlencode(query)}" if query else "")


@dashboard_bp.before_request
async def _guard() -> Any:
    if request.endpoint == "dashboard.whatsapp_status":
        return None  # Twilio's callback is checked by its signature
    web = web_of(current_app)
    peer = _peer()
    view = client_view(peer, request.scheme, request.host, request.headers, web.proxies)
    g.al_https = view.scheme == "https"
    if not web.host_ok(request.headers.get("Host"), view):
        log_event("WEBHOOK", logging.WARNING, path=request.path[:200], status=400,
                  error="Host not in ALLOWED_HOSTS", host=(request.headers.get("Host") or "")[:100])
        return Response("host not allowed (ALLOWED_HOSTS)", 400)
    if request.endpoint == "dashboard.static":
        return None  # public code
    if web.token:
        if web.token_ok(bearer(request.headers)):
            g.al_auth = "bearer"
            return None  # a script's own header: not ambient, so no CSRF token needed
        session = web.session(request.cookies.get(COOKIE))
        if session is not None and session[1] == "t":
            g.al_session = session[0]
        elif request.endpoint in LOGIN_ENDPOINTS:
            return None
        elif request.method == "GET" and "token" in request.args and request.path.startswith("/dashboard"):
            # the one-time exchange: a valid ?token= becomes a cookie, and the URL loses it
            if not web.token_ok(request.args.get("token")):
                return await _login_form(401, "wrong token", _without_token())
            _, value = web.new_session("t")
            response = redirect(_without_token(), 303)
            response.headers["Set-Cookie"] = cookie_header(value, _secure())
            return response
        elif request.path.startswith("/api/"):
            return Response("dashboard token required", 401, {"WWW-Authenticate": 'Bearer realm="AgentLocator"'})
        else:
            return await _login_form(401, None, _safe_next(request.full_path.rstrip("?")))
    else:
        if not is_local(peer, request.headers):
            return Response("dashboard answers local requests only (set DASHBOARD_TOKEN)", 403)
        session = web.session(request.cookies.get(COOKIE))
        if session is None:
            sid, value = web.new_session("l")
            g.al_new_cookie = value
        else:
            sid = session[0]
        g.al_session = sid
    if request.method not in SAFE_METHODS:
        if not web.origin_ok(request.headers.get("Origin")):
            return Response("cross-origin request refused", 403)
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            given = (await request.form).get(CSRF_FIELD)
        if not web.csrf_ok(g.al_session, given):
            return Response("CSRF token missing or wrong", 403)
    return None


@dashboard_bp.after_request
async def _after(response: Response) -> Response:
    value = getattr(g, "al_new_cookie", None)
    if value:
        response.headers.add("Set-Cookie", cookie_header(value, _secure()))
    if request.endpoint != "dashboard.static":
        response.headers.setdefault("Cache-Control", "no-store")
    security_headers(response.headers)
    return response


@dashboard_bp.context_processor
def _page_context() -> dict[str, Any]:
    sid = getattr(g, "al_session", None)
    web = current_app.extensions.get(WEB_KEY)
    return {"csrf_token": web.csrf(sid) if sid and web else "",
            "signed_in": bool(sid and web is not None and web.token)}


@dashboard_bp.get("/dashboard/login")
async def login_page() -> Any:
    if not web_of(current_app).token:
        return redirect("/dashboard", 303)
    return await _login_form(200, None, _safe_next(request.args.get("next")))


@dashboard_bp.post("/dashboard/login")
async def login() -> Any:
    web = web_of(current_app)
    if not web.token:
        return redirect("/dashboard", 303)
    if not web.origin_ok(request.headers.get("Origin")):
        return Response("cross-origin request refused", 403)
    form = await request.form
    next_path = _safe_next(form.get("next"))
    if not web.token_ok(form.get("token")):
        return await _login_form(401, "wrong token", next_path)
    _, value = web.new_session("t")
    response = redirect(next_path, 303)
    response.headers["Set-Cookie"] = cookie_header(value, _secure())
    return response


@dashboard_bp.post("/dashboard/logout")
async def logout() -> Any:
    response = redirect("/dashboard/login" if web_of(current_app).token else "/dashboard", 303)
    response.headers["Set-Cookie"] = cookie_header("", _secure(), max_age=0)
    return response


async def _read(fn: Callable[..., Any], *args: Any) -> Any:
    store = store_of(current_app)
    return await store.run(lambda: fn(store, *args))  # the store's threads, not speech's


def _limit(default: int) -> int:
    try:
        return max(1, min(int(request.args.get("limit", default)), 5000))
    except ValueError:
        return default


@dashboard_bp.get("/dashboard")
async def dashboard_page() -> str:
    return await render_template("dashboard.html")


@dashboard_bp.get("/dashboard/calls/<sid>")
async def call_page(sid: str) -> str:
    return await render_template("call.html", call_sid=sid)


@dashboard_bp.get("/api/calls")
async def api_calls() -> Any:
    return await _read(queries.list_calls, _limit(200))


@dashboard_bp.get("/api/leads")
async def api_leads() -> Any:
    return await _read(queries.list_leads, _limit(500))


@dashboard_bp.get("/api/calls/<sid>")
async def api_call(sid: str) -> Any:
    detail = await _read(queries.call_detail, sid)
    if detail is None:
        abort(404)
    return detail


@dashboard_bp.get("/api/calls/<sid>/timeline")
async def api_call_timeline(sid: str) -> Any:
    return await _read(queries.call_timeline, sid)


@dashboard_bp.get("/api/outbox")
async def api_outbox() -> Any:
    return await _read(queries.list_outbox, _limit(500))


@dashboard_bp.get("/api/series")
async def api_series() -> Any:
    return {"targets": TARGETS, "points": await _read(queries.metric_series, _limit(500))}


def _checker(app: Any) -> SignatureChecker | None:
    """The app's checker (server.app), else one from the environment (a bare test app)."""
    checker = getattr(app, "checker", None)
    if checker is None and getattr(app, "settings", None) is None:
        token = os.environ.get("TWILIO_AUTH_TOKEN")
        checker = SignatureChecker(token) if token else None
    return checker


def _insecure(app: Any) -> bool:
    settings = getattr(app, "settings", None)
    if settings is not None:
        return bool(settings.insecure)
    return os.environ.get("AGENTLOCATOR_INSECURE", "").strip().lower() in ("1", "true", "yes", "on")


@dashboard_bp.post("/whatsapp_status")
async def whatsapp_status() -> Any:
    """Twilio's StatusCallback for the follow-up messages (queued/sent/delivered/read/failed)."""
    params = dict((await request.form).items())
    checker = _checker(current_app)
    if checker is None and not _insecure(current_app) and not is_local(_peer(), request.headers):
        # nothing to verify it by: like the app's own webhooks, this machine only
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                  error="not a local request and TWILIO_AUTH_TOKEN is not set (AGENTLOCATOR_INSECURE=1 allows it)")
        return "forbidden", 403
    if checker is not None:
        public = getattr(getattr(current_app, "settings", None), "public_base_url", None)
        trusted = web_of(current_app).proxies.trusts(_peer())
        base = request_base(public, request.scheme, request.host, request.headers, trusted=trusted)
        urls = signed_urls(base, request.path, request.query_string.decode("latin1"))
        if not checker.valid(urls, params, request.headers.get("X-Twilio-Signature")):
            log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                      error="invalid or missing X-Twilio-Signature", url=urls[0])
            return "forbidden", 403
    sid, status = params.get("MessageSid", ""), params.get("MessageStatus", "")
    if not sid or not status:
        return "MessageSid and MessageStatus required", 400
    store = store_of(current_app)
    try:
        changed = await store.run(apply_status_callback, store, sid, status, params.get("ErrorCode") or None)
    except Exception as exc:  # noqa: BLE001 - Twilio retries on 5xx; our log says why
        log_event("ERROR", logging.ERROR, where="whatsapp_status", error=repr(exc)[:300], message_sid=sid)
        return "store error", 500
    log_event("WEBHOOK", path="/whatsapp_status", message_sid=sid, status=status, applied=changed)
    return "", 204


@dashboard_bp.get("/api/leads/<phone>/whatsapp")
async def api_lead_whatsapp(phone: str) -> Any:
    """The lead's WhatsApp thread both ways, with delivery states (leads.whatsapp.thread)."""
    return await _read(queries.lead_messages, phone, _limit(500))


@dashboard_bp.post("/api/leads/<phone>/needs_person/clear")
async def api_lead_clear_needs_person(phone: str) -> Any:
    """A person took the thread the WhatsApp brain handed over: the flag goes down."""
    from leads import fields
    from leads.whatsapp import clear_needs_person

    try:
        number = fields.phone(phone)
    except fields.InvalidField as exc:
        return Response(f"phone: {exc.reason}", 422)
    if not number:
        return Response("phone: no phone number", 422)
    return {"phone": number, "cleared": await _read(clear_needs_person, number)}
