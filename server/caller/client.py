"""The trio-websocket shell around :class:`SimulatedCall`: real sockets, real time.

Caller frames go out on monotonic deadlines (``t0 + (k+1) * 20 ms``, never ``sleep(20ms)``
in a loop, so there is no drift); a receiver task feeds everything the server sends into
the playback model at the moment it arrives.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import trio
import trio_websocket

from native.config import FRAME_MS
from server.caller import script as sc
from server.caller.analysis import CallerFigures, analyse
from server.caller.audio import load_wav, noise
from server.caller.call import (
    CallIds, Prepared, PreparedAudio, PreparedBarge, PreparedHangup, PreparedLineNoise, PreparedWait,
    SimulatedCall,
)

Render = Callable[[str, str], bytes]  # (text, language) -> 8 kHz PCM16


def _espeak(text: str, language: str) -> bytes:
    from speech.espeak import render

    return render(text, language)


def prepare(steps: list[sc.Step], render: Render = _espeak) -> list[Prepared]:
    """Make all caller audio before the call (blocking), so the real-time loop only sends."""

    @functools.lru_cache(maxsize=None)
    def speech(text: str, language: str) -> np.ndarray:
        return np.frombuffer(render(text, language), dtype="<i2").copy()

    out: list[Prepared] = []
    for step in steps:
        if isinstance(step, sc.Say):
            out.append(PreparedAudio("say", speech(step.text, step.language), step.text))
        elif isinstance(step, sc.Wav):
            out.append(PreparedAudio("wav", load_wav(step.path), Path(step.path).name))
        elif isinstance(step, sc.Silence):
            out.append(PreparedAudio("silence", np.zeros(step.ms * 8, dtype=np.int16)))
        elif isinstance(step, sc.Noise):
            out.append(PreparedAudio("noise", noise(step.rms, step.ms)))
        elif isinstance(step, sc.WaitAgent):
            out.append(PreparedWait(step.quiet_ms, step.timeout_s))
        elif isinstance(step, sc.Barge):
            out.append(PreparedBarge(step.after_ms, PreparedAudio("say", speech(step.text, step.language), step.text), step.timeout_s))
        elif isinstance(step, sc.LineNoise):
            out.append(PreparedLineNoise(step.rms))
        elif isinstance(step, sc.Hangup):
            out.append(PreparedHangup())
    return out


@dataclass(slots=True)
class CallOutcome:
    call: SimulatedCall
    figures: CallerFigures


async def place_call(
    url: str,
    steps: list[Prepared],
    *,
    ids: CallIds | None = None,
    subprotocols: list[str] | None = None,
    headers: list[tuple[str, str]] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    max_duration_s: float = 1800.0,
    linger_s: float = 2.0,
) -> CallOutcome:
    """Connect like Twilio, run the script in real time, hang up (or be hung up on)."""
    call = SimulatedCall(steps, ids, on_event)
    async with trio_websocket.open_websocket_url(
        url, subprotocols=subprotocols or [], extra_headers=headers or [], message_queue_size=256,
    ) as ws:
        t0 = trio.current_time()
        for msg in call.start_messages():
            await ws.send_message(msg)

        server_gone = trio.Event()

        def closed(exc: trio_websocket.ConnectionClosed, cancel: trio.CancelScope) -> None:
            server_gone.set()
            reason = exc.reason
            if call.close_code is None:
                call.server_closed(
                    trio.current_time() - t0,
                    getattr(reason, "code", None), getattr(reason, "reason", None) or "",
                )
            cancel.cancel()

        async def receiver(cancel: trio.CancelScope) -> None:
            try:
                while True:
                    text = await ws.get_message()
                    now = trio.current_time() - t0
                    if isinstance(text, bytes):
                        text = text.decode("utf-8", errors="replace")
                    for out in call.on_message(now, text):
                        await ws.send_message(out)
            except trio_websocket.ConnectionClosed as exc:
                closed(exc, cancel)

        async def ticker(cancel: trio.CancelScope) -> None:
            k = 0
            try:
                while not call.done:
                    deadline = t0 + (k + 1) * FRAME_MS / 1000
                    await trio.sleep_until(deadline)
                    for out in call.tick(k, trio.current_time() - t0):
                        await ws.send_message(out)
                    k += 1
                    if k * FRAME_MS / 1000 > max_duration_s:
                        call.error(k * FRAME_MS / 1000, f"call exceeded {max_duration_s:g} s", protocol=False)
                        call.done = True
                # After our `stop` the server closes its side (that close is part of the
                # record); the websocket context closes ours if it takes too long.
                with trio.move_on_after(linger_s):
                    await server_gone.wait()
            except trio_websocket.ConnectionClosed as exc:
                closed(exc, cancel)
                return
            cancel.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receiver, nursery.cancel_scope)
            nursery.start_soon(ticker, nursery.cancel_scope)
    return CallOutcome(call, analyse(call))
