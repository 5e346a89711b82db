"""Twilio's side of one Media Stream, sans-IO: the shell passes times in, sends what comes out.

Time ``t`` is seconds since the `start` message. Caller frame ``k`` covers caller speech
``[k*20, k*20+20)`` ms and is sent at its end (as a phone captures, then sends), so the
caller track and the heard track share one timeline and halt / latency figures are exact
to the sample, not to the 20 ms tick.

Playback is what a Twilio media server does with our outbound audio: each `media` is
queued behind what is still playing (8000 samples/s), starting at once when the buffer is
empty; a `mark` is echoed when playback reaches it; `clear` drops everything not yet
played and echoes pending marks at once.
"""
from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from native.config import FRAME_SAMPLES, SAMPLE_RATE
from native.codec import pcm16_rms
from server.caller.audio import pcm16_to_ulaw, ulaw_to_pcm16, voiced_span

_MEDIA = ('{"event": "media", "sequenceNumber": "%d", "streamSid": "%s", "media": {"track": "inbound", '
          '"chunk": "%d", "timestamp": "%d", "payload": "%s"}}')
BLOCK = 80  # 10 ms: resolution of the caller's "is the agent audible" decisions
AUDIBLE_RMS = 200.0  # agent audio above this is "heard" (TTS silence is digital zero)


@dataclass(slots=True)
class Utterance:
    text: str
    start: float  # the step's first sample
    onset: float  # first voiced sample
    end: float  # last voiced sample
    barge: bool = False
    agent_start: float | None = None  # for barge-ins: when the agent's audio began


@dataclass(slots=True)
class PreparedAudio:
    kind: str  # say | wav | noise | silence
    samples: np.ndarray
    text: str = ""


@dataclass(slots=True)
class PreparedWait:
    quiet_ms: int
    timeout_s: float


@dataclass(slots=True)
class PreparedBarge:
    after_ms: int
    audio: PreparedAudio
    timeout_s: float


@dataclass(slots=True)
class PreparedHangup:
    pass


@dataclass(slots=True)
class PreparedLineNoise:
    rms: float


Prepared = PreparedAudio | PreparedWait | PreparedBarge | PreparedLineNoise | PreparedHangup


class _Track:
    """A growable int16 timeline at 8 kHz."""

    def __init__(self, seconds: float = 120.0) -> None:
        self.data = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16)

    def ensure(self, n: int) -> None:
        if n > len(self.data):
            grown = np.zeros(max(n, 2 * len(self.data)), dtype=np.int16)
            grown[: len(self.data)] = self.data
            self.data = grown

    def write(self, at: int, samples: np.ndarray) -> None:
        self.ensure(at + len(samples))
        self.data[at : at + len(samples)] = samples

    def zero(self, start: int, end: int) -> None:
        if end > start:
            self.data[start : min(end, len(self.data))] = 0


def new_sid(prefix: str) -> str:
    """A fresh SID in Twilio's format (two letters, 32 hex digits)."""
    return prefix + secrets.token_hex(16)


@dataclass(slots=True)
class CallIds:
    # A new CallSid per call, like Twilio (the server admits each CallSid once).
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    account_sid: str = "AC" + "0" * 32
    from_number: str = "+972501234567"
    to_number: str = "+97231234567"
    direction: str = "inbound"
    # The <Stream>'s <Parameter>s from the call's TwiML (its websocket token among them);
    # sent back in `start` as customParameters. Empty: just From / To / CallSid.
    parameters: dict[str, str] = field(default_factory=dict)

    def webhook_params(self) -> dict[str, str]:
        """What Twilio posts to the voice webhook (/twiml) for this call."""
        return {"CallSid": self.call_sid, "AccountSid": self.account_sid, "From": self.from_number,
                "To": self.to_number, "Direction": self.direction, "CallStatus": "ringing"}


@dataclass(slots=True)
class Rx:
    t: float
    kind: str  # media | mark | clear | other
    detail: str = ""


class SimulatedCall:
    def __init__(
        self,
        steps: list[Prepared],
        ids: CallIds | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        end_at_s: float | None = None,
        quiet_before_end_s: float = 3.0,
    ) -> None:
        """``end_at_s``: hang up (a clean `stop`) at this call time whatever step the script is
        in; from ``quiet_before_end_s`` before it no new utterance starts, so the last turn is
        answered before the line goes (load runs: calls of an exact length)."""
        self.ids = ids or CallIds()
        self.end_at_s = end_at_s
        self._quiet_from = None if end_at_s is None else end_at_s - quiet_before_end_s
        self.steps = list(steps)
        self.on_event = on_event
        self.caller = _Track()
        self.heard = _Track()
        self.utterances: list[Utterance] = []
        self.events: list[dict[str, Any]] = []
        self.rx: list[Rx] = []
        self.errors: list[str] = []  # protocol errors: what a real Twilio would have choked on
        self.problems: list[str] = []  # the script could not go as written (agent never spoke...)
        self.marks_echoed: list[tuple[float, str]] = []
        self.clears: list[tuple[float, float]] = []  # (t, ms of audio dropped)
        self.done = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.ended_at = 0.0
        self._seq = 0
        self._busy_until = 0.0  # playback end of what is queued (s)
        self._pending_marks: list[tuple[float, str]] = []
        self._step = 0
        self._step_started: float | None = None
        self._speaking: tuple[PreparedAudio, int, Utterance | None] | None = None
        self._scanned_blocks = 0
        self._last_audible = -1.0  # end time of the last audible 10 ms block
        self._first_audible_since_step: float | None = None
        self.frames_sent = 0
        self.media_received = 0
        # audible gaps: agent audio that arrived after the caller's playback had run dry in
        # the middle of a reply (the pacer's lead used up): (t, gap ms)
        self.gaps: list[tuple[float, float]] = []
        self._last_media_rx = -1.0
        # how late the shell's 20 ms ticks ran (ms): the caller side's own health under load
        self.tick_late_ms: list[float] = []
        self._line_noise_rms = 0.0
        self._rng = np.random.default_rng(11)

    # -- messages out -------------------------------------------------------------------------
    def _msg(self, event: str, **body: Any) -> str:
        self._seq += 1
        return json.dumps({"event": event, "sequenceNumber": str(self._seq), "streamSid": self.ids.stream_sid, **body})

    def start_messages(self) -> list[str]:
        ids = self.ids
        connected = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        start = self._msg(
            "start",
            start={
                "accountSid": ids.account_sid, "callSid": ids.call_sid, "streamSid": ids.stream_sid,
                "tracks": ["inbound"],
                "customParameters": dict(ids.parameters) or {
                    "From": ids.from_number, "To": ids.to_number, "CallSid": ids.call_sid},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE, "channels": 1},
            },
        )
        self._event(0.0, "call_start", call_sid=ids.call_sid)
        return [connected, start]

    def _stop_message(self) -> str:
        return self._msg("stop", stop={"accountSid": self.ids.account_sid, "callSid": self.ids.call_sid})

    def _event(self, t: float, kind: str, **fields: Any) -> None:
        ev = {"t": round(t, 4), "kind": kind, **fields}
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)

    # -- the 20 ms tick -------------------------------------------------------------------------
    def tick(self, k: int, now: float) -> list[str]:
        """Frame ``k`` is due (``now`` ≈ (k+1)*20 ms). Returns messages to send, in order."""
        out = self._due_marks(now)
        if self.done:
            return out
        self._scan_heard(now)
        frame = None if self.end_at_s is not None and now >= self.end_at_s else self._caller_frame(k, now)
        if frame is None:
            self.done = True
            self.ended_at = now
            self._event(now, "hangup")
            out.append(self._stop_message())
            return out
        if self._line_noise_rms > 0:
            hiss = self._rng.normal(0.0, self._line_noise_rms, FRAME_SAMPLES)
            frame = np.clip(frame.astype(np.float64) + hiss, -32768, 32767).astype(np.int16)
        self.caller.write(k * FRAME_SAMPLES, frame)
        payload = base64.b64encode(pcm16_to_ulaw(frame.tobytes())).decode()
        self._seq += 1  # what _msg("media", ...) makes, byte for byte, without building a dict
        out.append(_MEDIA % (self._seq, self.ids.stream_sid, k + 1, k * 20, payload))
        self.frames_sent += 1
        return out

    def _due_marks(self, now: float) -> list[str]:
        out: list[str] = []
        while self._pending_marks and self._pending_marks[0][0] <= now:
            due, name = self._pending_marks.pop(0)
            out.append(self._echo_mark(due, name))
        return out

    def _echo_mark(self, t: float, name: str) -> str:
        self.marks_echoed.append((t, name))
        return self._msg("mark", mark={"name": name})

    def _scan_heard(self, now: float) -> None:
        # Blocks before `now` are final: new audio is only ever queued at or after now.
        upto = int(now * SAMPLE_RATE) // BLOCK
        data = self.heard.data
        for b in range(self._scanned_blocks, upto):
            block = data[b * BLOCK : (b + 1) * BLOCK]
            if len(block) and pcm16_rms(block) > AUDIBLE_RMS:
                t_start = b * BLOCK / SAMPLE_RATE
                self._last_audible = t_start + BLOCK / SAMPLE_RATE
                if (
                    self._first_audible_since_step is None
                    and self._step_started is not None
                    and t_start >= self._step_started
                ):
                    self._first_audible_since_step = t_start
        self._scanned_blocks = max(self._scanned_blocks, upto)

    def _begin_step(self, now: float) -> None:
        self._step_started = now
        self._first_audible_since_step = None

    def _next_step(self, now: float) -> None:
        self._step += 1
        self._step_started = None

    def _caller_frame(self, k: int, now: float) -> np.ndarray | None:
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        frame_start = k * FRAME_SAMPLES / SAMPLE_RATE
        while True:
            if self._speaking is not None:
                audio, pos, utt = self._speaking
                chunk = audio.samples[pos : pos + FRAME_SAMPLES]
                frame = silence.copy()
                frame[: len(chunk)] = chunk
                pos += FRAME_SAMPLES
                if pos >= len(audio.samples):
                    self._speaking = None
                    if utt is not None:
                        self._event(utt.end, "caller_end", text=utt.text, barge=utt.barge)
                    self._next_step(now)
                else:
                    self._speaking = (audio, pos, utt)
                return frame
            if self._step >= len(self.steps):
                return None
            step = self.steps[self._step]
            if (self._quiet_from is not None and now >= self._quiet_from
                    and isinstance(step, (PreparedAudio, PreparedBarge))):
                return silence  # winding down to end_at_s: no new utterance
            if self._step_started is None:
                self._begin_step(now)
            if isinstance(step, PreparedHangup):
                return None
            if isinstance(step, PreparedLineNoise):
                self._line_noise_rms = step.rms
                self._event(now, "line_noise", rms=step.rms)
                self._next_step(now)
                continue
            if isinstance(step, PreparedAudio):
                self._start_audio(step, frame_start, barge=False, agent_start=None)
                continue
            elapsed = now - self._step_started if self._step_started is not None else 0.0
            if isinstance(step, PreparedWait):
                heard_start = self._first_audible_since_step
                if heard_start is not None:
                    quiet = now - self._last_audible
                    if quiet * 1000 >= step.quiet_ms and self._busy_until <= now:
                        self._event(now, "agent_done", quiet_ms=round(quiet * 1000))
                        self._next_step(now)
                        continue
                if elapsed > step.timeout_s:
                    self.error(now, f"wait_agent: agent {'never went quiet' if heard_start is not None else 'did not speak'} in {step.timeout_s:g} s", protocol=False)
                    self._next_step(now)
                    continue
                return silence
            if isinstance(step, PreparedBarge):
                agent_start = self._first_audible_since_step
                if agent_start is not None and now >= agent_start + step.after_ms / 1000:
                    self._start_audio(step.audio, frame_start, barge=True, agent_start=agent_start)
                    continue
                if elapsed > step.timeout_s:
                    self.error(now, f"barge: the agent did not speak in {step.timeout_s:g} s", protocol=False)
                    self._next_step(now)
                    continue
                return silence
            raise TypeError(f"unknown step {step!r}")

    def _start_audio(self, audio: PreparedAudio, t0: float, barge: bool, agent_start: float | None) -> None:
        utt: Utterance | None = None
        if audio.kind in ("say", "wav"):
            first, last = voiced_span(audio.samples)
            utt = Utterance(
                text=audio.text, start=t0, onset=t0 + first / SAMPLE_RATE, end=t0 + last / SAMPLE_RATE,
                barge=barge, agent_start=agent_start,
            )
            self.utterances.append(utt)
            self._event(utt.onset, "barge_onset" if barge else "caller_say", text=audio.text,
                        agent_start=agent_start)
        else:
            self._event(t0, audio.kind, ms=round(len(audio.samples) / 8))
        self._speaking = (audio, 0, utt)

    def error(self, t: float, message: str, protocol: bool = True) -> None:
        (self.errors if protocol else self.problems).append(message)
        self._event(t, "error" if protocol else "problem", message=message)

    # -- messages in ----------------------------------------------------------------------------
    def on_message(self, now: float, text: str) -> list[str]:
        try:
            msg = json.loads(text)
            event = msg["event"]
        except (ValueError, KeyError, TypeError):
            self.rx.append(Rx(now, "other", "malformed"))
            self.error(now, f"malformed message from server: {text[:80]!r}")
            return []
        if msg.get("streamSid") != self.ids.stream_sid:
            self.error(now, f"{event}: wrong or missing streamSid {msg.get('streamSid')!r}")
        if event == "media":
            try:
                payload = base64.b64decode(msg["media"]["payload"], validate=True)
            except (KeyError, TypeError, binascii.Error):
                self.rx.append(Rx(now, "other", "bad media"))
                self.error(now, "media: missing or invalid base64 payload")
                return []
            self.rx.append(Rx(now, "media"))
            self.media_received += 1
            if 0 <= now - self._last_media_rx < 0.1 and now > self._busy_until + 0.001:
                self.gaps.append((now, (now - self._busy_until) * 1000))
            self._last_media_rx = now
            self._play(now, np.frombuffer(ulaw_to_pcm16(payload), dtype="<i2"))
            return []
        if event == "mark":
            name = (msg.get("mark") or {}).get("name")
            if not isinstance(name, str) or not name:
                self.error(now, "mark without a name")
                return []
            self.rx.append(Rx(now, "mark", name))
            due = max(now, self._busy_until)
            self._pending_marks.append((due, name))
            self._pending_marks.sort(key=lambda m: m[0])
            return self._due_marks(now)
        if event == "clear":
            self.rx.append(Rx(now, "clear"))
            dropped = max(0.0, self._busy_until - now)
            self.heard.zero(int(now * SAMPLE_RATE), int(self._busy_until * SAMPLE_RATE) + 1)
            self._busy_until = min(self._busy_until, now)
            self.clears.append((now, dropped * 1000))
            self._event(now, "clear", dropped_ms=round(dropped * 1000, 1))
            pending, self._pending_marks = self._pending_marks, []
            return [self._echo_mark(now, name) for _, name in pending]
        self.rx.append(Rx(now, "other", str(event)))
        self.error(now, f"unknown event {event!r} from server")
        return []

    def _play(self, now: float, samples: np.ndarray) -> None:
        start = max(now, self._busy_until)
        self.heard.write(int(round(start * SAMPLE_RATE)), samples)
        self._busy_until = start + len(samples) / SAMPLE_RATE

    def server_closed(self, now: float, code: int | None, reason: str) -> None:
        if not self.done:
            self.done = True
            self.ended_at = now
        self.close_code = code
        self.close_reason = reason
        self._event(now, "server_closed", code=code, reason=reason)

    @property
    def duration(self) -> float:
        return self.ended_at
