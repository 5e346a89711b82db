"""The end of a call: what reaches the recorder and the brain when the agent hangs up or the
line drops (virtual time, the in-memory Twilio emulator)."""
from __future__ import annotations

import trio

from .fakes import RecordingRecorder, ScriptedBrain, ScriptedRecognizer
from .harness import Scenario, run_scenario
from .twilio_emulator import TwilioEmulator


class StoreLikeRecorder(RecordingRecorder):
    """Awaits before it writes, as a real store does (its DB work runs in a thread)."""

    async def transcript_turn(self, call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully) -> None:  # type: ignore[override]
        await trio.sleep(0.002)
        await super().transcript_turn(call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully)


async def _goodbye_script(emu: TwilioEmulator) -> None:
    await emu.wait_marks(".end", 1)
    await trio.sleep(0.5)
    emu.say(1.2)
    await trio.sleep(60)  # the agent hangs up long before


async def test_the_goodbye_reaches_the_stored_transcript(autojump_clock) -> None:
    """The goodbye's heard report is queued for the recorder in the same tick as the hangup;
    the write must not be lost to the call's cancellation."""
    sc = Scenario(
        recognizer=ScriptedRecognizer(["no thank you"]),
        brain=ScriptedBrain([["Thank you.", "Goodbye."]], finish_after=1),
        recorder=StoreLikeRecorder(),
    )
    out = await run_scenario(sc, _goodbye_script)
    assert out.result.close_reason == "agent_hangup"
    turns = [(e[1], e[2], e[5]) for e in sc.recorder.turns()]
    assert turns == [
        ("agent", "Hello, this is AgentLocator. How can I help?", True),
        ("caller", "no thank you", True),
        ("agent", "Thank you. Goodbye.", True),
    ]
    assert len(sc.recorder.ended) == 1
