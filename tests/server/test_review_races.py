"""Races found in review: a barge-in, a hangup or a mark echo arriving in the middle of
other work must not lose the lead, the transcript, or leave the call hanging."""
from __future__ import annotations

import trio

from .fakes import ScriptedBrain, ScriptedRecognizer
from .harness import Scenario, run_scenario
from .twilio_emulator import TwilioEmulator

LONG = "This is a long sentence that keeps the agent talking for quite a while, surely."


async def test_a_lead_update_survives_a_barge_in_on_a_still_streaming_reply(autojump_clock) -> None:
    # A real LLM streams a reply sentence by sentence: the caller can interrupt the first
    # sentence while the rest is still being generated. The brain updated the lead from the
    # caller's turn before it streamed; that update must reach the recorder then (it is what
    # a crash recovery sends), not only at the call's end.
    sc = Scenario(
        recognizer=ScriptedRecognizer(["area Haifa", "hold on"]),
        brain=ScriptedBrain([[LONG, LONG, LONG]], sentence_delay_s=1.0),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)  # greeting played
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        await emu.sleep_until(start + 0.6)  # past the grace window, brain still streaming
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    assert out.result.metrics.barge_ins == 1
    assert sc.brain.lead.slots.area == "Haifa"
    leads = [e for e in sc.recorder.events if e[0] == "lead"]
    assert leads and leads[0][2] == "Haifa"


async def test_the_agent_turn_playing_when_the_caller_hangs_up_reaches_the_transcript(autojump_clock) -> None:
    # Callers hang up while the agent talks. Twilio then sends `stop`; what the caller heard
    # of the agent's last turn (its first sentence, whose mark came back, and the words of
    # the second that played) must still be in the stored transcript, marked not heard fully.
    sc = Scenario(
        recognizer=ScriptedRecognizer(["tell me more"]),
        brain=ScriptedBrain([["Short one.", LONG, LONG]]),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        await emu.sleep_until(start + 1.84)  # "Short one." (0.4 s) and 1.44 s of LONG played

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "twilio_stop"
    agent = sc.recorder.turns("agent")
    assert len(agent) == 2, agent
    assert agent[1][2] == "Short one. This is a long sentence that" and agent[1][5] is False
    assert sc.recorder.ended  # and the call's end is still recorded after it


class _SilentLink(TwilioEmulator):
    """The network path dies without a FIN or RST (a NAT or LB drops the flow): nothing
    arrives from Twilio any more - no media, no mark echoes - and sends still 'succeed'."""

    def __init__(self, silent_after_s: float) -> None:
        super().__init__(echo_mark=lambda name: self.now() < silent_after_s)
        self.silent_after_s = silent_after_s

    async def _caller_audio(self) -> None:
        with trio.move_on_at(self.t0 + self.silent_after_s):
            await super()._caller_audio()


async def test_a_call_whose_inbound_stream_goes_silent_is_ended_not_left_hanging(autojump_clock) -> None:
    # Twilio streams caller audio every 20 ms for as long as the call lasts, so a stream that
    # sends nothing at all for many seconds is dead. Without a watchdog the receive loop waits
    # forever: calls_active stays up, the lead's call_ended is never written, the WhatsApp
    # follow-up never goes (heartbeats keep 'sending' into the kernel buffer for many minutes).
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa"]))
    emu = _SilentLink(silent_after_s=8.0)
    from server.session import run_call

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        emu.say(1.2)
        await trio.sleep(3600)

    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(emu.run, script)
            result = await run_call(emu.transport, sc.deps())
            nursery.cancel_scope.cancel()
    assert result.close_reason == "inbound_timeout" and result.close_code == 1001
    assert 8.0 + 14.0 <= result.duration_s <= 8.0 + 16.0  # the inbound timeout, 15 s
    assert len(sc.recorder.ended) == 1 and sc.recorder.ended[0]["close_reason"] == "inbound_timeout"
    assert emu.link.closed  # our side of the dead socket is closed too


async def test_idle_guard_silence_does_not_count_as_the_start_of_a_pending_reply(autojump_clock) -> None:
    # The idle guard (no media for idle_guard_ms) queues a little silence. If that happens
    # while a reply is being prepared (the caller spoke after a long pause, the brain is
    # thinking), the reply's "first frame" cue must not fire on the guard's silence: that
    # would log TTS_START and measure the turn latency before any reply audio exists, and
    # arm barge-in (SPEAKING) while the agent is in fact still silent.
    from native.config import TimingConfig

    cfg = TimingConfig(idle_guard_ms=30000, heartbeat_ms=20000)
    sc = Scenario(
        config=cfg,
        recognizer=ScriptedRecognizer(["hello again"]),
        brain=ScriptedBrain([["Sorry for the wait."]], sentence_delay_s=3.0),
    )
    seen: dict[str, float] = {}

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        seen["greeting_end"] = emu.report.media_rx[-1]
        await emu.sleep_until(seen["greeting_end"] + 27.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    assert [k["idle_silence"] for k in out.events("WS_KEEPALIVE")].count(True) >= 1  # the guard did fire
    assert len(r.metrics.turn_latency_ms) == 1 and r.metrics.turn_latency_ms[0] >= 3000.0
    [first, second] = out.events("TTS_START")
    assert second["text"] == "Sorry for the wait." and second["latency_ms"] >= 3000.0


class _ScriptedSocket:
    """Twilio's frames from a list, then nothing; what the session sends is kept."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = list(frames)
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> str:
        await trio.sleep(0.02)
        if self.frames:
            return self.frames.pop(0)
        await trio.sleep_forever()
        raise AssertionError

    async def send(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def _start(params: dict[str, str]) -> str:
    import json

    return json.dumps({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ9",
        "start": {"accountSid": "AC1", "streamSid": "MZ9", "callSid": "CA9", "tracks": ["inbound"],
                  "customParameters": params,
                  "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
    })


async def test_on_a_call_we_placed_the_lead_is_the_called_number_not_our_own(autojump_clock) -> None:
    # Leads "call, or are called". On a call placed through Twilio's REST API, the TwiML
    # request (forwarded to the stream as <Parameter>s) has Direction=outbound-api, From =
    # our Twilio number and To = the lead. Taking From as the lead's phone filed every
    # outbound call under our own number and sent the WhatsApp summary to ourselves.
    from server.session import run_call

    ours, lead = "+97233001122", "+972541112233"
    for params, want in (
        ({"From": ours, "To": lead, "Direction": "outbound-api"}, lead),
        ({"From": lead, "To": ours, "Direction": "inbound"}, lead),
        ({"From": lead, "To": ours}, lead),  # no Direction forwarded: an inbound call
    ):
        sc = Scenario()
        phones: list[str] = []
        sc_deps = sc.deps()
        new_brain = sc_deps.new_brain
        sc_deps.new_brain = lambda language, phone, now: (phones.append(phone), new_brain(language, phone, now))[1]
        stop = '{"event":"stop","sequenceNumber":"2","streamSid":"MZ9","stop":{"accountSid":"AC1","callSid":"CA9"}}'
        socket = _ScriptedSocket(['{"event":"connected","protocol":"Call","version":"1.0.0"}', _start(params), stop])
        result = await run_call(socket, sc_deps)
        assert result.close_reason == "twilio_stop"
        assert phones == [want]
        assert sc.recorder.ended[0]["phone"] == want
        info = sc.recorder.events[0][1]
        assert (info.from_number, info.to_number) == (params["From"], params["To"])  # the call row stays as Twilio said
