"""The end of a call: what reaches the recorder and the brain when the agent hangs up or the
line drops (virtual time, the in-memory Twilio emulator)."""
from __future__ import annotations

from typing import Callable

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


async def test_the_brain_is_closed_after_a_hangup_and_after_a_dropped_call(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["that is all"]), brain=ScriptedBrain([["Bye."]], finish_after=1))
    out = await run_scenario(sc, _goodbye_script)
    assert out.result.close_reason == "agent_hangup" and sc.brain.closed == 1

    sc = Scenario()

    async def drop(emu: TwilioEmulator) -> None:
        await emu.wait_agent_speech(1)
        await trio.sleep(0.3)
        emu.drop()

    out = await run_scenario(sc, drop)
    assert out.result.close_reason == "dropped" and sc.brain.closed == 1


async def test_a_brain_that_hangs_or_fails_on_close_does_not_hold_the_call(autojump_clock) -> None:
    from server.session import BRAIN_CLOSE_TIMEOUT_S

    class Stuck(ScriptedBrain):
        async def aclose(self) -> None:
            await trio.sleep_forever()

    class Broken(ScriptedBrain):
        async def aclose(self) -> None:
            raise OSError("connection reset while closing")

    for brain, error in ((Stuck(), f"not closed within {BRAIN_CLOSE_TIMEOUT_S}s"),
                         (Broken(), "OSError('connection reset while closing')")):
        sc = Scenario(brain=brain)

        async def script(emu: TwilioEmulator) -> None:
            await emu.wait_marks(".end", 1)

        out = await run_scenario(sc, script)
        assert out.result.close_reason == "twilio_stop"
        assert [e["error"] for e in out.events("ERROR") if e["where"] == "brain.aclose"] == [error]
        assert out.result.duration_s < 10 + BRAIN_CLOSE_TIMEOUT_S + 1
        assert len(sc.recorder.ended) == 1  # the call's end was stored before the brain was closed


async def test_lead_updates_carry_the_brains_summary(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa"]))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)

    await run_scenario(sc, script)
    assert sc.recorder.lead_summaries == ["summary: area=Haifa"]



class SlowStoreRecorder(RecordingRecorder):
    """Every write takes ``seconds`` (a database slow to commit), and notes when it finished."""

    def __init__(self, seconds: float, link_closed: Callable[[], bool]) -> None:
        super().__init__()
        self.seconds = seconds
        self.link_closed = link_closed
        self.writes: list[tuple[str, float, bool]] = []  # (what, finished at, socket closed by then)

    async def _slow(self, what: str) -> None:
        await trio.sleep(self.seconds)
        self.writes.append((what, trio.current_time(), self.link_closed()))

    async def call_started(self, info) -> None:  # type: ignore[override]
        await self._slow("call_started")
        await super().call_started(info)

    async def transcript_turn(self, call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully) -> None:  # type: ignore[override]
        await self._slow(f"turn:{speaker}")
        await super().transcript_turn(call_sid, speaker, text, t_start_ms, t_end_ms, heard_fully)

    async def lead_updated(self, call_sid, phone, lead, whatsapp_summary=None) -> None:  # type: ignore[override]
        await self._slow("lead")
        await super().lead_updated(call_sid, phone, lead, whatsapp_summary)

    async def call_ended(self, *args) -> None:  # type: ignore[override]
        await self._slow("call_ended")
        await super().call_ended(*args)


async def test_the_line_is_hung_up_at_once_while_slow_writes_are_still_queued(autojump_clock) -> None:
    """A database taking 2 s per write: the agent's goodbye ends the call on time (the socket
    closes in the hang-up's own tick, not after the write in progress), and every write still
    lands afterwards, in order, the call's end last."""
    holder: list[TwilioEmulator] = []
    sc = Scenario(
        recognizer=ScriptedRecognizer(["area Haifa", "no thank you"]),
        brain=ScriptedBrain([["Noted."], ["Thank you.", "Goodbye."]], finish_after=2),
        recorder=SlowStoreRecorder(2.0, lambda: holder[0].link.closed),
    )

    async def script(emu: TwilioEmulator) -> None:
        holder.append(emu)
        for n in (1, 2):
            await emu.wait_marks(".end", n)
            await trio.sleep(0.5)
            emu.say(1.2)
        await trio.sleep(120)  # the agent hangs up long before

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "agent_hangup"
    [ended] = [e for e in out.events("STATE_CHANGE") if e["to_state"] == "ENDED"]
    [closed] = out.events("WS_CLOSE")
    assert closed["t"] - ended["t"] < 50, (ended["t"], closed["t"])  # ms: not behind a 2 s write
    rec = sc.recorder
    assert any(not was_closed for _, _, was_closed in rec.writes)  # writes were queued during the call
    assert sum(1 for _, _, was_closed in rec.writes if was_closed) >= 2  # ... and landed after the close
    assert [w[0] for w in rec.writes][-1] == "call_ended" and len(rec.ended) == 1
    assert [(e[1], e[2]) for e in rec.turns()] == [
        ("agent", "Hello, this is AgentLocator. How can I help?"), ("caller", "area Haifa"), ("agent", "Noted."),
        ("caller", "no thank you"), ("agent", "Thank you. Goodbye."),
    ]
