"""Whole calls over real sockets: hypercorn + the real session + the simulated Twilio caller."""
from __future__ import annotations

import json

import numpy as np
import pytest
import trio
import trio_websocket

from server.caller.call import PreparedAudio, PreparedBarge, PreparedHangup, PreparedWait
from server.caller.client import place_call

from .fakes import FakeWorld, tone
from .harness import admitted_ids, running_server

WAIT = PreparedWait(quiet_ms=600, timeout_s=10.0)


def say(ms: int, label: str) -> PreparedAudio:
    # a voice-like burst with a little lead-in silence
    return PreparedAudio("say", np.concatenate([np.zeros(400, np.int16), tone(ms, 220.0, 4000)]), label)


async def test_three_turn_call_with_a_barge_in() -> None:
    world = FakeWorld(["in haifa", "a flat", "two million"], turns=3, long_reply_on=2)
    steps = [
        WAIT,  # the greeting
        say(1200, "in haifa"), WAIT,
        say(1100, "a flat"),
        PreparedBarge(700, say(1200, "two million"), 10.0),  # talks over the long reply
        WAIT,  # the goodbye; then the agent hangs up
        PreparedAudio("silence", np.zeros(8000 * 5, np.int16)),
        PreparedHangup(),
    ]
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US"}) as (_, port):
        with trio.fail_after(40):
            outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps, subprotocols=["audio.twilio.com"])
        with trio.fail_after(5):
            while not world.results:
                await trio.sleep(0.01)
    call, figures = outcome.call, outcome.figures
    result = world.results[0]
    assert call.errors == [] and call.problems == []
    assert result.close_reason == "agent_hangup" and call.close_code == 1000
    assert result.protocol_errors == 0 and result.rejected_events == 0
    brain = world.brains[0]
    assert [t.text for t in brain.caller_turns] == ["in haifa", "a flat", "two million"]
    assert brain.caller_turns[2].interrupted_agent
    # The interrupted reply is recorded as not heard fully.
    assert any(not fully for _, fully in brain.heard_log)
    assert len(figures.turn_latency_ms) == 2 and figures.unanswered_turns == 0
    assert figures.barge_ins == 1 and len(call.clears) >= 1
    assert figures.halt_ms[0] < 1000 and figures.barge_ins_not_halted == 0
    assert result.metrics.barge_ins == 1 and result.metrics.turns == 3
    assert len(call.marks_echoed) >= 3


async def test_malformed_frames_do_not_crash_the_server() -> None:
    world = FakeWorld(["hello"], turns=1)
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US"}) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        ids = await admitted_ids(port)
        async with trio_websocket.open_websocket_url(url) as ws:
            sid = ids.stream_sid
            await ws.send_message(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            await ws.send_message(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": sid, "start": {
                "accountSid": ids.account_sid, "callSid": ids.call_sid, "streamSid": sid, "tracks": ["inbound"],
                "customParameters": ids.parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
            for junk in ("{", "[]", "null", '{"event": 5}', '{"event": "media", "media": {"payload": "!!"}}',
                         '{"event": "media", "streamSid": "%s", "media": {}}' % sid, '{"event": "warp"}',
                         '{"event": "mark"}', "\x00\xff", b"\x00binary"):
                await ws.send_message(junk)
            await ws.send_message(json.dumps({"event": "stop", "streamSid": sid, "stop": {"callSid": ids.call_sid}}))
            with trio.fail_after(5):
                try:
                    while True:
                        await ws.get_message()
                except trio_websocket.ConnectionClosed:
                    pass
        with trio.fail_after(5):
            while not world.results:
                await trio.sleep(0.01)
        # and the server still serves a new call
        async with trio_websocket.open_websocket_url(url) as ws2:
            await ws2.send_message(json.dumps({"event": "connected"}))
    result = world.results[0]
    assert result.close_reason == "twilio_stop"
    assert result.protocol_errors >= 5


async def test_caller_drops_mid_speech_and_the_call_winds_down() -> None:
    """The websocket goes away while the agent is talking: the session ends promptly, logs
    why, and the server keeps serving."""
    world = FakeWorld(["hello"], turns=5)
    world.synthesizer.ms_per_word = 600  # a long greeting: it is still playing when we drop
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US"}) as (_, port):
        url = f"ws://127.0.0.1:{port}/ws/twilio-media"
        steps = [PreparedAudio("silence", np.zeros(8000, np.int16)), PreparedHangup()]
        # The scope: trio-websocket's reader may sit on its full message queue (the agent
        # goes on sending media we never read), where it would never see the drop, and the
        # context's exit would wait for it forever (seen as a hung suite).
        with trio.fail_after(15), trio.CancelScope() as client:
            async with trio_websocket.open_websocket_url(url) as ws:
                from server.caller.call import SimulatedCall

                call = SimulatedCall(steps, await admitted_ids(port))
                for m in call.start_messages():
                    await ws.send_message(m)
                with trio.fail_after(5):
                    while '"media"' not in await ws.get_message():
                        pass
                dropped_at = trio.current_time()
                await ws._stream.aclose()  # no close frame: the line just drops
                client.cancel()
        with trio.fail_after(5):
            while not world.results:
                await trio.sleep(0.01)
        wound_down = trio.current_time() - dropped_at
        async with trio_websocket.open_websocket_url(url) as ws2:
            await ws2.send_message('{"event": "connected"}')
    result = world.results[0]
    assert result.close_reason in ("dropped", "remote_close")
    assert wound_down < 2.0
    assert result.frames_out > 0


async def test_line_noise_is_not_a_barge_in() -> None:
    """A hissy line (noise under everything from the first frame): the agent calibrates on it,
    answers every turn, and never stops for the noise."""
    from server.caller.call import PreparedLineNoise

    world = FakeWorld(["one", "two", "three"], turns=3)
    world.synthesizer.ms_per_word = 250  # replies long enough for noise to overlap them
    steps = [PreparedLineNoise(60.0), WAIT, say(1200, "one"), WAIT, say(1200, "two"), WAIT,
             say(1000, "three"), WAIT, PreparedAudio("silence", np.zeros(8000 * 3, np.int16)), PreparedHangup()]
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US"}) as (_, port):
        with trio.fail_after(40):
            outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps)
        with trio.fail_after(5):
            while not world.results:
                await trio.sleep(0.01)
    call, result = outcome.call, world.results[0]
    assert np.sqrt(np.mean(call.caller.data[:8000].astype(float) ** 2)) == pytest.approx(60, rel=0.15)
    assert call.errors == [] and call.problems == [] and call.clears == [] and result.metrics.barge_ins == 0
    assert [t.text for t in world.brains[0].caller_turns] == ["one", "two", "three"]
    assert result.close_reason == "agent_hangup"
