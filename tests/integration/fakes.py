"""Fast stand-ins for the three providers, so a whole call over real sockets takes seconds.

They implement the real interfaces (speech.base, dialog.base); the call session, codec,
pacer, turn machine, app and sockets are all the real ones.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import AsyncIterator

import numpy as np

from dialog.base import Brain, CallerTurn, LeadState
from leads.base import CallRecorder, NullRecorder
from server.settings import Settings
from server.wiring import Wiring
from speech.base import Recognizer, Synthesizer, Transcript


def tone(ms: int, freq: float = 440.0, amp: int = 5000) -> np.ndarray:
    t = np.arange(int(ms * 8)) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


class ScriptedRecognizer(Recognizer):
    """Returns the next line of the caller's script as each utterance's transcript; once they
    are used up, ``then`` (the load test's endless caller says one line forever: no list of
    a hundred thousand copies to make per call)."""

    name = "fake-asr"

    def __init__(self, lines: list[str], then: str = "okay") -> None:
        self.lines = list(lines)
        self.then = then
        self.utterances: list[tuple[int, int]] = []

    def push(self, pcm16: bytes) -> None:
        pass

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        self.utterances.append((onset_ms, eou_ms))
        text = self.lines.pop(0) if self.lines else self.then
        return Transcript(text, 0.95, True, self.name, onset_ms, eou_ms)


class ToneSynthesizer(Synthesizer):
    """A tone, ``ms_per_word`` per word: instant, and loud enough to be heard. Each length
    is computed once (a real TTS runs elsewhere: its cost must not count as the server's)."""

    name = "fake-tts"

    def __init__(self, ms_per_word: int = 120) -> None:
        self.ms_per_word = ms_per_word
        self.spoken: list[str] = []
        self._tones: dict[int, bytes] = {}

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        self.spoken.append(text)
        ms = max(300, self.ms_per_word * len(text.split()))
        audio = self._tones.get(ms)
        if audio is None:
            audio = self._tones[ms] = tone(ms, 523.0, 6000).tobytes()
        yield audio


class CountingBrain(Brain):
    """Asks ``turns`` questions, then says goodbye (which ends the call)."""

    name = "fake-brain"

    def __init__(self, turns: int, long_reply_on: int | None = None, always_long: bool = False) -> None:
        self.lead = LeadState()
        self.turns = turns
        self.long_reply_on = long_reply_on
        self.always_long = always_long
        self.heard_log: list[tuple[str, bool]] = []
        self.caller_turns: list[CallerTurn] = []

    def opening(self) -> str:
        return "Hello, this is the agent, how can I help?"

    async def respond(self, turn: CallerTurn) -> AsyncIterator[str]:  # type: ignore[override]
        self.caller_turns.append(turn)
        n = len(self.caller_turns)
        if n >= self.turns:
            self.finished = True
            yield "Thank you, goodbye."
            return
        if self.long_reply_on == n or self.always_long:
            yield "Let me tell you a long story about all the flats we have in the north of the city today."
            yield "And there are many more in the south, would you like those?"
            return
        yield f"Got it, question number {n + 1}?"

    def heard(self, said: str, heard_fully: bool) -> None:
        self.heard_log.append((said, heard_fully))

    def summary(self) -> str:
        return "summary"


@dataclass
class FakeWorld:
    transcripts: list[str]
    turns: int = 3
    then: str = "okay"  # every transcript after the scripted ones
    long_reply_on: int | None = None
    always_long: bool = False
    recorder: CallRecorder = field(default_factory=NullRecorder)
    recognizers: list[ScriptedRecognizer] = field(default_factory=list)
    brains: list[CountingBrain] = field(default_factory=list)
    synthesizer: ToneSynthesizer = field(default_factory=ToneSynthesizer)
    results: list = field(default_factory=list)

    def wiring(self, settings: Settings) -> Wiring:
        from server.session import CallDeps, run_call

        def new_recognizer(language: str) -> ScriptedRecognizer:
            r = ScriptedRecognizer(self.transcripts, self.then)
            self.recognizers.append(r)
            return r

        def new_brain(language: str, phone: str, now: dt.datetime) -> CountingBrain:
            b = CountingBrain(self.turns, self.long_reply_on, self.always_long)
            self.brains.append(b)
            return b

        async def recording_run_call(transport, deps):  # type: ignore[no-untyped-def]
            result = await run_call(transport, deps)
            self.results.append(result)
            return result

        from server.recording import LiveCalls, recordings_from

        deps = CallDeps(
            config=settings.timing, new_recognizer=new_recognizer, synthesizer=self.synthesizer,
            new_brain=new_brain, recorder=self.recorder, language=settings.agent_language,
            max_call_s=settings.max_call_minutes * 60.0, live=LiveCalls(),
            # recorded only when asked (RECORDINGS_DIR given), never into the checkout
            recordings=recordings_from(settings.recordings_dir, settings.recordings_days)
            if "RECORDINGS_DIR" in settings.env else None,
        )
        return Wiring(run_call=recording_run_call, call_deps=deps,
                      providers={"asr": "fake-asr", "tts": "fake-tts", "brain": "fake-brain"},
                      recorder=self.recorder)


def env_wiring(settings: Settings) -> Wiring:
    """For AGENTLOCATOR_TEST_WIRING: a server process with instant fake providers that
    answers every caller turn with a long reply and never hangs up. Every utterance is heard
    as a real request (not a backchannel like "okay", which the turn-taking treats as a false
    interruption and talks on), so each barge-in over real sockets starts a new reply."""
    world = FakeWorld([], then="I am looking for a flat in the north of the city", turns=10**9, always_long=True)
    return world.wiring(settings)


def dashboard_wiring(settings: Settings) -> Wiring:
    """env_wiring plus the real store (DATABASE_URL) and the dashboard: every HTTP route of
    the production app is there (the security suite fuzzes them in a server process)."""
    from leads.store import open_store
    from server.dashboard import dashboard_bp
    from server.inflow import inflow_bp
    from server.whatsapp import whatsapp_bp

    wiring = env_wiring(settings)
    recorder = open_store(settings.database_url)
    wiring.call_deps.recorder = recorder
    wiring.recorder = recorder
    wiring.blueprints = [dashboard_bp, inflow_bp, whatsapp_bp]
    return wiring
