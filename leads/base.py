"""The recorder interface the call session writes through.

The session calls these as the call goes (never only at the end), so a crash or a dropped
websocket loses nothing: the lead is written after each turn that changed a slot, and the
follow-up goes into the outbox before anything tries to send it.
All methods are async; implementations keep blocking I/O off the event loop.
"""
from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from dialog.base import LeadState

Speaker = Literal["agent", "caller"]


@dataclass(slots=True)
class CallMetrics:
    """Per-call figures; the same ones feed Prometheus (design.md names)."""

    turn_latency_ms: list[float] = field(default_factory=list)  # EOU -> first TTS frame on the wire
    asr_latency_ms: list[float] = field(default_factory=list)  # EOU -> ASR_TEXT
    halt_ms: list[float] = field(default_factory=list)  # barge-in voice onset -> agent silent at the caller
    barge_ins: int = 0
    barge_ins_clean: int = 0  # TTS halted within the target and listening resumed
    heartbeats: int = 0
    turns: int = 0  # caller turns answered
    turns_to_meeting: int | None = None
    state_cycles: int = 0  # LISTENING -> ... -> LISTENING round trips
    rule_violations: int = 0
    provider_errors: int = 0
    fallbacks: int = 0
    # turn-taking as the caller lives it
    false_interruptions: int = 0  # interruptions judged not a turn (the agent resumed)
    resumed: int = 0  # cut agent turns whose rest played
    ignored: int = 0  # caller utterances given no reply (noise)
    continuations: int = 0  # replies dropped because the caller went on (one merged turn)
    talk_over_ms: list[float] = field(default_factory=list)  # per agent turn, outside barge-in halts
    dead_air_ms: list[float] = field(default_factory=list)  # caller's voice ended -> agent heard again


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_sid: str
    stream_sid: str
    from_number: str
    to_number: str
    started_at: dt.datetime  # aware UTC


class CallRecorder(abc.ABC):
    def timeline_event(self, call_sid: str, t_ms: float, kind: str, **detail: object) -> None:
        """One point of the call's timeline for the dashboard (STATE_CHANGE with ``to=``,
        BARGE_IN, MARK_SENT / MARK_ACK, TTS_START ...; ``t_ms`` on the call's clock).

        Synchronous and cheap on purpose: implementations buffer and write with the next
        turn. The session need not call it: leads.timeline feeds it from the session's log
        events (see leads.store.open_store). Default: not recorded.
        """
        return None

    @abc.abstractmethod
    async def call_started(self, info: CallInfo) -> None: ...

    @abc.abstractmethod
    async def transcript_turn(
        self, call_sid: str, speaker: Speaker, text: str, t_start_ms: int, t_end_ms: int, heard_fully: bool
    ) -> None: ...

    @abc.abstractmethod
    async def lead_updated(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None
    ) -> None:
        """The lead after a turn that changed it. ``whatsapp_summary`` is the brain's current
        summary: what a crash recovery sends if the call never reaches call_ended."""

    @abc.abstractmethod
    async def call_ended(
        self,
        call_sid: str,
        ended_at: dt.datetime,
        close_reason: str,
        outcome: str,
        metrics: CallMetrics,
        phone: str,
        lead: LeadState,
        whatsapp_summary: str,
    ) -> None:
        """Store the call's end and queue the WhatsApp follow-up (outbox first, then send)."""


class NullRecorder(CallRecorder):
    """Records nothing: for unit tests of the session that don't look at the store."""

    async def call_started(self, info: CallInfo) -> None:
        return None

    async def transcript_turn(self, call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully) -> None:  # type: ignore[override]
        return None

    async def lead_updated(
        self, call_sid: str, phone: str, lead: LeadState, whatsapp_summary: str | None = None
    ) -> None:
        return None

    async def call_ended(self, *args, **kwargs) -> None:  # type: ignore[override]
        return None
