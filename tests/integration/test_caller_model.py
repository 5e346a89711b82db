"""The simulated caller's Twilio model, sans-IO: playback clock, marks, clear, measurements."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from server.caller import script as sc
from server.caller.analysis import analyse
from server.caller.audio import pcm16_to_ulaw
from server.caller.call import PreparedAudio, PreparedBarge, PreparedHangup, PreparedWait, SimulatedCall


def tone(ms: int, amp: int = 6000) -> np.ndarray:
    t = np.arange(ms * 8) / 8000
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


def media(call: SimulatedCall, pcm: np.ndarray) -> str:
    payload = base64.b64encode(pcm16_to_ulaw(pcm.tobytes())).decode()
    return json.dumps({"event": "media", "streamSid": call.ids.stream_sid, "media": {"payload": payload}})


def mark(call: SimulatedCall, name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": call.ids.stream_sid, "mark": {"name": name}})


def test_parse_script() -> None:
    steps = sc.parse_script(
        "# demo\nwait_agent\nsay en-US I want a flat # in Haifa\nsilence 300\nnoise 50 200\n"
        "barge 600 en-US wait a second\nwait_agent 700 10\nhangup\n"
    )
    assert steps == [
        sc.WaitAgent(), sc.Say("en-US", "I want a flat # in Haifa"), sc.Silence(300), sc.Noise(50.0, 200),
        sc.Barge(600, "en-US", "wait a second"), sc.WaitAgent(700, 10.0), sc.Hangup(),
    ]
    with pytest.raises(sc.ScriptError, match="line 1"):
        sc.parse_script("shout hello")
    with pytest.raises(sc.ScriptError):
        sc.parse_script("silence -5")


def test_start_messages_look_like_twilio() -> None:
    call = SimulatedCall([PreparedHangup()])
    connected, start = (json.loads(m) for m in call.start_messages())
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start["event"] == "start" and start["start"]["mediaFormat"]["encoding"] == "audio/x-mulaw"
    assert start["start"]["customParameters"]["From"] == call.ids.from_number
    out = [json.loads(m) for m in call.tick(0, 0.02)]
    assert out[-1]["event"] == "stop" and call.done


def test_marks_echo_when_playback_reaches_them() -> None:
    call = SimulatedCall([PreparedWait(500, 30.0)])
    call.start_messages()
    assert call.on_message(0.0, media(call, tone(200))) == []
    assert call.on_message(0.001, mark(call, "m1")) == []  # 200 ms still to play
    assert [m for m in call.tick(4, 0.1) if '"mark"' in m] == []
    echoed = [json.loads(m) for m in call.tick(10, 0.21) if '"mark"' in m]
    assert [e["mark"]["name"] for e in echoed] == ["m1"]
    assert call.marks_echoed[0][0] == pytest.approx(0.2, abs=1e-6)


def test_clear_drops_unplayed_audio_and_returns_marks() -> None:
    call = SimulatedCall([PreparedWait(500, 30.0)])
    call.start_messages()
    call.on_message(0.0, media(call, tone(1000)))
    call.on_message(0.0, mark(call, "end"))
    out = call.on_message(0.3, json.dumps({"event": "clear", "streamSid": call.ids.stream_sid}))
    assert [json.loads(m)["mark"]["name"] for m in out] == ["end"]
    heard = call.heard.data
    assert np.abs(heard[: 2300]).max() > 3000  # played up to the clear
    assert np.abs(heard[2410:8000]).max() == 0  # nothing after it
    assert call.clears[0][1] == pytest.approx(700, abs=1)


def test_barge_in_halt_measured_from_voice_onset() -> None:
    """The agent talks; the caller barges 300 ms in; the server clears 230 ms after onset."""
    voice = np.concatenate([np.zeros(400, np.int16), tone(600)])  # onset 50 ms into the step
    call = SimulatedCall([PreparedBarge(300, PreparedAudio("say", voice, "stop"), 10.0), PreparedHangup()])
    call.start_messages()
    k = 0
    cleared = False
    onset = None
    while not call.done and k < 500:
        now = (k + 1) * 0.02
        if k == 5:  # agent audio arrives at 0.12 s: 3 s of it
            call.on_message(now - 0.001, media(call, tone(3000)))
        if call.utterances and onset is None:
            onset = call.utterances[0].onset
        if onset is not None and not cleared and now >= onset + 0.23:
            call.on_message(onset + 0.23, json.dumps({"event": "clear", "streamSid": call.ids.stream_sid}))
            cleared = True
        call.tick(k, now)
        k += 1
    figures = analyse(call)
    utt = call.utterances[0]
    assert utt.barge and utt.agent_start == pytest.approx(0.12, abs=0.011)
    assert utt.onset - utt.agent_start >= 0.3
    assert figures.barge_ins == 1
    assert figures.halt_ms[0] == pytest.approx(230, abs=11)
    assert figures.trigger_to_clear_ms[0] == pytest.approx(230, abs=1)


def test_turn_latency_and_keepalive_from_the_callers_side() -> None:
    speech = tone(800)  # frames 0..39: the caller's speech ends at 0.8 s
    steps = [PreparedAudio("say", speech, "hello"), PreparedWait(300, 30.0),
             PreparedAudio("silence", np.zeros(25 * 8000, np.int16)), PreparedHangup()]
    call = SimulatedCall(steps)
    call.start_messages()
    for k in range(3000):
        now = (k + 1) * 0.02
        if call.done:
            break
        if k == 84:  # the agent answers at 1.7 s: 900 ms after the caller stopped
            call.on_message(now, media(call, tone(500)))
            call.on_message(now, mark(call, "turn-end"))
        if k == 1200:  # a heartbeat mark at 24.02 s, nothing in between
            call.on_message(now, mark(call, "hb"))
        call.tick(k, now)
    figures = analyse(call)
    assert figures.turn_latency_ms == [pytest.approx(900, abs=11)]
    assert figures.unanswered_turns == 0
    assert figures.keepalive_intervals_s == [pytest.approx(22.32, abs=0.01)]
    assert figures.longest_server_silence_s == pytest.approx(22.32, abs=0.01)
    assert [name for _, name in call.marks_echoed] == ["turn-end", "hb"]
    assert call.errors == [] and call.problems == []


def test_protocol_errors_are_counted() -> None:
    call = SimulatedCall([PreparedWait(300, 1.0)])
    call.start_messages()
    call.on_message(0.1, "{not json")
    call.on_message(0.1, json.dumps({"event": "media", "streamSid": call.ids.stream_sid, "media": {"payload": "@@"}}))
    call.on_message(0.1, json.dumps({"event": "dance", "streamSid": call.ids.stream_sid}))
    call.on_message(0.1, json.dumps({"event": "clear", "streamSid": "MZwrong"}))
    assert len(call.errors) == 4
    k = 0
    while not call.done:  # the agent never speaks: a script problem, not a protocol error
        call.tick(k, (k + 1) * 0.02)
        k += 1
    assert len(call.errors) == 4 and call.problems == ["wait_agent: agent did not speak in 1 s"]


def test_media_jitter_skips_the_lead_burst() -> None:
    from server.caller.analysis import media_jitter_ms

    burst = [0.0] * 5
    steady = [0.02 * i for i in range(1, 30)]
    steady[20] += 0.003  # one frame 3 ms late: two intervals off by 3 ms
    jitter = media_jitter_ms(burst + steady + [5.0 + 0.02 * i for i in range(12)])
    assert max(jitter) == pytest.approx(3.0, abs=1e-6)
    assert sum(1 for j in jitter if j > 1e-6) == 2
    assert len(jitter) == (34 - 1 - 8) + (12 - 1 - 8)


def test_line_noise_runs_under_everything() -> None:
    from server.caller.call import PreparedLineNoise

    assert sc.parse_script("line_noise 45\n") == [sc.LineNoise(45.0)]
    voice = tone(200)
    call = SimulatedCall([PreparedLineNoise(50.0), PreparedAudio("say", voice, "x"),
                          PreparedAudio("silence", np.zeros(1600, np.int16)), PreparedHangup()])
    call.start_messages()
    k = 0
    while not call.done:
        call.tick(k, (k + 1) * 0.02)
        k += 1
    quiet = call.caller.data[1600:3200].astype(float)
    assert np.sqrt(np.mean(quiet**2)) == pytest.approx(50, rel=0.2)
    utt = call.utterances[0]
    assert utt.onset == 0.0 and utt.end == pytest.approx(0.2, abs=0.006)  # from the clean voice
