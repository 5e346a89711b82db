"""Twilio's side of a media stream, in memory, for session tests in virtual time.

It does what twilio.md says Twilio does: `connected`, `start`, caller audio as `media` every
20 ms on deadlines, a playback buffer fed by our `media` and played at 8000 samples/s, marks
echoed when playback reaches them, `clear` empties the buffer and returns pending marks,
`stop`, or a dropped socket. It also measures from the caller's side: what was heard when,
mark echoes, clears, heartbeats.
"""
from __future__ import annotations

import base64
import json
import math
import random
import struct
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import trio

from native.codec import pcm16_to_ulaw, ulaw_rms
from server.transport import TransportClosed

FRAME_S = 0.02


@dataclass
class Link:
    closed: bool = False
    code: int = 1000
    reason: str = ""
    closed_by: str = ""

    def close(self, code: int, reason: str, by: str) -> None:
        if not self.closed:
            self.closed, self.code, self.reason, self.closed_by = True, code, reason, by


class MemoryTransport:
    """The server's end of the in-memory websocket (satisfies server.transport.Transport)."""

    def __init__(self, inbound: trio.MemoryReceiveChannel[str], outbound: trio.MemorySendChannel[str], link: Link):
        self._in = inbound
        self._out = outbound
        self.link = link
        self.sent = 0
        self.media_sent_at: list[float] = []

    async def receive(self) -> str:
        if self.link.closed:
            raise TransportClosed(self.link.code, self.link.reason)
        try:
            return await self._in.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise TransportClosed(self.link.code, self.link.reason) from None

    async def send(self, text: str) -> None:
        if text.startswith('{"event":"media"'):
            self.media_sent_at.append(trio.current_time())  # when our engine put it on the wire
        await trio.lowlevel.checkpoint()
        if self.link.closed:
            raise TransportClosed(self.link.code, self.link.reason)
        self.sent += 1
        self._out.send_nowait(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.link.close(code, reason, "server")
        self._out.close()


def _frame(samples: list[int]) -> str:
    return base64.b64encode(pcm16_to_ulaw(struct.pack("<160h", *samples))).decode()


@dataclass
class Played:
    start: float
    end: float
    loud: bool


@dataclass
class EmulatorReport:
    heard: list[tuple[float, float]] = field(default_factory=list)  # agent audio intervals as played
    marks: list[tuple[float, str]] = field(default_factory=list)  # echoes sent back (time, name)
    clears: list[float] = field(default_factory=list)
    media_rx: list[float] = field(default_factory=list)  # arrival time of each agent media frame
    ahead_ms: list[float] = field(default_factory=list)  # queued at Twilio after each arrival


class TwilioEmulator:
    def __init__(
        self,
        call_sid: str = "CA0001",
        stream_sid: str = "MZ0001",
        from_number: str = "+972501234567",
        echo_mark: Callable[[str], bool] = lambda name: True,
        voice_amplitude: int = 3000,
        noise_amplitude: int = 20,
        payload_bytes: int = 160,
        account_sid: str = "AC1",
    ) -> None:
        self.call_sid, self.stream_sid, self.from_number = call_sid, stream_sid, from_number
        self.account_sid = account_sid
        # Over a real socket the server admits a `start` only with the parameters (and the
        # websocket token) of the call's TwiML: set these from it (see server.caller.client).
        self.custom_parameters: dict[str, str] | None = None
        self.echo_mark = echo_mark
        self.payload_bytes = payload_bytes
        to_server_send, to_server_recv = trio.open_memory_channel[str](math.inf)
        to_emu_send, to_emu_recv = trio.open_memory_channel[str](math.inf)
        self.link = Link()
        self.transport = MemoryTransport(to_server_recv, to_emu_send, self.link)
        self._to_server = to_server_send
        self._from_server = to_emu_recv
        rng = random.Random(7)
        self._noise = [_frame([rng.randint(-noise_amplitude, noise_amplitude) for _ in range(160)]) for _ in range(8)]
        self._voice = [
            _frame([int(voice_amplitude * math.sin(2 * math.pi * 300 * (k * 160 + i) / 8000)) for i in range(160)])
            for k in range(8)
        ]
        self.voice: list[tuple[float, float]] = []  # caller talks in [start, end) (emulator clock)
        self.played: list[Played] = []
        self.play_end = 0.0
        self._pending_marks: list[tuple[float, str]] = []
        self.report = EmulatorReport()
        self.t0 = 0.0
        self._seq = 0
        self._changed = trio.Event()
        self._mark_wake = trio.Event()
        self.agent_segments: list[float] = []  # start times of agent speech (after >= 100 ms gap)
        self._last_loud_end = -1.0
        self.frames_sent = 0
        self.extra: list[str] = []  # raw frames to inject before the next media (malformed tests)

    # -- what scripts use ------------------------------------------------------------------------

    def now(self) -> float:
        return trio.current_time() - self.t0

    def say(self, duration_s: float, at: float | None = None) -> tuple[float, float]:
        start = self.now() if at is None else at
        self.voice.append((start, start + duration_s))
        self.voice.sort()
        return start, start + duration_s

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self._changed.wait()

    async def wait_marks(self, suffix: str, count: int) -> float:
        await self.wait_until(lambda: sum(1 for _, n in self.report.marks if n.endswith(suffix)) >= count)
        return [t for t, n in self.report.marks if n.endswith(suffix)][count - 1]

    async def wait_agent_speech(self, count: int) -> float:
        """Start (emulator clock) of the count-th agent speech segment."""
        await self.wait_until(lambda: len(self.agent_segments) >= count)
        return self.agent_segments[count - 1]

    async def sleep_until(self, t: float) -> None:
        await trio.sleep_until(self.t0 + t)

    async def send_raw(self, text: str) -> None:
        self._seq += 1
        await self._to_server.send(text)

    async def stop(self) -> None:
        self._seq += 1
        await self._to_server.send(json.dumps({
            "event": "stop", "sequenceNumber": str(self._seq), "streamSid": self.stream_sid,
            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
        }))

    def drop(self, code: int = 1006) -> None:
        self.link.close(code, "link dropped", "twilio")
        self._to_server.close()

    def heard_intervals(self) -> list[tuple[float, float]]:
        """Agent audio as the caller heard it: loud frames merged into intervals."""
        out: list[list[float]] = []
        for p in self.played:
            if not p.loud or p.end <= p.start:
                continue
            if out and p.start - out[-1][1] < 1e-6:
                out[-1][1] = p.end
            else:
                out.append([p.start, p.end])
        return [(a, b) for a, b in out]

    # -- the far end ---------------------------------------------------------------------------

    async def run(self, script: Callable[["TwilioEmulator"], Awaitable[None]], stop_at_end: bool = True) -> None:
        self.t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            await self._to_server.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
            self._seq = 1
            await self._to_server.send(json.dumps({
                "event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
                "start": {
                    "accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.custom_parameters or {"from": self.from_number, "to": "+97231234567"},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
            }))
            nursery.start_soon(self._caller_audio)
            nursery.start_soon(self._receive)
            nursery.start_soon(self._echo_marks)
            try:
                await script(self)
                if stop_at_end and not self.link.closed:
                    await self.stop()
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
            # keep playing / echoing until the server closes
            await self.wait_until(lambda: self.link.closed)
            nursery.cancel_scope.cancel()

    def _voice_at(self, t: float) -> bool:
        for a, b in self.voice:
            if a <= t < b:
                return True
        return False

    async def _caller_audio(self) -> None:
        n = 0
        sid = self.stream_sid
        while not self.link.closed:
            await trio.sleep_until(self.t0 + n * FRAME_S)
            while self.extra:
                await self._to_server.send(self.extra.pop(0))
            t = n * FRAME_S
            payload = (self._voice if self._voice_at(t) else self._noise)[n % 8]
            if self.payload_bytes != 160:
                raw = base64.b64decode(payload) * 2
                payload = base64.b64encode(raw[: self.payload_bytes]).decode()
            self._seq += 1
            try:
                self._to_server.send_nowait(
                    '{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound",'
                    '"chunk":"%d","timestamp":"%d","payload":"%s"}}' % (self._seq, sid, n + 1, n * 20, payload)
                )
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return
            self.frames_sent += 1
            n += 1

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _receive(self) -> None:
        async for text in self._from_server:
            now = self.now()
            msg = json.loads(text)
            event = msg["event"]
            assert msg["streamSid"] == self.stream_sid
            if event == "media":
                payload = base64.b64decode(msg["media"]["payload"], validate=True)
                assert len(payload) == 160
                self._play(payload, now)
            elif event == "mark":
                self._pending_marks.append((max(now, self.play_end), msg["mark"]["name"]))
                self._mark_wake.set()
            elif event == "clear":
                self._clear(now)
                pending, self._pending_marks = self._pending_marks, []
                for _, name in pending:  # Twilio returns marks a clear dropped
                    await self._echo(name)
            else:
                raise AssertionError(f"unexpected frame from server: {text[:200]}")
            self._notify()
        self._closed()
        self.link.close(self.link.code if self.link.closed else 1000, "", "server")
        self._notify()

    def _play(self, payload: bytes, now: float) -> Played:
        """One of our `media` frames: queued behind what is playing, played at 8000 samples/s."""
        start = max(now, self.play_end)
        end = start + FRAME_S
        loud = self._loud(payload)
        played = Played(start, end, loud)
        self.played.append(played)
        self.play_end = end
        self.report.media_rx.append(now)
        self.report.ahead_ms.append((self.play_end - now) * 1000.0)
        if loud:
            if start - self._last_loud_end > 0.1:
                self.agent_segments.append(start)
            self._last_loud_end = end
        return played

    def _loud(self, payload: bytes) -> bool:
        return ulaw_rms(payload) > 300

    def _clear(self, now: float) -> None:
        """`clear`: what was queued and not yet played is gone."""
        self.report.clears.append(now)
        kept: list[Played] = []
        for p in self.played:
            if p.start >= now:
                continue
            if p.end > now:
                p.end = now
            kept.append(p)
        self.played = kept
        self.play_end = now
        self._last_loud_end = min(self._last_loud_end, now)

    def _closed(self) -> None:
        """The server closed the socket (a hook for subclasses)."""

    async def _echo(self, name: str) -> None:
        if not self.echo_mark(name) or self.link.closed:
            return
        self._seq += 1
        self.report.marks.append((self.now(), name))
        try:
            await self._to_server.send(json.dumps({
                "event": "mark", "sequenceNumber": str(self._seq), "streamSid": self.stream_sid,
                "mark": {"name": name},
            }))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        self._notify()

    async def _echo_marks(self) -> None:
        while True:
            if not self._pending_marks:
                self._mark_wake = trio.Event()
                await self._mark_wake.wait()
                continue
            due, name = self._pending_marks[0]
            with trio.move_on_at(self.t0 + due):
                self._mark_wake = trio.Event()
                await self._mark_wake.wait()  # a clear may have emptied the queue meanwhile
                continue
            if self._pending_marks and self._pending_marks[0] == (due, name):
                self._pending_marks.pop(0)
                await self._echo(name)
