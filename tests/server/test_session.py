"""The call session end to end against the in-memory Twilio emulator, in virtual time."""
from __future__ import annotations

import base64
import json

import pytest
import trio

from dialog.base import CLARIFY_EN
from telemetry import metrics as prom
from native.config import TimingConfig
from speech.base import ProviderError

from .fakes import RecordingRecorder, ScriptedBrain, ScriptedRecognizer, ToneSynthesizer
from .harness import Scenario, run_scenario
from .twilio_emulator import TwilioEmulator

LONG = "This is a long sentence that keeps the agent talking for quite a while, surely."


def order_of(out, names: list[str]) -> list[str]:
    return [line["event"] for line in out.lines if line["event"] in names]


async def test_three_turn_call_follows_the_cycle(autojump_clock) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer(["area Haifa", "an apartment", "book it"]),
        brain=ScriptedBrain([["Haifa, great.", "What kind of place?"], ["Nice. When?"], ["Thanks, bye?"]]),
    )

    async def script(emu: TwilioEmulator) -> None:
        for k in range(1, 4):
            await emu.wait_marks(".end", k)
            await trio.sleep(0.6)
            emu.say(1.4)
        await emu.wait_marks(".end", 4)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    assert r.close_reason == "twilio_stop" and r.close_code == 1000
    assert r.metrics.turns == 3 and r.metrics.state_cycles == 3
    assert r.protocol_errors == 0 and r.rejected_events == 0
    assert not out.events("ERROR")
    # every utterance: EOU -> PROCESSING -> ASR_TEXT -> TTS_START -> MARK_ACK -> LISTENING
    seq = [
        (e["event"], e.get("to_state"))
        for e in out.lines
        if e["event"] in ("EOU", "ASR_TEXT", "TTS_START", "STATE_CHANGE") or (e["event"] == "MARK_ACK" and e["name"].endswith(".end"))
    ]
    turn = [("EOU", None), ("STATE_CHANGE", "PROCESSING"), ("ASR_TEXT", None), ("TTS_START", None),
            ("STATE_CHANGE", "SPEAKING"), ("MARK_ACK", None), ("STATE_CHANGE", "LISTENING")]
    greeting = [("STATE_CHANGE", "PROCESSING"), ("TTS_START", None), ("STATE_CHANGE", "SPEAKING"),
                ("MARK_ACK", None), ("STATE_CHANGE", "LISTENING")]
    assert seq == greeting + turn * 3
    # the caller's words went to the ASR from the onset, and the brain got them
    assert [t.text for t in sc.brain.turns] == ["area Haifa", "an apartment", "book it"]
    assert r.metrics.turns_to_meeting == 3
    assert not any(t.interrupted_agent for t in sc.brain.turns)
    assert len(sc.recognizer.begins) == 3 and len(sc.recognizer.ends) == 3
    assert sc.recognizer.bad_frames == 0 and sc.recognizer.frames == r.frames_in
    # every agent turn was heard in full, sentence marks included
    assert sc.brain.heard_log == [
        ("Hello, this is AgentLocator. How can I help?", True),
        ("Haifa, great. What kind of place?", True), ("Nice. When?", True), ("Thanks, bye?", True),
    ]
    assert [m for _, m in out.emu.report.marks if not m.startswith("hb")] == [
        "t1.s0", "t1.end", "t2.s0", "t2.s1", "t2.end", "t3.s0", "t3.end", "t4.s0", "t4.end",
    ]
    # recorder: as the call went, then the end
    rec = sc.recorder
    assert rec.events[0][0] == "call_started"
    assert [(e[1], e[2]) for e in rec.turns()] == [
        ("agent", "Hello, this is AgentLocator. How can I help?"), ("caller", "area Haifa"),
        ("agent", "Haifa, great. What kind of place?"), ("caller", "an apartment"), ("agent", "Nice. When?"),
        ("caller", "book it"), ("agent", "Thanks, bye?"),
    ]
    assert [e for e in rec.events if e[0] == "lead"] == [("lead", "+972501234567", "Haifa")] * 2
    assert len(rec.ended) == 1 and rec.ended[0]["close_reason"] == "twilio_stop"
    assert rec.ended[0]["summary"] == "summary: area=Haifa"
    # zero-latency fakes: the reply's first frame goes out in the same instant as the EOU
    assert r.metrics.turn_latency_ms == [0.0, 0.0, 0.0]


async def test_eou_timing(autojump_clock) -> None:
    cfg = TimingConfig()
    sc = Scenario(recognizer=ScriptedRecognizer(["one", "yes", "long", "and more"]))
    said: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        said.append(emu.say(2.0))  # a normal sentence
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)
        said.append(emu.say(0.3))  # a short "yes": still a turn, ends at MIN_UTT
        await emu.wait_marks(".end", 3)
        await trio.sleep(0.5)
        said.append(emu.say(7.0))  # no pause: MAX_UTT forces the end
        await emu.wait_marks(".end", 4)  # the answer to the whole monologue
        await trio.sleep(1.0)

    out = await run_scenario(sc, script)
    eous = out.events("EOU")
    # the caller talked on after the forced end: the reply to it was held (never audible over
    # the caller), dropped, and the rest of the monologue joined the same utterance, which ended
    # when the caller stopped: one turn for the brain, no barge-in
    assert len(eous) == 4 and out.events("BARGE_IN") == []
    assert eous[3]["onset_ms"] == eous[2]["onset_ms"] and not eous[3]["forced"]
    assert round(eous[3]["eou_ms"] - said[2][1] * 1000) <= cfg.eou_silence_ms + 20
    assert [t.text for t in sc.brain.turns] == ["one", "yes", "and more"] and len(sc.brain.retracted) == 1
    assert sc.recognizer.ends[3] == (eous[2]["onset_ms"], eous[3]["eou_ms"])  # the whole monologue
    assert out.result.metrics.turns == 3 and out.result.metrics.continuations == 1
    heard = out.emu.heard_intervals()
    assert not any(a < said[2][1] and b > said[2][0] for a, b in heard)  # never over the caller
    eous = eous[:3]
    for (start, end), eou in zip(said, eous):
        # (times from the virtual clock are floats: compare at 1 ms resolution)
        onset_lag = round(eou["onset_ms"] - start * 1000)
        assert 0 <= onset_lag <= 20  # the real start of the voice (to the frame), not the hysteresis' decision
    normal, short, forced = eous
    end_ms = said[0][1] * 1000
    # by the sharp drop or the silence, measured from the real end of the voice (to the frame)
    assert cfg.eou_drop_silence_ms <= round(normal["eou_ms"] - end_ms) <= cfg.eou_silence_ms + 20
    assert not normal["forced"]
    assert short["eou_ms"] - short["onset_ms"] == cfg.min_utt_ms and not short["forced"]
    assert forced["forced"] and forced["eou_ms"] - forced["onset_ms"] == cfg.max_utt_ms
    assert sc.recognizer.ends[:3] == [(e["onset_ms"], e["eou_ms"]) for e in eous]


async def test_barge_in_halts_at_once_and_tells_the_brain(autojump_clock) -> None:
    cfg = TimingConfig()
    sc = Scenario(
        recognizer=ScriptedRecognizer(["tell me more", "wait, stop"]),
        brain=ScriptedBrain([["Short one.", LONG, LONG]]),
    )
    voice: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.5)
        start = await emu.wait_agent_speech(2)
        await emu.sleep_until(start + 1.6)  # after the first sentence was heard
        voice.append(emu.say(1.5))
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    barge = out.events("BARGE_IN")
    assert len(barge) == 1 and r.metrics.barge_ins == 1 and r.metrics.barge_ins_clean == 1
    b = barge[0]
    v_start = voice[0][0] * 1000
    assert 0 <= round(b["onset_ms"] - v_start) <= 20  # onset = where the voice began (to the frame)
    assert b["trigger_ms"] - b["onset_ms"] == cfg.barge_in_min_voice_ms
    assert b["clear_after_trigger_ms"] == 0.0  # same tick in virtual time
    # as heard: from the onset to the clear (the queue at Twilio held more than that)
    assert r.metrics.halt_ms == pytest.approx([cfg.barge_in_min_voice_ms], abs=0.1)
    # the caller heard the agent stop: nothing plays after the clear
    clear_t = out.emu.report.clears[0]
    heard = out.emu.heard_intervals()
    assert max(end for _, end in heard if end <= clear_t + 1) <= clear_t + 1e-9
    caller_heard_halt_ms = (clear_t - voice[0][0]) * 1000
    assert caller_heard_halt_ms <= cfg.barge_in_min_voice_ms + 20  # the issue's target: min_voice + 20 ms
    # state went SPEAKING -> PAUSED by the barge-in (not by a mark), then the caller's words
    # were a real interruption: answered
    changes = [(e["from_state"], e["to_state"], e["cause"]) for e in out.events("STATE_CHANGE")]
    assert ("SPEAKING", "PAUSED", "BargeIn") in changes and ("PAUSED", "PROCESSING", "RealInterruption") in changes
    # the brain is told what the caller heard: the first sentence (its mark came back before
    # the clear) and the words of the second that played before the cut, from the playback
    # position: voice began 1.6 s into the reply, the cut came ~200 ms later; "Short one."
    # took 0.4 s, so ~1.44 s of the 3.2 s LONG sentence (14 words) played: 6 words.
    assert sc.brain.heard_log[1] == ("Short one. This is a long sentence that", False)
    # the interrupting utterance starts at the barge-in onset and is flagged
    assert sc.recognizer.begins[-1] == b["onset_ms"]
    assert sc.recognizer.ends[-1][0] == b["onset_ms"]
    assert sc.brain.turns[-1].interrupted_agent and sc.brain.turns[-1].text == "wait, stop"
    assert not sc.brain.turns[0].interrupted_agent
    # marks go out only after their audio: none of the cut sentences' marks was ever sent
    assert [e["name"] for e in out.events("MARK_SENT") if e["name"].startswith("t2.")] == ["t2.s0"]
    agent_turns = sc.recorder.turns("agent")
    assert agent_turns[1][2] == "Short one. This is a long sentence that" and agent_turns[1][5] is False


async def test_no_barge_in_inside_grace_or_on_short_noise(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["go on"]), brain=ScriptedBrain([[LONG]]))

    async def script(emu: TwilioEmulator) -> None:
        start = await emu.wait_agent_speech(1)
        # voice inside the grace window (after the first 120 ms, where caller and agent would be
        # starting together and the agent yields): never a barge-in
        emu.say(0.15, at=start + 0.14)
        # a 160 ms cough later on: shorter than barge_in_min_voice_ms
        emu.say(0.16, at=start + 1.0)
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.6)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    assert out.events("BARGE_IN") == [] and out.result.metrics.barge_ins == 0
    assert out.emu.report.clears == []
    assert sc.brain.heard_log[0][1] is True


async def test_voice_from_inside_grace_triggers_at_the_earliest_after_it(autojump_clock) -> None:
    cfg = TimingConfig()
    sc = Scenario(recognizer=ScriptedRecognizer(["hi", "hello?"]), brain=ScriptedBrain([[LONG]]))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        # talking again inside the grace window, but well after the reply became audible
        emu.say(1.5, at=start + (cfg.yield_window_ms + 40) / 1000)
        await emu.wait_marks(".end", 2)  # the reply was cut: this is the next one's
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    (b,) = out.events("BARGE_IN")
    armed_ms = b["trigger_ms"] - cfg.barge_in_grace_ms - cfg.barge_in_min_voice_ms
    assert b["onset_ms"] < armed_ms + cfg.barge_in_grace_ms  # the voice began inside the window
    # halt measured from the real onset is longer, but the trigger came the moment it could
    assert out.result.metrics.barge_ins_clean == 1
    assert sc.recognizer.ends[1][0] == b["onset_ms"]


async def test_caller_and_agent_starting_together_the_agent_yields_at_once(autojump_clock) -> None:
    """The caller goes on the moment the reply starts: not a barge-in to sit out for the grace
    window and 200 ms of voice, but a collision: the agent stops within the classifier's
    hysteresis and the caller's words join the turn they were finishing."""
    cfg = TimingConfig()
    sc = Scenario(recognizer=ScriptedRecognizer(["four rooms", "four rooms up to two million"]),
                  brain=ScriptedBrain([[LONG], ["Two million, got it. When?"]]))
    said: list[tuple[float, float]] = []

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        start = await emu.wait_agent_speech(2)
        said.append(emu.say(1.5, at=start + 0.04))
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    assert out.events("BARGE_IN") == [] and out.result.metrics.barge_ins == 0
    assert len(out.emu.report.clears) == 1
    (a, b) = said[0]
    over = sum(max(0.0, min(b, y) - max(a, x)) for x, y in out.emu.heard_intervals())
    assert over * 1000 <= cfg.hysteresis_ms + 40  # the agent yielded within the classifier's decision
    # one merged turn for the brain, the dropped reply taken back
    assert [t.text for t in sc.brain.turns] == ["four rooms up to two million"]
    assert sc.brain.retracted and sc.recognizer.ends[1][0] == sc.recognizer.ends[0][0]
    assert sc.synthesizer.texts[-1] == "Two million, got it. When?"


async def test_mark_timeout_returns_to_listening(autojump_clock) -> None:
    cfg = TimingConfig()
    sc = Scenario(recognizer=ScriptedRecognizer(["hi"]))

    async def script(emu: TwilioEmulator) -> None:
        await trio.sleep(4.0)
        emu.say(1.2)
        await trio.sleep(5.0)

    out = await run_scenario(sc, script, echo_mark=lambda name: not name.endswith(".end"))
    sent = {e["name"]: e["t"] for e in out.events("MARK_SENT")}
    changes = [e for e in out.events("STATE_CHANGE") if e["cause"] == "MarkTimeout"]
    assert len(changes) == 2  # greeting and the reply
    assert changes[0]["t"] - sent["t1.end"] == cfg.mark_timeout_ms
    assert changes[1]["t"] - sent["t2.end"] == cfg.mark_timeout_ms
    assert out.result.metrics.turns == 1
    assert [e["where"] for e in out.events("ERROR")] == ["mark", "mark"]


async def test_ws_dropped_mid_tts(autojump_clock) -> None:
    sc = Scenario(brain=ScriptedBrain(), synthesizer=ToneSynthesizer(ms_per_char=200, chunk_delay_s=0.05))
    active = prom.calls_active._value.get()
    drops = prom.ws_disconnects_total.labels(reason="dropped")._value.get()

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_agent_speech(1)
        await trio.sleep(1.0)
        emu.drop()

    with trio.fail_after(30):
        out = await run_scenario(sc, script)
    r = out.result
    assert r.close_reason == "dropped" and r.close_code == 1006
    assert len(sc.recorder.ended) == 1 and sc.recorder.ended[0]["close_reason"] == "dropped"
    assert sc.synthesizer.finished == 0  # TTS was cut off, not left running
    assert prom.calls_active._value.get() == active
    assert prom.ws_disconnects_total.labels(reason="dropped")._value.get() == drops + 1
    assert out.events("WS_CLOSE")[0]["reason"] == "dropped"
    assert out.events("CALL_END")


async def test_malformed_frames_are_counted_and_dropped(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["area Tel Aviv"]))
    garbage = [
        "{not json", "[]", '{"event": 5}', '{"event":"media","media":{"payload":"@@@@"}}',
        '{"event":"media","media":{}}', '{"event":"mark"}', '{"event":"foo","x":1}', '{"event":"foo"}',
        json.dumps({"event": "dtmf", "dtmf": {"digit": "5", "track": "inbound_track"}}), "",
    ]

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        emu.extra.extend(garbage)
        await trio.sleep(0.5)
        emu.say(1.3)
        await emu.wait_marks(".end", 2)
        emu.extra.extend(garbage)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    r = out.result
    assert r.close_reason == "twilio_stop"
    assert r.metrics.turns == 1 and sc.brain.turns[0].text == "area Tel Aviv"
    assert r.protocol_errors == 2 * 7  # all but the unknown event (reported, not an error) and the dtmf
    protocol = out.events("PROTOCOL")
    assert [p["name"] for p in protocol if p["kind"] == "UnknownEvent"] == ["foo"]  # logged once
    assert not out.events("ERROR")


async def test_odd_payload_sizes_are_recut(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["hi"]))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.3)
        await emu.wait_marks(".end", 2)

    out = await run_scenario(sc, script, payload_bytes=240)
    assert out.result.metrics.turns == 1
    assert sc.recognizer.bad_frames == 0
    assert sc.recognizer.frames == out.emu.frames_sent * 240 // 160


async def test_asr_failure_and_timeout_say_the_clarify_line(autojump_clock) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer([ProviderError("google", "UNAVAILABLE"), "area Haifa"]),
        asr_timeout_s=1.0,
    )

    async def script(emu: TwilioEmulator) -> None:
        for k in (1, 2):
            await emu.wait_marks(".end", k)
            await trio.sleep(0.5)
            emu.say(1.3)
        await emu.wait_marks(".end", 3)
        sc.recognizer.delay_s = 2.0  # past the deadline
        await trio.sleep(0.5)
        emu.say(1.3)
        await emu.wait_marks(".end", 4)

    out = await run_scenario(sc, script)
    texts = sc.synthesizer.texts
    assert texts.count(CLARIFY_EN) == 2
    assert [t.text for t in sc.brain.turns] == ["area Haifa"]  # the failed turns never reached the brain
    assert out.result.metrics.provider_errors == 2 and out.result.metrics.turns == 3
    asr = out.events("ASR_TEXT")
    assert [a["failed"] for a in asr] == [True, False, True]
    assert asr[2]["latency_ms"] == 1000.0


async def test_brain_and_tts_failures_never_leave_silence(autojump_clock) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer(["one", "two"]),
        brain=ScriptedBrain([["Skip BROKEN here.", "Still here?"]], fail_on_turn=2),
        synthesizer=ToneSynthesizer(fail_on="BROKEN"),
    )

    async def script(emu: TwilioEmulator) -> None:
        for k in (1, 2):
            await emu.wait_marks(".end", k)
            await trio.sleep(0.5)
            emu.say(1.3)
        await emu.wait_marks(".end", 3)

    out = await run_scenario(sc, script)
    assert sc.synthesizer.texts == [sc.brain.opening(), "Skip BROKEN here.", "Still here?", CLARIFY_EN]
    assert out.result.metrics.provider_errors == 2
    assert out.result.close_reason == "twilio_stop"


async def test_goodbye_then_agent_hangs_up(autojump_clock) -> None:
    sc = Scenario(
        recognizer=ScriptedRecognizer(["that is all"]),
        brain=ScriptedBrain([["Thank you, goodbye."]], finish_after=1),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await trio.sleep(60)  # the agent closes long before

    out = await run_scenario(sc, script)
    r = out.result
    assert r.close_reason == "agent_hangup" and r.close_code == 1000
    assert out.emu.link.closed_by == "server" and out.emu.link.code == 1000
    end_echo = [t for t, n in out.emu.report.marks if n == "t2.end"][0]
    # closed once the goodbye played and the caller stayed quiet for the linger
    linger = TimingConfig().goodbye_linger_ms / 1000
    assert end_echo + linger <= out.emu.now() < end_echo + linger + 0.1
    assert sc.brain.heard_log[-1] == ("Thank you, goodbye.", True)
    assert sc.recorder.ended[0]["close_reason"] == "agent_hangup"


async def test_recorder_failures_do_not_end_the_call(autojump_clock) -> None:
    sc = Scenario(recognizer=ScriptedRecognizer(["area Haifa"]), recorder=RecordingRecorder(fail=True))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "twilio_stop" and out.result.metrics.turns == 1
    assert {e["where"] for e in out.events("ERROR")} == {"recorder.transcript_turn"}
    assert len(sc.recorder.ended) == 1


async def test_no_start_and_early_close(autojump_clock) -> None:
    emu = TwilioEmulator()
    sc = Scenario()
    from server.session import run_call

    result = await run_call(emu.transport, sc.deps())  # nothing ever arrives
    assert result.close_reason == "no_start" and result.close_code == 1008
    assert emu.link.closed_by == "server"

    emu = TwilioEmulator()
    emu.drop(1001)
    result = await run_call(emu.transport, sc.deps())
    assert result.close_reason == "dropped" and result.close_code == 1001
    assert sc.recorder.ended == []  # no call_sid: nothing to record


@pytest.mark.parametrize("minutes", [15, 60])
async def test_long_call_keepalive(autojump_clock, minutes: int) -> None:
    """15 and 60 minutes (virtual time: seconds of CPU): a turn now and then, long silences;
    heartbeats every 15-20 s while nothing plays, idle-guard silence after 60 s without
    media, no error of any kind."""
    cfg = TimingConfig()
    sc = Scenario(recognizer=ScriptedRecognizer([f"turn {k}" for k in range(20)]))

    async def script(emu: TwilioEmulator) -> None:
        for k in range(1, 6):
            await emu.wait_marks(".end", k)
            await trio.sleep(150)  # the caller thinks for two and a half minutes
            emu.say(1.5)
        await emu.sleep_until(minutes * 60)

    out = await run_scenario(sc, script, virtual_limit_s=minutes * 60 + 60)
    r = out.result
    assert r.close_reason == "twilio_stop" and r.duration_s >= minutes * 60
    assert not out.events("ERROR") and r.protocol_errors == 0 and r.rejected_events == 0
    assert r.metrics.turns == 5
    assert len(out.lines) < r.frames_in / 50  # nothing is logged per frame
    assert abs(r.frames_in - minutes * 60 * 50) <= 1 and sc.recognizer.frames == r.frames_in
    # outbound activity (media or mark) never pauses longer than a heartbeat interval
    out_times = sorted(out.emu.report.media_rx + [t for t, _ in out.emu.report.marks])
    gaps = [b - a for a, b in zip(out_times, out_times[1:])]
    assert max(gaps) <= cfg.heartbeat_ms / 1000 + 1e-6
    beats = [t for t, n in out.emu.report.marks if n.startswith("hb")]
    assert r.metrics.heartbeats == len(beats) >= 2 * minutes
    # between two heartbeats with no media in between: every 15-20 s (17 s configured)
    intervals = [b - a for a, b in zip(beats, beats[1:]) if not any(a < m < b for m in out.emu.report.media_rx)]
    assert len(intervals) >= 20 and all(15.0 <= i <= 20.0 for i in intervals)
    # idle guard: silence went out in every idle stretch longer than a minute
    keep = out.events("WS_KEEPALIVE")
    assert sum(1 for k in keep if k["idle_silence"]) >= 5
    media = out.emu.report.media_rx
    assert max(b - a for a, b in zip(media, media[1:])) <= cfg.idle_guard_ms / 1000 + 1e-6


async def test_server_cancelling_the_call_still_records_its_end(autojump_clock) -> None:
    """The app's nursery is cancelled (shutdown): the call ends, the recorder still hears of it,
    and the cancellation propagates (never swallowed)."""
    from server.session import run_call

    sc = Scenario()
    emu = TwilioEmulator()
    results = []

    async def script(emu: TwilioEmulator) -> None:
        await trio.sleep(100)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emu.run, script)
        with trio.CancelScope() as scope:
            async def cancel_later() -> None:
                await emu.wait_agent_speech(1)
                await trio.sleep(0.5)
                scope.cancel()

            nursery.start_soon(cancel_later)
            results.append(await run_call(emu.transport, sc.deps()))
        nursery.cancel_scope.cancel()
    assert results == []  # run_call did not return: Cancelled went through
    assert scope.cancelled_caught
    assert len(sc.recorder.ended) == 1 and sc.recorder.ended[0]["close_reason"] == "shutdown"
    assert emu.link.closed_by == "server" and emu.link.code == 1001


async def test_a_recognizer_that_breaks_on_push_does_not_end_the_call(autojump_clock) -> None:
    class Broken(ScriptedRecognizer):
        def push(self, pcm16: bytes) -> None:
            super().push(pcm16)
            if self.frames > 100:
                raise ProviderError("scripted-asr", "stream closed")

    sc = Scenario(recognizer=Broken(["still answered"]))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "twilio_stop" and out.result.metrics.turns == 1
    assert out.result.metrics.provider_errors == 1  # logged once, not per frame
    assert len(out.events("ERROR")) == 1


async def test_a_provider_factory_failing_at_setup_ends_the_call_cleanly(autojump_clock) -> None:
    from server.session import run_call

    sc = Scenario()
    deps = sc.deps()

    def no_asr(language: str):
        raise ProviderError("google", "no credentials")

    deps.new_recognizer = no_asr
    emu = TwilioEmulator()

    async def script(emu: TwilioEmulator) -> None:
        await trio.sleep(5)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(emu.run, script)
        result = await run_call(emu.transport, deps)
        nursery.cancel_scope.cancel()
    assert result.close_reason == "error" and result.close_code == 1011
    assert emu.link.closed_by == "server" and emu.link.code == 1011
    assert len(sc.recorder.ended) == 1 and sc.recorder.ended[0]["call_sid"] == "CA0001"


async def test_a_brain_that_raises_before_streaming_gets_the_clarify_line(autojump_clock) -> None:
    class Eager(ScriptedBrain):
        def respond(self, turn):  # not a generator: fails on the call itself
            raise RuntimeError("bad request")

    sc = Scenario(recognizer=ScriptedRecognizer(["hello"]), brain=Eager())

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.2)
        await emu.wait_marks(".end", 2)

    out = await run_scenario(sc, script)
    assert sc.synthesizer.texts[-1] == CLARIFY_EN
    assert out.result.close_reason == "twilio_stop" and out.result.metrics.provider_errors == 1


async def test_caller_audio_faster_than_real_time_ends_the_call(autojump_clock) -> None:
    """Twilio's audio is spoken in real time; a peer pushing minutes of it in a moment is not a
    phone line (it only runs up ASR costs): the call ends with a policy close."""
    sc = Scenario()
    frame = json.dumps({"event": "media", "streamSid": "MZ0001",
                        "media": {"track": "inbound", "chunk": "1", "timestamp": "0",
                                  "payload": base64.b64encode(b"\xff" * 160).decode()}})

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_agent_speech(1)
        emu.extra.extend([frame] * 500)  # 10 s of audio in one go
        await trio.sleep(5)

    out = await run_scenario(sc, script)
    assert out.result.close_reason == "flood" and out.result.close_code == 1008
    assert len(sc.recorder.ended) == 1  # the call is still recorded
