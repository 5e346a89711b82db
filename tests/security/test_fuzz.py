"""Hypothesis against a real server process: every HTTP route with wrong types, odd headers and
huge bodies; the media websocket with wrong types, huge and binary frames, events before
`start`, wrong streamSids and bad base64. The server never crashes, never answers 5xx, and
closes a websocket with the right code."""
from __future__ import annotations

import http.client
import json
import re
import urllib.parse
from typing import Any, Iterator

import pytest
import trio
import trio_websocket
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.app import create_app
from server.caller.call import CallIds, new_sid
from server.dashboard import dashboard_bp
from server.settings import Settings
from server.whatsapp import whatsapp_bp
from server.twilio_codec import Connected, TwilioParser

from .support import CONNECTED, MAX_BEFORE_START, MAX_WS_MESSAGE, WS_PATH, ServerProcess, start_message, twiml_params

FUZZ = settings(max_examples=120, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WS_FUZZ = settings(max_examples=30, deadline=None, database=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def http_routes() -> list[tuple[str, frozenset[str]]]:
    """Every HTTP rule of the production app (the dashboard and inflow blueprints included)."""
    from server.inflow import inflow_bp

    app = create_app(Settings.from_env({}))
    app.register_blueprint(dashboard_bp)
    app.register_blueprint(inflow_bp)
    app.register_blueprint(whatsapp_bp)
    rules = [(r.rule, frozenset(r.methods or ())) for r in app.url_map.iter_rules() if not r.websocket]
    names = {rule for rule, _ in rules}
    assert {"/twiml", "/call_status", "/api/leads", "/api/calls/<sid>", "/dashboard/login", "/metrics",
            "/api/leads/intake", "/webhooks/facebook/leads", "/dial/status", "/api/leads/<raw>/call",
            "/whatsapp_inbound"} <= names
    return rules


ROUTES = http_routes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    proc = ServerProcess(tmp / "server.log", f"sqlite:///{tmp / 'fuzz.db'}")
    try:
        yield proc
    finally:
        proc.stop()


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
junk_values = st.one_of(text, st.sampled_from(["", "-1", "0", "1e9", "99999999999999999999", "null", "[]", "{}",
                                               "CA" + "0" * 32, "+972501234567", "../../etc/passwd", "%00", "\u202e"]),
                        st.integers(-10**12, 10**12).map(str), st.just("x" * 5000))


@st.composite
def requests(draw: Any) -> tuple[str, str, dict[str, str], bytes]:
    rule, methods = draw(st.sampled_from(ROUTES))
    path = re.sub(r"<(?:[^:>]+:)?[^>]+>", lambda _: urllib.parse.quote(draw(text) or "x", safe=""), rule)
    if rule.endswith("<path:filename>"):
        path = rule.replace("<path:filename>", draw(st.sampled_from(["dashboard.js", "../app.py", "%2e%2e/x", "nope"])))
    query = draw(st.dictionaries(st.sampled_from(["limit", "token", "next", "x", "CallSid", "From"]) | text,
                                 junk_values, max_size=4))
    if query:
        path += "?" + urllib.parse.urlencode(query)
    method = draw(st.sampled_from(sorted(methods | {"GET", "POST", "PUT", "DELETE", "PATCH"})))
    headers = draw(st.fixed_dictionaries({}, optional={
        "Content-Type": st.sampled_from(["application/x-www-form-urlencoded", "application/json", "text/plain",
                                         "multipart/form-data", "multipart/form-data; boundary=zz", "x/\u00ff"]),
        "Cookie": st.sampled_from(["al_session=" + "a" * 300, "al_session=1.2.t.3", "=;;=", "al_session=\u00e9"]),
        "Authorization": st.sampled_from(["Bearer", "Bearer " + "x" * 1000, "Basic !!!", "Digest x"]),
        "X-Forwarded-For": st.sampled_from(["127.0.0.1", "garbage", "1.1.1.1, ::1", ""]),
        "X-Forwarded-Host": st.sampled_from(["evil.example", "a" * 500, "[::1", ""]),
        "Forwarded": st.sampled_from(['for="[::1]";proto=https;host=x', "for", ";;;"]),
        "X-Twilio-Signature": st.sampled_from(["", "x", "=" * 40]),
        "X-CSRF-Token": st.sampled_from(["", "0" * 64]),
        "Origin": st.sampled_from(["null", "https://evil.example", "http://127.0.0.1"]),
    }))
    form = draw(st.dictionaries(st.sampled_from(["CallSid", "From", "To", "MessageSid", "MessageStatus", "token",
                                                 "csrf_token", "next", "AccountSid", "Direction"]) | text,
                                junk_values, max_size=6))
    body = draw(st.one_of(
        st.just(urllib.parse.urlencode(form).encode()),
        st.binary(max_size=2000),
        st.just(json.dumps(form).encode()),
        st.just(b"CallSid=" + b"A" * 200_000),  # over the 64 KiB body limit
    ))
    return method, path, headers, body


def send(port: int, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value.encode("utf-8"))
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


@FUZZ
@given(requests())
def test_http_routes_never_crash(server: ServerProcess, req: tuple[str, str, dict[str, str], bytes]) -> None:
    method, path, headers, body = req
    status = send(server.port, method, path, headers, body)
    assert status < 500 or status == 503 and path.startswith("/ws"), (method, path, status)
    assert server.alive


# -- the websocket -------------------------------------------------------------------------------

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
                           max_leaves=8)
EVENTS = ["connected", "start", "media", "mark", "dtmf", "stop", "clear", "", "MEDIA"]


@st.composite
def twilio_frames(draw: Any, stream_sid: str) -> str | bytes:
    kind = draw(st.sampled_from(["shaped", "wrong_types", "binary", "text", "huge", "bad_base64", "other_stream"]))
    event = draw(st.sampled_from(EVENTS) | text)
    if kind == "shaped":
        return json.dumps({"event": event, "streamSid": stream_sid, draw(st.sampled_from(EVENTS)): draw(json_values)})
    if kind == "wrong_types":
        return json.dumps({"event": draw(json_values), "streamSid": draw(json_values), "media": draw(json_values),
                           "sequenceNumber": draw(json_values)})
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=3000))
    if kind == "text":
        return draw(text) or "{"
    if kind == "huge":
        n = draw(st.sampled_from([MAX_WS_MESSAGE - 200, MAX_WS_MESSAGE + 1, 300_000]))
        return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": "A" * n}})
    if kind == "bad_base64":
        payload = draw(st.sampled_from(["!!!!", "A", "A===", "\u00e9\u00e9", "AAAA" * 41 + "=", ""]))
        return json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})
    return json.dumps({"event": "media", "streamSid": new_sid("MZ"), "media": {"payload": "/////w=="}})


async def ws_session(port: int, frames: list[str | bytes], before_start: bool, send_stop: bool) -> int | None:
    ids = CallIds()
    ids.parameters = await twiml_params(port, ids)
    url = f"ws://127.0.0.1:{port}{WS_PATH}"
    async with trio_websocket.open_websocket_url(url, message_queue_size=1024) as ws:
        try:
            await ws.send_message(CONNECTED)
            if before_start:
                for frame in frames:
                    await ws.send_message(frame)
            await ws.send_message(start_message(ids))
            if not before_start:
                for frame in frames:
                    await ws.send_message(frame)
            if send_stop:
                await ws.send_message(json.dumps({"event": "stop", "streamSid": ids.stream_sid, "stop": {}}))
        except trio_websocket.ConnectionClosed as exc:
            return getattr(exc.reason, "code", None)
        with trio.fail_after(10):
            try:
                while True:
                    await ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                return getattr(exc.reason, "code", None)


@WS_FUZZ
@given(data=st.data(), before_start=st.booleans())
def test_websocket_messages_never_crash(server: ServerProcess, data: Any, before_start: bool) -> None:
    frames = data.draw(st.lists(twilio_frames("MZ" + "0" * 32), min_size=1, max_size=12))
    too_big = any(len(f) > MAX_WS_MESSAGE for f in frames)
    code = trio.run(ws_session, server.port, frames, before_start, True)
    if before_start and too_big:
        assert code in (1008, 1009), code  # refused as "not a start", or the size limit saw it first
    elif before_start:
        # only `connected` may come before `start`, and only a couple of them
        admitted = len(frames) < MAX_BEFORE_START - 1 and all(
            isinstance(TwilioParser().parse(f), Connected) for f in frames)
        assert code == (1000 if admitted else 1008), code
    elif too_big:
        assert code == 1009, code
    else:
        assert code == 1000, code  # the junk was dropped and counted; our `stop` ended the call
    assert server.alive
