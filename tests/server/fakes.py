"""Simple fakes of OUR interfaces (recognizer, synthesizer, brain, recorder) for session tests.

They are scripted, not clever: the session is what is under test. Every fake records what
the session asked of it so the tests can check the calls, not just the outcome.
"""
from __future__ import annotations

import datetime as dt
import math
import struct
from dataclasses import dataclass, field
from typing import AsyncIterator

import trio

from dialog.base import Brain, CallerTurn, LeadState
from leads.base import CallInfo, CallMetrics, CallRecorder
from speech.base import ProviderError, Recognizer, Synthesizer, Transcript


class ScriptedRecognizer(Recognizer):
    """Returns queued results in order: a str (confidence 0.9), a Transcript, or an exception
    to raise. ``delay_s`` is how long each final takes after the EOU."""

    name = "scripted-asr"

    def __init__(self, results: list[str | Transcript | BaseException] | None = None, delay_s: float = 0.0) -> None:
        self.results = list(results or [])
        self.delay_s = delay_s
        self.frames = 0
        self.bytes = 0
        self.begins: list[int] = []
        self.ends: list[tuple[int, int]] = []
        self.cancelled = 0
        self.bad_frames = 0

    def push(self, pcm16: bytes) -> None:
        if len(pcm16) != 320:
            self.bad_frames += 1
        self.frames += 1
        self.bytes += len(pcm16)

    def begin_utterance(self, onset_ms: int) -> None:
        self.begins.append(onset_ms)

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        self.ends.append((onset_ms, eou_ms))
        if self.delay_s:
            await trio.sleep(self.delay_s)
        result = self.results.pop(0) if self.results else ""
        if isinstance(result, BaseException):
            raise result
        if isinstance(result, Transcript):
            return result
        return Transcript(result, 0.9 if result else 0.0, provider=self.name, start_ms=onset_ms, end_ms=eou_ms)

    def cancel_utterance(self) -> None:
        self.cancelled += 1


def tone_pcm(samples: int, amplitude: int = 4000, freq: float = 440.0, phase0: int = 0) -> bytes:
    return struct.pack(
        f"<{samples}h",
        *(int(amplitude * math.sin(2 * math.pi * freq * (phase0 + i) / 8000)) for i in range(samples)),
    )


class ToneSynthesizer(Synthesizer):
    """A tone ``ms_per_char`` long per character, yielded in chunks of odd sample counts
    (so the framer sees chunk edges everywhere), with optional delays."""

    name = "tone-tts"

    def __init__(
        self, ms_per_char: float = 40.0, first_delay_s: float = 0.0, chunk_delay_s: float = 0.0,
        fail_on: str | None = None,
    ) -> None:
        self.ms_per_char = ms_per_char
        self.first_delay_s = first_delay_s
        self.chunk_delay_s = chunk_delay_s
        self.fail_on = fail_on
        self.texts: list[str] = []
        self.started = 0
        self.finished = 0
        self._tone2 = tone_pcm(8000) * 2  # one second, twice, so any slice of <= 1 s is contiguous

    def frames_for(self, text: str) -> int:
        return math.ceil(len(text) * self.ms_per_char * 8 / 160)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        self.started += 1
        if self.fail_on is not None and self.fail_on in text:
            raise ProviderError(self.name, "synthesis failed")
        if self.first_delay_s:
            await trio.sleep(self.first_delay_s)
        total = int(len(text) * self.ms_per_char * 8)
        sizes = (333, 1201, 77, 2005)
        done, k = 0, 0
        while done < total:
            n = min(sizes[k % len(sizes)], total - done)
            start = done % 8000
            chunk = self._tone2[2 * start: 2 * (start + n)]
            yield chunk
            done += n
            k += 1
            if self.chunk_delay_s:
                await trio.sleep(self.chunk_delay_s)
        self.finished += 1


class ScriptedBrain(Brain):
    """Replies from a script: one list of sentences per caller turn. ``finish_after`` turns,
    the last reply is the goodbye and ``finished`` turns True."""

    name = "scripted-brain"

    def __init__(
        self, replies: list[list[str]] | None = None, opening: str = "Hello, this is AgentLocator. How can I help?",
        finish_after: int | None = None, sentence_delay_s: float = 0.0, fail_on_turn: int | None = None,
    ) -> None:
        self.replies = list(replies or [])
        self._opening = opening
        self.finish_after = finish_after
        self.sentence_delay_s = sentence_delay_s
        self.fail_on_turn = fail_on_turn
        self.lead = LeadState()
        self.turns: list[CallerTurn] = []
        self.heard_log: list[tuple[str, bool]] = []
        self.closed = 0  # aclose calls
        self.retracted: list[CallerTurn] = []

    def opening(self) -> str:
        return self._opening

    async def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        self.turns.append(turn)
        n = len(self.turns)
        if self.fail_on_turn == n:
            raise ProviderError("scripted-brain", "model unavailable")
        reply = self.replies.pop(0) if self.replies else [f"Reply {n}, anything else?"]
        if turn.text.startswith("area "):
            self.lead.slots.area = turn.text[5:]
        if turn.text == "book it":
            self.lead.status = "meeting_booked"
        if self.finish_after is not None and n >= self.finish_after:
            self.finished = True
        for sentence in reply:
            if self.sentence_delay_s:
                await trio.sleep(self.sentence_delay_s)
            yield sentence

    def heard(self, said: str, heard_fully: bool) -> None:
        self.heard_log.append((said, heard_fully))

    def retract(self) -> None:
        """The session dropped the last reply unheard (the caller went on): forget that turn."""
        self.retracted.append(self.turns.pop())

    def summary(self) -> str:
        return f"summary: area={self.lead.slots.area}"

    async def aclose(self) -> None:
        await trio.sleep(0.01)  # a real client awaits its close; cancellation must not skip it
        self.closed += 1


@dataclass
class RecordingRecorder(CallRecorder):
    events: list[tuple] = field(default_factory=list)
    ended: list[dict] = field(default_factory=list)
    fail: bool = False
    lead_summaries: list[str | None] = field(default_factory=list)  # whatsapp_summary of each lead_updated

    async def call_started(self, info: CallInfo) -> None:
        self.events.append(("call_started", info))

    async def transcript_turn(self, call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully) -> None:  # type: ignore[override]
        if self.fail:
            raise RuntimeError("database is down")
        self.events.append(("turn", speaker, text, t_start_ms, t_end_ms, heard_fully))

    async def lead_updated(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None
    ) -> None:
        self.events.append(("lead", phone, lead.slots.area))
        self.lead_summaries.append(whatsapp_summary)

    async def call_ended(
        self, call_sid: str, ended_at: dt.datetime, close_reason: str, outcome: str, metrics: CallMetrics,
        phone: str, lead: LeadState, whatsapp_summary: str,
    ) -> None:
        await trio.sleep(0.01)  # a real store awaits; cancellation must not cut this short
        self.ended.append(dict(call_sid=call_sid, close_reason=close_reason, outcome=outcome, metrics=metrics,
                               phone=phone, summary=whatsapp_summary))

    def turns(self, speaker: str | None = None) -> list[tuple]:
        return [e for e in self.events if e[0] == "turn" and (speaker is None or e[1] == speaker)]
