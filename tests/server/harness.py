"""Run one call: the real session against the in-memory Twilio emulator, in virtual time."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Awaitable, Callable

import trio

from native.config import TimingConfig
from telemetry import logs
from server.session import CallDeps, CallResult, run_call

from .fakes import RecordingRecorder, ScriptedBrain, ScriptedRecognizer, ToneSynthesizer
from .twilio_emulator import TwilioEmulator


@dataclass
class Scenario:
    config: TimingConfig = field(default_factory=TimingConfig)
    recognizer: ScriptedRecognizer = field(default_factory=ScriptedRecognizer)
    synthesizer: ToneSynthesizer = field(default_factory=ToneSynthesizer)
    brain: ScriptedBrain = field(default_factory=ScriptedBrain)
    recorder: RecordingRecorder = field(default_factory=RecordingRecorder)
    asr_timeout_s: float = 3.0

    def deps(self) -> CallDeps:
        return CallDeps(
            config=self.config,
            new_recognizer=lambda language: self.recognizer,
            synthesizer=self.synthesizer,
            new_brain=lambda language, phone, now: self.brain,
            recorder=self.recorder,
            language="en-US",
            asr_timeout_s=self.asr_timeout_s,
        )


@dataclass
class Outcome:
    result: CallResult
    emu: TwilioEmulator
    lines: list[dict]

    def events(self, name: str) -> list[dict]:
        return [line for line in self.lines if line.get("event") == name]


async def run_scenario(
    scenario: Scenario, script: Callable[[TwilioEmulator], Awaitable[None]], virtual_limit_s: float = 600.0,
    **emulator_kw: object,
) -> Outcome:
    stream = io.StringIO()
    logs.configure("INFO", stream)
    emu = TwilioEmulator(**emulator_kw)  # type: ignore[arg-type]
    # A script waiting for something that never comes would run virtual time forever.
    with trio.fail_after(virtual_limit_s):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(emu.run, script)
            result = await run_call(emu.transport, scenario.deps())
            nursery.cancel_scope.cancel()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return Outcome(result, emu, lines)
