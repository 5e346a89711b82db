"""What the call's log lines say about the agent's words (the demo's live view reads them)."""
from __future__ import annotations

import trio

from server import demo

from .fakes import ScriptedBrain, ScriptedRecognizer
from .harness import Scenario, run_scenario
from .twilio_emulator import TwilioEmulator


async def test_tts_start_and_sentence_marks_carry_the_agents_words(autojump_clock, capsys) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer(["area Haifa"]),
        brain=ScriptedBrain([["Haifa, great.", "What kind of place?"]]),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    starts = out.events("TTS_START")
    assert [(e["turn"], e["text"]) for e in starts] == [
        (1, "Hello, this is AgentLocator. How can I help?"), (2, "Haifa, great."),
    ]
    sent = {e["name"]: e.get("text") for e in out.events("MARK_SENT")}
    assert sent["t2.s0"] == "Haifa, great." and sent["t2.s1"] == "What kind of place?"
    assert sent["t2.end"] is None  # the final mark is not a sentence

    capsys.readouterr()
    for line in out.lines:
        demo._show_server(line)
    shown = capsys.readouterr().out
    for words in ("Hello, this is AgentLocator. How can I help?", "Haifa, great.", "What kind of place?"):
        assert shown.count(f"\u201c{words}\u201d") == 1, words
    assert shown.index("Haifa, great.") < shown.index("What kind of place?")


async def test_the_recognizers_own_lines_carry_the_call_sid(autojump_clock) -> None:
    """The failover recognizer logs its switch through the call's logger (bind_log)."""
    from speech.base import ProviderError
    from speech.failover import FailoverRecognizer

    primary = ScriptedRecognizer([ProviderError("primary-asr", "stream reset")])
    primary.name = "primary-asr"
    fallback = ScriptedRecognizer(["area Haifa"])
    failover = FailoverRecognizer(primary, fallback)
    sc = Scenario(recognizer=failover)  # type: ignore[arg-type]

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    switch = out.events("PROVIDER_SWITCH")
    errors = [e for e in out.events("ERROR") if e.get("provider") == "primary-asr"]
    assert len(switch) == 1 and len(errors) == 1
    call_sid = out.events("CALL_START")[0]["call_sid"]
    assert call_sid
    for line in switch + errors:
        assert line["call_sid"] == call_sid and isinstance(line["t"], (int, float))
    assert [t.text for t in sc.brain.turns] == ["area Haifa"]
