"""App startup: the synthesizer caches the brain's fixed lines, bounded, and says how long."""
from __future__ import annotations

import datetime as dt
import io
import json
import logging
from types import SimpleNamespace
from typing import AsyncIterator, Iterator
from zoneinfo import ZoneInfo

import pytest
import trio

from dialog.base import CLARIFY_EN, CLARIFY_HE, CallerTurn
from dialog.rules import RuleBrain
from leads.base import NullRecorder
from server import app as app_module
from telemetry import logs
from server.settings import Settings
from dialog.phrases import fixed_lines
from server.wiring import Wiring
from speech.base import Synthesizer

from .harness import ahttp, running_server


class WarmingSynth(Synthesizer):
    name = "warming-tts"

    def __init__(self, warm_s: float = 0.0, fail: bool = False) -> None:
        self.warm_s = warm_s
        self.fail = fail
        self.warmed: list[str] = []
        self.finished = trio.Event()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        yield b"\0\0" * 160

    async def warm(self, lines: list[str]) -> None:
        if self.fail:
            raise OSError("TTS endpoint unreachable")
        await trio.sleep(self.warm_s)
        self.warmed.extend(lines)
        self.finished.set()


def _wiring(synth: WarmingSynth, lines: list[str]):
    async def run_call(transport, deps):  # type: ignore[no-untyped-def]
        return None

    def factory(settings: Settings) -> Wiring:
        return Wiring(run_call=run_call, call_deps=SimpleNamespace(synthesizer=synth),
                      providers={"asr": "fake-asr", "tts": synth.name, "brain": "fake-brain"},
                      recorder=NullRecorder(), warm_lines=lines)

    return factory


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The app's JSON log lines, in memory; the logger is put back as it was afterwards."""
    logger = logging.getLogger("agentlocator")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stream = io.StringIO()
    logs.configure("INFO", stream)
    try:
        yield stream
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(ln) for ln in stream.getvalue().splitlines() if ln.startswith("{")]


@pytest.mark.parametrize("language", ["en-US", "he-IL"])
async def test_fixed_lines_are_what_the_rule_brain_says(language: str) -> None:
    lines = fixed_lines(language)
    clarify = CLARIFY_HE if language == "he-IL" else CLARIFY_EN
    now = dt.datetime(2026, 11, 26, 10, tzinfo=ZoneInfo("Asia/Jerusalem"))
    brain = RuleBrain(language, "+972501234567", now)
    assert lines[:2] == [brain.opening(), clarify]
    refusal = "no thanks, not interested, bye" if language == "en-US" else "לא תודה, לא מעוניין, ביי"
    goodbye = [s async for s in brain.respond(CallerTurn(refusal, 0.9))]
    assert brain.finished and goodbye and all(s in lines for s in goodbye)
    assert len(lines) == len(set(lines))


async def test_startup_warms_the_synthesizer_before_serving(captured: io.StringIO) -> None:
    stream = captured
    synth = WarmingSynth(warm_s=0.05)
    lines = fixed_lines("en-US")
    async with running_server(_wiring(synth, lines)) as (_, port):
        assert synth.warmed == lines  # readiness waited for it (well inside the budget)
        assert (await ahttp("GET", port, "/version"))[0] == 200
    warm = [ln for ln in _lines(stream) if ln["event"] == "STARTUP" and "tts_warm_ms" in ln]
    assert len(warm) == 1
    assert warm[0]["tts_warm_lines"] == len(lines) and warm[0]["tts_warm_done"] is True
    assert warm[0]["tts_warm_ms"] >= 50 and warm[0]["synthesizer"] == "warming-tts"


async def test_a_slow_or_failing_warm_does_not_hold_readiness(monkeypatch, captured: io.StringIO) -> None:
    monkeypatch.setattr(app_module, "TTS_WARM_WAIT_S", 0.2)
    stream = captured
    synth = WarmingSynth(warm_s=1.0)
    async with running_server(_wiring(synth, ["Hello."])) as (_, port):
        ready = trio.current_time()
        assert synth.warmed == []  # still warming, and the app serves
        assert (await ahttp("GET", port, "/version"))[0] == 200
        with trio.fail_after(5):
            await synth.finished.wait()  # it went on in the background
        assert synth.warmed == ["Hello."] and trio.current_time() - ready >= 0.5

    synth = WarmingSynth(fail=True)
    async with running_server(_wiring(synth, ["Hello."])) as (_, port):
        assert (await ahttp("GET", port, "/version"))[0] == 200
    errors = [ln for ln in _lines(stream) if ln["event"] == "ERROR" and ln.get("where") == "tts warm"]
    assert len(errors) == 1 and "TTS endpoint unreachable" in errors[0]["error"]


async def test_version_and_startup_describe_the_speech_choice(captured: io.StringIO) -> None:
    speech = {"asr": "google", "asr_fallback": "whisper", "tts": "google", "tts_fallback": "espeak",
              "language": "he-IL", "why": ["asr=google: Google credentials/endpoint present"]}
    synth = WarmingSynth()
    base = _wiring(synth, [])

    def factory(settings: Settings) -> Wiring:
        wiring = base(settings)
        wiring.speech = speech
        return wiring

    async with running_server(factory) as (_, port):
        status, _, body = await ahttp("GET", port, "/version")
    data = json.loads(body)
    assert status == 200 and data["speech"] == speech
    assert data["providers"] == {"asr": "fake-asr", "tts": "warming-tts", "brain": "fake-brain"}  # the contract
    assert data["version"] and data["commit"]
    startup = [ln for ln in _lines(captured) if ln["event"] == "STARTUP" and "providers" in ln]
    assert len(startup) == 1 and startup[0]["speech"] == speech
    assert synth.warmed == []  # no lines, no warm
