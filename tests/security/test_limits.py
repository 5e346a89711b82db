"""Findings 4, 5 and 7: one websocket grew the server by ~1 GB (every unknown event name kept,
16 MiB messages); no length limits on what a peer sends (a 10 MB `From`); no limit on
concurrent calls or their length. Now: 64 KiB messages (1009 past it), unknown events
counted not stored, SIDs / numbers / parameters checked at the edge, MAX_CALLS (a polite
busy TwiML, and the websocket refuses too), MAX_CALL_MINUTES (a goodbye, then hang up)."""
from __future__ import annotations

import contextlib
import json
import tracemalloc
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import trio
import trio_websocket
from hypercorn.config import Config
from hypercorn.trio import serve

from native.config import ConfigError
from server.app import create_app
from server.caller.call import CallIds, PreparedAudio, PreparedHangup, PreparedWait, new_sid
from server.caller.client import place_call
from server.demo import free_port
from server.settings import Settings
from server.twilio_codec import Media, ProtocolError, Start, TwilioParser, UnknownEvent
from tests.integration.harness import ahttp

from .support import (
    CONNECTED, MAX_BEFORE_START, MAX_WS_MESSAGE, WS_PATH, admitted, new_world, nothing_of_a_call, server_close, start_message, try_start, wait_for,
    world_server,
)


async def test_a_message_over_64_kib_closes_the_socket_with_1009() -> None:
    from server.app import MAX_WS_MESSAGE as limit

    assert limit == MAX_WS_MESSAGE == 64 * 1024
    async with world_server() as (_, port, world):
        ids = await admitted(port)
        for frame in ("x" * (MAX_WS_MESSAGE + 1), b"\x00" * (MAX_WS_MESSAGE + 1), " " * (4 * 1024 * 1024)):
            code, _ = await try_start(port, [CONNECTED, frame])
            assert code == 1009
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with trio_websocket.open_websocket_url(url) as ws:  # in the middle of a call, too
            await ws.send_message(CONNECTED)
            await ws.send_message(start_message(ids))
            await wait_for(lambda: world.brains)
            await ws.send_message('{"event":"media","media":{"payload":"' + "A" * MAX_WS_MESSAGE + '"}}')
            code, _ = await server_close(ws)
        assert code == 1009
        await wait_for(lambda: world.results)
        assert world.results[0].close_reason == "dropped"


async def test_the_app_enforces_the_limit_under_any_server_config() -> None:
    """`hypercorn server.app:app` with hypercorn's own default (16 MiB): the app still closes."""
    world = new_world()
    app = create_app(Settings.from_env({"AGENT_LANGUAGE": "en-US"}), world.wiring, configure_logs=False)
    config = Config()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    assert config.websocket_max_message_size > MAX_WS_MESSAGE
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status))
        try:
            code, _ = await try_start(port, [CONNECTED, "y" * (MAX_WS_MESSAGE + 1)])
            assert code == 1009
            assert nothing_of_a_call(world)
        finally:
            shutdown.set()


def test_unknown_event_names_are_counted_not_stored() -> None:
    parser = TwilioParser()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        firsts = 0
        for i in range(20_000):
            name = f"ev{i:06d}" + "z" * 2000
            event = parser.parse(json.dumps({"event": name}))
            assert isinstance(event, UnknownEvent) and len(event.name) <= 64
            firsts += event.first
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert parser.unknown_events == 20_000 and firsts == 20 and len(parser._unknown_seen) == 20
    assert grown < 200_000, grown  # 40 MB of names went through


def test_frames_for_another_stream_are_dropped() -> None:
    parser = TwilioParser()
    parser.stream_sid = "MZ" + "a" * 32
    ok = parser.parse('{"event":"media","streamSid":"%s","media":{"payload":"/w=="}}' % parser.stream_sid)
    assert isinstance(ok, Media)
    for event in ("media", "mark", "stop", "dtmf"):
        body = {"media": {"payload": "/w=="}, "mark": {"name": "x"}, "stop": {}, "dtmf": {"digit": "1"}}[event]
        other = parser.parse(json.dumps({"event": event, "streamSid": "MZ" + "b" * 32, event: body}))
        assert isinstance(other, ProtocolError) and other.kind == "stream_sid", event


def test_edge_validation_unit() -> None:
    from server.edge import call_params, custom_params_problem, e164

    assert e164("+972501234567") == "+972501234567"
    for bad in ("", "972501234567", "+", "+0501234567", "+97250123456789012", "+972-50-1234567", "anonymous",
                "+９７２５０１２３４５６７", "+1555", "+972501234567\n", None, 972501234567):
        assert e164(bad) is None, bad
    got = call_params({"From": "+972501234567", "To": "x" * 10_000, "CallSid": "CA" + "0" * 32, "Direction": "sideways",
                       "CallerName": "Dana\x00" + "n" * 500, "AccountSid": "AC1", "Evil": "1"})
    assert got == {"From": "+972501234567", "CallSid": "CA" + "0" * 32, "CallerName": "Dana" + "n" * 60}
    assert custom_params_problem({"a": "x" * 1024}) is None
    assert custom_params_problem({"a": "x" * 1025}) and custom_params_problem({"a": "é" * 600})
    assert custom_params_problem({f"p{i}": "" for i in range(17)})
    assert custom_params_problem({"n" * 65: "v"}) and custom_params_problem({"a": 5})


async def test_twiml_keeps_only_checked_numbers_and_refuses_huge_bodies() -> None:
    async with world_server() as (_, port, _w):
        ids = CallIds()
        for from_number in ("+1555", "x" * 2000, "+972501234567' onload='"):
            form = {**ids.webhook_params(), "From": from_number, "CallerName": "C" * 300}
            status, _, body = await ahttp("POST", port, "/twiml", form=form)
            params = {p.get("name"): p.get("value") for p in ET.fromstring(body).iter("Parameter")}
            assert status == 200 and "From" not in params and len(params["CallerName"]) == 64
        assert await trio.to_thread.run_sync(huge_post, port, "/twiml", 10 * 1024 * 1024) == 413


def huge_post(port: int, path: str, size: int) -> int:
    """A form body of ``size`` bytes (a 10 MB `From`), sent in 64 KiB pieces until the server
    answers (it should not wait for the rest)."""
    import select
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: "
                      f"application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\nFrom=").encode())
        sent = 5
        while sent < size and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"9" * 65536)
            except OSError:
                break
            sent += 65536
        select.select([sock], [], [], 10)
        head = sock.recv(4096)
    return int(head.split()[1])


@pytest.mark.parametrize("bad", ["big_param", "many_params", "non_string", "bad_stream_sid", "bad_call_sid",
                                 "other_account", "media_first", "junk_first"])
async def test_a_start_that_breaks_the_rules_is_refused(bad: str) -> None:
    env = {"TWILIO_ACCOUNT_SID": "AC" + "7" * 32}
    async with world_server(env) as (_, port, world):
        ids = await admitted(port, CallIds(account_sid="AC" + "7" * 32))
        params, fields = dict(ids.parameters), {}
        frames: list[str | bytes] = [CONNECTED]
        if bad == "big_param":
            params["x"] = "v" * 1025
        elif bad == "many_params":
            params.update({f"p{i}": "1" for i in range(20)})
        elif bad == "non_string":
            params["x"] = 5  # type: ignore[assignment]
        elif bad == "bad_stream_sid":
            fields["streamSid"] = "MZ" + "x" * 32
        elif bad == "bad_call_sid":
            fields["callSid"] = "CA" + "0" * 31 + "'"
        elif bad == "other_account":
            fields["accountSid"] = "AC" + "8" * 32
        elif bad == "media_first":
            frames.append('{"event":"media","media":{"payload":"/w=="}}')
        elif bad == "junk_first":
            frames.append(b"\xff\xfe binary")
        frames.append(start_message(ids, params, **fields))
        code, _ = await try_start(port, frames)
        assert code == 1008, bad
        assert nothing_of_a_call(world)


async def test_max_calls() -> None:
    async with world_server({"MAX_CALLS": "1", "AGENT_LANGUAGE": "he-IL"}) as (app, port, world):
        first, second = await admitted(port), await admitted(port)  # both fetched their TwiML in time
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.send_message(CONNECTED)
            await ws.send_message(start_message(first))
            await wait_for(lambda: world.brains)
            # a new call: a polite line in the agent's language, then hang up (no stream)
            status, headers, body = await ahttp("POST", port, "/twiml", form=CallIds().webhook_params())
            root = ET.fromstring(body)
            assert status == 200 and root.find("Connect") is None and root.find("Hangup") is not None
            say = root.find("Say")
            assert say is not None and say.get("language") == "he-IL" and "מצטערים" in say.text
            # and the websocket refuses too: at the upgrade, or (a race) at `start`
            with pytest.raises(trio_websocket.ConnectionRejected) as exc:
                async with trio_websocket.open_websocket_url(url):
                    pass
            assert exc.value.status_code == 503
            assert len(world.brains) == 1
            await ws.send_message(json.dumps({"event": "stop", "streamSid": first.stream_sid, "stop": {}}))
            await server_close(ws)
        await wait_for(lambda: not app.gate.active)
        status, _, body = await ahttp("POST", port, "/twiml", form=CallIds().webhook_params())
        assert ET.fromstring(body).find("Connect/Stream") is not None
        del second


def test_gate_refuses_at_start_when_full() -> None:
    from server.calltokens import CallTokens
    from server.gate import MAX_BEFORE_START as before_start
    from server.gate import CallGate, Refused

    assert before_start == MAX_BEFORE_START

    gate = CallGate(CallTokens(b"k" * 32), max_calls=1)

    def start(sid: str) -> Start:
        token = gate.tokens.mint(sid, {})
        return Start(new_sid("MZ"), sid, "", "", "", {"CallSid": sid, "token": token}, "audio/x-mulaw", 8000, 1)

    a, b = new_sid("CA"), new_sid("CA")
    assert not isinstance(gate.judge(start(a)), Refused)
    verdict = gate.judge(start(b))
    assert isinstance(verdict, Refused) and verdict.code == 1013 and verdict.reason == "busy"
    gate.release(a)
    assert isinstance(gate.judge(start(a)), Refused)  # and a CallSid never comes back


async def test_max_call_minutes_ends_the_call_with_a_goodbye() -> None:
    world = new_world()
    steps = [PreparedWait(quiet_ms=500, timeout_s=10.0), PreparedAudio("silence", np.zeros(8000 * 30, np.int16)),
             PreparedHangup()]
    async with world_server({"MAX_CALL_MINUTES": "0.05"}, world) as (_, port, _w):  # 3 s
        started = trio.current_time()
        with trio.fail_after(20):
            outcome = await place_call(f"ws://127.0.0.1:{port}{WS_PATH}", steps)
        took = trio.current_time() - started
        await wait_for(lambda: world.results)
    result = world.results[0]
    goodbye = "Thank you, we'll be in touch soon. Have a great day."
    assert result.close_reason == "max_duration" and outcome.call.close_code == 1000
    assert 3.0 <= took < 12.0
    assert world.synthesizer.spoken[-1] == goodbye
    agent_turns = [e for e in world.recorder.events if e[0] == "turn" and e[1] == "agent"]
    assert agent_turns[-1][2] == goodbye
    assert outcome.call.errors == []


@pytest.mark.parametrize("env, needle", [
    ({"MAX_CALLS": "0"}, "MAX_CALLS"), ({"MAX_CALLS": "many"}, "MAX_CALLS"),
    ({"MAX_CALL_MINUTES": "-1"}, "MAX_CALL_MINUTES"), ({"MAX_CALL_MINUTES": "nan"}, "MAX_CALL_MINUTES"),
    ({"AGENTLOCATOR_SECRET": "short"}, "AGENTLOCATOR_SECRET"), ({"FORWARDED_ALLOW_IPS": "10.0.0.0/99"}, "FORWARDED_ALLOW_IPS"),
    ({"ALLOWED_HOSTS": "https://x.example/"}, "ALLOWED_HOSTS"), ({"AGENTLOCATOR_INSECURE": "perhaps"}, "AGENTLOCATOR_INSECURE"),
])
def test_bad_security_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_security_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.max_calls, s.max_call_minutes, s.insecure, s.forwarded_allow_ips) == (50, 60.0, False, "127.0.0.1,::1")
    assert "secret" not in repr(Settings.from_env({"AGENTLOCATOR_SECRET": "secret-" * 4, "METRICS_TOKEN": "secret"}))


@pytest.mark.parametrize("fast_path", ["1", "0"])
async def test_an_oversized_message_then_a_binary_frame_does_not_take_the_server_down(fast_path: str) -> None:
    """Hypercorn 0.18 kept the over-limit text buffer; a binary frame after it raised in the
    connection task and the whole server exited. And the peer's close in the same read was
    dropped, so the app only heard of it at the inbound timeout. Both the raw media path
    and Quart's websocket (MEDIA_FAST_PATH=0); the raw path refuses the message at its
    frame header, so its 1009 may reach the client before the frames after it are sent."""
    async with world_server({"MEDIA_FAST_PATH": fast_path}) as (_, port, world):
        ids = await admitted(port)
        url = f"ws://127.0.0.1:{port}{WS_PATH}"
        async with trio_websocket.open_websocket_url(url) as ws:
            await ws.send_message(CONNECTED)
            await ws.send_message(start_message(ids))
            await wait_for(lambda: world.brains)
            stream = ws._stream  # the frames go out back to back, before the server's close is read
            await ws.send_message("t" * (MAX_WS_MESSAGE + 10))
            with trio.move_on_after(0.5), contextlib.suppress(trio_websocket.ConnectionClosed):
                await ws.send_message(b"\x00\x01binary")
                await ws.send_message("more text")
            code, _ = await server_close(ws, 5.0)
            del stream
        assert code == 1009
        await wait_for(lambda: world.results, 3.0)  # promptly, not at the 15 s inbound timeout
        assert (await ahttp("GET", port, "/version"))[0] == 200  # and the server is still up
        ids2 = await admitted(port)
        code, _ = await try_start(port, [CONNECTED, start_message(ids2), json.dumps(
            {"event": "stop", "streamSid": ids2.stream_sid, "stop": {}})])
        assert code == 1000


async def test_permessage_deflate_is_not_negotiated() -> None:
    """A compressed frame is inflated before any size check (a few KiB -> hundreds of MiB)."""
    import socket

    def handshake(port: int) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall((
                f"GET {WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n").encode())
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            return data.decode("latin1").lower()

    async with world_server() as (_, port, _w):
        head = await trio.to_thread.run_sync(handshake, port)
        assert head.startswith("http/1.1 101") and "sec-websocket-extensions" not in head
