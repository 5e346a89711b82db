"""One phone call, from Twilio's first frame to the close: :func:`run_call`.

A call is one trio nursery. Its tasks: the receive loop (inbound audio -> detectors ->
recognizer, mark echoes, `stop`), the :class:`~server.pacer.Pacer` (outbound frames, marks,
keepalive), the recognizer's own ``run``, the recorder writer, and at most one reply task at
a time (ASR final -> brain -> TTS -> pacer) inside its own cancel scope so a barge-in can
drop it. The :class:`~server.turn.TurnMachine` decides; this module executes its actions.

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

import trio

from dialog.base import CLARIFY_EN, CLARIFY_HE, Brain, CallerTurn, LeadState
from leads import metrics as prom
from leads.base import CallInfo, CallMetrics, CallRecorder
from native.codec import decode_with_energy
from native.config import FRAME_MS, FRAME_PCM_BYTES, FRAME_ULAW_BYTES, TimingConfig
from native.framer import Framer
from native.vad import EOU_END, EOU_FORCED, EOU_ONSET, BargeInDetector, EouDetector, FrameClassifier
from server import turn as T
from server.logs import CallLog, log_event
from server.pacer import Pacer
from server.transport import Transport, TransportClosed
from server.twilio_codec import (
    Connected, Dtmf, Mark, Media, ProtocolError, Start, Stop, TwilioFrames, TwilioParser, UnknownEvent,
)
from speech.base import ProviderError, Recognizer, Synthesizer, Transcript

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
    start_timeout_s: float = 15.0  # connected/start must arrive this soon after the upgrade
    recorder_timeout_s: float = 10.0  # the shielded end-of-call writes
    # Twilio sends caller audio every 20 ms for the whole call: nothing at all for this long
    # means the path died without a FIN/RST, and the call must end rather than hang.
    inbound_timeout_s: float = 15.0
    wall_clock: Callable[[], dt.datetime] = _utcnow  # aware UTC; injectable for tests


@dataclass
class CallResult:
    call_sid: str
    stream_sid: str
    # twilio_stop | agent_hangup | remote_close | dropped | inbound_timeout | no_start | error | shutdown
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


BRAIN_CLOSE_TIMEOUT_S = 2.0  # brain.aclose at the end of a call (e.g. its HTTP client)


def _method_name(method: Callable[..., object]) -> str:
    return getattr(method, "__name__", "?")


def _clarify(language: str) -> str:
    return CLARIFY_HE if language.startswith(("he", "iw")) else CLARIFY_EN


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
        self.machine = T.TurnMachine()
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
        self._send_lock = trio.Lock()
        self._cancel: trio.CancelScope | None = None
        self._reply_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        # inbound hot path: preallocated buffers, stream time advances 20 ms per frame
        self._pcm = bytearray(FRAME_PCM_BYTES)
        self._ulaw = bytearray(FRAME_ULAW_BYTES)
        self._in_framer = Framer(50)  # only for payloads that are not exactly 20 ms
        self._t_in = 0
        self._last_eou_ms = 0
        self._push_errors = 0
        self.classifier = FrameClassifier(self.cfg)
        self.eou = EouDetector(self.cfg)
        self.barge = BargeInDetector(self.cfg)
        self._halt: T.Halt | None = None  # set by the frame that triggered barge-in
        self._halt_at = 0.0
        self._played: trio.Event | None = None  # the final mark of the current reply came back
        self._speech_started_at = 0.0
        self._spans: list[list[int]] = []  # [first frame, end frame] of each sentence of the reply
        self._rec_send, self._rec_recv = trio.open_memory_channel[tuple](math.inf)
        self._protocol_logged = 0

    def _now_ms(self) -> float:
        return (trio.current_time() - self.t0) * 1000.0

    # -- lifecycle -----------------------------------------------------------------------------

    async def run(self) -> CallResult:
        # ws_connections_total is counted by the app when it accepts the websocket.
        start: Start | None = None
        lead_outcome = "none"
        try:
            start = await self._await_start()
            if start is None:
                return self._result()
            self._setup(start)
            prom.calls_active.inc()
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    self._cancel = nursery.cancel_scope
                    nursery.start_soon(self._guard, self._recorder_task)
                    nursery.start_soon(self._guard, self._recognizer_task)
                    nursery.start_soon(self._guard, self.pacer.run)
                    nursery.start_soon(self._guard, self._receive_loop)
                    self._execute(self.machine.handle(T.CallStarted()))
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
                lead_outcome = await self._finish(start)
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
            frames_in=self._t_in // FRAME_MS,
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

    def _setup(self, start: Start) -> None:
        deps = self.deps
        self.call_sid = start.call_sid
        self.stream_sid = start.stream_sid
        self.phone = start.lead_number  # who the lead is: From, or To on a call we placed
        self.log = CallLog(start.call_sid, self._now_ms)
        self.frames = TwilioFrames(start.stream_sid)
        self.pacer = Pacer(self.cfg, self._send, self.frames, on_heartbeat=self._on_heartbeat)
        self.recognizer = deps.new_recognizer(deps.language)
        try:  # the recognizer's own ERROR / PROVIDER_SWITCH lines then carry call_sid and t
            self.recognizer.bind_log(self.log)
        except Exception as exc:
            self.log("ERROR", where="recognizer.bind_log", error=repr(exc))
        started_at = deps.wall_clock()
        self.brain = deps.new_brain(deps.language, self.phone, started_at.astimezone(JERUSALEM))
        self.log(
            "CALL_START", stream_sid=start.stream_sid, from_number=start.from_number, to_number=start.to_number,
            language=deps.language, recognizer=self.recognizer.name, synthesizer=deps.synthesizer.name,
            brain=self.brain.name,
        )
        info = CallInfo(start.call_sid, start.stream_sid, start.from_number, start.to_number, started_at)
        self._record(self.deps.recorder.call_started, info)

    async def _finish(self, start: Start | None) -> str:
        """Shielded end of the call: close the socket, log, and always tell the recorder."""
        if self.close_reason in ("agent_hangup", "twilio_stop", "error", "no_start", "shutdown", "inbound_timeout"):
            with trio.move_on_after(1.0):
                try:
                    await self.transport.close(self.close_code, self.close_reason)
                except Exception:  # the peer may be gone already
                    pass
        if start is None:
            self.log("WS_CLOSE", reason=self.close_reason or "no_start", code=self.close_code)
            prom.ws_disconnects_total.labels(reason=self.close_reason or "no_start").inc()
            return "none"
        if self._reply_scope is not None:
            self._reply_scope.cancel()
        if self.recognizer is not None:
            try:
                self.recognizer.cancel_utterance()
            except Exception:
                pass
        speaking = self.machine.state is T.State.SPEAKING and hasattr(self, "pacer")
        for action in self.machine.handle(T.Hangup(self.close_reason, self._partial_words() if speaking else 0)):
            if type(action) is T.TellHeard:  # queued before the drain below, so it is stored
                self._tell_heard(action)
        duration = trio.current_time() - self.t0
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
            frames_in=self._t_in // FRAME_MS, frames_out=pacer.frames_sent if pacer is not None else 0,
        )
        with trio.move_on_after(self.deps.recorder_timeout_s):
            # what the writer task did not get to before it was cancelled, in order
            self._rec_send.close()
            async for method, args in self._rec_recv:
                await self._call_recorder(method, args)
            summary = ""
            if brain is not None:
                try:
                    summary = brain.summary()
                except Exception as exc:
                    self.log("ERROR", where="brain.summary", error=repr(exc))
            await self._call_recorder(
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
        async with self._send_lock:
            await self.transport.send(text)

    # -- recorder (never on the call's hot path) ----------------------------------------------

    def _record(self, method: Callable[..., Awaitable[None]], *args: object) -> None:
        self._rec_send.send_nowait((method, args))

    async def _recorder_task(self) -> None:
        async for method, args in self._rec_recv:
            # A write taken off the queue is finished even if the call ends meanwhile: the
            # goodbye's heard report is queued in the very tick the agent hangs up, and a
            # cancelled write would be lost (the end-of-call drain only sees what is queued).
            with trio.CancelScope(shield=True):
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

    async def _recognizer_task(self) -> None:
        assert self.recognizer is not None
        try:
            await self.recognizer.run()
        except ProviderError as exc:  # the ASR is gone; end_utterance will fail -> clarify line
            self._provider_error(exc.provider, exc)
            await trio.sleep_forever()

    def _provider_error(self, provider: str, exc: BaseException) -> None:
        self.metrics.provider_errors += 1
        prom.provider_errors_total.labels(provider=provider).inc()
        self.log("ERROR", where="provider", provider=provider, error=str(exc)[:300])

    # -- inbound -------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        receive = self.transport.receive
        parse = self.parser.parse
        timeout = self.deps.inbound_timeout_s
        with trio.CancelScope(deadline=trio.current_time() + timeout) as watchdog:
            while True:
                text = await receive()  # TransportClosed ends the call through the guard
                watchdog.deadline = trio.current_time() + timeout
                event = parse(text)
                if type(event) is Media:
                    self._on_media(event.payload)
                    if self._halt is not None:
                        await self._send_clear()
                elif type(event) is Mark:
                    self._on_mark(event.name)
                elif type(event) is Stop:
                    raise _EndCall("twilio_stop", 1000)
                elif type(event) is Dtmf:
                    continue  # keypad input is not part of this dialog
                else:
                    self._log_protocol(event)
        self.log("ERROR", where="receive", error=f"nothing from Twilio for {timeout:g} s")
        raise _EndCall("inbound_timeout", 1001)

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

    def _on_media(self, payload: bytes) -> None:
        if len(payload) == FRAME_ULAW_BYTES:
            self._frame(decode_with_energy(payload, self._pcm))
            return
        try:  # Twilio sends 20 ms; anything else is re-cut into 20 ms frames
            self._in_framer.write_ulaw(payload)
        except BufferError:
            self._log_protocol(self.parser._error("media_size", f"payload of {len(payload)} bytes"))
            return
        while self._in_framer.read_frame(self._ulaw):
            self._frame(decode_with_energy(self._ulaw, self._pcm))

    def _frame(self, rms: float) -> None:
        t = self._t_in
        self._t_in = t + FRAME_MS
        try:
            self.recognizer.push(bytes(self._pcm))  # type: ignore[union-attr]
        except Exception as exc:  # a broken recognizer costs the transcript, not the call
            self._push_errors += 1
            if self._push_errors == 1 or self._push_errors % 1000 == 0:
                self._provider_error(getattr(exc, "provider", self.recognizer.name), exc)  # type: ignore[union-attr]
        voice = self.classifier.update(rms, t)
        # fed every frame: it tracks the real voice onset; the classifier tells both detectors
        # when its run really began, so durations are real time, not hysteresis-delayed
        fired = self.barge.update(voice, t, self.classifier)
        state = self.machine.state
        if state is T.State.LISTENING:
            r = self.eou.update(voice, rms, t, self.classifier)
            if r == EOU_ONSET:
                self._execute(self.machine.handle(T.VoiceOnset(self.eou.onset_ms)))
            elif r == EOU_END or r == EOU_FORCED:
                eou_ms = t + FRAME_MS
                self._last_eou_ms = eou_ms
                onset = self.machine.utterance_onset_ms
                onset = self.eou.onset_ms if onset is None else min(onset, self.eou.onset_ms)
                self.log("EOU", onset_ms=onset, eou_ms=eou_ms, length_ms=eou_ms - onset,
                         silence_ms=self.eou.silence_ms, forced=r == EOU_FORCED)
                self._execute(self.machine.handle(T.EndOfUtterance(self.eou.onset_ms, eou_ms, r == EOU_FORCED)))
        elif fired and state is T.State.SPEAKING:
            self._halt_at = trio.current_time()
            # A voice run that began before the last EOU (the caller talked through a forced
            # end) belongs to the previous utterance up to that EOU.
            onset = max(self.barge.onset_ms, self._last_eou_ms)
            self._execute(self.machine.handle(T.BargeIn(onset, t + FRAME_MS, self._partial_words())))

    def _partial_words(self) -> int:
        """Words of the first unconfirmed sentence the caller has heard by now, from the
        playback position (frames sent minus what is still queued at Twilio)."""
        index = self.machine.agent.acked
        if index >= len(self._spans) or index >= len(self.machine.agent.sentences):
            return 0
        start, end = self._spans[index]
        end = end if end >= 0 else self.pacer.position
        played = self.pacer.played_position(trio.current_time())
        if end <= start or played <= start:
            return 0
        fraction = min(1.0, (played - start) / (end - start))
        return int(fraction * len(self.machine.agent.sentences[index].split()))

    def _on_mark(self, name: str) -> None:
        if name.startswith("hb"):
            return  # heartbeat echo: proof of life only
        event = self.machine.mark_event(name)
        self.log("MARK_ACK", name=name, stale=event is None)
        if event is not None:
            if type(event) is T.PlaybackDone and self._played is not None:
                self._played.set()
            self._execute(self.machine.handle(event))

    # -- executing the machine's actions -------------------------------------------------------

    def _execute(self, actions: list[T.Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is T.StateChanged:
                self.log("STATE_CHANGE", from_state=action.old.value, to_state=action.new.value, cause=action.cause)
            elif kind is T.BeginUtterance:
                try:
                    self.recognizer.begin_utterance(action.onset_ms)  # type: ignore[union-attr]
                except Exception as exc:  # end_utterance will fail too -> the clarify line
                    self._provider_error(getattr(exc, "provider", self.recognizer.name), exc)  # type: ignore[union-attr]
            elif kind is T.SpeakGreeting:
                self._start_reply(None, trio.current_time())
            elif kind is T.FinishUtterance:
                self._start_reply(action, trio.current_time())
            elif kind is T.ArmBargeIn:
                self.barge.arm(self._t_in)
            elif kind is T.Halt:
                self._barge_in(action)
            elif kind is T.TellHeard:
                self._tell_heard(action)
            elif kind is T.Listen:
                self.eou.reset()
                self.barge.disarm()
                if action.cycle_done:
                    self.metrics.state_cycles += 1
                    prom.state_cycles_total.inc()
                if self.brain is not None and self.brain.finished:
                    self._end("agent_hangup", 1000)
            elif kind is T.Rejected:
                self.log("ERROR", where="turn", state=action.state.value, rejected_event=action.event)
            # Respond is read by the reply task that handed in AsrFinal.

    def _barge_in(self, halt: T.Halt) -> None:
        # Same tick as the trigger: stop production, drop the TX queue; `clear` goes out right
        # after this frame is processed (the receive loop awaits it before the next frame).
        if self._reply_scope is not None:
            self._reply_scope.cancel()
        self.pacer.clear()
        self._halt = halt

    async def _send_clear(self) -> None:
        halt = self._halt
        assert halt is not None
        self._halt = None
        await self._send(self.frames.clear())
        sent = trio.current_time()
        halt_ms = (halt.trigger_ms - halt.onset_ms) + (sent - self._halt_at) * 1000.0
        # Voice inside the grace window is ignored by rule, so "clean" is judged from the
        # window's end: the detector's own minimum plus one frame of processing.
        counted_from = max(halt.onset_ms, self.barge.armed_at + self.cfg.barge_in_grace_ms)
        clean = (halt.trigger_ms - counted_from) + (sent - self._halt_at) * 1000.0 <= (
            self.cfg.barge_in_min_voice_ms + FRAME_MS
        )
        self.metrics.barge_ins += 1
        self.metrics.halt_ms.append(round(halt_ms, 2))
        if clean:
            self.metrics.barge_ins_clean += 1
        prom.barge_ins_total.labels(outcome="clean" if clean else "late").inc()
        prom.interrupt_halt_seconds.observe(halt_ms / 1000.0)
        self.log("BARGE_IN", onset_ms=halt.onset_ms, trigger_ms=halt.trigger_ms, halt_ms=round(halt_ms, 2),
                 clear_after_trigger_ms=round((sent - self._halt_at) * 1000.0, 3), clean=clean)

    def _tell_heard(self, heard: T.TellHeard) -> None:
        assert self.brain is not None
        try:
            self.brain.heard(heard.said, heard.heard_fully)
        except Exception as exc:
            self.log("ERROR", where="brain.heard", error=repr(exc))
        start_ms = (self._speech_started_at - self.t0) * 1000.0
        self._record(self.deps.recorder.transcript_turn, self.call_sid, "agent", heard.said,
                     round(start_ms), round(self._now_ms()), heard.heard_fully)

    def _on_heartbeat(self, name: str, with_silence: bool) -> None:
        self.metrics.heartbeats += 1
        self.log("WS_KEEPALIVE", mark=name, idle_silence=with_silence)

    # -- a reply: ASR final -> brain -> TTS -> pacer --------------------------------------------

    def _start_reply(self, utterance: T.FinishUtterance | None, eou_at: float) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._reply_scope = scope
        self._nursery.start_soon(self._guard, lambda: self._reply(scope, utterance, eou_at))

    async def _reply(self, scope: trio.CancelScope, utterance: T.FinishUtterance | None, eou_at: float) -> None:
        with scope:
            brain = self.brain
            assert brain is not None
            if utterance is None:
                await self._speak(_guarded_sentences(brain.opening), eou_at, None)
                return
            transcript, failed = await self._recognize(utterance, eou_at)
            respond = next(
                (a for a in self.machine.handle(T.AsrFinal(transcript.text, transcript.confidence, failed))
                 if isinstance(a, T.Respond)),
                None,
            )
            if respond is None:
                return
            self.metrics.turns += 1
            if failed:
                await self._speak(_one(_clarify(self.deps.language)), eou_at, None)
                return
            before = copy.deepcopy(brain.lead)
            turn = CallerTurn(respond.text, respond.confidence, respond.interrupted_agent)
            await self._speak(_guarded_sentences(lambda: brain.respond(turn)), eou_at, before)

    async def _recognize(self, utt: T.FinishUtterance, eou_at: float) -> tuple[Transcript, bool]:
        recognizer = self.recognizer
        assert recognizer is not None
        failed = False
        try:
            with trio.fail_after(self.deps.asr_timeout_s):
                transcript = await recognizer.end_utterance(utt.onset_ms, utt.eou_ms)
        except trio.TooSlowError:
            self._provider_error(recognizer.name, TimeoutError(f"no final within {self.deps.asr_timeout_s}s"))
            transcript, failed = Transcript("", 0.0, provider=recognizer.name), True
        except Exception as exc:  # ProviderError, or a provider bug: the caller is asked to repeat
            self._provider_error(getattr(exc, "provider", recognizer.name), exc)
            transcript, failed = Transcript("", 0.0, provider=recognizer.name), True
        latency_ms = (trio.current_time() - eou_at) * 1000.0
        if not failed:
            self.metrics.asr_latency_ms.append(round(latency_ms, 2))
            prom.asr_latency_seconds.observe(latency_ms / 1000.0)
        self.log("ASR_TEXT", text=transcript.text, confidence=round(transcript.confidence, 3),
                 latency_ms=round(latency_ms, 1), provider=transcript.provider or recognizer.name, failed=failed)
        self._record(self.deps.recorder.transcript_turn, self.call_sid, "caller", transcript.text,
                     utt.onset_ms, utt.eou_ms, True)
        return transcript, failed

    async def _speak(self, sentences: AsyncIterator[str], eou_at: float, lead_before: object | None) -> None:
        """Synthesize each sentence as it arrives and queue it; marks between sentences, then
        tail silence and the final mark; back to LISTENING on its echo or the timeout."""
        pacer = self.pacer
        epoch = pacer.epoch
        turn_no = self.machine.turn_no
        is_reply = lead_before is not None or self.machine.turn_no > 1
        first_position = pacer.position
        texts: list[str] = []  # the reply's sentences as they go to synthesis

        def on_first_frame(now: float) -> None:
            self._speech_started_at = now
            if is_reply:
                latency_ms = (now - eou_at) * 1000.0
                self.metrics.turn_latency_ms.append(round(latency_ms, 2))
                prom.turn_latency_seconds.observe(latency_ms / 1000.0)
            # text: the sentence now starting to play (the rest of a streamed reply is not made
            # yet; each sentence's MARK_SENT carries its own text)
            self.log("TTS_START", turn=turn_no, latency_ms=round((now - eou_at) * 1000.0, 1) if is_reply else None,
                     text=texts[0] if texts else "")
            self._execute(self.machine.handle(T.SpeechStarted(self._now_ms())))

        pacer.cue(epoch, callback=on_first_frame, after_frames=1)
        self._spans = []
        send_text, receive_text = trio.open_memory_channel[str](math.inf)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._produce_sentences, sentences, send_text, lead_before)
            index = 0
            async with receive_text:
                async for text in receive_text:
                    self._execute(self.machine.handle(T.Sentence(index, text)))
                    texts.append(text)
                    span = [pacer.position, -1]
                    self._spans.append(span)
                    await self._synthesize(text, epoch)
                    name = T.sentence_mark(turn_no, index)
                    pacer.cue(epoch, mark=name, callback=lambda now, n=name, t=text: self.log("MARK_SENT", name=n, text=t))
                    span[1] = pacer.position
                    index += 1
        audio_end = pacer.position
        pacer.cue(epoch, callback=lambda now: self.log("TTS_END", turn=turn_no, frames=audio_end - first_position))
        await pacer.write_silence(self.cfg.tail_silence_ms, epoch)
        played = self._played = trio.Event()
        mark_sent = trio.Event()
        final = T.final_mark(turn_no)

        def on_final_sent(now: float) -> None:
            self.log("MARK_SENT", name=final)
            mark_sent.set()

        pacer.cue(epoch, mark=final, callback=on_final_sent)
        await mark_sent.wait()
        with trio.move_on_after(self.cfg.mark_timeout_ms / 1000.0):
            await played.wait()
            return
        self.log("ERROR", where="mark", name=final, error="mark echo timeout")
        self._execute(self.machine.handle(T.MarkTimeout()))

    async def _produce_sentences(
        self, sentences: AsyncIterator[str], out: trio.MemorySendChannel[str], lead_before: object | None
    ) -> None:
        brain = self.brain
        assert brain is not None
        try:
            await self._stream_sentences(brain, sentences, out)
        finally:
            # Also when a barge-in cancels the reply while the brain is still streaming: the
            # brain updated the lead from the caller's turn before it spoke, and that update
            # (what a crash recovery sends) must not wait for some later turn or the call's end.
            if lead_before is not None and brain.lead != lead_before:
                self._lead_changed(brain)

    async def _stream_sentences(
        self, brain: Brain, sentences: AsyncIterator[str], out: trio.MemorySendChannel[str]
    ) -> None:
        produced = 0
        async with out:
            try:
                iterator = sentences.__aiter__()
                while True:
                    with trio.fail_after(self.deps.brain_timeout_s):
                        try:
                            text = await iterator.__anext__()
                        except StopAsyncIteration:
                            break
                    if text.strip():
                        produced += 1
                        out.send_nowait(text)
            except Exception as exc:  # brain failure: never silence; say the clarify line
                self._provider_error(getattr(exc, "provider", brain.name), exc)
            finally:
                aclose = getattr(sentences, "aclose", None)
                if aclose is not None:
                    with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                        try:
                            await aclose()
                        except Exception:
                            pass
            if produced == 0:  # a turn always gets an answer, at worst the clarify line
                out.send_nowait(_clarify(self.deps.language))

    def _lead_changed(self, brain: Brain) -> None:
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

    async def _synthesize(self, text: str, epoch: int) -> None:
        synth = self.deps.synthesizer
        try:
            async for chunk in synth.synthesize(text):
                if not await self.pacer.write_pcm16(chunk, epoch):
                    return
        except Exception as exc:  # this sentence is lost; the turn goes on
            self._provider_error(getattr(exc, "provider", synth.name), exc)


async def _one(text: str) -> AsyncIterator[str]:
    yield text


async def _guarded_sentences(make: Callable[[], "str | AsyncIterator[str]"]) -> AsyncIterator[str]:
    """The brain's sentences, with a failure to even start (a sync raise from ``opening`` or
    ``respond``) surfacing inside the iteration, where the reply task turns it into the
    clarify line instead of losing the turn."""
    made = make()
    if isinstance(made, str):
        yield made
        return
    try:
        async for sentence in made:
            yield sentence
    finally:  # cut by a barge-in: close the brain's stream now (e.g. its HTTP response)
        aclose = getattr(made, "aclose", None)
        if aclose is not None:
            await aclose()
