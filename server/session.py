"""One phone call, from Twilio's first frame to the close: :func:`run_call`.

A call is one trio nursery. Its tasks: the receive loop (Twilio frames; caller audio goes to
:class:`~server.inbound.Inbound`, which turns it into turn events), the
:class:`~server.pacer.Pacer` (outbound frames, marks, keepalive), the recognizer's own
``run``, the recorder writer, the pending ASR final (its own cancel scope: a caller who goes
on talking reopens the utterance), and the current agent turn's
:class:`~server.reply.Reply` (a producer and a speaker, each its own cancel scope).
The :class:`~server.turn.TurnMachine` decides; :meth:`CallSession._execute` only carries out
its actions. Three modules, by name: ``inbound`` (the caller's audio), ``reply`` (the agent's
turn), ``session`` (this: the call's life and the actions).

Nothing that goes wrong inside a call escapes :func:`run_call`: provider errors become the
clarify line, malformed frames are counted and dropped, a dropped socket ends the call, and
``recorder.call_ended`` runs in every case (shielded, so cancellation cannot skip it).
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
import math
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable
from zoneinfo import ZoneInfo

import numpy as np
import trio

from dialog.base import CLARIFY_EN, CLARIFY_HE, Brain, CallerTurn, LeadState
from leads.base import CallInfo, CallMetrics, CallRecorder
from native.codec import ulaw_rms
from native.config import FRAME_MS, FRAME_SAMPLES, TimingConfig
from server import turn as T
from server.inbound import Inbound
from server import frame_tick
from server.pacer import Pacer
from server.recording import CallTape, LiveCalls, Recordings
from server.reply import Reply, guarded_sentences, one_line
from server.transport import Transport, TransportClosed
from server.twilio_codec import (
    Connected, Dtmf, Mark, Media, ProtocolError, Start, Stop, TwilioFrames, TwilioParser, UnknownEvent,
)
from speech.base import ProviderError, Recognizer, Synthesizer, Transcript
from telemetry import metrics as prom
from telemetry.logs import CallLog, log_event

JERUSALEM = ZoneInfo("Asia/Jerusalem")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class CallDeps:
    config: TimingConfig
    new_recognizer: Callable[[str], Recognizer]  # arg: language
    synthesizer: Synthesizer
    new_brain: Callable[[str, str, dt.datetime], Brain]  # language, caller phone, now (Asia/Jerusalem)
    recorder: CallRecorder
    language: str = "he-IL"
    asr_timeout_s: float = 3.0  # EOU -> final transcript; past it the agent asks to repeat
    brain_timeout_s: float = 8.0  # per sentence of the reply
    start_timeout_s: float = 5.0  # connected/start must arrive this soon after the upgrade
    recorder_timeout_s: float = 10.0  # each recorder write (the recorder journals what it cannot store in time)
    # Twilio sends caller audio every 20 ms for the whole call: nothing at all for this long
    # means the path died without a FIN/RST, and the call must end rather than hang.
    inbound_timeout_s: float = 15.0
    # MAX_CALL_MINUTES: this long after `start` the agent says its goodbye and hangs up
    # (close reason max_duration). 0 or less: no limit.
    max_call_s: float = 3600.0
    # The server's "end politely now" (set at the drain deadline, server.drain): every live
    # call ends as at MAX_CALL_MINUTES, with close reason drain. None: no drain.
    closing: trio.Event | None = None
    wall_clock: Callable[[], dt.datetime] = _utcnow  # aware UTC; injectable for tests
    # A call we placed (Direction outbound-*): (lead phone, CallSid) -> what the agent knows
    # about the lead (dialog.outbound.OutboundContext), or None. Looked up once before the
    # greeting, bounded by outbound_context_timeout_s; without it the agent greets as inbound.
    outbound_context: Callable[[str, str], Awaitable[object | None]] | None = None
    outbound_context_timeout_s: float = 1.0
    # Call recordings (RECORDINGS_DIR) and live listen-in (server.recording); None: neither.
    recordings: Recordings | None = None
    live: LiveCalls | None = None
    recording_notice: str | None = None  # said before the greeting (RECORDING_NOTICE)


@dataclass
class CallResult:
    call_sid: str
    stream_sid: str
    # twilio_stop | agent_hangup | remote_close | dropped | inbound_timeout | no_start | error | shutdown
    # | max_duration | drain | flood
    close_reason: str
    close_code: int
    metrics: CallMetrics
    duration_s: float
    outcome: str  # the lead's status at the end (new | qualified | meeting_booked | lost), or "none"
    protocol_errors: int = 0
    rejected_events: int = 0
    frames_in: int = 0
    frames_out: int = 0


async def run_call(transport: Transport, deps: CallDeps) -> CallResult:
    """Run one call on ``transport``; never raises for call-level failures."""
    return await CallSession(transport, deps).run()


BRAIN_CLOSE_TIMEOUT_S = 2.0
MAX_AUDIO_AHEAD_MS = 3000  # caller audio this far ahead of the wall clock: not a phone line
WATCHDOG_SLACK_S = 0.25  # the inbound watchdog fires after inbound_timeout_s to this much more of silence
CALIBRATION_GRACE_MS = 300  # no caller audio by calibration + this: greet anyway
AUDIBLE_PEAK = 300  # a TTS chunk with a sample above this is speech, not the engine's silence  # brain.aclose at the end of a call (e.g. its HTTP client)


def _method_name(method: Callable[..., object]) -> str:
    return getattr(method, "__name__", "?")


def _clarify(language: str) -> str:
    return CLARIFY_HE if language.startswith(("he", "iw")) else CLARIFY_EN


CALL_LIMIT_GOODBYE_S = 15.0  # the goodbye at MAX_CALL_MINUTES gets this long to play


def goodbye_line(language: str) -> str:
    """The brain's own goodbye (cached by the TTS at startup), said when a call hits its limit."""
    from dialog.phrases import EN, HE

    return (HE if language.startswith(("he", "iw")) else EN)["bye"].format(name="")


class _EndCall(Exception):
    """Raised inside the call's tasks to end it with a reason (caught by the task guard)."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class CallSession:
    def __init__(self, transport: Transport, deps: CallDeps) -> None:
        self.transport = transport
        self.deps = deps
        self.cfg = deps.config
        self.parser = TwilioParser()
        self.machine = T.TurnMachine(deps.config, deps.language)
        self.metrics = CallMetrics()
        self.t0 = trio.current_time()
        self.call_sid = ""
        self.stream_sid = ""
        self.phone = ""
        self.log = CallLog("", self._now_ms)
        self.close_reason = ""
        self.close_code = 1000
        self.brain: Brain | None = None
        self.recognizer: Recognizer | None = None
        self._cancel: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self.inbound = Inbound(self.cfg, self.machine, self.dispatch, self._push, self._partial_words)
        self._reply: Reply | None = None  # the current agent turn (playing, or cut and on hold)
        self._asr_scope: trio.CancelScope | None = None
        self._eou_at = 0.0  # clock time of the last end of utterance (turn latency counts from it)
        # A barge-in / collision waiting for its `clear` (sent by the receive loop right after
        # the frame that triggered it): (halt, clock time, when what was sent would stop playing)
        self._halt: tuple[T.Halt, float, float] | None = None
        self._watchdog = trio.CancelScope()  # the receive loop's: no Twilio message for too long
        self._bumped = 0.0  # when its deadline last moved
        # the transport stamps each read's arrival (server.media_socket)
        self._stamped = bool(getattr(transport, "stamps_arrivals", False))
        self._agent_audible_end_ms = 0.0  # stream time the agent's audio last stopped playing
        self._turn_started_ms = 0.0  # call clock (ms) of the current agent turn's first frame
        self._rec_send, self._rec_recv = trio.open_memory_channel[tuple](math.inf)
        self._writer_done: trio.Event | None = None
        self._protocol_logged = 0
        self.tape: CallTape | None = None

    def _now_ms(self) -> float:
        return (trio.current_time() - self.t0) * 1000.0

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> CallResult:
        # ws_connections_total is counted by the app when it accepts the websocket.
        start: Start | None = None
        lead_outcome = "none"
        # The recorder writer lives outside the call's nursery: a write in progress when the
        # call ends (a slow database) must neither be cut short nor hold up the hang-up.
        async with trio.open_nursery() as writer:
            try:
                start = await self._await_start()
                if start is None:
                    return self._result()
                context = await self._outbound_context(start)
                self._setup(start, context)
                self._writer_done = trio.Event()
                writer.start_soon(self._guard, self._recorder_task)
                prom.calls_active.inc()
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        self._cancel = nursery.cancel_scope
                        nursery.start_soon(self._guard, self._recognizer_task)
                        nursery.start_soon(self._guard, self.pacer.run)
                        nursery.start_soon(self._guard, self._receive_loop)
                        nursery.start_soon(self._guard, self._calibration_timeout)
                        nursery.start_soon(self._guard, self._call_limit)
                        if self.tape is not None:
                            nursery.start_soon(self._guard, self.tape.run)
                        self.dispatch(T.CallStarted())
                finally:
                    prom.calls_active.dec()
            except BaseException as exc:
                # Every task is guarded, so what gets here is the server cancelling us (possibly
                # grouped by the nursery) or a bug in this module: the call ends, the server lives,
                # and a cancellation is never swallowed.
                if isinstance(exc, BaseExceptionGroup):
                    cancelled, rest = exc.split(trio.Cancelled)
                elif isinstance(exc, trio.Cancelled):
                    cancelled, rest = exc, None
                else:
                    cancelled, rest = None, exc
                if rest is not None:
                    self._set_close("error", 1011)
                    log_event("ERROR", call_sid=self.call_sid, t=round(self._now_ms(), 1), where="session", error=repr(rest))
                if cancelled is not None:
                    self._set_close("shutdown", 1001)
                    raise
            finally:
                with trio.CancelScope(shield=True):
                    try:
                        lead_outcome = await self._finish(start)
                    finally:
                        self._rec_send.close()  # the writer ends, whatever happened in _finish
        return self._result(lead_outcome)

    def _result(self, outcome: str = "none") -> CallResult:
        return CallResult(
            call_sid=self.call_sid,
            stream_sid=self.stream_sid,
            close_reason=self.close_reason or "no_start",
            close_code=self.close_code,
            metrics=self.metrics,
            duration_s=trio.current_time() - self.t0,
            outcome=outcome,
            protocol_errors=sum(self.parser.errors.values()),
            rejected_events=self.machine.rejected,
            frames_in=self.inbound.t // FRAME_MS,
            frames_out=self.pacer.frames_sent if hasattr(self, "pacer") else 0,  # no pacer before `start`
        )

    async def _await_start(self) -> Start | None:
        with trio.move_on_after(self.deps.start_timeout_s):
            while True:
                try:
                    text = await self.transport.receive()
                except TransportClosed as exc:
                    self._set_close("remote_close" if exc.code == 1000 else "dropped", exc.code)
                    return None
                event = self.parser.parse(text)
                if isinstance(event, Start):
                    return event
                if not isinstance(event, (Connected, Media)):
                    self._log_protocol(event)
        self._set_close("no_start", 1008)
        return None

    async def _outbound_context(self, start: Start) -> object | None:
        """Whom we called, on a call we placed (the store's lead row, the dial job)."""
        lookup = self.deps.outbound_context
        if lookup is None or start.lead_number == start.from_number or not start.lead_number:
            return None
        with trio.move_on_after(self.deps.outbound_context_timeout_s):
            try:
                return await lookup(start.lead_number, start.call_sid)
            except Exception as exc:  # noqa: BLE001 - the call goes on with the plain greeting
                log_event("ERROR", logging.WARNING, call_sid=start.call_sid, where="session.outbound_context",
                          error=repr(exc)[:300])
        return None

    def _setup(self, start: Start, context: object | None = None) -> None:
        deps = self.deps
        self.call_sid = start.call_sid
        self.stream_sid = start.stream_sid
        self.phone = start.lead_number  # who the lead is: From, or To on a call we placed
        self.log = CallLog(start.call_sid, self._now_ms)
        self.parser.stream_sid = start.stream_sid  # frames for another stream are dropped and counted
        self.frames = TwilioFrames(start.stream_sid)
        send_nowait = getattr(self.transport, "send_nowait", None)
        self.pacer = Pacer(self.cfg, self._send, self.frames, on_heartbeat=self._on_heartbeat,
                           on_frame=self._on_agent_frame, send_nowait=send_nowait,
                           drain=getattr(self.transport, "drain", None),
                           tick=frame_tick.shared() if send_nowait is not None else None)
        if deps.recordings is not None or deps.live is not None:
            self.tape = CallTape(start.call_sid, self.t0, deps.recordings, deps.live)
            self.inbound.tap = self.tape.caller
        self.recognizer = deps.new_recognizer(deps.language)
        try:  # the recognizer's own ERROR / PROVIDER_SWITCH lines then carry call_sid and t
            self.recognizer.bind_log(self.log)
        except Exception as exc:
            self.log("ERROR", where="recognizer.bind_log", error=repr(exc))
        self.recognizer.on_partial = self._on_partial
        started_at = deps.wall_clock()
        self.brain = deps.new_brain(deps.language, self.phone, started_at.astimezone(JERUSALEM))
        self.brain.bind_call(self.call_sid)
        if context is not None:
            self.brain.call_out(context)
        self.log(
            "CALL_START", stream_sid=start.stream_sid, from_number=start.from_number, to_number=start.to_number,
            language=deps.language, recognizer=self.recognizer.name, synthesizer=deps.synthesizer.name,
            brain=self.brain.name,
        )
        info = CallInfo(start.call_sid, start.stream_sid, start.from_number, start.to_number, started_at)
        self._record(self.deps.recorder.call_started, info)

    async def _finish(self, start: Start | None) -> str:
        """Shielded end of the call: close the socket, log, and always tell the recorder."""
        if self.close_reason in ("agent_hangup", "twilio_stop", "error", "no_start", "shutdown", "inbound_timeout",
                                 "max_duration", "drain", "flood"):
            with trio.move_on_after(1.0):
                try:
                    await self.transport.close(self.close_code, self.close_reason)
                except Exception:  # the peer may be gone already
                    pass
        if start is None:
            self.log("WS_CLOSE", reason=self.close_reason or "no_start", code=self.close_code)
            prom.ws_disconnects_total.labels(reason=self.close_reason or "no_start").inc()
            return "none"
        if self._asr_scope is not None:
            self._asr_scope.cancel()
        reply = self._reply
        if self.recognizer is not None:
            try:
                self.recognizer.cancel_utterance()
            except Exception:
                pass
        if self.machine.state is not T.State.ENDED:
            speaking = self.machine.state is T.State.SPEAKING and hasattr(self, "pacer")
            for action in self.machine.handle(T.Hangup(self.close_reason, self._partial_words() if speaking else 0)):
                if type(action) is T.TellHeard:  # queued before the drain below, so it is stored
                    self._tell_heard(action)
        if reply is not None:
            reply.drop(retract=False)
        duration = trio.current_time() - self.t0
        ended_at = trio.current_time()  # the recording ends here
        self.log("WS_CLOSE", reason=self.close_reason, code=self.close_code)
        prom.ws_disconnects_total.labels(reason=self.close_reason).inc()
        prom.call_duration_seconds.observe(duration)
        prom.turns_per_call.observe(self.metrics.turns)
        brain = self.brain  # None if the call failed while being set up
        lead = brain.lead if brain is not None else LeadState()
        outcome = lead.status
        pacer = getattr(self, "pacer", None)
        self.log(
            "CALL_END", reason=self.close_reason, duration_ms=round(duration * 1000), turns=self.metrics.turns,
            barge_ins=self.metrics.barge_ins, heartbeats=self.metrics.heartbeats, outcome=outcome,
            frames_in=self.inbound.t // FRAME_MS, frames_out=pacer.frames_sent if pacer is not None else 0,
        )
        # The socket is closed (above) before any write is waited for. Now what is queued, in
        # order, then the end: each write bounded on its own (the recorder retries and journals
        # within that), so slow writes before it can never crowd the call's end out.
        self._rec_send.close()
        if self._writer_done is not None:
            await self._writer_done.wait()
        async for method, args in self._rec_recv:  # only if the writer failed (or never ran)
            await self._bounded_record(method, args)
        summary = ""
        if brain is not None:
            try:
                summary = brain.summary()
            except Exception as exc:
                self.log("ERROR", where="brain.summary", error=repr(exc))
        await self._bounded_record(
            self.deps.recorder.call_ended,
            (self.call_sid, self.deps.wall_clock(), self.close_reason, outcome, self.metrics, self.phone,
             lead, summary),
        )
        if brain is not None:  # any way the call ended: release the brain's connections
            with trio.CancelScope(shield=True), trio.move_on_after(BRAIN_CLOSE_TIMEOUT_S) as scope:
                try:
                    await brain.aclose()
                except Exception as exc:
                    self.log("ERROR", where="brain.aclose", error=repr(exc))
            if scope.cancelled_caught:
                self.log("ERROR", where="brain.aclose", error=f"not closed within {BRAIN_CLOSE_TIMEOUT_S}s")
        if self.tape is not None:  # last: the call's own end is stored first
            await self.tape.close(ended_at)
        return outcome

    def _set_close(self, reason: str, code: int) -> None:
        if not self.close_reason:  # the first cause wins; the rest are consequences
            self.close_reason, self.close_code = reason, code

    def _end(self, reason: str, code: int) -> None:
        self._set_close(reason, code)
        if self._cancel is not None:
            self._cancel.cancel()

    async def _guard(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Every task of the call runs under this: any way it ends, ends the call cleanly."""
        try:
            await fn()
        except TransportClosed as exc:
            self._end("remote_close" if exc.code == 1000 else "dropped", exc.code)
        except _EndCall as exc:
            self._end(exc.reason, exc.code)
        except Exception as exc:
            self.log("ERROR", where=getattr(fn, "__name__", "task"), error=repr(exc))
            self._end("error", 1011)

    async def _send(self, text: str) -> None:
        # No lock of ours: the websocket server serializes writes itself (hypercorn holds a
        # send lock per connection), so a `clear` is handed to the transport in the very step
        # that decided it, never queued behind our own bookkeeping.
        await self.transport.send(text)

    # -- recorder (never on the call's hot path) ----------------------------------------------

    def _record(self, method: Callable[..., Awaitable[None]], *args: object) -> None:
        self._rec_send.send_nowait((method, args))

    async def _recorder_task(self) -> None:
        # Never cut short, not even by a shutdown: it ends when _finish closes the queue and
        # everything in it was written (each write bounded), in order. The goodbye's heard
        # report is queued in the very tick the agent hangs up; the call's end comes last.
        assert self._writer_done is not None
        try:
            with trio.CancelScope(shield=True):
                async for method, args in self._rec_recv:
                    await self._bounded_record(method, args)
        finally:
            self._writer_done.set()

    async def _bounded_record(self, method: Callable[..., Awaitable[None]], args: tuple) -> None:
        with trio.move_on_after(self.deps.recorder_timeout_s) as scope:
            await self._call_recorder(method, args)
        if scope.cancelled_caught:
            self.log("ERROR", where=f"recorder.{_method_name(method)}",
                     error=f"no answer within {self.deps.recorder_timeout_s}s")

    async def _call_recorder(self, method: Callable[..., Awaitable[None]], args: tuple) -> None:
        try:
            await method(*args)
        except Exception as exc:  # the store being down must not end the call
            self.log("ERROR", where=f"recorder.{_method_name(method)}", error=repr(exc))

    async def _calibration_timeout(self) -> None:
        # The greeting waits for the line's calibration, which the caller's audio completes.
        # If that audio is late (or one-way), the agent still greets, a little later.
        await trio.sleep((self.cfg.calibration_ms + CALIBRATION_GRACE_MS) / 1000.0)
        if not self.machine.calibrated:
            self.dispatch(T.Calibrated())

    async def _call_limit(self) -> None:
        """The agent's polite end of a call: at MAX_CALL_MINUTES (close reason max_duration) or
        when the server's drain says so (``deps.closing``, close reason drain), the agent says
        the brain's goodbye line and hangs up.

        Kept outside the turn-taking on purpose: the turn machine is told the call is over
        (Hangup, as when the caller hangs up: what was heard of the current turn goes to the
        transcript), the current reply is dropped and cleared at Twilio, and the goodbye is
        synthesized straight into the pacer; once it has played, the call ends."""
        limit = self.deps.max_call_s
        timed = bool(limit) and limit > 0 and not math.isinf(limit)
        closing = self.deps.closing
        if not timed and closing is None:
            return
        reason = "max_duration"
        with trio.move_on_after(limit if timed else math.inf):
            if closing is None:
                await trio.sleep_forever()
            else:
                await closing.wait()
                reason = "drain"
        speaking = self.machine.state is T.State.SPEAKING
        if self.machine.state is not T.State.ENDED:
            for action in self.machine.handle(T.Hangup(reason, self._partial_words() if speaking else 0)):
                if type(action) is T.TellHeard:
                    self._tell_heard(action)
        if self._asr_scope is not None:
            self._asr_scope.cancel()
        if self._reply is not None:
            self._reply.drop(retract=False)
        self.pacer.clear()
        self.pacer.hold(False)
        if self.tape is not None:
            self.tape.cut(min(trio.current_time(), self.pacer.play_end or math.inf))
        await self._send(self.frames.clear())
        line = goodbye_line(self.deps.language)
        started_ms = round(self._now_ms())
        self.log("TTS_START", turn=None, segment=0, latency_ms=None, text=line,
                 cause="max_call_minutes" if reason == "max_duration" else reason)
        with trio.move_on_after(CALL_LIMIT_GOODBYE_S):
            epoch = self.pacer.epoch
            await self.synthesize(line, epoch)
            await self.pacer.write_silence(200, epoch)
            while self.pacer.position > self.pacer.frames_sent or (self.pacer.play_end or 0.0) > trio.current_time():
                await trio.sleep(0.05)
        self._record(self.deps.recorder.transcript_turn, self.call_sid, "agent", line, started_ms,
                     round(self._now_ms()), True)
        raise _EndCall(reason, 1000)

    async def _recognizer_task(self) -> None:
        assert self.recognizer is not None
        try:
            await self.recognizer.run()
        except ProviderError as exc:  # the ASR is gone; end_utterance will fail -> clarify line
            self.provider_error(exc.provider, exc)
            await trio.sleep_forever()

    def provider_error(self, provider: str, exc: BaseException) -> None:
        self.metrics.provider_errors += 1
        prom.provider_errors_total.labels(provider=provider).inc()
        self.log("ERROR", where="provider", provider=provider, error=str(exc)[:300])

    # -- Twilio frames in ----------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        receive = self.transport.receive
        # The raw media socket hands messages over without waking this task (server.frame_tick):
        # in the shared tick's pass while the caller is quiet (up to one period late), or as
        # each one arrives while a barge-in or an end of utterance may be one frame away.
        in_tick = getattr(self.transport, "receive_in_tick", None)
        timeout = self.deps.inbound_timeout_s
        self._bumped = trio.current_time()
        with trio.CancelScope(deadline=self._bumped + timeout) as self._watchdog:
            while True:
                if in_tick is not None:
                    await in_tick(self._on_text, frame_tick.BATCH, self._read_plan)
                    if self._halt is not None:
                        await self._send_clear()
                text = await receive()  # TransportClosed ends the call through the guard
                self._on_text(text, trio.current_time())
                if self._halt is not None:
                    await self._send_clear()
        self.log("ERROR", where="receive", error=f"nothing from Twilio for {timeout:g} s")
        raise _EndCall("inbound_timeout", 1001)

    def _read_mode(self) -> int:
        """How the next messages are read: this task back (a barge-in's `clear` is due), each
        as it arrives (a decision is near; or the stream clock is settling and the transport
        does not stamp arrivals itself), or in the tick's pass."""
        if self._halt is not None:
            return frame_tick.WAKE
        inbound = self.inbound
        if inbound.decision_near or (inbound.settling and not self._stamped):
            return frame_tick.AT_ONCE
        return frame_tick.BATCH

    def _read_plan(self) -> tuple[int, float]:
        """After a read in the tick (once, not per message): how the next messages are read
        (:meth:`_read_mode`) and, in the pass, not before when — once the frames that may wait
        (:meth:`Inbound.frames_to_wait`) have arrived, on the stream clock (0.0: the next pass)."""
        mode = self._read_mode()
        if mode != frame_tick.BATCH:
            return mode, 0.0
        inbound = self.inbound
        k = inbound.frames_to_wait()
        return mode, inbound.clock.clock_s(inbound.t + k * FRAME_MS) if k > 0 else 0.0

    def _on_text(self, text: str, now: float, timed: bool = True) -> int:
        """One Twilio message that arrived at ``now`` (``timed`` False: by then, in the shared
        tick's pass); WAKE when this call's task is needed next (a barge-in's `clear` is due),
        else BATCH (how the next ones are read is :meth:`_read_plan`'s, once per read)."""
        if now - self._bumped >= WATCHDOG_SLACK_S:  # moving a deadline is a heap operation: not on every frame
            self._watchdog.deadline = now + self.deps.inbound_timeout_s + WATCHDOG_SLACK_S  # never before the timeout
            self._bumped = now
        event = self.parser.parse(text)
        if type(event) is Media:
            if not self.inbound.media(event.payload, now, timed):
                self._log_protocol(self.parser._error("media_size", f"payload of {len(event.payload)} bytes"))
            if self.inbound.t > (now - self.t0) * 1000.0 + MAX_AUDIO_AHEAD_MS:
                # Twilio's audio is spoken in real time: it can arrive late (bursts),
                # never ahead. A peer that streams faster only runs up ASR costs.
                self.log("ERROR", where="receive", error="caller audio faster than real time")
                raise _EndCall("flood", 1008)
        elif type(event) is Mark:
            self._on_mark(event.name)
        elif type(event) is Stop:
            raise _EndCall("twilio_stop", 1000)
        elif type(event) is not Dtmf:  # keypad input is not part of this dialog
            self._log_protocol(event)
        return frame_tick.BATCH if self._halt is None else frame_tick.WAKE

    def _log_protocol(self, event: object) -> None:
        # Rate-limited: a peer that sends garbage at 50 frames/s must not flood the log. An
        # unknown event name is logged the first time it is seen (and at most 20 names).
        if isinstance(event, UnknownEvent):
            if not event.first or len(self.parser._unknown_seen) > 20:
                return
            n = 0
        else:
            self._protocol_logged += 1
            n = self._protocol_logged
        if n <= 5 or n % 100 == 0:
            fields = {"kind": getattr(event, "kind", type(event).__name__)}
            if isinstance(event, UnknownEvent):
                fields["name"] = event.name
            elif isinstance(event, ProtocolError):
                fields["detail"] = event.detail
            log_event("PROTOCOL", logging.WARNING, call_sid=self.call_sid, t=round(self._now_ms(), 1),
                      count=n, **fields)

    def _push(self, pcm: bytes) -> None:
        try:
            self.recognizer.push(pcm)  # type: ignore[union-attr]
        except Exception as exc:  # a broken recognizer costs the transcript, not the call
            errors = self.inbound.push_errors + 1
            if errors == 1 or errors % 1000 == 0:
                self.provider_error(getattr(exc, "provider", self.recognizer.name), exc)  # type: ignore[union-attr]
            raise

    def _on_partial(self, transcript: Transcript) -> None:
        if transcript.text.strip():
            self.dispatch(T.PartialText(transcript.text))

    def _on_agent_frame(self, play_at: float, frame: bytearray) -> None:
        stream_ms = self.inbound.clock.stream_ms(play_at)
        self.inbound.agent_frame(ulaw_rms(frame), stream_ms)
        if self.tape is not None:
            self.tape.agent(play_at, frame)

    def _on_mark(self, name: str) -> None:
        if name.startswith("hb"):
            return  # heartbeat echo: proof of life only
        event = self.machine.mark_event(name)
        self.log("MARK_ACK", name=name, stale=event is None)
        if event is None:
            return
        if type(event) is T.PlaybackDone:
            self.playback_over(timed_out=False)
        else:
            self.dispatch(event)

    def playback_over(self, timed_out: bool) -> None:
        """The current segment played to its final mark (or its echo never came)."""
        reply = self._reply
        if reply is not None and reply.played is not None:
            reply.played.set()
        now_ms = round(self.inbound.clock.stream_ms(trio.current_time()))
        final = self.brain is not None and self.brain.finished
        self._agent_stopped(self.inbound.clock.stream_ms(self.pacer.play_end or trio.current_time()))
        event = T.MarkTimeout(now_ms, final) if timed_out else T.PlaybackDone(now_ms, final)
        self.dispatch(event)

    def _stream_now(self) -> int:
        return round(self.inbound.clock.stream_ms(trio.current_time()))

    # -- the agent's turn ----------------------------------------------------------------------

    def _partial_words(self) -> int:
        """Words of the first unconfirmed sentence the caller has heard by now, from the
        playback position (frames sent minus what is still queued at Twilio)."""
        reply = self._reply
        if reply is None:
            return 0
        return reply.partial_words(
            self.machine.agent.acked, self.pacer.played_position(trio.current_time()), self.pacer.position
        )

    def speech_started(self, reply: Reply, segment: int, now: float, text: str) -> None:
        """First frame of a reply segment went out (called by its pacer cue)."""
        if reply is not self._reply or reply.dropped:
            return
        play_end = self.pacer.play_end or now
        audible_ms = round(self.inbound.clock.stream_ms(play_end - FRAME_MS / 1000.0))
        if segment == 0:
            self._turn_started_ms = (now - self.t0) * 1000.0
        if segment == 0 and reply.eou_at is not None:
            latency_ms = (now - reply.eou_at) * 1000.0
            self.metrics.turn_latency_ms.append(round(latency_ms, 2))
            prom.turn_latency_seconds.observe(latency_ms / 1000.0)
        else:
            latency_ms = None
        if segment > 0:
            self.metrics.resumed += 1
            prom.resumed_total.inc()
        if reply.eou_at is not None or segment > 0:
            # dead air: from the end of the caller's voice to the agent heard again
            voice_end = self.inbound.voice_ended_ms
            if voice_end > self._agent_audible_end_ms:
                dead_ms = max(0.0, audible_ms - voice_end)
                self.metrics.dead_air_ms.append(round(dead_ms, 1))
                prom.dead_air_seconds.observe(dead_ms / 1000.0)
        self.inbound.talk_over_ms = 0
        self.log("TTS_START", turn=reply.turn, segment=segment,
                 latency_ms=round(latency_ms, 1) if latency_ms is not None else None, text=text)
        self.dispatch(T.SpeechStarted(reply.turn, audible_ms))

    def _agent_stopped(self, audible_end_ms: float) -> None:
        """The agent's audio stopped at the caller (end of a segment, or a halt)."""
        self._agent_audible_end_ms = audible_end_ms
        talk = self.inbound.talk_over_ms
        self.inbound.talk_over_ms = 0
        if talk > 0:
            self.metrics.talk_over_ms.append(talk)
            prom.talk_over_seconds.observe(talk / 1000.0)

    def _start_reply(self, turn: int, sentences: AsyncIterator[str], eou_at: float | None,
                     lead_before: object | None) -> None:
        assert self._nursery is not None
        previous = self._reply
        reply = Reply(self, turn, sentences, eou_at, lead_before, previous.produced if previous else None)
        self._reply = reply
        self._nursery.start_soon(self._guard, reply.produce)
        self._nursery.start_soon(self._guard, lambda: reply.speak(0, 0, 0))

    async def synthesize(self, text: str, epoch: int) -> tuple[int, int]:
        """Synthesize ``text`` into the pacer; returns the pacer positions (frames) where its
        audible part starts and ends, so a cut can be placed among its words (the TTS's own
        leading and trailing silence is not speech the caller could have heard)."""
        synth = self.deps.synthesizer
        start = self.pacer.position  # a cue before each sentence put it on a frame edge
        done = 0  # samples written
        first = last = -1
        try:
            async for chunk in synth.synthesize(text):
                samples = np.frombuffer(chunk, dtype="<i2", count=len(chunk) // 2)
                loud = np.flatnonzero((samples > AUDIBLE_PEAK) | (samples < -AUDIBLE_PEAK))
                if loud.size:
                    if first < 0:
                        first = done + int(loud[0])
                    last = done + int(loud[-1]) + 1
                done += len(samples)
                if not await self.pacer.write_pcm16(chunk, epoch):
                    break
        except Exception as exc:  # this sentence is lost; the turn goes on
            self.provider_error(getattr(exc, "provider", synth.name), exc)
        if first < 0:
            return -1, -1
        return start + first // FRAME_SAMPLES, start + -(-last // FRAME_SAMPLES)

    def clarify_line(self) -> str:
        return _clarify(self.deps.language)

    def lead_changed(self, brain: Brain) -> None:
        # the brain's words are what a crash recovery sends if the call never reaches call_ended
        try:
            summary: str | None = brain.summary()
        except Exception as exc:
            summary = None
            self.log("ERROR", where="brain.summary", error=repr(exc))
        self._record(self.deps.recorder.lead_updated, self.call_sid, self.phone, copy.deepcopy(brain.lead), summary)
        if brain.lead.status == "meeting_booked" and self.metrics.turns_to_meeting is None:
            self.metrics.turns_to_meeting = self.metrics.turns
            prom.turns_to_meeting.observe(self.metrics.turns)

    # -- the caller's turn ---------------------------------------------------------------------

    async def _recognize(self, scope: trio.CancelScope, utt: T.FinishUtterance, eou_at: float) -> None:
        recognizer = self.recognizer
        assert recognizer is not None
        with scope:
            failed = False
            try:
                with trio.fail_after(self.deps.asr_timeout_s):
                    transcript = await recognizer.end_utterance(utt.onset_ms, utt.eou_ms)
            except trio.TooSlowError:
                self.provider_error(recognizer.name, TimeoutError(f"no final within {self.deps.asr_timeout_s}s"))
                transcript, failed = Transcript("", 0.0, provider=recognizer.name), True
            except Exception as exc:  # ProviderError, or a provider bug: the caller is asked to repeat
                self.provider_error(getattr(exc, "provider", recognizer.name), exc)
                transcript, failed = Transcript("", 0.0, provider=recognizer.name), True
            latency_ms = (trio.current_time() - eou_at) * 1000.0
            if not failed:
                self.metrics.asr_latency_ms.append(round(latency_ms, 2))
                prom.asr_latency_seconds.observe(latency_ms / 1000.0)
            self.log("ASR_TEXT", text=transcript.text, confidence=round(transcript.confidence, 3),
                     latency_ms=round(latency_ms, 1), provider=transcript.provider or recognizer.name, failed=failed)
            self._record(self.deps.recorder.transcript_turn, self.call_sid, "caller", transcript.text,
                         utt.onset_ms, utt.eou_ms, True)
            if self.tape is not None and self.tape.listeners:
                self.tape.line({"type": "line", "speaker": "caller", "text": transcript.text,
                                "t_start_ms": utt.onset_ms, "t_end_ms": utt.eou_ms, "heard_fully": True})
            self.dispatch(T.AsrFinal(utt.seq, transcript.text, transcript.confidence, failed, self._stream_now()))

    # -- executing the machine's actions -------------------------------------------------------

    def dispatch(self, event: T.TurnEvent) -> None:
        """Hand an event to the turn machine and carry out what it decides."""
        if type(event) is T.EndOfUtterance:
            self._log_eou(event)
        self._execute(self.machine.handle(event))

    def _log_eou(self, event: T.EndOfUtterance) -> None:
        onset = self.machine.utterance_onset_ms
        onset = event.onset_ms if onset is None or self.machine.utt is None or not self.machine.utt.open else onset
        self.log("EOU", onset_ms=onset, eou_ms=event.eou_ms, length_ms=event.eou_ms - onset,
                 silence_ms=self.inbound.eou.silence_ms, forced=event.forced, voiced_ms=event.voiced_ms,
                 state=self.machine.state.value)

    def _execute(self, actions: list[T.Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is T.StateChanged:
                self.log("STATE_CHANGE", from_state=action.old.value, to_state=action.new.value, cause=action.cause)
                if self.tape is not None and self.tape.listeners:
                    self.tape.line({"type": "state", "state": action.new.value, "t_ms": round(self._now_ms())})
            elif kind is T.BeginUtterance:
                try:
                    self.recognizer.begin_utterance(action.onset_ms)  # type: ignore[union-attr]
                except Exception as exc:  # end_utterance will fail too -> the clarify line
                    self.provider_error(getattr(exc, "provider", self.recognizer.name), exc)  # type: ignore[union-attr]
            elif kind is T.OpenUtterance:
                self.inbound.open_utterance(action.onset_ms, action.voiced_ms, action.min_utt_ms)
            elif kind is T.CloseUtterance:
                self.inbound.eou.reset()
            elif kind is T.FinishUtterance:
                self._finish_utterance(action)
            elif kind is T.CancelRecognition:
                if self._asr_scope is not None:
                    self._asr_scope.cancel()
                    self._asr_scope = None
                try:
                    self.recognizer.cancel_utterance()  # type: ignore[union-attr]
                except Exception:
                    pass
            elif kind is T.SpeakGreeting:
                assert self.brain is not None
                self._start_reply(self.machine.turn_no, self._greeting(), None, None)
            elif kind is T.Respond:
                self._respond(action)
            elif kind is T.ArmBargeIn:
                self.inbound.barge.arm(action.audible_ms)
            elif kind is T.Halt:
                self._halt_now(action)
            elif kind is T.DropReply:
                if self._reply is not None:
                    self._reply.drop(action.retract)
                if action.retract:  # that turn is taken back: the merged one will be answered
                    self.metrics.turns -= 1
                    self.metrics.continuations += 1
                    prom.continuations_total.inc()
            elif kind is T.Resume:
                reply = self._reply
                if reply is not None and reply.turn == action.turn and not reply.dropped:
                    assert self._nursery is not None
                    self._nursery.start_soon(
                        self._guard, lambda r=reply, a=action: r.speak(a.segment, a.index, a.word))
            elif kind is T.HoldPlayback:
                self.pacer.hold(action.on)
            elif kind is T.SetHold:
                self.inbound.eou.hold = action.on
            elif kind is T.TellHeard:
                self._tell_heard(action)
            elif kind is T.Listen:
                self.inbound.eou.reset()
                self.inbound.barge.disarm()
                if action.cycle_done:
                    self.metrics.state_cycles += 1
                    prom.state_cycles_total.inc()
            elif kind is T.Ignored:
                if action.kind == "resumed":
                    self.metrics.false_interruptions += 1
                    prom.false_interruptions_total.inc()
                else:
                    self.metrics.ignored += 1
                    prom.utterances_ignored_total.inc()
            elif kind is T.EndCall:
                self._end(action.reason, 1000)
            elif kind is T.Rejected:
                self.log("ERROR", where="turn", state=action.state.value, rejected_event=action.event)

    def _finish_utterance(self, action: T.FinishUtterance) -> None:
        assert self._nursery is not None
        now = trio.current_time()
        self._eou_at = now
        if self._asr_scope is not None:
            self._asr_scope.cancel()
        scope = self._asr_scope = trio.CancelScope()
        self._nursery.start_soon(self._guard, lambda: self._recognize(scope, action, now))  # locals: bound now

    def _respond(self, action: T.Respond) -> None:
        brain = self.brain
        assert brain is not None
        self.metrics.turns += 1
        if action.asr_failed:
            self._start_reply(action.turn, one_line(self.clarify_line()), self._eou_at, None)
            return
        before = copy.deepcopy(brain.lead)
        turn = CallerTurn(action.text, action.confidence, action.interrupted_agent)
        self._start_reply(action.turn, guarded_sentences(lambda: brain.respond(turn)), self._eou_at, before)

    async def _greeting(self) -> AsyncIterator[str]:
        """The recording notice (RECORDING_NOTICE), then the brain's greeting."""
        if self.deps.recording_notice:
            yield self.deps.recording_notice
        async for sentence in guarded_sentences(self.brain.opening):  # type: ignore[union-attr]
            yield sentence

    def _halt_now(self, halt: T.Halt) -> None:
        # Same tick as the trigger: stop production, drop the TX queue; `clear` goes out right
        # after this frame is processed (the receive loop sends it before the next frame).
        now = trio.current_time()
        play_end = self.pacer.play_end  # what was sent plays until then, unless `clear` comes first
        heard_until = min(now, play_end) if play_end is not None else now
        if self._reply is not None:
            self._reply.stop_speaking()
        self.pacer.clear()
        self.inbound.barge.disarm()
        stop_ms = self.inbound.clock.stream_ms(heard_until)
        self.inbound.echo.cut(int(stop_ms) // FRAME_MS * FRAME_MS + FRAME_MS)
        if self.tape is not None:
            self.tape.cut(heard_until)
        if halt.barge_in:
            # the barge-in's own overlap (onset -> halt) is its halt time, not talk-over
            self.inbound.talk_over_ms = max(0, self.inbound.talk_over_ms - max(0, halt.trigger_ms - halt.onset_ms))
        self._agent_stopped(stop_ms)
        self._halt = (halt, now, play_end if play_end is not None else now)

    async def _send_clear(self) -> None:
        assert self._halt is not None
        halt, halted_at, play_end = self._halt
        self._halt = None
        await self._send(self.frames.clear())
        sent = trio.current_time()
        if not halt.barge_in:
            return  # a collision or a continuation: the agent yielded, nothing to measure as a barge-in
        clock = self.inbound.clock
        # As the caller heard it: from their voice onset to the agent's last audible sample
        # (the `clear` reaching Twilio, or the end of what was queued there if that came first).
        stop = min(sent, play_end)
        halt_ms = (stop - clock.clock_s(halt.onset_ms)) * 1000.0
        # "Clean": the agent went quiet within a frame of the moment the rule was met (the trigger
        # frame's audio could have reached us); late = frames arrived late (a burst) or we were slow.
        clean = (stop - clock.clock_s(halt.trigger_ms)) * 1000.0 <= FRAME_MS
        self.metrics.barge_ins += 1
        self.metrics.halt_ms.append(round(halt_ms, 2))
        if clean:
            self.metrics.barge_ins_clean += 1
        prom.barge_ins_total.labels(outcome="clean" if clean else "late").inc()
        prom.interrupt_halt_seconds.observe(halt_ms / 1000.0)
        self.log("BARGE_IN", onset_ms=halt.onset_ms, trigger_ms=halt.trigger_ms, halt_ms=round(halt_ms, 2),
                 clear_after_trigger_ms=round((sent - halted_at) * 1000.0, 3), clean=clean)

    def _tell_heard(self, heard: T.TellHeard) -> None:
        assert self.brain is not None
        try:
            self.brain.heard(heard.said, heard.heard_fully)
        except Exception as exc:
            self.log("ERROR", where="brain.heard", error=repr(exc))
        self._record(self.deps.recorder.transcript_turn, self.call_sid, "agent", heard.said,
                     round(self._turn_started_ms), round(self._now_ms()), heard.heard_fully)
        if self.tape is not None and self.tape.listeners:
            self.tape.line({"type": "line", "speaker": "agent", "text": heard.said,
                            "t_start_ms": round(self._turn_started_ms), "t_end_ms": round(self._now_ms()),
                            "heard_fully": heard.heard_fully})

    def _on_heartbeat(self, name: str, with_silence: bool) -> None:
        self.metrics.heartbeats += 1
        self.log("WS_KEEPALIVE", mark=name, idle_silence=with_silence)
