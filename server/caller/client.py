"""The trio-websocket shell around :class:`SimulatedCall`: real sockets, real time.

Caller frames go out on monotonic deadlines (``t0 + (k+1) * 20 ms``, never ``sleep(20ms)``
in a loop, so there is no drift); a receiver task feeds everything the server sends into
the playback model at the moment it arrives.
"""
from __future__ import annotations

import dataclasses
import functools
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
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


class CallRefused(Exception):
    """The server's TwiML did not connect a stream (busy, or the request was refused)."""


def twiml_url_for(ws_url: str) -> str:
    """ws://host:port/ws/twilio-media -> http://host:port/twiml (wss -> https)."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, "/twiml", "", ""))


def fetch_stream(twiml_url: str, ids: CallIds, auth_token: str | None = None,
                 signed_url: str | None = None, headers: dict[str, str] | None = None,
                 timeout_s: float = 10.0) -> tuple[str, dict[str, str]]:
    """What Twilio does when a call comes in: POST the call's parameters to the voice webhook
    (signed with ``auth_token`` over ``signed_url`` or ``twiml_url``) and read the TwiML's
    <Stream url> and its <Parameter>s (the websocket token among them). Blocking."""
    form = ids.webhook_params()
    hdrs = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
    if auth_token:
        from server.security import SignatureChecker

        hdrs["X-Twilio-Signature"] = SignatureChecker(auth_token).sign(signed_url or twiml_url, form)
    request = urllib.request.Request(twiml_url, data=urllib.parse.urlencode(form).encode(), headers=hdrs,
                                     method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310 - our own server
            body = resp.read()
    except urllib.error.HTTPError as exc:
        raise CallRefused(f"{twiml_url}: HTTP {exc.code}") from None
    stream = ET.fromstring(body).find("Connect/Stream")
    if stream is None:
        raise CallRefused(f"{twiml_url}: the TwiML connects no stream: {body[:300]!r}")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params


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
    twiml_url: str | None = None,
    fetch_twiml: bool = True,
    auth_token: str | None = None,
    signed_twiml_url: str | None = None,
    end_at_s: float | None = None,
) -> CallOutcome:
    """Like Twilio: fetch the call's TwiML (its stream token), connect, run the script in
    real time, hang up (or be hung up on). ``fetch_twiml=False`` skips the first step (the
    server will then refuse the stream: that is what the security tests want).
    ``end_at_s``: hang up at this call time, wherever the script is (see SimulatedCall)."""
    ids = ids or CallIds()
    if fetch_twiml and not ids.parameters:
        _, params = await trio.to_thread.run_sync(functools.partial(
            fetch_stream, twiml_url or twiml_url_for(url), ids, auth_token, signed_twiml_url))
        ids = dataclasses.replace(ids, parameters=params)
    call = SimulatedCall(steps, ids, on_event, end_at_s=end_at_s)
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
                    woke = trio.current_time()
                    call.tick_late_ms.append((woke - deadline) * 1000)
                    for out in call.tick(k, woke - t0):
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
