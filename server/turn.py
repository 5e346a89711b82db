"""Turn-taking, sans-IO: the one place that decides who talks.

Like h11's ``_state.py``, the legal transitions are ONE table, :data:`TRANSITIONS`
({state: {event: next_state}}). :meth:`TurnMachine.handle` takes an event, judges it when
the event needs a verdict (an ASR final becomes a :class:`TurnTaken` or :class:`NoiseIgnored`;
caller voice while the agent prepares a reply becomes :class:`CallerContinues`...), checks the
verdict against the table, updates the state and returns the actions the session executes.
An event the table does not allow in the current state is not applied: it is returned as
:class:`Rejected` (the session logs and counts it), never silently swallowed. Events from a
task that has been superseded (an ASR final for an utterance that was reopened, a sentence of
a reply that was dropped) carry their turn / sequence number and are ignored as stale.

The machine never awaits and reads no clock: times come in on the events, in inbound
*stream time* (ms; frame ``i`` covers ``[20 i, 20 i + 20)``). The session maps its clock onto
stream time (server/playback_clock.py), so "when the caller heard it" and "when the caller
said it" are on one axis.

States (the user's LISTENING -> PROCESSING -> SPEAKING -> LISTENING, plus one):

- LISTENING: the agent is silent and the floor is the caller's.
- PROCESSING: a caller turn ended; its reply is being prepared (ASR final, brain, TTS), or a
  cut agent turn is about to resume. Nothing is audible yet. Caller voice here means the
  caller was not done: the reply is dropped (the brain's work taken back) and the audio joins
  the same utterance (:class:`CallerContinues`). Playback is held while the caller's voice is
  on, so the agent never starts over the caller.
- SPEAKING: agent audio is playing. A barge-in (the native detector: >= 200 ms of caller
  voice after the grace window) halts it at once. Caller voice that starts with the agent's
  first audible frame (within ``yield_window_ms``) is not an interruption but a collision:
  the agent yields at once, like a person who started at the same moment.
- PAUSED: the agent was cut and holds its turn while the caller's interruption is judged.
  The interruption ends with a short silence (MIN_UTT does not apply: a 250 ms "yes" is
  judged ~200-400 ms after it ends). No words, noise, or a backchannel ("כן", "uh-huh") is a
  :class:`FalseInterruption`: the agent resumes the cut sentence from the word the caller
  last heard, and the brain is not called. Anything else is a :class:`RealInterruption`:
  the cut turn is told to the brain as heard so far and the caller's words are answered.
- ENDED: the call is over.

Every open utterance resolves: the EOU detector ends it by silence or forces it at
MAX_UTT, and :attr:`TurnMachine.deadline_ms` is a last resort (:class:`UtteranceTimeout`).
The goodbye is a turn like any other: it can be interrupted; the call ends only after it
played fully and ``goodbye_linger_ms`` passed without caller voice (:class:`LingerOver`).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union

from dialog import cues
from native.config import TimingConfig


class State(enum.Enum):
    LISTENING = "LISTENING"
    PROCESSING = "PROCESSING"
    SPEAKING = "SPEAKING"
    PAUSED = "PAUSED"
    ENDED = "ENDED"


NEVER = 1 << 62  # a deadline that never comes

# An ASR confidence at or above this is a "confident word": a short utterance that carries
# one is a turn, however little voice it had ("no" can be 200 ms).
CONFIDENT = 0.7


# --- events (inputs) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """`start` arrived: the agent opens with its greeting."""


@dataclass(frozen=True, slots=True)
class VoiceStart:
    """The frame classifier flipped to voice; the run really began at ``run_start_ms``."""

    run_start_ms: int


@dataclass(frozen=True, slots=True)
class VoiceStop:
    """The frame classifier flipped back to silence; the voice really ended at ``end_ms``."""

    end_ms: int = 0


@dataclass(frozen=True, slots=True)
class Calibrated:
    """The line's noise calibration ended (its first ``calibration_ms``): voice can be told
    from noise from now on, so the agent may start talking."""


@dataclass(frozen=True, slots=True)
class VoiceOnset:
    """The end-of-utterance detector saw an utterance begin (>= min_voice_onset_ms of voice)."""

    onset_ms: int


@dataclass(frozen=True, slots=True)
class PartialText:
    """An interim transcript of the utterance being listened to."""

    text: str


@dataclass(frozen=True, slots=True)
class EndOfUtterance:
    onset_ms: int
    eou_ms: int  # stream time of the end
    forced: bool = False  # MAX_UTT reached without silence
    voiced_ms: int = 0  # voice time inside the utterance


@dataclass(frozen=True, slots=True)
class AsrFinal:
    seq: int  # the FinishUtterance it answers
    text: str
    confidence: float
    failed: bool = False  # provider error or deadline
    now_ms: int = 0


@dataclass(frozen=True, slots=True)
class Sentence:
    """A reply sentence went to synthesis (index within the agent turn)."""

    turn: int
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The first frame of an agent turn (or of its resumed rest) plays at ``audible_ms``."""

    turn: int
    audible_ms: int


@dataclass(frozen=True, slots=True)
class MarkAck:
    """Echo of a sentence mark of the current agent turn: that sentence was played."""

    index: int


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """Echo of the final mark (after the tail silence): the whole turn was played."""

    now_ms: int = 0
    final: bool = False  # it was the goodbye (the brain is finished)


@dataclass(frozen=True, slots=True)
class MarkTimeout:
    """The final mark was sent but its echo never came."""

    now_ms: int = 0
    final: bool = False


@dataclass(frozen=True, slots=True)
class BargeIn:
    onset_ms: int  # stream time the interrupting voice began
    trigger_ms: int  # stream time the detector fired (end of the frame that tipped it)
    # Words of the first unconfirmed sentence that played before the cut, estimated from the
    # playback position (marks prove whole sentences only; this never claims a whole one).
    partial_words: int = 0
    # Where the caller's speech began: a short first word ("רגע,") that did not reach 200 ms on
    # its own is part of what they said, so the recognizer hears it too (-1: the onset).
    speech_from_ms: int = -1


@dataclass(frozen=True, slots=True)
class Tick:
    """Stream time reached :attr:`TurnMachine.deadline_ms`."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str
    # As for BargeIn: words of the first unconfirmed sentence played before the call ended.
    partial_words: int = 0


TurnEvent = Union[
    CallStarted, Calibrated, VoiceStart, VoiceStop, VoiceOnset, PartialText, EndOfUtterance, AsrFinal, Sentence,
    SpeechStarted, MarkAck, PlaybackDone, MarkTimeout, BargeIn, Tick, Hangup,
]


# --- verdicts: what an event means in the current state (the table's edges) -----------------


@dataclass(frozen=True, slots=True)
class TurnTaken:
    """The caller's words are a turn: answer them."""


@dataclass(frozen=True, slots=True)
class NoiseIgnored:
    """Too little voice and no confident words (a knock, a cough, a hallucinated "you")."""


@dataclass(frozen=True, slots=True)
class FalseInterruption:
    """What stopped the agent was not a turn (no words, noise, a backchannel): resume."""


@dataclass(frozen=True, slots=True)
class RealInterruption:
    """The caller really took the floor: tell the brain what was heard, answer the caller."""


@dataclass(frozen=True, slots=True)
class CallerContinues:
    """Caller voice before the reply was audible: the caller was not done."""


@dataclass(frozen=True, slots=True)
class InterruptionContinues:
    """Caller voice while the agent was about to resume: the interruption goes on."""


@dataclass(frozen=True, slots=True)
class Collision:
    """Caller and agent started together (not a reply to a caller turn): the agent yields."""


@dataclass(frozen=True, slots=True)
class UtteranceTimeout:
    """An open utterance passed its last-resort deadline: end it now."""


@dataclass(frozen=True, slots=True)
class LingerOver:
    """The goodbye played and the caller stayed quiet: hang up."""


L, P, S, Z, E = State.LISTENING, State.PROCESSING, State.SPEAKING, State.PAUSED, State.ENDED

#: The whole turn-taking protocol. Self-loops are events that are legal but keep the state.
TRANSITIONS: dict[State, dict[type, State]] = {
    L: {
        CallStarted: P, EndOfUtterance: P, UtteranceTimeout: P, LingerOver: E, Hangup: E,
        VoiceOnset: L, VoiceStart: L, VoiceStop: L, PartialText: L, Tick: L, Calibrated: L,
    },
    P: {
        TurnTaken: P, NoiseIgnored: L, SpeechStarted: S, CallerContinues: L, InterruptionContinues: Z, Hangup: E,
        Sentence: P, VoiceOnset: P, EndOfUtterance: P, VoiceStart: P, VoiceStop: P, PartialText: P, Tick: P,
        Calibrated: P,
    },
    S: {
        PlaybackDone: L, MarkTimeout: L, BargeIn: Z, Collision: Z, CallerContinues: L, InterruptionContinues: Z,
        Hangup: E,
        Sentence: S, MarkAck: S, VoiceStart: S, VoiceStop: S, VoiceOnset: S, PartialText: S, Tick: S,
        Calibrated: S,
    },
    Z: {
        FalseInterruption: P, RealInterruption: P, Hangup: E,
        VoiceOnset: Z, VoiceStart: Z, VoiceStop: Z, PartialText: Z, EndOfUtterance: Z, UtteranceTimeout: Z,
        Sentence: Z, Tick: Z, Calibrated: Z,
    },
    # The call is over (a goodbye at the call's time limit may still be playing): the caller's
    # audio goes on arriving and is of no consequence.
    E: {VoiceStart: E, VoiceStop: E, VoiceOnset: E, PartialText: E, Tick: E, Calibrated: E},
}


# --- actions (outputs) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeakGreeting:
    pass


@dataclass(frozen=True, slots=True)
class BeginUtterance:
    """Tell the recognizer an utterance (re)starts at ``onset_ms`` (its audio from there on)."""

    onset_ms: int


@dataclass(frozen=True, slots=True)
class OpenUtterance:
    """Open the end-of-utterance detector on an utterance already in progress."""

    onset_ms: int  # where MIN_UTT / MAX_UTT count from
    voiced_ms: int
    min_utt_ms: int  # -1: the configured MIN_UTT; 0 when judging an interruption


@dataclass(frozen=True, slots=True)
class CloseUtterance:
    """The machine ended the utterance itself: the end-of-utterance detector lets it go."""


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Ask the recognizer for the final text of [onset, eou); answer with AsrFinal(seq)."""

    seq: int
    onset_ms: int
    eou_ms: int
    interrupted_agent: bool


@dataclass(frozen=True, slots=True)
class CancelRecognition:
    """Drop the pending final (the utterance was reopened or judged without it)."""


@dataclass(frozen=True, slots=True)
class Respond:
    """Start agent turn ``turn``: the brain answers this caller turn (or the clarify line)."""

    turn: int
    text: str
    confidence: float
    interrupted_agent: bool
    asr_failed: bool


@dataclass(frozen=True, slots=True)
class ArmBargeIn:
    audible_ms: int  # the grace window counts from when the caller starts hearing the agent


@dataclass(frozen=True, slots=True)
class Halt:
    """Stop the agent's audio now: stop TTS, drop the TX queue, send `clear`. The reply's
    text production goes on (the turn may resume) until :class:`DropReply`."""

    onset_ms: int
    trigger_ms: int
    barge_in: bool  # a genuine barge-in (measured and counted as one), not a collision


@dataclass(frozen=True, slots=True)
class DropReply:
    """Abandon the current agent turn's production; ``retract``: the caller never heard it,
    so the brain takes back the turn it produced (the merged utterance will come instead)."""

    retract: bool


@dataclass(frozen=True, slots=True)
class Resume:
    """Speak agent turn ``turn`` again from sentence ``index``, word ``word`` (the word the
    caller last heard, so the sentence picks up where their ear left it)."""

    turn: int
    segment: int
    index: int
    word: int


@dataclass(frozen=True, slots=True)
class HoldPlayback:
    """Hold (or release) the start of the agent's audio: the caller's voice is on."""

    on: bool


@dataclass(frozen=True, slots=True)
class SetHold:
    """Text-aware end of utterance: the words so far stop mid-phrase, wait the long silence."""

    on: bool


@dataclass(frozen=True, slots=True)
class TellHeard:
    said: str  # what the caller heard of the agent turn (cut at the interrupt)
    heard_fully: bool
    full_text: str


@dataclass(frozen=True, slots=True)
class Listen:
    """Back to LISTENING: reset the end-of-utterance detector, disarm barge-in."""

    cycle_done: bool  # a full LISTENING -> PROCESSING -> SPEAKING -> LISTENING round trip


@dataclass(frozen=True, slots=True)
class Ignored:
    """A caller utterance got no reply (``noise``), or an interruption was false (``resumed``)."""

    kind: str
    voiced_ms: int
    text: str


@dataclass(frozen=True, slots=True)
class EndCall:
    reason: str


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    cause: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The table does not allow this event now. Logged and counted by the session."""

    state: State
    event: str


Action = Union[
    SpeakGreeting, BeginUtterance, OpenUtterance, CloseUtterance, FinishUtterance, CancelRecognition, Respond, ArmBargeIn, Halt,
    DropReply, Resume, HoldPlayback, SetHold, TellHeard, Listen, Ignored, EndCall, StateChanged, Rejected,
]


@dataclass(slots=True)
class AgentTurn:
    """What the agent is saying in the current turn, and how much of it was played."""

    sentences: list[str] = field(default_factory=list)
    acked: int = 0  # sentences whose end mark came back
    final_acked: bool = False
    partial_words: int = 0  # of sentence ``acked``, when cut by a barge-in
    is_reply: bool = False  # it answers a caller utterance (not the greeting)

    def heard(self) -> tuple[str, bool]:
        fully = self.final_acked or (bool(self.sentences) and self.acked >= len(self.sentences))
        said = self.sentences[: self.acked]
        if not fully and self.partial_words and self.acked < len(self.sentences):
            words = self.sentences[self.acked].split()
            said = said + [" ".join(words[: min(self.partial_words, len(words) - 1)])]
        return " ".join(w for w in said if w), fully

    def resume_point(self) -> tuple[int, int]:
        """(sentence, word) to resume from: the word that was playing at the cut (the last one
        the caller heard, in part), said again whole; the next sentence if the cut one had
        been heard out."""
        if self.acked < len(self.sentences) and self.partial_words >= len(self.sentences[self.acked].split()):
            return self.acked + 1, 0
        return self.acked, self.partial_words


@dataclass(slots=True)
class Utterance:
    """The caller utterance being listened to (or answered)."""

    onset_ms: int  # where its audio starts for the recognizer
    interrupted: bool  # it began as an interruption of the agent
    open: bool = True  # the EOU detector has it open
    eou_ms: int = -1
    voiced_ms: int = 0
    partial: str = ""
    forced: bool = False


def mark_prefix(turn_no: int, segment: int) -> str:
    return f"t{turn_no}" if segment == 0 else f"t{turn_no}r{segment}"


def sentence_mark(turn_no: int, index: int, segment: int = 0) -> str:
    return f"{mark_prefix(turn_no, segment)}.s{index}"


def final_mark(turn_no: int, segment: int = 0) -> str:
    return f"{mark_prefix(turn_no, segment)}.end"


class TurnMachine:
    """Turn state for one call. ``handle(event) -> [actions]``; never raises on a bad event."""

    def __init__(self, config: TimingConfig | None = None, language: str = "he-IL") -> None:
        self.cfg = config or TimingConfig()
        self.language = language
        self.state = State.LISTENING
        self.turn_no = 0  # agent turns started (greeting is 1)
        self.segment = 0  # resumptions of the current agent turn
        self.agent = AgentTurn()
        self.utt: Utterance | None = None
        self.asr_seq = 0
        self.asr_pending = False
        self.responding = False  # agent turn ``turn_no`` is being produced (or played)
        self.paused = False  # a cut agent turn is on hold while an interruption is judged
        self.resuming = False  # its rest is about to play (not audible yet)
        self.audible_ms: int | None = None  # the current segment's first frame plays here
        self.caller_voice = False  # the classifier's decision, from VoiceStart / VoiceStop
        # Until the line is calibrated nothing can be told from noise, so the agent does not
        # start talking yet: a caller who says "hello?" as the call connects is not talked over.
        self.calibrated = False
        self.goodbye_done = False  # the goodbye played: linger, then hang up
        self.deadline_ms = NEVER  # the earliest of the two below, or the goodbye's linger
        self._utt_due = NEVER  # last resort for an open utterance
        self._quiet_due = NEVER  # an interruption being judged ends this long after its voice
        self.rejected = 0
        self.stale = 0

    # -- the public side -------------------------------------------------------------------------

    @property
    def utterance_onset_ms(self) -> int | None:
        return self.utt.onset_ms if self.utt is not None else None

    def mark_event(self, name: str) -> "MarkAck | PlaybackDone | None":
        """The event for a mark echo, or None when it is stale: marks are named after their
        agent turn and segment, so echoes of audio that was cleared never count as heard."""
        if self.state is not State.SPEAKING:
            return None
        prefix = mark_prefix(self.turn_no, self.segment) + "."
        if not name.startswith(prefix):
            return None
        rest = name[len(prefix):]
        if rest == "end":
            return PlaybackDone()
        if rest.startswith("s") and rest[1:].isdigit():
            return MarkAck(int(rest[1:]))
        return None

    def handle(self, event: TurnEvent) -> list[Action]:
        old = self.state
        synthetic = False
        utt = self.utt
        if type(event) is Tick and old is State.PAUSED and utt is not None and utt.open and event.now_ms >= self._quiet_due:
            # the interruption went quiet: it ends here, as if the detector had said so
            event = EndOfUtterance(utt.onset_ms, event.now_ms, False, utt.voiced_ms)
            synthetic = True
        verdict = self._judge(event)
        if verdict is None:  # from a superseded task
            self.stale += 1
            return []
        new = TRANSITIONS[old].get(type(verdict))
        if new is None:
            self.rejected += 1
            return [Rejected(old, type(event).__name__)]
        actions = self._apply(event, verdict, old)
        if synthetic:
            actions.insert(0, CloseUtterance())
        if new is not old:
            actions.insert(0, StateChanged(old, new, type(verdict).__name__))
            self.state = new
        return actions

    # -- judging ---------------------------------------------------------------------------------

    def _judge(self, event: TurnEvent) -> object | None:
        kind = type(event)
        state = self.state
        if kind is AsrFinal:
            if event.seq != self.asr_seq or not self.asr_pending:
                return None
            if state is State.PAUSED:
                return self._judge_interruption(event.text, event.confidence, event.failed)
            if state is State.PROCESSING:
                return self._judge_turn(event.text, event.confidence, event.failed)
            return event
        if kind is Sentence:
            return event if event.turn == self.turn_no and (self.responding or self.paused) else None
        if kind is SpeechStarted:
            return event if event.turn == self.turn_no and (self.responding or self.resuming) else None
        if kind is VoiceOnset and state is State.PROCESSING:
            if self.resuming:
                return InterruptionContinues()
            if self.utt is not None:
                return CallerContinues()
            return event  # the greeting is held until the caller's voice stops
        if kind is VoiceStart and state is State.SPEAKING and self._collides(event.run_start_ms):
            if self.segment > 0:
                return InterruptionContinues()  # voice again at the very start of a resume
            if self.agent.is_reply and self.utt is not None:
                return CallerContinues()
            return Collision()
        if kind is EndOfUtterance and state is State.PAUSED:
            utt = self.utt
            if utt is None or not utt.open:
                return None
            if (
                not event.forced and max(utt.voiced_ms, event.voiced_ms) <= self.cfg.resume_max_voiced_ms
                and cues.is_backchannel(utt.partial, self.language)
            ):
                # the partial transcript already says it: resume now, don't wait for the final
                return FalseInterruption()
            return event
        if kind is Tick:
            if self.utt is not None and self.utt.open and state in (State.LISTENING, State.PAUSED):
                return UtteranceTimeout()
            if state is State.LISTENING and self.goodbye_done:
                return LingerOver()
            return event
        return event

    def _hold(self) -> bool:
        return self.caller_voice or not self.calibrated

    def _collides(self, run_start_ms: int) -> bool:
        return self.audible_ms is not None and run_start_ms < self.audible_ms + self.cfg.yield_window_ms

    def _judge_turn(self, text: str, confidence: float, failed: bool) -> object:
        voiced = self.utt.voiced_ms if self.utt is not None else 0
        words = text.strip()
        if failed:
            return TurnTaken() if voiced >= self.cfg.noise_max_voiced_ms else NoiseIgnored()
        if not words or cues.is_noise_transcript(words, self.language):
            return TurnTaken() if voiced >= self.cfg.clarify_min_voiced_ms else NoiseIgnored()
        if cues.only_fillers(words, self.language):
            return NoiseIgnored()  # "umm" alone: the caller is thinking, the floor stays theirs
        if voiced < self.cfg.noise_max_voiced_ms and confidence < CONFIDENT:
            return NoiseIgnored()
        return TurnTaken()

    def _judge_interruption(self, text: str, confidence: float, failed: bool) -> object:
        voiced = self.utt.voiced_ms if self.utt is not None else 0
        short = voiced <= self.cfg.resume_max_voiced_ms
        words = text.strip()
        if failed or not words or cues.is_noise_transcript(words, self.language):
            return FalseInterruption() if short else RealInterruption()
        if short and cues.is_backchannel(words, self.language):
            return FalseInterruption()
        return RealInterruption()

    # -- applying --------------------------------------------------------------------------------

    def _apply(self, event: TurnEvent, verdict: object, old: State) -> list[Action]:
        kind = type(verdict)
        actions: list[Action] = []
        if kind is CallStarted:
            self._new_agent_turn(is_reply=False)
            actions += [SpeakGreeting(), HoldPlayback(self._hold())]
        elif kind is Calibrated:
            self.calibrated = True
            if old is State.PROCESSING:
                actions.append(HoldPlayback(self._hold()))
        elif kind is VoiceStart:
            self.caller_voice = True
            if old is State.PROCESSING:
                actions.append(HoldPlayback(True))
            self._quiet(NEVER)
        elif kind is VoiceStop:
            self.caller_voice = False
            if old is State.PROCESSING:
                actions.append(HoldPlayback(self._hold()))
            if old is State.PAUSED and self.utt is not None and self.utt.open:
                self._quiet(event.end_ms + self.cfg.interruption_silence_ms)
        elif kind is VoiceOnset:
            actions += self._on_onset(event.onset_ms, old)
        elif kind is PartialText:
            if self.utt is not None and self.utt.open and old in (State.LISTENING, State.PAUSED):
                self.utt.partial = event.text
                actions.append(SetHold(cues.ends_mid_phrase(event.text, self.language)))
        elif kind is EndOfUtterance and old is State.PROCESSING:
            actions.append(HoldPlayback(self._hold()))  # the caller's words over the greeting ended
        elif kind is EndOfUtterance or kind is UtteranceTimeout:
            actions += self._end_utterance(event, old)
        elif kind is Tick:
            self._no_deadline()  # nothing was due in this state
        elif kind is TurnTaken or kind is RealInterruption:
            assert isinstance(event, AsrFinal)
            self.asr_pending = False
            interrupted = kind is RealInterruption
            if interrupted:
                actions += [DropReply(retract=False), self._tell_heard()]
                self.paused = False
            self._new_agent_turn(is_reply=True)
            self.goodbye_done = False
            actions.append(Respond(self.turn_no, event.text, event.confidence, interrupted, event.failed))
            actions.append(HoldPlayback(self._hold()))
        elif kind is NoiseIgnored:
            assert isinstance(event, AsrFinal)
            self.asr_pending = False
            voiced = self.utt.voiced_ms if self.utt is not None else 0
            self.utt = None
            actions += [Ignored("noise", voiced, event.text), Listen(cycle_done=False)]
            self._no_deadline()
            if self.goodbye_done:
                self.deadline_ms = event.now_ms + self.cfg.goodbye_linger_ms
        elif kind is FalseInterruption:
            if isinstance(event, EndOfUtterance):  # judged on the partial transcript
                assert self.utt is not None
                self.utt.open = False
                self.utt.voiced_ms = max(self.utt.voiced_ms, event.voiced_ms)
                self._no_deadline()
                actions += [SetHold(False), CancelRecognition()]
            actions += self._resume(event if isinstance(event, AsrFinal) else None)
        elif kind is CallerContinues or kind is InterruptionContinues:
            actions += self._continue(event, old, interrupted=kind is InterruptionContinues)
        elif kind is Collision:
            assert isinstance(event, VoiceStart)
            self.caller_voice = True
            actions += self._pause(event.run_start_ms, event.run_start_ms, self.agent.partial_words, barge_in=False)
        elif kind is BargeIn:
            actions += self._pause(event.onset_ms, event.trigger_ms, event.partial_words, barge_in=True,
                                   speech_from_ms=event.speech_from_ms)
        elif kind is Sentence:
            while len(self.agent.sentences) <= event.index:
                self.agent.sentences.append("")
            self.agent.sentences[event.index] = event.text
        elif kind is SpeechStarted:
            self.audible_ms = event.audible_ms
            if self.resuming:
                self.resuming = self.paused = False
                self.responding = True
            actions.append(ArmBargeIn(event.audible_ms))
        elif kind is MarkAck:
            if event.index + 1 > self.agent.acked:
                self.agent.acked = event.index + 1
                self.agent.partial_words = 0  # it counted words of a sentence now heard whole
        elif kind is PlaybackDone or kind is MarkTimeout:
            if kind is PlaybackDone:
                self.agent.final_acked = True
                self.agent.acked = len(self.agent.sentences)
            actions += [self._tell_heard(), Listen(cycle_done=self.agent.is_reply)]
            self.responding = False
            self.audible_ms = None
            self.utt = None
            self._no_deadline()
            if event.final:
                self.goodbye_done = True
                self.deadline_ms = event.now_ms + self.cfg.goodbye_linger_ms
        elif kind is LingerOver:
            self._no_deadline()
            actions.append(EndCall("agent_hangup"))
        elif kind is Hangup:
            if old is State.SPEAKING or self.paused:
                # The call ended while the agent talked (or held a cut turn): what was heard
                # of this turn still goes to the transcript.
                if old is State.SPEAKING:
                    self.agent.partial_words = max(self.agent.partial_words, event.partial_words)
                actions.append(self._tell_heard())
            self._no_deadline()
        return actions

    def _on_onset(self, onset_ms: int, old: State) -> list[Action]:
        if old is State.LISTENING:
            if self.utt is None or not self.utt.open:
                self.utt = Utterance(onset_ms, interrupted=False)
                self._utterance_deadline()
                return [BeginUtterance(onset_ms)]
            return []
        if old is State.PAUSED and self.utt is not None and not self.utt.open:
            return self._reopen(onset_ms, min_utt_ms=0)  # voice again before the verdict
        if old is State.PROCESSING:
            return [HoldPlayback(True)]  # the greeting waits for the caller
        return []

    def _reopen(self, onset_ms: int, min_utt_ms: int) -> list[Action]:
        utt = self.utt
        assert utt is not None
        actions: list[Action] = []
        if self.asr_pending:
            self.asr_pending = False
            actions.append(CancelRecognition())
        utt.open = True
        utt.partial = ""
        utt.forced = False
        self._utterance_deadline(onset_ms)
        # The detector counts MIN_UTT / MAX_UTT from the new voice; the recognizer hears the
        # whole utterance from its first onset, so the brain gets one turn.
        actions += [OpenUtterance(onset_ms, utt.voiced_ms, min_utt_ms), BeginUtterance(utt.onset_ms)]
        return actions

    def _end_utterance(self, event: TurnEvent, old: State) -> list[Action]:
        utt = self.utt
        actions: list[Action] = []
        if isinstance(event, EndOfUtterance):
            if utt is None or not utt.open:  # an utterance the detector began on its own
                utt = self.utt = Utterance(event.onset_ms, interrupted=False)
                actions.append(BeginUtterance(event.onset_ms))
            utt.eou_ms = event.eou_ms
            utt.voiced_ms = max(utt.voiced_ms, event.voiced_ms)
            utt.forced = event.forced
        else:
            assert utt is not None and isinstance(event, Tick)
            utt.eou_ms = event.now_ms
            utt.forced = True
        utt.open = False
        self._no_deadline()
        actions.append(SetHold(False))
        self.asr_seq += 1
        self.asr_pending = True
        actions.append(FinishUtterance(self.asr_seq, utt.onset_ms, utt.eou_ms, utt.interrupted))
        if old is State.LISTENING:
            self.agent = AgentTurn(is_reply=True)
            actions.append(HoldPlayback(self._hold() or utt.forced))
        return actions

    def _pause(
        self, onset_ms: int, trigger_ms: int, partial_words: int, barge_in: bool, speech_from_ms: int = -1
    ) -> list[Action]:
        self.agent.partial_words = max(self.agent.partial_words, partial_words)
        self.audible_ms = None
        self.responding = False
        self.paused = True
        start = onset_ms if speech_from_ms < 0 else min(onset_ms, speech_from_ms)
        # the detector fired at min voice (voice across word gaps counts, the gaps do not)
        voiced = max(0, min(trigger_ms - onset_ms, self.cfg.barge_in_min_voice_ms))
        self.utt = Utterance(start, interrupted=True, voiced_ms=voiced)
        self._utterance_deadline(onset_ms)
        return [
            Halt(onset_ms, trigger_ms, barge_in),
            OpenUtterance(onset_ms, self.utt.voiced_ms, 0),
            BeginUtterance(start),
        ]

    def _resume(self, event: AsrFinal | None) -> list[Action]:
        self.asr_pending = False
        utt = self.utt
        index, word = self.agent.resume_point()
        self.segment += 1
        self.resuming = True
        text = event.text if event is not None else (utt.partial if utt is not None else "")
        return [
            Ignored("resumed", utt.voiced_ms if utt is not None else 0, text),
            Resume(self.turn_no, self.segment, index, word),
            HoldPlayback(self._hold()),
        ]

    def _continue(self, event: TurnEvent, old: State, interrupted: bool) -> list[Action]:
        onset = event.onset_ms if isinstance(event, VoiceOnset) else event.run_start_ms  # type: ignore[union-attr]
        actions: list[Action] = []
        if old is State.SPEAKING or self.resuming:
            # what started playing (or is queued to) stops; `clear` if anything went out
            actions.append(Halt(onset, onset, barge_in=False))
            self.audible_ms = None
        if interrupted:
            self.resuming = False  # the cut turn stays on hold, at the same resume point
            self.paused = True
        else:
            if self.responding:
                actions.append(DropReply(retract=True))
                self.responding = False
            self.agent = AgentTurn(is_reply=True)
        if old is State.SPEAKING:
            self.caller_voice = True
        return actions + self._reopen(onset, min_utt_ms=0 if interrupted else -1)

    def _tell_heard(self) -> TellHeard:
        said, fully = self.agent.heard()
        return TellHeard(said, fully, " ".join(self.agent.sentences))

    def _utterance_deadline(self, from_ms: int | None = None) -> None:
        assert self.utt is not None
        start = self.utt.onset_ms if from_ms is None else from_ms
        self._utt_due = start + self.cfg.max_utt_ms + self.cfg.turn_resolve_ms
        self._quiet_due = NEVER
        self.deadline_ms = self._utt_due

    def _quiet(self, due: int) -> None:
        self._quiet_due = due
        if self._utt_due < NEVER or due < NEVER:
            self.deadline_ms = min(self._utt_due, due)

    def _no_deadline(self) -> None:
        self._utt_due = self._quiet_due = self.deadline_ms = NEVER

    def _new_agent_turn(self, is_reply: bool) -> None:
        self.turn_no += 1
        self.segment = 0
        self.audible_ms = None
        self.responding = True
        self.resuming = False
        self.agent = AgentTurn(is_reply=is_reply)


def diagram() -> str:
    """Mermaid state diagram generated from :data:`TRANSITIONS` (for the README)."""
    lines = ["stateDiagram-v2", "    [*] --> LISTENING"]
    for state, edges in TRANSITIONS.items():
        for event, target in edges.items():
            if target is state:
                continue
            lines.append(f"    {state.value} --> {target.value}: {event.__name__}")
    lines.append("    ENDED --> [*]")
    return "\n".join(lines)


if __name__ == "__main__":  # `python -m server.turn` prints the README's state diagram
    print(diagram())
