"""Call recordings and live listen-in: :class:`CallTape`, one per call.

Both sides of a call are kept as μ-law at 8 kHz on one time axis, the call's clock (ms since
the session began, the axis of the transcript and the timeline): the caller's frames where
they were spoken (stream time, shifted once by the first frame's arrival), the agent's
frames where the pacer says they start playing at the caller (``Pacer`` ``on_frame``: the
monotonic time, so a greeting before any caller audio has its place too), and a
barge-in's `clear` cuts the agent's side at the moment the caller stopped hearing it (what
was sent but cleared at Twilio never played, so it is not in the recording).

Hot path (two taps per 20 ms): a 160-byte slice copy into a bytearray, no decode, no
allocation beyond the buffer's amortised growth; when someone listens in, one more copy per
frame into each listener's bounded queue. Everything else is off the event loop: every
``FLUSH_S`` the call's ``run`` task hands the audio older than ``MARGIN_MS`` (a cut can only
fall later than that) to a worker thread that decodes it and appends it to
``RECORDINGS_DIR/<CallSid>.flac.part`` through libsndfile (``soundfile``); at the end the
rest is written, the file closed and renamed to ``<CallSid>.flac`` — a recording that exists
is complete. Stereo: left the caller, right the agent.

Listen-in: :class:`LiveCalls` maps a live CallSid to its tape; a :class:`Listener` (one
browser) gets the frames through a ``deque(maxlen=...)``: when the browser is slow the
oldest audio is dropped, the call never waits.
"""
from __future__ import annotations

import json
import logging
import os
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trio

from native.codec import ulaw_to_pcm16
from telemetry.logs import log_event

RATE = 8000
SAMPLES_PER_MS = RATE // 1000
ULAW_SILENCE = 0xFF
FLUSH_S = 5.0  # audio goes to the encoder thread this often
MARGIN_MS = 1000  # audio this close to "now" stays in memory: a barge-in cut may still reach it
ENCODER_THREADS = 2  # per process: encoding is a few ms per 5 s of a call
MAX_GAP = 60 * RATE  # see CallTape._put
LISTEN_QUEUE = 100  # records (frames or lines) per listener: ~1 s of both sides
SUFFIX = ".flac"
CONTENT_TYPE = "audio/flac"
# one binary record of listen-in audio: channel (0 caller, 1 agent), sample position, length
RECORD = struct.Struct("<BIH")

DEFAULT_NOTICE = {
    "he": "שימו לב, השיחה מוקלטת לצורך שיפור השירות.",
    "en": "Please note, this call is recorded to improve our service.",
}
NOTICE_ON = ("1", "on", "yes", "true", "default")


def notice_text(setting: str | None, language: str) -> str | None:
    """RECORDING_NOTICE: unset/off → no notice; 1/on/default → the default line in the agent's
    language; anything else is the line itself."""
    if setting is None or setting.strip().lower() in ("", "0", "off", "no", "false"):
        return None
    if setting.strip().lower() in NOTICE_ON:
        return DEFAULT_NOTICE["he" if language.startswith(("he", "iw")) else "en"]
    return setting.strip()


@dataclass
class Recordings:
    """Where and how long recordings are kept (RECORDINGS_DIR, RECORDINGS_DAYS)."""

    directory: Path
    days: float = 30.0
    limiter: trio.CapacityLimiter | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)

    def path(self, call_sid: str) -> Path:
        return self.directory / f"{call_sid}{SUFFIX}"

    def existing(self, call_sid: str) -> Path | None:
        """The finished recording of ``call_sid`` (the SID is checked by the caller)."""
        path = self.path(call_sid)
        return path if path.is_file() else None

    def thread_limiter(self) -> trio.CapacityLimiter:
        if self.limiter is None:  # made in the event loop's thread, on first use
            self.limiter = trio.CapacityLimiter(ENCODER_THREADS)
        return self.limiter

    def prune(self, now: float | None = None) -> int:
        """Delete recordings (and leftover parts) older than ``days``; returns how many."""
        cutoff = (time.time() if now is None else now) - self.days * 86400.0
        removed = 0
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not (entry.name.endswith(SUFFIX) or entry.name.endswith(SUFFIX + ".part")):
                continue
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    async def retention_task(self, every_s: float = 3600.0) -> None:
        """The app's background task: prune now and then (RECORDINGS_DAYS)."""
        while True:
            removed = await trio.to_thread.run_sync(self.prune)
            if removed:
                log_event("RECORDING", pruned=removed, days=self.days, directory=str(self.directory))
            await trio.sleep(every_s)


class Listener:
    """One browser listening in: a bounded queue, oldest dropped first."""

    def __init__(self, maxlen: int = LISTEN_QUEUE, audio: bool = True) -> None:
        self.audio = audio  # False: the lines only (the browser test call's transcript)
        self.queue: deque[tuple[int, int, bytes] | str] = deque(maxlen=maxlen)
        self.wake = trio.Event()
        self.dropped = 0
        self.ended = False

    def put(self, item: tuple[int, int, bytes] | str) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1
        self.queue.append(item)
        self.wake.set()

    def end(self) -> None:
        self.ended = True
        self.wake.set()

    async def batch(self) -> tuple[bytes | None, list[str]]:
        """Wait for something, then take all of it: the audio packed into one binary message
        (records of RECORD + μ-law) and the text lines. (None, []) once the call ended."""
        while not self.queue:
            if self.ended:
                return None, []
            self.wake = trio.Event()
            await self.wake.wait()
        audio = bytearray()
        lines: list[str] = []
        while self.queue:
            item = self.queue.popleft()
            if isinstance(item, str):
                lines.append(item)
            else:
                channel, pos, frame = item
                audio += RECORD.pack(channel, pos, len(frame))
                audio += frame
        return bytes(audio), lines


class LiveCalls:
    """The calls of this process that can be listened to, by CallSid."""

    def __init__(self) -> None:
        self.tapes: dict[str, CallTape] = {}

    def get(self, call_sid: str) -> "CallTape | None":
        return self.tapes.get(call_sid)


class _Encoder:
    """The worker-thread side of one recording: decode, interleave, append to the FLAC."""

    def __init__(self, part: Path, final: Path) -> None:
        self.part, self.final = part, final
        self.file = None
        self.frames = 0
        self.cpu_s = 0.0

    def write(self, caller: bytes, agent: bytes) -> None:
        import soundfile

        started = time.thread_time()
        n = len(caller)
        stereo = np.empty((n, 2), dtype=np.int16)
        stereo[:, 0] = np.frombuffer(ulaw_to_pcm16(caller), dtype=np.int16)
        stereo[:, 1] = np.frombuffer(ulaw_to_pcm16(agent), dtype=np.int16)
        if self.file is None:
            self.part.parent.mkdir(parents=True, exist_ok=True)
            self.file = soundfile.SoundFile(self.part, "w", samplerate=RATE, channels=2, format="FLAC",
                                            subtype="PCM_16")
        self.file.write(stereo)
        self.frames += n
        self.cpu_s += time.thread_time() - started

    def close(self) -> None:
        if self.file is not None:
            started = time.thread_time()
            self.file.close()
            self.file = None
            os.replace(self.part, self.final)
            self.cpu_s += time.thread_time() - started


class CallTape:
    """Both sides of one call, on the call's clock; see the module docstring."""

    def __init__(self, call_sid: str, t0: float, recordings: Recordings | None = None,
                 live: LiveCalls | None = None) -> None:
        self.call_sid = call_sid
        self.t0 = t0
        self.recordings = recordings
        self.live = live
        self.listeners: list[Listener] = []
        self.shift_ms: int | None = None  # stream time -> call clock, fixed by the first caller frame
        self.base = 0  # sample position of the buffers' first byte
        self._caller = bytearray()
        self._agent = bytearray()
        self.caller_end = 0  # sample position after the last caller frame
        self.errors = 0
        self.dropped = 0  # frames whose time made no sense (see _put)
        self._encoder: _Encoder | None = None
        if recordings is not None:
            final = recordings.path(call_sid)
            self._encoder = _Encoder(final.with_name(final.name + ".part"), final)
        if live is not None:
            live.tapes[call_sid] = self

    # -- hot path (the event loop) -------------------------------------------------------------

    def _put(self, buf: bytearray, pos: int, frame: bytes | bytearray) -> None:
        i = pos - self.base
        end = i + len(frame)
        if i < 0:  # older than what was flushed already (cannot happen past MARGIN_MS)
            if end <= 0:
                return
            frame, i = bytes(frame)[-i:], 0
        # More than MAX_GAP past the caller's audio is a bug elsewhere (a clock gone wrong):
        # dropped, never gigabytes. (The call ends after 15 s without caller audio anyway.)
        if end - (self.caller_end - self.base) > MAX_GAP:
            self.dropped += 1
            return
        while end > len(buf):  # grown a second at a time: one extend per 50 frames
            buf += _SECOND
        buf[i:end] = frame

    def caller(self, stream_ms: int, frame: bytes | bytearray, now_s: float) -> None:
        """A caller frame (μ-law) spoken at ``stream_ms`` that arrived at ``now_s``."""
        if self.shift_ms is None:
            self.shift_ms = max(0, round((now_s - self.t0) * 1000.0) - stream_ms - 20)
        pos = (stream_ms + self.shift_ms) * SAMPLES_PER_MS
        if self._encoder is not None:  # the buffers are the recording's; listeners get each frame
            self._put(self._caller, pos, frame)
        self.caller_end = pos + len(frame)
        if self.listeners:
            item = (0, pos, bytes(frame))
            for listener in self.listeners:
                if listener.audio:
                    listener.put(item)

    def agent(self, play_at: float, frame: bytes | bytearray) -> None:
        """An agent frame (μ-law) that starts playing at the caller at ``play_at`` (the call's
        monotonic clock: it needs no caller audio, unlike stream time)."""
        pos = round((play_at - self.t0) * RATE)
        if self._encoder is not None:
            self._put(self._agent, pos, frame)
        if self.listeners:
            item = (1, pos, bytes(frame))
            for listener in self.listeners:
                if listener.audio:
                    listener.put(item)

    def cut(self, at: float) -> None:
        """Barge-in: the agent's audio stopped at the caller at ``at`` (monotonic); what was
        sent for later never played."""
        pos = round((at - self.t0) * RATE)
        i = max(0, pos - self.base)
        if i < len(self._agent):
            tail = len(self._agent) - i
            self._agent[i:] = _SILENCE_VIEW[:tail] if tail <= len(_SILENCE) else b"\xff" * tail
        self.line({"type": "cut", "pos": pos})

    def line(self, message: dict) -> None:
        """A text event for the listeners (transcript line, state, cut); nothing if none."""
        if self.listeners:
            text = json.dumps(message, ensure_ascii=False)
            for listener in self.listeners:
                listener.put(text)

    # -- listeners -----------------------------------------------------------------------------

    def listen(self, maxlen: int = LISTEN_QUEUE, audio: bool = True) -> Listener:
        listener = Listener(maxlen, audio)
        self.listeners.append(listener)
        return listener

    def unlisten(self, listener: Listener) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    # -- off the hot path ----------------------------------------------------------------------

    def _take(self, upto: int) -> tuple[bytes, bytes]:
        """Both channels from ``base`` to sample ``upto``, padded to the same length."""
        n = max(0, upto - self.base)
        for buf in (self._caller, self._agent):
            if len(buf) < n:
                buf.extend(b"\xff" * (n - len(buf)))
        caller, agent = bytes(self._caller[:n]), bytes(self._agent[:n])
        del self._caller[:n]
        del self._agent[:n]
        self.base += n
        return caller, agent

    async def _encode(self, caller: bytes, agent: bytes) -> None:
        encoder = self._encoder
        if encoder is None or not caller:
            return
        assert self.recordings is not None
        try:
            await trio.to_thread.run_sync(encoder.write, caller, agent, limiter=self.recordings.thread_limiter())
        except Exception as exc:  # a full disk costs the recording, never the call
            self.errors += 1
            if self.errors == 1:
                log_event("ERROR", logging.ERROR, call_sid=self.call_sid, where="recording", error=repr(exc)[:300])

    async def run(self) -> None:
        """The call's task: flush to the encoder thread every FLUSH_S (the call's nursery owns it)."""
        if self._encoder is None:  # not recorded: nothing is buffered (listen-in is fed frame by frame)
            return
        while True:
            await trio.sleep(FLUSH_S)
            upto = self.caller_end - MARGIN_MS * SAMPLES_PER_MS
            if upto > self.base:
                caller, agent = self._take(upto)
                if self._encoder is not None:
                    await self._encode(caller, agent)

    async def close(self, end_at: float) -> None:
        """End of the call (shielded by the session): the rest up to the call's end is written,
        the agent's audio past it (sent, never played) dropped, the file finished."""
        if self.live is not None and self.live.tapes.get(self.call_sid) is self:
            del self.live.tapes[self.call_sid]
        for listener in self.listeners:
            listener.end()
        self.listeners.clear()
        encoder = self._encoder
        if encoder is None:
            return
        end = max(self.caller_end, round((end_at - self.t0) * RATE))
        caller, agent = self._take(end)
        # No timeout of ours: a worker thread cannot be cancelled, and what is left is at most
        # FLUSH_S + MARGIN_MS of audio (a few ms of encoding).
        await self._encode(caller, agent)
        try:
            assert self.recordings is not None
            await trio.to_thread.run_sync(encoder.close, limiter=self.recordings.thread_limiter())
        except Exception as exc:
            self.errors += 1
            log_event("ERROR", logging.ERROR, call_sid=self.call_sid, where="recording close",
                      error=repr(exc)[:300])
            return
        log_event("RECORDING", call_sid=self.call_sid, seconds=round(encoder.frames / RATE, 2),
                      bytes=_size(encoder.final), encode_cpu_ms=round(encoder.cpu_s * 1000, 1))


_SILENCE = b"\xff" * 4096
_SILENCE_VIEW = memoryview(_SILENCE)
_SECOND = b"\xff" * RATE


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def recordings_from(directory: str | None, days: float) -> Recordings | None:
    """Settings → :class:`Recordings` (None when RECORDINGS_DIR is off)."""
    if not directory:
        return None
    return Recordings(Path(directory), days)
