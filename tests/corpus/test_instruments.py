"""The corpus's instruments measured against known inputs: the voices and the line's levels,
the line's timing (frames, echo, bursts, playback, clear), the oracle ASR, and the judge on
made-up calls whose right answer is known. If these drift, the corpus proves nothing."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import trio

from native.codec import pcm16_to_ulaw, ulaw_to_pcm16
from native.config import SAMPLE_RATE
from server.twilio_codec import TwilioFrames

from .agent import SynthCall
from .caller import After, Expect, Into, Performed, Scenario, Step
from .harness import Record
from .judge import judge
from .line import CallerLine, Echo, LineRecord, Placed, PlayedFrame
from .oracle_asr import OracleRecognizer
from .voices import SPEECH_RMS, Voice, block_rms, line_noise, render

# -- voices ------------------------------------------------------------------------------------


@pytest.mark.parametrize("snr", [30, 20, 10])
def test_line_noise_is_at_its_snr(snr: float) -> None:
    noise = line_noise(snr)
    rms = float(np.sqrt(np.mean(noise.astype(np.float64) ** 2)))
    assert rms == pytest.approx(SPEECH_RMS / 10 ** (snr / 20), rel=0.02)


def test_caller_clips() -> None:
    clip = render(Voice("speech", "בתל אביב", "he"))
    on = block_rms(clip.pcm) > 0.1 * SPEECH_RMS
    assert np.sqrt(np.mean(block_rms(clip.pcm)[on] ** 2)) == pytest.approx(SPEECH_RMS, rel=0.35)
    assert [w for w, _, _ in clip.words] == ["בתל", "אביב"]
    assert clip.words[0][1] == clip.voiced[0][0] and clip.words[-1][2] == clip.voiced[-1][1]

    syn = render(Voice("speech", "up to two million", "en", "synth"))
    assert [w for w, _, _ in syn.words] == ["up", "to", "two", "million"]
    gaps = [b[1] - a[2] for a, b in zip(syn.words, syn.words[1:])]
    assert all(0.055 <= g <= 0.115 for g in gaps)  # word gaps
    env = block_rms(syn.pcm[int(syn.words[-1][1] * SAMPLE_RATE) : int(syn.words[-1][2] * SAMPLE_RATE)])
    spectrum = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), d=0.01)
    assert 3.5 <= freqs[int(np.argmax(spectrum))] <= 6.5  # syllable-rate envelope

    assert render(Voice("knock")).duration == pytest.approx(0.15, abs=0.01)
    assert render(Voice("cough")).duration == pytest.approx(0.3, abs=0.01)
    hum = render(Voice("hum", "אממ", "he", "synth", 1, 500))
    assert hum.duration == pytest.approx(0.5, abs=0.01) and [w for w, _, _ in hum.words] == ["אממ"]


# -- the line ----------------------------------------------------------------------------------


def _tone(seconds: float, amplitude: float = 8000.0, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def _far_end(line: CallerLine, agent: np.ndarray, start: float, clear_at: float | None) -> list[tuple[float, dict]]:
    """A stand-in server: sends ``agent`` audio paced at 20 ms from ``start``, clears at
    ``clear_at``, records every inbound media with its arrival time."""
    got: list[tuple[float, dict]] = []
    frames = TwilioFrames(line.stream_sid)

    async def sender() -> None:
        await trio.sleep_until(line.t0 + start)
        for i in range(0, len(agent), 160):
            await line.transport.send(frames.media(pcm16_to_ulaw(agent[i : i + 160].tobytes())))
            now = line.now()
            if clear_at is not None and now >= clear_at:
                await line.transport.send(frames.clear())
                return
            await trio.sleep(0.02)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        while True:
            try:
                text = await line.transport.receive()
            except Exception:
                break
            msg = json.loads(text)
            if msg["event"] == "media":
                got.append((line.now(), msg))
            if msg["event"] == "stop":
                await line.transport.close()
                break
        nursery.cancel_scope.cancel()
    return got


async def test_line_frames_echo_and_playback(autojump_clock) -> None:
    line = CallerLine(snr_db=None, echo=Echo(-20, 120))
    agent = _tone(1.0)

    async def script(line: CallerLine) -> None:
        await line.sleep_until(2.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(line.run, script)
        got = await _far_end(line, agent, start=0.5, clear_at=1.2)
    arrivals = [t for t, _ in got]
    stamps = [int(m["media"]["timestamp"]) for _, m in got]
    assert stamps[:5] == [0, 20, 40, 60, 80]
    # frame n (covering [20n, 20n+20) ms) leaves when captured: at 20(n+1) ms
    assert all(abs(a - (s / 1000 + 0.02)) < 1e-6 for a, s in zip(arrivals, stamps))
    # what played: the tone from 0.5 s, cut by the clear at 1.2 s
    heard = line.heard_pcm()
    r = block_rms(heard)
    loud = np.flatnonzero(r > 1000) * 0.01
    assert loud[0] == pytest.approx(0.5, abs=0.011) and loud[-1] == pytest.approx(1.19, abs=0.011)
    # echo: the heard tone comes back 120 ms later at -20 dB, and stops with it
    inbound = np.concatenate([
        np.frombuffer(ulaw_to_pcm16(base64.b64decode(m["media"]["payload"])), dtype="<i2") for _, m in got
    ]).astype(np.float64)
    ri = block_rms(inbound)
    echo_on = np.flatnonzero(ri > 200) * 0.01
    assert echo_on[0] == pytest.approx(0.62, abs=0.011) and echo_on[-1] == pytest.approx(1.31, abs=0.011)
    assert np.median(ri[63:130]) == pytest.approx(8000 / np.sqrt(2) * 0.1, rel=0.05)


async def test_line_bursts_arrive_late_in_order(autojump_clock) -> None:
    line = CallerLine(snr_db=30, bursts=((0.4, 0.24),))

    async def script(line: CallerLine) -> None:
        await line.sleep_until(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(line.run, script)
        got = await _far_end(line, np.zeros(0, dtype=np.int16), start=0.0, clear_at=None)
    stamps = [int(m["media"]["timestamp"]) for _, m in got]
    seqs = [int(m["sequenceNumber"]) for _, m in got]
    assert stamps == sorted(stamps) and stamps == list(range(0, 20 * len(stamps), 20))
    assert seqs == sorted(seqs)
    held = [t for t, m in got if 380 <= int(m["media"]["timestamp"]) <= 600]
    # the frames due (captured) at 0.40 .. 0.62 s are held, then delivered together at 0.64 s
    assert len(held) == 12
    assert {round(t, 3) for t in held} == {0.64}
    assert len(line.lateness) == 12 and max(d - c for c, d in line.lateness) == pytest.approx(0.24, abs=1e-6)


# -- the oracle ASR ----------------------------------------------------------------------------


async def test_oracle_words_latency_and_partials(autojump_clock) -> None:
    clip = render(Voice("speech", "up to two million", "en", "synth"))
    knock = render(Voice("knock"))
    placed = [Placed(clip, 1.0), Placed(knock, 3.0, confidence=0.4, asr_text="Thank you.")]
    now = trio.current_time
    oracle = OracleRecognizer(lambda: placed, now, latency_s=0.5)
    partials: list[str] = []
    oracle.on_partial = lambda t: partials.append(t.text)
    frame = bytes(320)
    for _ in range(50):  # 0 .. 1 s
        oracle.push(frame)
    oracle.begin_utterance(1000)
    end_ms = int((1.0 + clip.words[-1][2]) * 1000) + 40
    for _ in range(end_ms // 20 - 50):
        oracle.push(frame)
    assert partials == ["up", "up to", "up to two", "up to two million"]
    t0 = now()
    got = await oracle.end_utterance(1000, end_ms)
    assert now() - t0 == pytest.approx(0.5)
    assert got.text == "up to two million" and got.confidence == 0.9 and got.is_final
    # the preroll reaches 300 ms before the onset; a word whose middle is outside is not heard
    cut = int((1.0 + (clip.words[2][1] + clip.words[2][2]) / 2) * 1000)
    assert (await oracle.end_utterance(1200, cut)).text == "up to"
    assert (await oracle.end_utterance(2900, 3300)).text == "Thank you."
    assert (await oracle.end_utterance(5000, 6000)).text == ""


# -- the judge on made-up calls -----------------------------------------------------------------


def _call(index: int, text: str, seconds: float, freq: float) -> SynthCall:
    pcm = _tone(seconds, 6000, freq)
    n = len(text.split())
    words = tuple((w, i * seconds / n, (i + 1) * seconds / n) for i, w in enumerate(text.split()))
    return SynthCall(index, text, pcm, words, 0.0)


def _played(call: SynthCall, start: float, until: float | None = None) -> list[PlayedFrame]:
    out = []
    for k, i in enumerate(range(0, len(call.pcm), 160)):
        t = start + k * 0.02
        if until is not None and t >= until:
            break
        chunk = np.zeros(160, dtype=np.int16)
        part = call.pcm[i : i + 160]
        chunk[: len(part)] = part
        out.append(PlayedFrame(t, t + 0.02, pcm16_to_ulaw(chunk.tobytes()), float(np.sqrt(np.mean(chunk.astype(float) ** 2)))))
    return out


def _record(steps: list[tuple[Step, float]], agent: list[tuple[SynthCall, float, float | None]], clears=(), brain=()) -> Record:
    frames = [f for call, start, until in agent for f in _played(call, start, until)]
    end = max(f.end for f in frames) + 3.0
    heard = np.zeros(int(end * SAMPLE_RATE), dtype=np.int16)
    for f in frames:
        i = int(round(f.start * SAMPLE_RATE))
        heard[i : i + 160] = np.frombuffer(ulaw_to_pcm16(f.ulaw), dtype="<i2")
    performed = [Performed(k, st, Placed(render(st.voice), at, k)) for k, (st, at) in enumerate(steps)]
    sc = Scenario("made_up", "test", "en", tuple(st for st, _ in steps), expect=Expect())
    line = LineRecord(placed=[p.placed for p in performed], frames=frames, heard=heard, clears=list(clears),
                      closed_at=end, closed_by="twilio")
    return Record(sc, line, performed, [c for c, _, _ in agent], list(brain), [], [], {}, "new", [], None)


ANSWER = Voice("speech", "in Haifa", "en", "synth")
WAIT = Voice("speech", "wait, I meant Haifa", "en", "synth")
UHHUH = Voice("speech", "uh-huh", "en", "synth")


def test_judge_dead_air_and_a_clean_halt() -> None:
    reply = _call(0, "Got it, in Haifa. What kind of property?", 3.0, 500)
    answer = render(ANSWER)
    wait = render(WAIT)
    # the caller answers at 1.0; the reply starts 0.8 s after their voice ended; the caller
    # interrupts 1.0 s into it and the agent is silent 200 ms later; then it answers
    t_reply = 1.0 + answer.voiced_end + 0.8
    t_wait = t_reply + 1.0
    answer2 = _call(1, "Sorry, which area?", 1.5, 700)
    t_answer2 = t_wait + wait.voiced_end + 0.6
    rec = _record(
        [(Step(ANSWER, After(), "answer"), 1.0), (Step(WAIT, Into(1.0), "interrupt"), t_wait)],
        [(reply, t_reply, t_wait + 0.2), (answer2, t_answer2, None)],
        clears=[t_wait + 0.2], brain=[("in Haifa", 0.9, False), ("wait, I meant Haifa", 0.9, True)],
    )
    v = judge(rec)
    assert v.passed, v.explain()
    assert v.dead_air_ms == [pytest.approx(800, abs=12), pytest.approx(600, abs=12)]
    assert v.halt_ms == [pytest.approx(200, abs=12)]
    assert v.talk_over_ms == []


def test_judge_talk_over_slow_halt_and_restart_after_a_backchannel() -> None:
    reply = _call(0, "Got it, in Haifa. What kind of property, and how many rooms?", 4.0, 500)
    answer = render(ANSWER)
    uhhuh = render(UHHUH)
    t_reply = 1.0 + answer.voiced_end + 0.5
    t_bc = t_reply + 1.5
    other = _call(1, "A rough idea is fine, which area?", 1.5, 700)  # a new reply instead of the rest
    t_other = t_bc + uhhuh.voiced_end + 0.9
    rec = _record(
        [(Step(ANSWER, After(), "answer"), 1.0), (Step(UHHUH, Into(1.5), "backchannel"), t_bc)],
        [(reply, t_reply, t_bc + 0.2), (other, t_other, None)],
        clears=[t_bc + 0.2], brain=[("in Haifa", 0.9, False), ("uh-huh", 0.9, True)],
    )
    v = judge(rec)
    rules = {f.split(":")[0] for f in v.failures}
    assert rules == {"resume", "brain"}, v.explain()
    assert v.resume_ms == [pytest.approx(900, abs=12)]
    assert any("instead of the rest" in f for f in v.failures)

    # the same backchannel, the agent resuming the cut sentence 300 ms after it: a pass
    cut_at = t_bc + 0.2
    heard_words = int((cut_at - t_reply) / 4.0 * len(reply.text.split()))
    rest = " ".join(reply.text.split()[heard_words:])
    resumed = _call(1, rest, 2.0, 650)
    for clears in ([cut_at], []):  # a `clear`, or the session just stopped sending for a while
        rec = _record(
            [(Step(ANSWER, After(), "answer"), 1.0), (Step(UHHUH, Into(1.5), "backchannel"), t_bc)],
            [(reply, t_reply, cut_at), (resumed, t_bc + uhhuh.voiced_end + 0.3, None)],
            clears=clears, brain=[("in Haifa", 0.9, False)],
        )
        v = judge(rec)
        assert v.passed, v.explain()
        assert v.resume_ms == [pytest.approx(300, abs=12)]

    # the agent starting its reply 50 ms after the caller started: talk-over until it yields
    t_start = 1.0 + 0.05
    rec = _record(
        [(Step(ANSWER, After(), "answer"), 1.0)],
        [(reply, t_start, t_start + 0.3), (other, 1.0 + answer.voiced_end + 0.5, None)],
        clears=[t_start + 0.3], brain=[("in Haifa", 0.9, False)],
    )
    v = judge(rec)
    assert v.talk_over_ms == [pytest.approx(300, abs=12)] and not v.passed


def test_judge_sees_a_replay_from_the_cut_word() -> None:
    """A session may resume by replaying the cut sentence's own audio from a frame edge."""
    reply = _call(0, "Got it, in Haifa. What kind of property, and how many rooms?", 4.0, 500)
    answer = render(ANSWER)
    uhhuh = render(UHHUH)
    t_reply = 1.0 + answer.voiced_end + 0.5
    t_bc = t_reply + 2.0
    cut_at = t_bc + 0.2
    frames_heard = int(round((cut_at - t_reply) / 0.02))
    words_per_s = len(reply.text.split()) / 4.0
    word_start = int((frames_heard * 0.02) * words_per_s) / words_per_s  # the cut word's start
    replay_from = int(word_start / 0.02)
    t_resume = t_bc + uhhuh.voiced_end + 0.25
    first = _played(reply, t_reply, cut_at)
    rest = [
        PlayedFrame(t_resume + (f.start - t_reply - replay_from * 0.02), t_resume + (f.end - t_reply - replay_from * 0.02), f.ulaw, f.rms)
        for f in _played(reply, t_reply)[replay_from:]
    ]
    rec = _record(
        [(Step(ANSWER, After(), "answer"), 1.0), (Step(UHHUH, Into(2.0), "backchannel"), t_bc)],
        [(reply, t_reply, cut_at)], clears=[cut_at], brain=[("in Haifa", 0.9, False)],
    )
    rec.line.frames = first + rest
    heard = np.zeros(int((rest[-1].end + 3) * SAMPLE_RATE), dtype=np.int16)
    for f in rec.line.frames:
        i = int(round(f.start * SAMPLE_RATE))
        heard[i : i + 160] = np.frombuffer(ulaw_to_pcm16(f.ulaw), dtype="<i2")
    rec.line.heard = heard
    rec.line.closed_at = rest[-1].end + 3
    v = judge(rec)
    assert v.passed, v.explain()
    assert v.resume_ms == [pytest.approx(250, abs=12)]
