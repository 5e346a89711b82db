"""HTTP routes of the real server over loopback: /version, TwiML, webhooks, signatures, subprotocol."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import trio
import trio_websocket

from leads.base import NullRecorder
from server.security import SignatureChecker
from server.settings import Settings
from server.transport import Transport, TransportClosed
from server.wiring import Wiring

from .harness import admitted_ids, ahttp, running_server, start_frames

TOKEN = "test-auth-token-123"
CALL_SID = "CA" + "12" * 16
CALL = {"CallSid": CALL_SID, "From": "+972501234567", "To": "+97231234567", "AccountSid": "AC" + "0" * 32}


class Seen:
    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: TransportClosed | None = None
        self.done = trio.Event()


def quiet_wiring(seen: Seen, webhook_log: list[tuple[str, dict[str, str]]] | None = None):
    """Routes-only wiring: the call just records what arrives (the session has its own tests)."""

    async def run_call(transport: Transport, deps: Any) -> None:
        try:
            while True:
                seen.frames.append(await transport.receive())
        except TransportClosed as exc:
            seen.closed = exc
        finally:
            seen.done.set()

    async def on_webhook(name: str, params: dict[str, str]) -> None:
        if webhook_log is not None:
            webhook_log.append((name, params))

    def factory(settings: Settings) -> Wiring:
        return Wiring(run_call=run_call, call_deps=None,
                      providers={"asr": "fake-asr", "tts": "fake-tts", "brain": "fake-brain"},
                      recorder=NullRecorder(), webhook_handlers=[on_webhook])

    return factory


async def test_version_reports_providers() -> None:
    async with running_server(quiet_wiring(Seen())) as (_, port):
        status, headers, body = await ahttp("GET", port, "/version")
    assert status == 200
    data = json.loads(body)
    assert data["providers"] == {"asr": "fake-asr", "tts": "fake-tts", "brain": "fake-brain"}
    assert data["version"] and data["commit"]


async def test_twiml_points_at_our_websocket_behind_a_proxy() -> None:
    # Unsigned requests through a proxy: only with AGENTLOCATOR_INSECURE=1 (tests/security has the rest)
    async with running_server(quiet_wiring(Seen()), {"AGENTLOCATOR_INSECURE": "1"}) as (_, port):
        status, headers, body = await ahttp(
            "POST", port, "/twiml", form=CALL,
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "agent.example.com"},
        )
    assert status == 200 and headers["content-type"].startswith("application/xml")
    root = ET.fromstring(body)
    connect = root.find("Connect")
    assert connect is not None and connect.get("action") == "https://agent.example.com/stream_ended"
    stream = connect.find("Stream")
    assert stream.get("url") == "wss://agent.example.com/ws/twilio-media"
    assert stream.get("statusCallback") == "https://agent.example.com/stream_status"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["From"] == CALL["From"] and params["To"] == CALL["To"] and params["CallSid"] == CALL_SID
    assert params["token"]  # the call's websocket token (tests/security/test_stream_tokens.py)


async def test_twiml_uses_public_base_url() -> None:
    env = {"PUBLIC_BASE_URL": "https://public.example.org/"}
    async with running_server(quiet_wiring(Seen()), env) as (_, port):
        _, _, body = await ahttp("POST", port, "/twiml", form=CALL)
    stream = ET.fromstring(body).find("Connect/Stream")
    assert stream.get("url") == "wss://public.example.org/ws/twilio-media"


async def test_webhooks_answer_204_and_work_runs_after() -> None:
    log: list[tuple[str, dict[str, str]]] = []
    async with running_server(quiet_wiring(Seen(), log)) as (_, port):
        for name in ("stream_status", "stream_ended", "call_status"):
            status, _, body = await ahttp("POST", port, f"/{name}", form={"CallSid": "CA9", "CallStatus": "completed"})
            assert (status, body) == (204, b"")
        with trio.fail_after(5):
            while len(log) < 3:
                await trio.sleep(0.01)
    assert sorted(n for n, _ in log) == ["call_status", "stream_ended", "stream_status"]
    assert all(p["CallSid"] == "CA9" for _, p in log)


async def test_signatures_required_when_token_set() -> None:
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": "https://agent.example.com"}
    checker = SignatureChecker(TOKEN)
    form = {"CallSid": "CA5", "StreamEvent": "stream-started"}
    good = checker.sign("https://agent.example.com/stream_status", form)
    async with running_server(quiet_wiring(Seen()), env) as (_, port):
        assert (await ahttp("POST", port, "/stream_status", form=form))[0] == 403
        bad = {"X-Twilio-Signature": good[:-2] + "xx"}
        assert (await ahttp("POST", port, "/stream_status", form=form, headers=bad))[0] == 403
        assert (await ahttp("POST", port, "/stream_status", form=form, headers={"X-Twilio-Signature": good}))[0] == 204
        # The signature covers the params: the same signature with other params is refused.
        other = {**form, "StreamEvent": "stream-stopped"}
        assert (await ahttp("POST", port, "/stream_status", form=other, headers={"X-Twilio-Signature": good}))[0] == 403
        twiml_sig = checker.sign("https://agent.example.com/twiml", CALL)
        assert (await ahttp("POST", port, "/twiml", form=CALL, headers={"X-Twilio-Signature": twiml_sig}))[0] == 200


async def test_signature_behind_proxy_uses_forwarded_url() -> None:
    checker = SignatureChecker(TOKEN)
    form = {"CallSid": "CA6"}
    sig = checker.sign("https://tunnel.example.net/call_status", form)
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tunnel.example.net", "X-Twilio-Signature": sig}
    async with running_server(quiet_wiring(Seen()), {"TWILIO_AUTH_TOKEN": TOKEN}) as (_, port):
        assert (await ahttp("POST", port, "/call_status", form=form, headers=proxy))[0] == 204
        assert (await ahttp("POST", port, "/call_status", form=form, headers={"X-Twilio-Signature": sig}))[0] == 403


async def test_websocket_upgrade_signature() -> None:
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "PUBLIC_BASE_URL": "https://agent.example.com"}
    seen = Seen()
    async with running_server(quiet_wiring(seen), env) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        try:
            async with trio_websocket.open_websocket_url(url):
                raise AssertionError("unsigned upgrade was accepted")
        except trio_websocket.ConnectionRejected as exc:
            assert exc.status_code == 403
        sig = SignatureChecker(TOKEN).sign("wss://agent.example.com/ws/twilio-media", {})
        ids = await admitted_ids(port, auth_token=TOKEN, signed_url="https://agent.example.com/twiml")
        async with trio_websocket.open_websocket_url(url, extra_headers=[("X-Twilio-Signature", sig)]) as ws:
            for frame in start_frames(ids):
                await ws.send_message(frame)
            with trio.fail_after(5):
                while not seen.frames:
                    await trio.sleep(0.01)
    assert json.loads(seen.frames[0])["start"]["callSid"] == ids.call_sid


async def test_subprotocol_is_echoed_and_close_reaches_the_call() -> None:
    seen = Seen()
    async with running_server(quiet_wiring(seen)) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        ids = await admitted_ids(port)
        async with trio_websocket.open_websocket_url(url, subprotocols=["audio.twilio.com"]) as ws:
            assert ws.subprotocol == "audio.twilio.com"
            for frame in start_frames(ids):
                await ws.send_message(frame)
            await ws.send_message("hello")
        with trio.fail_after(5):
            await seen.done.wait()
    assert json.loads(seen.frames[0])["event"] == "start" and seen.frames[1:] == ["hello"]
    assert seen.closed is not None


async def test_metrics_exposes_the_design_names() -> None:
    async with running_server(quiet_wiring(Seen())) as (_, port):
        status, headers, body = await ahttp("GET", port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    text = body.decode()
    for name in ("agentlocator_turn_latency_seconds", "agentlocator_interrupt_halt_seconds",
                 "agentlocator_calls_active", "agentlocator_heartbeats_total"):
        assert name in text


async def test_metrics_exports_the_turn_taking_series() -> None:
    """The six turn-taking series (telemetry.metrics, written by the session) are on /metrics,
    and what the session records there shows up: the app serves that registry."""
    from prometheus_client.parser import text_string_to_metric_families

    from telemetry import metrics as prom

    def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(body.decode()) for s in family.samples}

    async with running_server(quiet_wiring(Seen())) as (_, port):
        before = samples((await ahttp("GET", port, "/metrics"))[2])
        prom.false_interruptions_total.inc()
        prom.resumed_total.inc(2)
        prom.utterances_ignored_total.inc()
        prom.continuations_total.inc()
        prom.talk_over_seconds.observe(0.25)
        prom.dead_air_seconds.observe(1.1)
        after = samples((await ahttp("GET", port, "/metrics"))[2])

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in before and key in after, f"{name} {labels} not exported"
        return after[key] - before[key]

    assert delta("agentlocator_false_interruptions_total") == 1
    assert delta("agentlocator_resumed_total") == 2
    assert delta("agentlocator_utterances_ignored_total") == 1
    assert delta("agentlocator_continuations_total") == 1
    assert delta("agentlocator_talk_over_seconds_count") == 1
    assert delta("agentlocator_talk_over_seconds_sum") == pytest.approx(0.25)
    assert delta("agentlocator_talk_over_seconds_bucket", le="0.2") == 0  # buckets around the 100 ms target
    assert delta("agentlocator_talk_over_seconds_bucket", le="0.3") == 1
    assert delta("agentlocator_dead_air_seconds_count") == 1
    assert delta("agentlocator_dead_air_seconds_bucket", le="1.0") == 0
    assert delta("agentlocator_dead_air_seconds_bucket", le="1.2") == 1
    assert delta("agentlocator_dead_air_seconds_bucket", le="2.0") == 1  # the 2 s target


async def test_a_crashing_background_task_is_restarted_not_fatal(monkeypatch) -> None:
    runs: list[float] = []

    async def flaky() -> None:
        runs.append(trio.current_time())
        if len(runs) < 2:
            raise RuntimeError("outbox lost its database")
        await trio.sleep_forever()

    def factory(settings: Settings) -> Wiring:
        w = quiet_wiring(Seen())(settings)
        w.background.append(flaky)
        return w

    import server.app as app_mod

    monkeypatch.setattr(app_mod, "BACKGROUND_RESTART_S", 0.3)
    async with running_server(factory) as (_, port):
        with trio.fail_after(10):
            while len(runs) < 2:
                await trio.sleep(0.05)
        assert (await ahttp("GET", port, "/version"))[0] == 200
    assert runs[1] - runs[0] >= 0.29


async def test_the_connection_is_shut_after_our_close_even_if_the_call_stopped_reading_first() -> None:
    # The call stops reading (it is ending) while the caller still streams media, closes the
    # socket a moment later and then stays busy (its last writes to a slow database). The
    # caller's close reply must still get through and the connection be shut at once: queued
    # behind frames nobody reads, it stalled hypercorn's reader and the line stayed open.
    closed = trio.Event()

    async def run_call(transport: Transport, deps: Any) -> None:
        await transport.receive()  # `start`
        await trio.sleep(1.5)  # not reading: the caller's frames pile up
        await transport.close(1000, "call ended")
        closed.set()
        await trio.sleep(10)  # the end-of-call writes

    def factory(settings: Settings) -> Wiring:
        return Wiring(run_call=run_call, call_deps=None,
                      providers={"asr": "fake-asr", "tts": "fake-tts", "brain": "fake-brain"},
                      recorder=NullRecorder())

    async with running_server(factory) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        ids = await admitted_ids(port)
        media = json.dumps({"event": "media", "streamSid": ids.stream_sid,
                            "media": {"track": "inbound", "payload": "/" * 216}})
        with trio.fail_after(20):
            async with trio_websocket.open_websocket_url(url, disconnect_timeout=10) as ws:
                for frame in start_frames(ids):
                    await ws.send_message(frame)
                try:
                    while not closed.is_set():
                        await ws.send_message(media)
                        await trio.sleep(0.02)
                    while True:
                        await ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    assert exc.reason.code == 1000
                t_closed = trio.current_time()
            shut_after = trio.current_time() - t_closed
    assert shut_after < 2, shut_after
