"""The user's definition of done, in real time (`make soak`; minutes set by SOAK_MINUTES,
default 15): one continuous call over real sockets with no websocket or protocol error, a
heartbeat every 15-20 s whenever the agent is quiet, the idle guard's silence after 60 s
without outbound media, and every caller turn answered."""
from __future__ import annotations

import os

import numpy as np
import pytest
import trio

from server.caller.call import PreparedAudio, PreparedHangup, PreparedWait
from server.caller.client import place_call

from .fakes import FakeWorld, tone
from .harness import running_server


def _script(minutes: float) -> list:
    steps: list = [PreparedWait(600, 15.0)]
    t, k = 5.0, 0
    while t < minutes * 60 - 40:  # the last cycle may run up to ~70 s past this
        quiet_s = 65 if k % 4 == 3 else 25  # every 4th pause is long enough for the idle guard
        steps += [
            PreparedAudio("say", np.concatenate([np.zeros(300, np.int16), tone(1500, 220.0, 4000)]), f"turn {k}"),
            PreparedWait(600, 15.0),
            PreparedAudio("silence", np.zeros(quiet_s * 8000, np.int16)),
        ]
        t += 5 + quiet_s
        k += 1
    return steps + [PreparedHangup()]


@pytest.mark.soak
async def test_long_call_keeps_the_line_alive() -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "15"))
    world = FakeWorld(["okay"] * 10_000, turns=10**9)
    steps = _script(minutes)
    async with running_server(world.wiring, {"AGENT_LANGUAGE": "en-US"}) as (_, port):
        with trio.fail_after(minutes * 60 + 120):
            outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps)
        with trio.fail_after(10):
            while not world.results:
                await trio.sleep(0.05)
    call, fig, result = outcome.call, outcome.figures, world.results[0]
    turns = sum(1 for s in steps if isinstance(s, PreparedAudio) and s.kind == "say")
    print(f"\nsoak: {call.duration:.0f} s, {turns} turns, heartbeats {fig.keepalive_intervals_s}, "
          f"longest server silence {fig.longest_server_silence_s:.1f} s, jitter p99 "
          f"{np.percentile(fig.media_jitter_ms, 99) if fig.media_jitter_ms else 0:.2f} ms")
    assert call.errors == [] and call.problems == [] and result.protocol_errors == 0
    assert result.close_reason == "twilio_stop" and call.close_code == 1000
    assert fig.unanswered_turns == 0 and len(fig.turn_latency_ms) == turns
    assert fig.keepalive_intervals_s and all(15.0 <= s <= 20.5 for s in fig.keepalive_intervals_s)
    assert fig.longest_server_silence_s <= 20.5
    assert result.metrics.heartbeats >= len(fig.keepalive_intervals_s)
    # idle guard: never more than ~60 s without some outbound media (silence counts)
    media = [rx.t for rx in call.rx if rx.kind == "media"]
    longest_media_gap = max(b - a for a, b in zip(media, media[1:]))
    print(f"soak: longest gap between agent media frames {longest_media_gap:.1f} s")
    assert longest_media_gap <= 61.0
