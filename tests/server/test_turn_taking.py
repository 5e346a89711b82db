"""Turn-taking as the caller lives it, through the real session and the Twilio emulator in
virtual time: false interruptions resume, noise gets no reply, the goodbye can be talked
over, and `clear` leaves in the very scheduler step of the frame that triggered it."""
from __future__ import annotations

import io
import json

import trio

from native.config import TimingConfig
from telemetry import logs
from server.session import run_call

from .fakes import ScriptedBrain, ScriptedRecognizer
from .harness import Scenario, run_scenario
from .twilio_emulator import MemoryTransport, TwilioEmulator

CFG = TimingConfig()
REPLY = ["Great, Haifa is lovely and there is a lot to see there.", "What kind of place are you after?"]


def overlap_ms(spans: list[tuple[float, float]], a: float, b: float) -> float:
    return 1000 * sum(max(0.0, min(b, y) - max(a, x)) for x, y in spans)


def audible_after(emu: TwilioEmulator, t: float) -> float | None:
    starts = [a for a, b in emu.heard_intervals() if b > t + 1e-9]
    return max(starts[0], t) if starts else None


async def test_a_backchannel_over_the_agent_resumes_from_the_last_heard_word(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa", "yeah"]), brain=ScriptedBrain([REPLY]))
    said: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        said.append(emu.say(0.3, at=start + 1.0))  # "yeah", 300 ms, one second into the reply
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    (a, b) = said[0]
    # the agent stopped for it (a barge-in: 200 ms of voice after the grace window) ...
    assert r.metrics.barge_ins == 1 and len(out.emu.report.clears) == 1
    # ... and picked the sentence up again within 600 ms of the caller's voice ending
    resumed_at = audible_after(out.emu, b)
    assert resumed_at is not None and (resumed_at - b) * 1000 <= 600
    # from the word the caller last heard: the rest of the cut sentence, then the next one
    first = REPLY[0].split()
    rest, then = sc.synthesizer.texts[-2:]
    assert rest != REPLY[0] and REPLY[0].endswith(rest) and rest.split()[0] in first[1:]
    assert then == REPLY[1]
    # the brain was not asked: one turn, and it heard the whole reply in the end
    assert [t.text for t in sc.brain.turns] == ["area Haifa"]
    assert sc.brain.heard_log[-1] == (" ".join(REPLY), True)
    assert r.metrics.false_interruptions == 1 and r.metrics.resumed == 1
    changes = [(e["from_state"], e["to_state"], e["cause"]) for e in out.events("STATE_CHANGE")]
    assert ("PAUSED", "PROCESSING", "FalseInterruption") in changes
    # resumed marks carry the segment; the cut segment's were never counted
    assert any(n.startswith("t2r1.") for _, n in out.emu.report.marks)


async def test_a_real_interruption_stops_the_agent_and_is_answered(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa", "wait, I want a house"]),
                  brain=ScriptedBrain([REPLY, ["A house, sure. Which budget?"]]))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        emu.say(1.4, at=start + 1.0)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    assert [t.text for t in sc.brain.turns] == ["area Haifa", "wait, I want a house"]
    assert sc.brain.turns[1].interrupted_agent
    said, fully = sc.brain.heard_log[1]
    assert not fully and REPLY[0].startswith(said) and said
    assert out.result.metrics.false_interruptions == 0 and out.result.metrics.resumed == 0


async def test_a_knock_while_listening_gets_no_reply(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["", "area Haifa"]))
    knock: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(1.0)
        knock.append(emu.say(0.16))  # a 160 ms knock: long enough to be voice, not a turn
        await trio.sleep(3.0)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    a, b = knock[0]
    first_after = audible_after(out.emu, b)
    assert first_after is not None and first_after - b > 2.5  # only the answer to the real turn
    assert [t.text for t in sc.brain.turns] == ["area Haifa"]
    assert out.result.metrics.ignored == 1 and out.result.metrics.turns == 1
    changes = [e["cause"] for e in out.events("STATE_CHANGE")]
    assert "NoiseIgnored" in changes


async def test_talking_over_the_goodbye_is_heard_and_answered(autojump_clock) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer(["that is all", "oh wait, one more thing"]),
        brain=ScriptedBrain([["Thank you for calling, have a lovely day and goodbye."], ["Sure, what is it?"]],
                            finish_after=1),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        emu.say(1.4, at=start + 0.8)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    assert r.close_reason == "twilio_stop"  # the agent did not hang up on the caller
    assert len(out.emu.report.clears) == 1 and r.metrics.barge_ins == 1
    assert [t.text for t in sc.brain.turns] == ["that is all", "oh wait, one more thing"]
    assert sc.synthesizer.texts[-1] == "Sure, what is it?"


async def test_the_call_ends_only_after_a_quiet_linger_after_the_goodbye(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["bye", "thanks"]),
                  brain=ScriptedBrain([["Goodbye."], ["Bye again."]], finish_after=1))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        t = await emu.wait_marks("t2.end", 1)
        emu.say(1.0, at=t + 0.5)  # the caller says something right after the goodbye
        await trio.sleep(30)

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "agent_hangup"
    assert [t.text for t in sc.brain.turns] == ["bye", "thanks"]  # answered, then the line closed
    last_echo = max(t for t, n in out.emu.report.marks if n.endswith(".end"))
    linger = CFG.goodbye_linger_ms / 1000
    assert last_echo + linger <= out.emu.now() < last_echo + linger + 0.1


class _Steps(trio.abc.Instrument):
    """Counts scheduler steps: two things with the same step number happened in one run of
    one task, with no checkpoint between them."""

    def __init__(self) -> None:
        self.step = 0
        self.task: trio.lowlevel.Task | None = None

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.step += 1
        self.task = task


class _StepTransport:
    def __init__(self, inner: MemoryTransport, steps: _Steps) -> None:
        self.inner = inner
        self.steps = steps
        self.received: list[tuple[int, object, str]] = []
        self.sent: list[tuple[int, object, str]] = []

    async def receive(self) -> str:
        text = await self.inner.receive()
        self.received.append((self.steps.step, self.steps.task, text[:20]))
        return text

    async def send(self, text: str) -> None:
        self.sent.append((self.steps.step, self.steps.task, text[:20]))
        await self.inner.send(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.inner.close(code, reason)


async def test_clear_leaves_in_the_same_scheduler_step_as_the_trigger(autojump_clock) -> None:
    """The frame that tips the barge-in detector and the `clear` it causes are handled in one
    step of the receive task: no other task runs between them, and no other task sends it."""
    logs.configure("INFO", io.StringIO())
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa", "stop"]), brain=ScriptedBrain([REPLY * 2]))
    steps = _Steps()
    emu = TwilioEmulator()
    transport = _StepTransport(emu.transport, steps)

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        emu.say(1.2, at=start + 1.0)
        await emu.wait_marks(".end", 2)

    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(emu.run, script)
            result = await run_call(transport, sc.deps())  # type: ignore[arg-type]
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
    assert result.metrics.barge_ins == 1
    (clear,) = [s for s in transport.sent if json.loads('{"event":"clear"}')["event"] in s[2]]
    last_media = [r for r in transport.received if r[0] <= clear[0] and '"media"' in r[2]][-1]
    assert (clear[0], clear[1]) == (last_media[0], last_media[1])
