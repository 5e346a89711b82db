"""The phone line as the caller has it: Twilio's side of the media stream (the project's
TwilioEmulator) with a real caller microphone behind it.

Each inbound 20 ms frame is built as PCM and μ-law encoded (native codec):
    caller track (pre-rendered clips placed at times) + line noise + optional ECHO of what the
    caller heard (the agent audio this emulator actually played, cuts by `clear` included,
    fed back at ``gain_db`` after ``delay_ms``).
Frame ``n`` covers caller time [20n, 20n + 20) ms and leaves when it has been captured, at
20(n + 1) ms: stream time (what the session counts, 20 ms per frame) equals this clock.
Optional inbound BURSTS hold the frames produced in [at, at + hold) and deliver them in one
lump at at + hold (timestamps and sequence numbers unchanged), like a congested uplink.

It records what the caller lived: the clips placed (with their voice intervals), every agent
frame as played (start, end after cuts, payload) and the agent audio as one PCM timeline on
the emulator clock, clear times, when each inbound frame was delivered, when the line closed.
"""
from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass, field

import numpy as np
import trio

from native.codec import pcm16_to_ulaw, ulaw_to_pcm16
from native.config import SAMPLE_RATE

from tests.server.twilio_emulator import FRAME_S, Played, TwilioEmulator
from .voices import Clip, line_noise

FRAME_SAMPLES = 160
AGENT_LOUD_RMS = 200.0  # an agent frame (or 10 ms block) above this is audible


@dataclass(frozen=True, slots=True)
class Echo:
    gain_db: float = -20.0  # -15 .. -30 dB: what a speakerphone leaks back
    delay_ms: int = 120  # 60 .. 250 ms


@dataclass(slots=True)
class Placed:
    clip: Clip
    start: float  # emulator clock, s
    step: int = -1  # index of the script step that placed it
    confidence: float = 0.9  # what the ASR gives these words
    asr_text: str = ""  # what the ASR makes of a clip without words (a hallucination on a knock)

    @property
    def end(self) -> float:
        return self.start + self.clip.duration

    @property
    def voiced(self) -> list[tuple[float, float]]:
        return [(self.start + a, self.start + b) for a, b in self.clip.voiced]

    @property
    def words(self) -> list[tuple[str, float, float]]:
        return [(w, self.start + a, self.start + b) for w, a, b in self.clip.words]

    @property
    def voice_start(self) -> float:
        return self.start + self.clip.voiced_start

    @property
    def voice_end(self) -> float:
        return self.start + self.clip.voiced_end


@dataclass(slots=True)
class PlayedFrame:
    start: float
    end: float  # < start + 20 ms when a `clear` cut it
    ulaw: bytes
    rms: float


@dataclass(slots=True)
class LineRecord:
    """Everything the line saw, for the judge (plain data)."""

    placed: list[Placed] = field(default_factory=list)
    frames: list[PlayedFrame] = field(default_factory=list)
    heard: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int16))
    clears: list[float] = field(default_factory=list)
    lateness: list[tuple[float, float]] = field(default_factory=list)  # (capture end, delivered) when late
    closed_at: float | None = None
    closed_by: str = ""
    stop_sent_at: float | None = None


class CallerLine(TwilioEmulator):
    def __init__(
        self,
        *,
        snr_db: float | None = 30.0,
        echo: Echo | None = None,
        bursts: tuple[tuple[float, float], ...] = (),
        noise_seed: int = 3,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.noise = line_noise(snr_db, seed=noise_seed)
        self.echo = echo
        self.bursts = tuple(sorted(bursts))
        self.placed: list[Placed] = []
        self._heard = np.zeros(SAMPLE_RATE * 60, dtype=np.int16)
        self.frames_log: list[PlayedFrame] = []
        self.loud: list[PlayedFrame] = []  # the audible subset of frames_log (same objects)
        self.lateness: list[tuple[float, float]] = []
        self.closed_at: float | None = None
        self.stop_sent_at: float | None = None
        self.capture_n = 0  # frames captured so far (stream time = 20 ms * this)

    # -- the caller's side ---------------------------------------------------------------------

    def place(self, clip: Clip, at: float, step: int = -1, confidence: float = 0.9, asr_text: str = "") -> Placed:
        p = Placed(clip, max(at, 0.0), step, confidence, asr_text)
        self.placed.append(p)
        self.placed.sort(key=lambda q: q.start)
        self.voice.extend(p.voiced)  # the base emulator's list of caller voice intervals
        self.voice.sort()
        self._notify()
        return p

    def agent_audible_after(self, t: float) -> float | None:
        """Start of the first audible agent frame that plays at or after ``t`` (known as soon
        as the frame arrives, i.e. up to the pacer's lead before it plays)."""
        i = bisect.bisect_left(self.loud, t - 1e-9, key=lambda f: f.start)
        for f in self.loud[i:]:
            if f.end > f.start:
                return f.start
        return None

    def agent_loud_end(self) -> float:
        """End of the last audible agent frame (played or still queued at Twilio)."""
        for f in reversed(self.loud):
            if f.end > f.start:
                return f.end
        return 0.0

    def agent_audible_at(self, t: float) -> bool:
        for f in reversed(self.loud):
            if f.start <= t < f.end:
                return True
            if f.end < t - 0.5:
                return False
        return False

    def record(self) -> LineRecord:
        return LineRecord(
            placed=list(self.placed), frames=list(self.frames_log), heard=self.heard_pcm(),
            clears=list(self.report.clears), lateness=list(self.lateness), closed_at=self.closed_at,
            closed_by=self.link.closed_by, stop_sent_at=self.stop_sent_at,
        )

    def heard_pcm(self) -> np.ndarray:
        end = max((int(round(f.end * SAMPLE_RATE)) for f in self.frames_log), default=0)
        return self._heard[:end].copy()

    async def stop(self) -> None:
        self.stop_sent_at = self.now()
        await super().stop()

    # -- inbound: the microphone ---------------------------------------------------------------

    def _ensure(self, n: int) -> None:
        if n > len(self._heard):
            grown = np.zeros(max(n, 2 * len(self._heard)), dtype=np.int16)
            grown[: len(self._heard)] = self._heard
            self._heard = grown

    def _mix(self, n: int) -> bytes:
        s0 = n * FRAME_SAMPLES
        noise = self.noise
        i = s0 % len(noise)
        if i + FRAME_SAMPLES <= len(noise):
            buf = noise[i : i + FRAME_SAMPLES].copy()
        else:
            buf = np.concatenate([noise[i:], noise[: FRAME_SAMPLES - (len(noise) - i)]])
        for p in self.placed:
            a = int(round(p.start * SAMPLE_RATE))
            if a >= s0 + FRAME_SAMPLES:
                break
            pcm = p.clip.pcm
            if a + len(pcm) <= s0:
                continue
            lo, hi = max(s0, a), min(s0 + FRAME_SAMPLES, a + len(pcm))
            buf[lo - s0 : hi - s0] += pcm[lo - a : hi - a]
        if self.echo is not None:
            e0 = s0 - int(self.echo.delay_ms * SAMPLE_RATE / 1000)
            lo = max(e0, 0)
            hi = min(e0 + FRAME_SAMPLES, len(self._heard))
            if hi > lo:
                gain = 10 ** (self.echo.gain_db / 20.0)
                buf[lo - e0 : hi - e0] += gain * self._heard[lo:hi].astype(np.float32)
        return pcm16_to_ulaw(np.clip(buf, -32768, 32767).astype("<i2").tobytes())

    def _held_until(self, due: float) -> float | None:
        for at, hold in self.bursts:
            if at - 1e-9 <= due < at + hold - 1e-9:
                return at + hold
        return None

    async def _caller_audio(self) -> None:
        n = 0
        sid = self.stream_sid
        held: list[tuple[float, str]] = []
        while not self.link.closed:
            due = (n + 1) * FRAME_S  # frame n is sent once it has been captured
            await trio.sleep_until(self.t0 + due)
            payload = base64.b64encode(self._mix(n)).decode()
            self._seq += 1
            text = (
                '{"event":"media","sequenceNumber":"%d","streamSid":"%s","media":{"track":"inbound",'
                '"chunk":"%d","timestamp":"%d","payload":"%s"}}' % (self._seq, sid, n + 1, n * 20, payload)
            )
            n += 1
            self.capture_n = n
            if self._held_until(due) is not None:
                held.append((due, text))
                continue
            try:
                for held_due, held_text in held:
                    self._to_server.send_nowait(held_text)
                    self.lateness.append((held_due, due))
                    self.frames_sent += 1
                held.clear()
                self._to_server.send_nowait(text)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return
            self.frames_sent += 1

    # -- outbound: what the caller hears ---------------------------------------------------------

    def _loud(self, payload: bytes) -> bool:
        return False  # decided in _play, from the decoded frame (AGENT_LOUD_RMS)

    def _play(self, payload: bytes, now: float) -> Played:
        pcm = np.frombuffer(ulaw_to_pcm16(payload), dtype="<i2")
        rms = float(np.sqrt(np.mean(pcm.astype(np.float32) ** 2)))
        played = super()._play(payload, now)
        played.loud = loud = rms > AGENT_LOUD_RMS
        if loud:  # (the base class saw it as quiet: its segment bookkeeping is done here)
            if played.start - self._last_loud_end > 0.1:
                self.agent_segments.append(played.start)
            self._last_loud_end = played.end
        i0 = int(round(played.start * SAMPLE_RATE))
        self._ensure(i0 + FRAME_SAMPLES)
        self._heard[i0 : i0 + FRAME_SAMPLES] = pcm
        frame = PlayedFrame(played.start, played.end, payload, rms)
        self.frames_log.append(frame)
        if loud:
            self.loud.append(frame)
        return played

    def _closed(self) -> None:
        self.closed_at = self.now()

    def _clear(self, now: float) -> None:
        super()._clear(now)
        cut = int(round(now * SAMPLE_RATE))
        if cut < len(self._heard):
            self._heard[cut:] = 0
        for lst in (self.frames_log, self.loud):
            kept = [f for f in lst if f.start < now]
            for f in kept[-2:]:
                f.end = min(f.end, now)
            lst[:] = kept
