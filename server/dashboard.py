"""The dashboard blueprint: pages, the JSON API over the store, and Twilio's message status
callback for the WhatsApp follow-ups.

It finds the store in ``app.config["STORE"]`` or, in the full app, on the wiring's recorder
(:class:`leads.store.SqlRecorder`). Protection: with DASHBOARD_TOKEN set, /dashboard and
/api/* need it (``Authorization: Bearer``, ``?token=``, or basic auth with the token as the
password); unset, they answer loopback requests only, and say so at startup.
"""
from __future__ import annotations

import base64
import hmac
import logging
import os
from typing import Any, Callable

import trio
from quart import Blueprint, Response, abort, current_app, render_template, request

from leads import queries
from leads.outbox import apply_status_callback
from leads.store import Store
from server.logs import log_event
from server.security import SignatureChecker, is_loopback_host, request_base, signed_urls

dashboard_bp = Blueprint(
    "dashboard", __name__, static_folder="static", static_url_path="/dashboard/static",
    template_folder="templates",
)

# The user's targets (mission.md item 6) and the turn-taking ones, drawn on the charts; each
# talk-over (agent over the caller, per agent turn) and dead air (caller's voice ended -> agent
# heard again) at or under its target.
TARGETS = {"turn_latency_ms": 1200, "asr_latency_ms": 700, "halt_ms": 200, "talk_over_ms": 100,
           "dead_air_ms": 2000}


def token_of(app: Any) -> str | None:
    """app.config["DASHBOARD_TOKEN"] if given (tests), else the app's settings, else the env."""
    token = app.config.get("DASHBOARD_TOKEN")
    if token is None:
        settings = getattr(app, "settings", None)
        token = getattr(settings, "dashboard_token", None) if settings else os.environ.get("DASHBOARD_TOKEN")
    return token or None


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
        return "dashboard: /dashboard and /api/* require DASHBOARD_TOKEN"
    return "dashboard: DASHBOARD_TOKEN is not set - /dashboard and /api/* answer only loopback requests"


@dashboard_bp.record_once
def _say_protection(state: Any) -> None:
    token = token_of(state.app)
    log_event("STARTUP", logging.INFO if token else logging.WARNING, note=protection_note(token))


def presented_token(headers: Any, args: Any) -> str | None:
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode("utf-8").partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return args.get("token")


def allowed(token: str | None, headers: Any, args: Any, remote_addr: str | None) -> bool:
    """Pure access rule (see the module docstring)."""
    if token:
        given = presented_token(headers, args)
        return given is not None and hmac.compare_digest(given.encode(), token.encode())
    # No token: this machine only. A local reverse proxy forwarding outside traffic is not local.
    forwarded = headers.get("X-Forwarded-For")
    if forwarded and not all(is_loopback_host(a.strip()) for a in forwarded.split(",")):
        return False
    # No peer address: a unix socket or an in-process client, i.e. this machine.
    return remote_addr is None or is_loopback_host(remote_addr)


@dashboard_bp.before_request
async def _guard() -> Any:
    if request.endpoint in ("dashboard.whatsapp_status", "dashboard.static"):
        return None  # Twilio's callback is checked by signature; static files are public code
    token = token_of(current_app)
    client = request.scope.get("client")
    if allowed(token, request.headers, request.args, client[0] if client else None):
        return None
    if token:
        return Response("dashboard token required", 401, {"WWW-Authenticate": 'Basic realm="AgentLocator"'})
    return Response("dashboard answers local requests only (set DASHBOARD_TOKEN)", 403)


async def _read(fn: Callable[..., Any], *args: Any) -> Any:
    store = store_of(current_app)
    return await trio.to_thread.run_sync(lambda: fn(store, *args))


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


@dashboard_bp.post("/whatsapp_status")
async def whatsapp_status() -> Any:
    """Twilio's StatusCallback for the follow-up messages (queued/sent/delivered/read/failed)."""
    params = dict((await request.form).items())
    checker = _checker(current_app)
    if checker is not None:
        public = getattr(getattr(current_app, "settings", None), "public_base_url", None)
        base = request_base(public, request.scheme, request.host, request.headers)
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
        changed = await trio.to_thread.run_sync(
            apply_status_callback, store, sid, status, params.get("ErrorCode") or None
        )
    except Exception as exc:  # noqa: BLE001 - Twilio retries on 5xx; our log says why
        log_event("ERROR", logging.ERROR, where="whatsapp_status", error=repr(exc)[:300], message_sid=sid)
        return "store error", 500
    log_event("WEBHOOK", path="/whatsapp_status", message_sid=sid, status=status, applied=changed)
    return "", 204
