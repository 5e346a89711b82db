"""Turn-taking, sans-IO: the one place that decides who talks.

Like h11's ``_state.py``, the legal transitions are ONE table, :data:`TRANSITIONS`
({state: {event: next_state}}). :meth:`TurnMachine.handle` takes an event object, checks
the table, updates the state and returns the actions the session must execute. An event
the table does not allow in the current state is not applied: it is returned as
:class:`Rejected` (the session logs and counts it), never silently swallowed.

The machine never awaits and reads no clock: times come in on the events (``t_ms`` is
stream time for the caller's voice, ``now_ms`` the call clock).

States: LISTENING -> PROCESSING -> SPEAKING -> LISTENING (barge-in: SPEAKING -> LISTENING),
plus ENDED once the call is over.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Union


class State(enum.Enum):
    LISTENING = "LISTENING"
    PROCESSING = "PROCESSING"
    SPEAKING = "SPEAKING"
    ENDED = "ENDED"


# --- events (inputs) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """`start` arrived: the agent opens with its greeting."""


@dataclass(frozen=True, slots=True)
class VoiceOnset:
    onset_ms: int  # stream time the caller started talking


@dataclass(frozen=True, slots=True)
class EndOfUtterance:
    onset_ms: int
    eou_ms: int  # stream time of the end
    forced: bool = False  # MAX_UTT reached without silence


@dataclass(frozen=True, slots=True)
class AsrFinal:
    text: str
    confidence: float
    failed: bool = False  # provider error or deadline: the session speaks the clarify line


@dataclass(frozen=True, slots=True)
class Sentence:
    """A reply sentence went to synthesis (index within the agent turn)."""

    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The reply's first frame is on the wire."""

    now_ms: float


@dataclass(frozen=True, slots=True)
class MarkAck:
    """Echo of a sentence mark of the current agent turn: that sentence was played."""

    index: int


@dataclass(frozen=True, slots=True)
class PlaybackDone:
    """Echo of the final mark (after the tail silence): the whole turn was played."""


@dataclass(frozen=True, slots=True)
class MarkTimeout:
    """The final mark was sent but its echo never came."""


@dataclass(frozen=True, slots=True)
class BargeIn:
    onset_ms: int  # stream time the interrupting voice began
    trigger_ms: int  # stream time the detector fired (end of the frame that tipped it)
    # Words of the first unconfirmed sentence that played before the cut, estimated from the
    # playback position (marks prove whole sentences only; this never claims a whole one).
    partial_words: int = 0


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str
    # As for BargeIn: words of the first unconfirmed sentence played before the call ended.
    partial_words: int = 0


TurnEvent = Union[
    CallStarted, VoiceOnset, EndOfUtterance, AsrFinal, Sentence, SpeechStarted, MarkAck, PlaybackDone,
    MarkTimeout, BargeIn, Hangup,
]

L, P, S, E = State.LISTENING, State.PROCESSING, State.SPEAKING, State.ENDED

#: The whole turn-taking protocol. Self-loops are events that are legal but keep the state.
TRANSITIONS: dict[State, dict[type, State]] = {
    L: {CallStarted: P, VoiceOnset: L, EndOfUtterance: P, Hangup: E},
    P: {AsrFinal: P, Sentence: P, SpeechStarted: S, Hangup: E},
    S: {Sentence: S, MarkAck: S, PlaybackDone: L, MarkTimeout: L, BargeIn: L, Hangup: E},
    E: {},
}


# --- actions (outputs) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpeakGreeting:
    pass


@dataclass(frozen=True, slots=True)
class BeginUtterance:
    onset_ms: int


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Ask the recognizer for the final text of [onset, eou) and answer it."""

    onset_ms: int
    eou_ms: int
    interrupted_agent: bool


@dataclass(frozen=True, slots=True)
class Respond:
    text: str
    confidence: float
    interrupted_agent: bool
    asr_failed: bool


@dataclass(frozen=True, slots=True)
class ArmBargeIn:
    pass


@dataclass(frozen=True, slots=True)
class Halt:
    """Barge-in: stop TTS, drop the TX queue, send `clear`, cancel the reply work."""

    onset_ms: int
    trigger_ms: int


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
    SpeakGreeting, BeginUtterance, FinishUtterance, Respond, ArmBargeIn, Halt, TellHeard, Listen,
    StateChanged, Rejected,
]


@dataclass(slots=True)
class AgentTurn:
    """What the agent is saying in the current turn, and how much of it was played."""

    sentences: list[str] = field(default_factory=list)
    acked: int = 0  # sentences whose end mark came back
    final_acked: bool = False
    partial_words: int = 0  # of sentence ``acked``, when cut by a barge-in

    def heard(self) -> tuple[str, bool]:
        fully = self.final_acked or (bool(self.sentences) and self.acked >= len(self.sentences))
        said = self.sentences[: self.acked]
        if not fully and self.partial_words and self.acked < len(self.sentences):
            words = self.sentences[self.acked].split()
            said = said + [" ".join(words[: min(self.partial_words, len(words) - 1)])]
        return " ".join(w for w in said if w), fully


def sentence_mark(turn_no: int, index: int) -> str:
    return f"t{turn_no}.s{index}"


def final_mark(turn_no: int) -> str:
    return f"t{turn_no}.end"


class TurnMachine:
    """Turn state for one call. ``handle(event) -> [actions]``; never raises on a bad event."""

    def __init__(self) -> None:
        self.state = State.LISTENING
        self.turn_no = 0  # agent turns started (greeting is 1)
        self.agent = AgentTurn()
        self.utterance_onset_ms: int | None = None  # the caller utterance being listened to
        self.interrupted = False  # the utterance being listened to began as a barge-in
        self.rejected = 0
        self._cycle = False  # this agent turn answered a caller turn (not the greeting)
        self._pending_interrupted = False

    def mark_event(self, name: str) -> "MarkAck | PlaybackDone | None":
        """The event for a mark echo, or None when it is stale: marks are named after their
        agent turn, so echoes of a turn that was cleared or timed out never count as heard."""
        if self.state is not State.SPEAKING:
            return None
        if name == final_mark(self.turn_no):
            return PlaybackDone()
        prefix = f"t{self.turn_no}.s"
        if name.startswith(prefix) and name[len(prefix):].isdigit():
            return MarkAck(int(name[len(prefix):]))
        return None

    def handle(self, event: TurnEvent) -> list[Action]:
        old = self.state
        new = TRANSITIONS[old].get(type(event))
        if new is None:
            self.rejected += 1
            return [Rejected(old, type(event).__name__)]
        actions: list[Action] = []
        if isinstance(event, CallStarted):
            self._new_agent_turn(cycle=False)
            actions.append(SpeakGreeting())
        elif isinstance(event, VoiceOnset):
            if self.utterance_onset_ms is None:  # after a barge-in the utterance already began
                self.utterance_onset_ms = event.onset_ms
                actions.append(BeginUtterance(event.onset_ms))
        elif isinstance(event, EndOfUtterance):
            onset = event.onset_ms if self.utterance_onset_ms is None else min(self.utterance_onset_ms, event.onset_ms)
            if self.utterance_onset_ms is None:
                actions.append(BeginUtterance(onset))
            actions.append(FinishUtterance(onset, event.eou_ms, self.interrupted))
            self.utterance_onset_ms = None
            self._new_agent_turn(cycle=True)
            self._pending_interrupted = self.interrupted
            self.interrupted = False
        elif isinstance(event, AsrFinal):
            actions.append(Respond(event.text, event.confidence, self._pending_interrupted, event.failed))
        elif isinstance(event, Sentence):
            while len(self.agent.sentences) <= event.index:
                self.agent.sentences.append("")
            self.agent.sentences[event.index] = event.text
        elif isinstance(event, SpeechStarted):
            actions.append(ArmBargeIn())
        elif isinstance(event, MarkAck):
            self.agent.acked = max(self.agent.acked, event.index + 1)
        elif isinstance(event, PlaybackDone):
            self.agent.final_acked = True
            self.agent.acked = len(self.agent.sentences)
        elif isinstance(event, BargeIn):
            self.agent.partial_words = event.partial_words
            actions.append(Halt(event.onset_ms, event.trigger_ms))
            self.utterance_onset_ms = event.onset_ms
            self.interrupted = True
            actions.append(BeginUtterance(event.onset_ms))
        elif isinstance(event, Hangup) and old is State.SPEAKING:
            # The call ended while the agent talked (the caller hung up): what was heard of
            # this turn still goes to the transcript.
            self.agent.partial_words = event.partial_words
            said, fully = self.agent.heard()
            actions.append(TellHeard(said, fully, " ".join(self.agent.sentences)))
        if new is not old:
            actions.insert(0, StateChanged(old, new, type(event).__name__))
            self.state = new
            if new is State.LISTENING:
                said, fully = self.agent.heard()
                actions.append(TellHeard(said, fully, " ".join(self.agent.sentences)))
                actions.append(Listen(cycle_done=self._cycle))
        return actions

    def _new_agent_turn(self, cycle: bool) -> None:
        self.turn_no += 1
        self.agent = AgentTurn()
        self._cycle = cycle


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
