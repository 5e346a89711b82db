"""A call's audio for the dashboard: the recording, live listen-in and the browser test call.

Routes (on the dashboard blueprint, so its guard — Host allow-list, DASHBOARD_TOKEN / local
only, security headers — applies to the HTTP ones):

- ``GET /api/calls/<sid>/recording``: the finished stereo FLAC (caller left, agent right),
  ``audio/flac``, with Range support (the player seeks).
- ``WS /api/calls/<sid>/listen``: a live call's audio and transcript (server.recording).
- ``GET /dashboard/talk`` and ``WS /dashboard/talk/ws``: "talk to the agent" from the browser.

Websockets are not covered by the blueprint's ``before_request`` and a browser sends the
session cookie with a websocket upgrade from any site, so :func:`ws_session` checks them
itself: Host allowed, an Origin (if any) of ours, the session cookie (or the Bearer token)
and the page's CSRF token in the query.

The browser test call and the call-token gate (server.gate): the browser never sees a token
and never sends a `start`. Once the dashboard guard let the upgrade through, the server makes
the call's SIDs, mints the call token for them itself (``gate.tokens.mint``, as /twiml does)
and puts a Twilio `connected` + `start` carrying it in front of the browser's frames
(:class:`BrowserTransport`); the call then goes through the same ``gate.admit`` (token,
single use, MAX_CALLS, drain) and the same ``run_call`` as a phone call. The Twilio route
``/ws/twilio-media`` is not touched: its signature check and token rule are the same as before.
From the browser only `media`, `mark` and `stop` are taken, re-stamped with the call's
streamSid; anything else is dropped.
"""
from __future__ import annotations

import json
import logging
import secrets
from typing import Any

import trio
from quart import Response, abort, current_app, render_template, send_file, websocket

from server.dashboard import dashboard_bp, web_of
from server.edge import e164, valid_sid
from server.recording import CONTENT_TYPE, LiveCalls, Recordings
from server.security import client_view
from server.transport import TransportClosed
from server.webauth import COOKIE, bearer, is_local
from telemetry.logs import log_event

BROWSER_FRAME_MAX = 4096  # a 20 ms media frame is ~250 bytes of JSON
BROWSER_EVENTS = ("media", "mark", "stop")


def _deps(app: Any) -> Any:
    return getattr(getattr(app, "wiring", None), "call_deps", None)


def recordings_of(app: Any) -> Recordings | None:
    """app.config["RECORDINGS"] (tests), else the wiring's (RECORDINGS_DIR)."""
    return app.config.get("RECORDINGS") or getattr(_deps(app), "recordings", None)


def live_of(app: Any) -> LiveCalls | None:
    return app.config.get("LIVE") or getattr(_deps(app), "live", None)


def recording_url(app: Any, sid: str) -> str | None:
    recordings = recordings_of(app)
    if recordings is None or not valid_sid("CallSid", sid) or recordings.existing(sid) is None:
        return None
    return f"/api/calls/{sid}/recording"


@dashboard_bp.get("/api/calls/<sid>/recording")
async def api_call_recording(sid: str) -> Any:
    recordings = recordings_of(current_app)
    path = recordings.existing(sid) if recordings is not None and valid_sid("CallSid", sid) else None
    if path is None:
        abort(404)
    response = await send_file(path, mimetype=CONTENT_TYPE, conditional=True)
    response.headers["Cache-Control"] = "private, max-age=3600"  # a finished recording never changes
    return response


# -- websockets ----------------------------------------------------------------------------------

def ws_session() -> str | None:
    """Why this websocket upgrade is refused (None: allowed). See the module docstring."""
    web = web_of(current_app)
    client = websocket.scope.get("client")
    peer = client[0] if client else None
    view = client_view(peer, websocket.scheme, websocket.host, websocket.headers, web.proxies)
    if not web.host_ok(websocket.headers.get("Host"), view):
        return "host not allowed"
    origin = websocket.headers.get("Origin")
    if origin is not None and (origin == "null" or not web.origin_ok(origin)):
        return "cross-origin websocket refused"
    if web.token and web.token_ok(bearer(websocket.headers)):
        return None  # a script with the token: not ambient
    if not web.token and not is_local(peer, websocket.headers):
        return "dashboard answers local requests only (set DASHBOARD_TOKEN)"
    session = web.session(websocket.cookies.get(COOKIE))
    if session is None or (web.token and session[1] != "t"):
        return "dashboard sign-in required"
    if not web.csrf_ok(session[0], websocket.args.get("csrf")):
        return "CSRF token missing or wrong"
    return None


async def _until_closed(cancel: trio.CancelScope) -> None:
    """The browser's side of a listen socket: nothing to read; its close ends the stream."""
    try:
        while True:
            message = await websocket.receive()
            if not isinstance(message, (str, bytes)):  # server.app's _Disconnected
                break
    finally:
        cancel.cancel()


@dashboard_bp.websocket("/api/calls/<sid>/listen")
async def listen(sid: str) -> Any:
    why = ws_session()
    if why is not None:
        log_event("WEBHOOK", logging.WARNING, path="/api/calls/listen", status=403, error=why)
        return Response(why, 403)
    live = live_of(current_app)
    tape = live.get(sid) if live is not None and valid_sid("CallSid", sid) else None
    if tape is None:
        return Response("this call is not live in this server process", 404)
    await websocket.accept()
    listener = tape.listen(audio=websocket.args.get("audio") != "0")
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_until_closed, nursery.cancel_scope)
            await websocket.send(json.dumps({"type": "hello", "call_sid": sid, "rate": 8000,
                                             "pos": tape.caller_end}))
            while True:
                audio, lines = await listener.batch()
                for line in lines:
                    await websocket.send(line)
                if audio is None:
                    await websocket.send(json.dumps({"type": "end", "dropped": listener.dropped}))
                    break
                if audio:
                    await websocket.send(audio)
            nursery.cancel_scope.cancel()
    finally:
        tape.unlisten(listener)
    return None


# -- the browser test call -------------------------------------------------------------------------

@dashboard_bp.get("/dashboard/talk")
async def talk_page() -> str:
    return await render_template("talk.html")


def _hex_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


class BrowserTransport:
    """server.transport.Transport over the dashboard's websocket: first a Twilio `connected`
    and `start` made here (with the token the server minted), then the browser's frames,
    re-stamped with the call's streamSid (only media / mark / stop)."""

    def __init__(self, inner: Any, start: dict[str, Any]) -> None:
        self._inner = inner
        self.stream_sid = start["streamSid"]
        self._first = [json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
                       json.dumps(start)]
        self.dropped = 0

    async def receive(self) -> str:
        if self._first:
            return self._first.pop(0)
        while True:
            text = await self._inner.receive()
            frame = self._restamp(text)
            if frame is not None:
                return frame
            self.dropped += 1

    def _restamp(self, text: str) -> str | None:
        if len(text) > BROWSER_FRAME_MAX:
            return None
        try:
            message = json.loads(text)
        except ValueError:
            return None
        if not isinstance(message, dict) or message.get("event") not in BROWSER_EVENTS:
            return None
        event = message["event"]
        out: dict[str, Any] = {"event": event, "streamSid": self.stream_sid}
        if event == "media":
            media = message.get("media")
            if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
                return None
            out["media"] = {"track": "inbound", "payload": media["payload"]}
        elif event == "mark":
            mark = message.get("mark")
            if not isinstance(mark, dict) or not isinstance(mark.get("name"), str):
                return None
            out["mark"] = {"name": mark["name"][:100]}
        return json.dumps(out)

    async def send(self, text: str) -> None:
        await self._inner.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._inner.close(code, reason)


@dashboard_bp.websocket("/dashboard/talk/ws")
async def talk_ws() -> Any:
    from server.app import QuartTransport
    from server.gate import Admitted, ReplayTransport

    app: Any = current_app
    why = ws_session()
    if why is not None:
        log_event("WEBHOOK", logging.WARNING, path="/dashboard/talk/ws", status=403, error=why)
        return Response(why, 403)
    gate = getattr(app, "gate", None)
    if gate is None or getattr(app, "wiring", None) is None:
        return Response("no call session in this app", 503)
    if app.drain.draining or not gate.can_upgrade():
        return Response("busy", 503)
    call_sid, stream_sid = _hex_sid("CA"), _hex_sid("MZ")
    account = app.settings.twilio_account_sid or _hex_sid("AC")
    bound: dict[str, str] = {"Direction": "inbound", "CallerName": "dashboard test call"}
    caller = e164(websocket.args.get("from", ""))
    if caller:
        bound["From"] = caller
    token = gate.tokens.mint(call_sid, bound)
    start = {
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {"accountSid": account, "callSid": call_sid, "streamSid": stream_sid, "tracks": ["inbound"],
                  "customParameters": {**bound, "CallSid": call_sid, "token": token},
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    }
    await websocket.accept()
    ws = websocket._get_current_object()
    inner = QuartTransport(ws, ws.scope)
    try:  # the page learns its CallSid (for the live transcript) before the call's frames
        await inner.send(json.dumps({"event": "browser", "callSid": call_sid, "streamSid": stream_sid}))
    except TransportClosed:
        return None
    log_event("WEBHOOK", path="/dashboard/talk/ws", call_sid=call_sid, browser_test_call=True)
    browser = BrowserTransport(inner, start)
    admitted = await gate.admit(browser)
    if not isinstance(admitted, Admitted):
        return None
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_transcript_to, inner, admitted.call_sid)
            await app.wiring.run_call(ReplayTransport(browser, [admitted.start_text]), app.wiring.call_deps)
            nursery.cancel_scope.cancel()
    finally:
        gate.release(admitted.call_sid)
    await inner.close(1000, "call ended")
    return None


async def _transcript_to(inner: Any, call_sid: str) -> None:
    """The test call's live transcript on its own socket (under ``serve --workers N`` a second
    socket could land on another worker): the call's lines as ``{"event": "transcript"}``.
    Never in the call's way: the lines come through a listener's bounded queue."""
    live = live_of(current_app)
    if live is None:
        return
    with trio.move_on_after(10):
        while live.get(call_sid) is None:
            await trio.sleep(0.05)
    tape = live.get(call_sid)
    if tape is None:
        return
    listener = tape.listen(audio=False)
    try:
        while True:
            _, lines = await listener.batch()
            if not lines and listener.ended:
                return
            for line in lines:
                await inner.send(json.dumps({"event": "transcript", "line": json.loads(line)}))
    except TransportClosed:
        return
    finally:
        tape.unlisten(listener)
