"""The outbound side of a call: one 20 ms `media` per 20 ms, marks at exact frame positions,
and the keepalive while nothing plays.

Timing model: ``play_end`` is our estimate of when Twilio finishes playing what we sent. It
advances by exactly 20 ms per frame from an anchor (``anchor + n * 20 ms``: no sleep drift,
however late a wake-up is), and frame ``n`` is sent at ``play_end - lead``, so at most
``pacer_lead_ms`` of audio is ever queued at Twilio ahead of what is playing: enough to ride
out network jitter, little enough that a lost `clear` leaves almost nothing to hear. When the
queue runs dry (TTS slower than real time, or silence between replies) Twilio's buffer
drains too, and the next frame re-anchors the clock at "now".

Producers (the session's reply task) write PCM16 into the native :class:`Framer` through
:meth:`Pacer.write_pcm16` and place cues (a `mark` to send, or a local callback) after the
frames queued so far. :meth:`Pacer.clear` (barge-in) drops queued frames and cues and bumps
``epoch``: a producer that still holds the old epoch can no longer write, even if it runs
one more step before its cancellation lands.
"""
from __future__ import annotations

import bisect
import math
from typing import Awaitable, Callable

import trio

from telemetry import metrics
from native.config import FRAME_MS, FRAME_ULAW_BYTES, TimingConfig
from native.framer import Framer
from server.frame_tick import MIN_LEAD_S, FrameTick
from server.keepalive import Keepalive
from server.twilio_codec import TwilioFrames

FRAME_S = FRAME_MS / 1000.0
Send = Callable[[str], Awaitable[None]]
Cue = Callable[[float], None]  # called with the monotonic time the preceding frame was sent
# Called for every media frame as it goes out: (monotonic time it starts playing, the μ-law
# frame). The buffer is reused: read it before returning.
FrameHook = Callable[[float, bytearray], None]
# Send one text frame now if the socket takes it; False: it was queued, await ``drain()``.
SendNowait = Callable[[str], bool]


class Pacer:
    def __init__(
        self,
        config: TimingConfig,
        send: Send,
        frames: TwilioFrames,
        on_heartbeat: Callable[[str, bool], None] | None = None,
        capacity_frames: int = 1500,
        on_frame: FrameHook | None = None,
        send_nowait: SendNowait | None = None,
        drain: Callable[[], Awaitable[None]] | None = None,
        tick: FrameTick | None = None,
    ) -> None:
        self.config = config
        self._send = send
        # With a transport that can send without blocking, steady frames go out in the
        # shared tick's pass (server.frame_tick) instead of one timer per frame here.
        self._send_nowait = send_nowait
        self._drain = drain
        use_tick = tick is not None and send_nowait is not None and drain is not None
        self._tick = tick if use_tick and config.pacer_lead_ms / 1000.0 >= MIN_LEAD_S else None
        self._drain_needed = False
        self.tick_due = 0.0
        self._frames = frames
        self._on_heartbeat = on_heartbeat
        self._on_frame = on_frame
        self.held = False  # the start of queued audio waits (the caller's voice is on)
        self._lead_s = config.pacer_lead_ms / 1000.0
        self.framer = Framer(capacity_frames)
        self._out = bytearray(FRAME_ULAW_BYTES)
        # (position, mark name or None, callback or None): fires once frames_sent >= position
        # Kept sorted by position (stable): a cue placed before a reply's first frame and a
        # mark of a sentence that produced no audio may share or invert positions.
        self._cues: list[tuple[int, str | None, Cue | None]] = []
        self._wake = trio.Event()
        self._space = trio.Event()
        self._anchor: float | None = None
        self._n = 0
        self.epoch = 0
        self.frames_sent = 0
        self.marks_sent = 0
        self.heartbeats = 0
        self.keepalive = Keepalive(config, trio.current_time())
        self._idle_silence = b"\xff" * (config.idle_silence_ms // FRAME_MS * FRAME_ULAW_BYTES)

    # -- producer side -------------------------------------------------------------------------

    @property
    def position(self) -> int:
        """Frame count at the end of what is queued (partial frame included once flushed)."""
        return self.frames_sent + self.framer.frames

    @property
    def play_end(self) -> float | None:
        """When Twilio should finish playing what was sent (None: nothing queued there)."""
        return None if self._anchor is None else self._anchor + self._n * FRAME_S

    def _playing(self, now: float) -> bool:
        return self._anchor is not None and self._anchor + self._n * FRAME_S > now

    def played_position(self, now: float) -> int:
        """Frames Twilio has played by ``now``: sent minus what is still queued there."""
        if self._anchor is None:
            return self.frames_sent
        queued = math.ceil((self._anchor + self._n * FRAME_S - now) / FRAME_S - 1e-9)
        return self.frames_sent - max(0, queued)

    async def write_pcm16(self, pcm: bytes, epoch: int) -> bool:
        """Queue PCM16 audio; waits while the framer is full. False once ``epoch`` is stale."""
        view = memoryview(pcm)
        while len(view):
            if epoch != self.epoch:
                return False
            room = self.framer.free_bytes * 2
            if room < 2:
                self._space = trio.Event()
                await self._space.wait()
                continue
            part = view[:room]
            self.framer.write_pcm16(part)
            view = view[len(part):]
            self._wake.set()
        return epoch == self.epoch

    def hold(self, on: bool) -> None:
        """Hold (or release) what is queued: nothing new starts playing while held. Meant for
        the moments before a reply is audible; audio already playing has no gap to wait for."""
        if on != self.held:
            self.held = on
            self._wake.set()

    async def write_silence(self, ms: int, epoch: int) -> bool:
        return await self.write_pcm16(bytes(ms * 16), epoch)

    def cue(self, epoch: int, mark: str | None = None, callback: Cue | None = None, after_frames: int = 0) -> bool:
        """After the frames queued so far (plus ``after_frames`` more), send ``mark`` and/or call
        ``callback``. The partial tail frame is flushed first, so the cue sits on a frame edge."""
        if epoch != self.epoch:
            return False
        self.framer.flush()
        position = self.position + after_frames
        at = bisect.bisect_right(self._cues, position, key=lambda c: c[0])
        self._cues.insert(at, (position, mark, callback))
        self._wake.set()
        return True

    def clear(self) -> list[str]:
        """Barge-in: drop queued audio and cues; returns the names of marks never sent.

        Synchronous on purpose: called in the same scheduler tick as the detector trigger,
        so no frame of the old reply can be read after it."""
        self.framer.clear()
        dropped = [name for _, name, _ in self._cues if name]
        self._cues.clear()
        self.epoch += 1
        self._anchor = None  # Twilio's buffer is emptied by the `clear` that follows
        self._space.set()
        return dropped

    # -- the task ------------------------------------------------------------------------------

    async def run(self) -> None:
        out = self._out
        while True:
            if self._drain_needed:  # the tick's last frame is still (partly) in the transport's buffer
                self._drain_needed = False
                assert self._drain is not None
                await self._drain()
            cue = self._next_cue()
            if cue is not None:
                name, callback, epoch = cue
                if name is not None:
                    await self._send(self._frames.mark(name))
                    self.marks_sent += 1
                self._call_back(callback, epoch, trio.current_time())
                continue
            if self.framer.frames == 0 or (self.held and not self._playing(trio.current_time())):
                await self._idle()
                continue
            now = trio.current_time()
            if self._anchor is None or self._anchor + self._n * FRAME_S < now:
                self._anchor, self._n = now, 0  # Twilio ran dry: playback restarts on arrival
            due = self._anchor + self._n * FRAME_S - self._lead_s
            # The lead's burst at a reply's start goes at once; every later frame goes in the
            # tick, at its slot, even one the task finds overdue (after a short underrun of
            # the framer): frames keep one phase, 20 ms apart, unless really late.
            if self._tick is not None and due > self._anchor and self._tick.slot(due) > now:
                await self._tick.park(self, due)  # back when the steady state ends
                continue
            if due > now:
                await trio.sleep_until(due)
            # else: a frame of the lead's burst (at most ~lead / 20 ms of them: an anchor in the
            # past is reset above) goes without a trip through the scheduler for each
            if not self.framer.read_frame(out):
                continue  # cleared while we slept
            self._space.set()
            if self._anchor is None:  # cleared and refilled while we slept
                self._anchor, self._n = trio.current_time(), 0
            # Counted before the send awaits: a frame read from the framer is no longer in
            # ``framer.frames``, and cue positions must not slip by it.
            self._n += 1
            self.frames_sent += 1
            if self._on_frame is not None:
                self._on_frame(self._anchor + (self._n - 1) * FRAME_S, out)
            await self._send(self._frames.media(out))
            self.keepalive.media_sent(trio.current_time())

    def tick_send(self, now: float) -> float | None:
        """The shared tick's pass: send the frames due by ``now`` and the cues (marks,
        callbacks) between them, exactly as :meth:`run` would. Returns the next frame's due
        time, or None when :meth:`run` must look (an empty or held queue, Twilio run dry, a
        send the kernel did not take at once)."""
        send = self._send_nowait
        assert send is not None
        out = self._out
        framer = self.framer
        while True:
            while (cue := self._next_cue()) is not None:
                name, callback, epoch = cue
                taken = True
                if name is not None:
                    taken = send(self._frames.mark(name))
                    self.marks_sent += 1
                self._call_back(callback, epoch, now)
                if not taken:  # queued behind what the kernel did not take: the task drains it
                    self._drain_needed = True
                    return None
            if framer.frames == 0 or (self.held and not self._playing(now)):
                return None
            anchor = self._anchor
            if anchor is None or anchor + self._n * FRAME_S < now:
                return None
            due = anchor + self._n * FRAME_S - self._lead_s
            if due > now:
                return due
            if not framer.read_frame(out):
                return None
            self._space.set()
            self._n += 1
            self.frames_sent += 1
            if self._on_frame is not None:
                self._on_frame(anchor + (self._n - 1) * FRAME_S, out)
            sent = send(self._frames.media(out))
            self.keepalive.media_sent(now)
            if not sent:
                self._drain_needed = True
                return None

    # The cues' one order, for the task (awaiting each mark's send) and the tick's pass (sending
    # it at once): each in turn once its frames are all out; its mark first, then its callback —
    # unless a `clear` came in between (the epoch moved on).
    def _next_cue(self) -> tuple[str | None, Cue | None, int] | None:
        """Take the next cue whose frames have all been sent: (mark, callback, current epoch)."""
        cues = self._cues
        if cues and cues[0][0] <= self.frames_sent:
            _, name, callback = cues.pop(0)
            return name, callback, self.epoch
        return None

    def _call_back(self, callback: Cue | None, epoch: int, now: float) -> None:
        if callback is not None and epoch == self.epoch:
            callback(now)

    async def _idle(self) -> None:
        self._wake = trio.Event()
        with trio.move_on_at(self.keepalive.next_due()):
            await self._wake.wait()
            return
        beat, silence = self.keepalive.due(trio.current_time())
        if silence and self.framer.frames:
            silence = False  # a held reply is queued: it, not filler, goes out next
        if silence:
            self.framer.write_ulaw(self._idle_silence)
            # Cues still pending here sit after frames not written yet (e.g. a reply's "first
            # frame" cue while the brain thinks): they belong to audio that will now follow
            # the silence, so they move past it instead of firing on it.
            n = len(self._idle_silence) // FRAME_ULAW_BYTES
            self._cues = [(position + n, mark, callback) for position, mark, callback in self._cues]
        if beat:
            self.heartbeats += 1
            name = f"hb{self.heartbeats}"
            if silence:  # the mark goes after the silence, like any mark after audio
                self._cues.insert(0, (self.frames_sent + self.framer.frames, name, None))
            else:
                await self._send(self._frames.mark(name))
            metrics.heartbeats_total.inc()
            if self._on_heartbeat is not None:
                self._on_heartbeat(name, silence)
