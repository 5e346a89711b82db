"""Who may hear a call: the recording, listen-in and the browser test call are the dashboard's
(DASHBOARD_TOKEN, or local only), websockets included (a browser sends the session cookie with
a cross-site upgrade: the Origin and the page's CSRF token are checked). The browser test call
passes the call-token gate without weakening it for Twilio: the server mints the token for
SIDs it made itself, the browser never sees it, and a `start` from the browser is dropped."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import trio
import trio_websocket

from server.recording import LiveCalls, Recordings
from tests.integration.harness import ahttp

from .support import dashboard_server

TOKEN = "dash-token-1234567890"
SID = "CA" + "ab" * 16


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'agentlocator.db'}"


def recordings(app, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    app.config["RECORDINGS"] = Recordings(tmp_path / "rec")
    (tmp_path / "rec").mkdir()
    path = tmp_path / "rec" / f"{SID}.flac"
    path.write_bytes(b"fLaC" + bytes(200))
    return path


async def test_recording_is_served_to_dashboard_users_only(db: str, tmp_path: Path) -> None:
    async with dashboard_server(db, {"DASHBOARD_TOKEN": TOKEN}) as (app, port, _w):
        recordings(app, tmp_path)
        path = f"/api/calls/{SID}/recording"
        status, _, body = await ahttp("GET", port, path)
        assert status == 401 and b"fLaC" not in body
        assert (await ahttp("GET", port, path, headers={"Authorization": "Bearer wrong-token-000000"}))[0] == 401
        status, headers, body = await ahttp("GET", port, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and body.startswith(b"fLaC")
        assert {k.lower(): v for k, v in headers.items()}["content-type"] == "audio/flac"
        for bad in ("CA1", "..%2F..%2Fagentlocator.db", "CA" + "AB" * 16):
            assert (await ahttp("GET", port, f"/api/calls/{bad}/recording",
                                headers={"Authorization": f"Bearer {TOKEN}"}))[0] == 404, bad


async def _page_session(port: int, path: str = "/dashboard/talk") -> tuple[str, str]:
    """(cookie header, CSRF token) as a local browser gets them from a dashboard page."""
    status, headers, body = await ahttp("GET", port, path)
    assert status == 200
    cookie = {k.lower(): v for k, v in headers.items()}["set-cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', body).group(1).decode()
    return cookie, csrf


async def _ws_status(port: int, path: str, headers: list[tuple[str, str]]) -> int:
    """The HTTP status of a refused upgrade, 101 if it was accepted."""
    try:
        async with trio_websocket.open_websocket_url(f"ws://127.0.0.1:{port}{path}", extra_headers=headers):
            return 101
    except trio_websocket.ConnectionRejected as exc:
        return exc.status_code


async def test_listen_websocket_needs_the_dashboard_session(db: str) -> None:
    async with dashboard_server(db) as (app, port, _w):  # local mode
        app.config["LIVE"] = LiveCalls()
        cookie, csrf = await _page_session(port)
        origin = ("Origin", f"http://127.0.0.1:{port}")
        listen = f"/api/calls/{SID}/listen"
        assert await _ws_status(port, listen, [origin]) == 403  # no session cookie
        assert await _ws_status(port, listen, [origin, ("Cookie", cookie)]) == 403  # no CSRF token
        assert await _ws_status(port, f"{listen}?csrf={'0' * 64}", [origin, ("Cookie", cookie)]) == 403
        evil = ("Origin", "https://evil.example")
        assert await _ws_status(port, f"{listen}?csrf={csrf}", [evil, ("Cookie", cookie)]) == 403
        assert await _ws_status(port, f"{listen}?csrf={csrf}", [("Origin", "null"), ("Cookie", cookie)]) == 403
        # allowed through: the call is simply not live
        assert await _ws_status(port, f"{listen}?csrf={csrf}", [origin, ("Cookie", cookie)]) == 404
        # proxy headers: not local
        assert await _ws_status(port, f"{listen}?csrf={csrf}", [origin, ("Cookie", cookie),
                                                                ("X-Forwarded-For", "127.0.0.1")]) == 403
    async with dashboard_server(db, {"DASHBOARD_TOKEN": TOKEN}) as (app, port, _w):
        app.config["LIVE"] = LiveCalls()
        listen = f"/api/calls/{SID}/listen"
        assert await _ws_status(port, listen, []) == 403
        assert await _ws_status(port, listen, [("Authorization", f"Bearer {TOKEN}")]) == 404
        assert await _ws_status(port, "/dashboard/talk/ws", []) == 403


async def test_browser_test_call_goes_through_the_gate(db: str) -> None:
    async with dashboard_server(db) as (app, port, world):
        app.wiring.call_deps.live = LiveCalls()
        cookie, csrf = await _page_session(port)
        headers = [("Origin", f"http://127.0.0.1:{port}"), ("Cookie", cookie)]
        assert await _ws_status(port, "/dashboard/talk/ws", headers) == 403  # no CSRF token
        url = f"ws://127.0.0.1:{port}/dashboard/talk/ws?csrf={csrf}&from=%2B972501112233"
        events: list[dict] = []
        async with trio_websocket.open_websocket_url(url, extra_headers=headers) as ws:
            hello = json.loads(await ws.get_message())
            assert hello["event"] == "browser" and re.fullmatch(r"CA[0-9a-f]{32}", hello["callSid"])
            # a `start` of the browser's own is not Twilio's: dropped, the call stays the server's
            await ws.send_message(json.dumps({"event": "start", "start": {"callSid": "CA" + "0" * 32}}))
            silence = json.dumps({"event": "media", "media": {"payload": "/" * 213 + "w=="}})  # 160 x 0xFF
            next_frame = trio.current_time()
            with trio.move_on_after(20):
                while not any(e.get("event") == "mark" for e in events):
                    if trio.current_time() >= next_frame:  # the caller's line: 20 ms frames in real time
                        await ws.send_message(silence)
                        next_frame += 0.02
                    with trio.move_on_at(next_frame):
                        events.append(json.loads(await ws.get_message()))
            assert any(e["event"] == "media" for e in events), ("the agent's greeting never came", events[:5], world.results)
            assert all(e["streamSid"] == hello["streamSid"] for e in events if e["event"] in ("media", "mark"))
            mark = next(e for e in events if e["event"] == "mark")["mark"]["name"]
            await ws.send_message(json.dumps({"event": "mark", "mark": {"name": mark}}))
            await ws.send_message(json.dumps({"event": "stop"}))
            with trio.move_on_after(5):
                try:
                    while True:
                        await ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    assert exc.reason.code == 1000
        with trio.fail_after(5):
            while not world.results:
                await trio.sleep(0.05)
        result = world.results[0]
        assert result.call_sid == hello["callSid"] and result.close_reason == "twilio_stop"
        assert app.gate.active == set()
        # the token the server minted was used once: the same CallSid cannot connect again
        assert not app.gate.tokens.consume(hello["callSid"], 2**31)
