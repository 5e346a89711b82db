"""The caller's script: what they say (pre-rendered clips), what each thing is meant as, and
when they say it — reacting to what they hear, like a person on the phone.

Roles (what the caller means; the judge's rules follow from them):
    answer      a new turn that deserves an answer
    interrupt   a new turn said over the agent, meant to stop it ("רגע", "wait", content)
    repeat      a new turn asking to hear the last question again ("מה?", "sorry, what?")
    cont        more of the caller's current turn after a pause (comma, hesitation, or while
                the ASR is still working): the same turn, one answer
    backchannel a short "כן" / "uh-huh" over the agent: not a turn; the agent goes on
    noise       a knock / cough / hum: not a turn; no reply (over the agent: it goes on)

When a step starts (times on the line's clock; "anchor" = the end of the caller's previous
voice, 0 at the start):
    After(gap)     the agent has been audible after the anchor (+120 ms: the tail of audio
                   that was already playing is not an answer) and has now been quiet ``gap`` s
                   (after ``timeout`` s of silence the caller gives up waiting and goes on)
    Into(offset)   ``offset`` s after the first audible agent frame at/after the anchor
                   (Into(0.0): the caller starts together with the agent)
    AfterPrev(gap) ``gap`` s after the anchor, whatever the agent does
    OnAsr(delay)   ``delay`` s after the session asked the ASR for the final of an utterance
                   that ended after the anchor's turn began (the caller talks during
                   PROCESSING), or ``fallback`` s after the anchor if that never happens
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import trio

from .line import CallerLine, Placed
from .oracle_asr import OracleRecognizer
from .voices import Clip, Voice

ROLES = ("answer", "interrupt", "repeat", "cont", "backchannel", "noise")
TURN_ROLES = ("answer", "interrupt", "repeat")
AFTER_TAIL_S = 0.12


@dataclass(frozen=True, slots=True)
class After:
    gap: float = 0.6
    timeout: float = 6.0  # silence after which a person gives up waiting and talks anyway


@dataclass(frozen=True, slots=True)
class Into:
    offset: float = 1.0
    timeout: float = 6.0


@dataclass(frozen=True, slots=True)
class AfterPrev:
    gap: float = 0.3


@dataclass(frozen=True, slots=True)
class OnAsr:
    delay: float = 0.15
    fallback: float = 1.2


When = Union[After, Into, AfterPrev, OnAsr]


@dataclass(frozen=True, slots=True)
class Step:
    voice: Voice
    when: When
    role: str
    confidence: float = 0.9
    asr_text: str = ""  # what the ASR makes of a knock / cough (a hallucination)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}")


@dataclass(slots=True)
class Performed:
    index: int
    step: Step
    placed: Placed
    waited_out: bool = False  # the trigger's condition never came: the caller went ahead anyway


@dataclass
class CallerScript:
    steps: tuple[Step, ...]
    clips: dict[str, Clip]
    oracle: OracleRecognizer
    end_quiet_s: float = 3.0  # after the last step: hang up once everything was quiet this long
    max_tail_s: float = 12.0
    performed: list[Performed] = field(default_factory=list)
    done_at: float | None = None

    async def __call__(self, line: CallerLine) -> None:
        anchor = 0.0
        turn_start = 0.0
        for i, step in enumerate(self.steps):
            at, waited_out = await self._when(line, step.when, anchor, turn_start)
            if line.link.closed:
                break
            clip = self.clips[step.voice.key]
            placed = line.place(clip, at, step=i, confidence=step.confidence, asr_text=step.asr_text)
            self.performed.append(Performed(i, step, placed, waited_out))
            if step.role in ("answer", "interrupt", "repeat"):
                turn_start = placed.voice_start
            anchor = placed.voice_end
        # the end: stay on the line until the caller's voice and the agent have both been
        # quiet for end_quiet_s (so a reply to the last turn, and any reply to noise, is heard)
        deadline = anchor + self.max_tail_s
        await _until(line, lambda: line.now() >= max(anchor, line.agent_loud_end()) + self.end_quiet_s, deadline)
        self.done_at = line.now()

    async def _when(self, line: CallerLine, when: When, anchor: float, turn_start: float) -> tuple[float, bool]:
        if isinstance(when, AfterPrev):
            return anchor + when.gap, False
        if isinstance(when, After):
            def answered_and_quiet() -> bool:
                started = line.agent_audible_after(anchor + AFTER_TAIL_S)
                return started is not None and line.now() >= line.agent_loud_end() + when.gap

            def gave_up() -> bool:
                return line.now() >= max(anchor, line.agent_loud_end()) + when.timeout

            await _until(line, lambda: answered_and_quiet() or gave_up(), float("inf"))
            return line.now(), not answered_and_quiet()
        if isinstance(when, Into):
            await _until(
                line,
                lambda: line.agent_audible_after(anchor) is not None
                or line.now() >= max(anchor, line.agent_loud_end()) + when.timeout,
                float("inf"),
            )
            start = line.agent_audible_after(anchor)
            if start is None:
                return line.now(), True
            at = start + when.offset
            return max(at, line.now()), False
        if isinstance(when, OnAsr):
            oracle = self.oracle

            def asked() -> bool:
                return any(c.eou_ms >= turn_start * 1000 and c.asked_at >= turn_start for c in oracle.calls)

            ok = await _until(line, asked, anchor + when.fallback)
            if ok:
                first = next(c for c in oracle.calls if c.eou_ms >= turn_start * 1000 and c.asked_at >= turn_start)
                return max(first.asked_at + when.delay, line.now()), False
            return line.now(), True
        raise TypeError(when)


async def _until(line: CallerLine, predicate: Callable[[], bool], deadline: float) -> bool:
    """Wait (on the line's clock) until ``predicate`` holds or ``deadline``; True if it held.
    Re-checked on every line event and at least every 20 ms."""
    while not predicate():
        if line.link.closed:
            return False
        now = line.now()
        if now >= deadline:
            return False
        changed = line._changed
        with trio.move_on_after(min(0.02, deadline - now)):
            await changed.wait()
    return True


@dataclass(frozen=True, slots=True)
class Expect:
    """What the caller expects beyond what the roles imply."""

    slots: tuple[tuple[str, object], ...] = ()  # (slot, value) on RuleBrain.lead.slots at the end
    status: str | None = None  # the lead's status at the end
    no_cut: bool = False  # nothing the agent said was cut (echo must never barge in)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    group: str
    lang: str  # he | en
    steps: tuple[Step, ...]
    snr_db: float = 30.0
    echo: "object | None" = None  # line.Echo
    bursts: tuple[tuple[float, float], ...] = ()  # (at s, hold s)
    agent: str = "espeak"  # the agent's voice: espeak | synth
    asr_latency_s: float = 0.4
    expect: Expect = Expect()
    story: str = ""  # one line: what the caller does and expects

    @property
    def language(self) -> str:
        return "he-IL" if self.lang == "he" else "en-US"

    @property
    def voices(self) -> list[Voice]:
        return [s.voice for s in self.steps]
