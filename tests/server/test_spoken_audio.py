"""Only the audio uses the spoken form: the synthesizer is fed words ("שלושה חדרים", "עשר
בבוקר"), the transcript and the dashboard keep what the agent wrote ("3 חדרים", "10:00")."""
from __future__ import annotations

import dataclasses

import trio

from server.session import run_call
from speech.spoken_tts import SpokenSynthesizer

from .fakes import RecordingRecorder, ScriptedBrain, ScriptedRecognizer, ToneSynthesizer
from .harness import Scenario
from .twilio_emulator import TwilioEmulator

OPENING = "שלום, מדברת נועה מ-AgentLocator. באיזה אזור מחפשים נכס?"
REPLY = ["מעולה, דירת 3 חדרים עד 1,800,000 ₪.", "אפשר להיפגש מחר ב-10:00?"]


async def test_the_voice_says_words_the_transcript_keeps_the_written_form(autojump_clock) -> None:
    voice = ToneSynthesizer(ms_per_char=10)
    sc = Scenario(recognizer=ScriptedRecognizer(["בחולון"]), brain=ScriptedBrain([REPLY], opening=OPENING),
                  recorder=RecordingRecorder())
    deps = dataclasses.replace(sc.deps(), synthesizer=SpokenSynthesizer(voice, "he-IL"), language="he-IL")

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.6)
        emu.say(1.4)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    emu = TwilioEmulator()
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(emu.run, script)
            await run_call(emu.transport, deps)
            nursery.cancel_scope.cancel()

    assert voice.texts == [
        "שלום, מדברת נועה מאייג'נט לוקייטור. באיזה אזור מחפשים נכס?",
        "מעולה, דירת שלושה חדרים עד מיליון שמונה מאות אלף שקל.",
        "אפשר להיפגש מחר בעשר בבוקר?",
    ]
    agent = [turn[2] for turn in sc.recorder.turns("agent")]
    assert agent == [OPENING, " ".join(REPLY)]
    assert sc.brain.heard_log[-1] == (" ".join(REPLY), True)  # the brain hears back what it wrote
