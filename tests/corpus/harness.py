"""One scenario -> one call: the real session (server.session.run_call) against the caller's
line, in virtual time, with the REAL RuleBrain (spied on), the oracle ASR and the agent voice.

Must run inside trio with a MockClock(autojump_threshold=0) (the autojump_clock fixture).
Everything the caller says is rendered before the call starts.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import trio

from native.config import TimingConfig
from telemetry import logs
from server.session import CallDeps, CallResult, run_call

from tests.server.fakes import RecordingRecorder
from .agent import AgentVoice, SpyRuleBrain, SynthCall
from .caller import CallerScript, Performed, Scenario
from .line import CallerLine, LineRecord
from .oracle_asr import AsrCall, OracleRecognizer
from .voices import prerender

# A fixed "now" for the brain (meeting windows are computed from it): Tuesday 10:00 in Israel.
CALL_NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Jerusalem"))


@dataclass
class Record:
    """Everything the judge reads (plain data; none of it comes from the server's own logs)."""

    scenario: Scenario
    line: LineRecord
    performed: list[Performed]
    synth: list[SynthCall]
    brain_turns: list[tuple[str, float, bool]]  # (text, confidence, interrupted_agent)
    brain_replies: list[tuple[float, list[str]]]  # (respond() time, sentences yielded); the greeting first
    brain_heard: list[tuple[str, bool]]
    slots: dict[str, object]
    status: str
    asr_calls: list[AsrCall]
    result: CallResult | None
    t0: float = 0.0
    log_lines: list[dict] = field(default_factory=list)  # the server's own log: debugging only


async def run_scenario(sc: Scenario, config: TimingConfig | None = None, virtual_limit_s: float = 240.0) -> Record:
    clips = prerender(sc.voices)  # cached: normally done once for the whole corpus before
    stream = io.StringIO()
    logs.configure("INFO", stream)
    line = CallerLine(snr_db=sc.snr_db, echo=sc.echo, bursts=sc.bursts)  # type: ignore[arg-type]
    oracle = OracleRecognizer(lambda: line.placed, line.now, latency_s=sc.asr_latency_s)
    voice = AgentVoice(sc.language, sc.agent)
    brains: list[SpyRuleBrain] = []

    def new_brain(language: str, phone: str, now: dt.datetime) -> SpyRuleBrain:
        brain = SpyRuleBrain(language, phone, now)
        brains.append(brain)
        return brain

    deps = CallDeps(
        config=config or TimingConfig(),
        new_recognizer=lambda language: oracle,
        synthesizer=voice,
        new_brain=new_brain,
        recorder=RecordingRecorder(),
        language=sc.language,
        wall_clock=lambda: CALL_NOW.astimezone(dt.timezone.utc),
    )
    script = CallerScript(sc.steps, clips, oracle)
    result: CallResult | None = None
    with trio.fail_after(virtual_limit_s):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(line.run, script)
            result = await run_call(line.transport, deps)
            with trio.move_on_after(1.0):  # let the line see the close
                await line.wait_until(lambda: line.closed_at is not None)
            nursery.cancel_scope.cancel()
    return make_record(sc, line, script, voice, brains, oracle, result,
                       [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")])


def make_record(
    sc: Scenario,
    line: CallerLine,
    script: CallerScript,
    voice: AgentVoice,
    brains: list[SpyRuleBrain],
    oracle: OracleRecognizer,
    result: CallResult | None,
    log_lines: list[dict],
) -> Record:
    """The judge's input from the instruments of one call (virtual time or real sockets)."""
    brain = brains[0] if brains else None
    slots = {}
    if brain is not None:
        s = brain.lead.slots
        slots = {k: getattr(s, k) for k in s.__slots__}  # type: ignore[attr-defined]
    return Record(
        scenario=sc,
        line=line.record(),
        performed=list(script.performed),
        synth=list(voice.calls),
        brain_turns=[(t.text, t.confidence, t.interrupted_agent) for t in (brain.turns if brain else [])],
        brain_replies=([(line.t0, [brain.opening()])] + list(zip(brain.turn_times, brain.replies))) if brain else [],
        brain_heard=list(brain.heard_log) if brain else [],
        slots=slots,
        status=brain.lead.status if brain else "none",
        asr_calls=list(oracle.calls),
        result=result,
        t0=line.t0,
        log_lines=log_lines,
    )
