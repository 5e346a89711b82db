"""Call recordings and listen-in (server.recording) with the real session in virtual time:
the FLAC on disk is stereo, as long as the call, the caller's voice on the left where it was
spoken, the agent on the right exactly where the caller heard it (a barge-in's cut included:
audio sent but cleared at Twilio is not in it); a listener gets both sides and the lines,
and a listener that never reads costs the call nothing (bounded, oldest dropped)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile
import trio

from native.codec import pcm16_to_ulaw
from native.config import ConfigError
from server.recording import (
    RECORD, CallTape, LiveCalls, Listener, Recordings, notice_text,
)
from server.session import CallDeps
from server.settings import Settings

from .fakes import ScriptedBrain, ScriptedRecognizer
from .harness import Scenario, run_scenario
from .twilio_emulator import TwilioEmulator

LONG = "This is a long sentence that keeps the agent talking for quite a while, surely."
FRAME = 160


@dataclass
class RecordedScenario(Scenario):
    recordings: Recordings | None = None
    live: LiveCalls | None = None
    notice: str | None = None
    extra: dict = field(default_factory=dict)

    def deps(self) -> CallDeps:
        deps = super().deps()
        deps.recordings, deps.live, deps.recording_notice = self.recordings, self.live, self.notice
        return deps


def frame_rms(channel: np.ndarray) -> np.ndarray:
    n = len(channel) // FRAME
    blocks = channel[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    return np.sqrt((blocks ** 2).mean(axis=1))


def loud_frames(intervals: list[tuple[float, float]], n: int) -> np.ndarray:
    """Which 20 ms frames of the call lie inside ``intervals`` (seconds, call clock)."""
    out = np.zeros(n, dtype=bool)
    for a, b in intervals:
        out[int(round(a * 50)): int(round(b * 50))] = True
    return out


async def test_recording_is_stereo_as_long_as_the_call_with_the_barge_in_cut(autojump_clock, tmp_path: Path) -> None:
    sc = RecordedScenario(
        recognizer=ScriptedRecognizer(["tell me more", "wait, stop"]),
        brain=ScriptedBrain([["Short one.", LONG, LONG]]),
        recordings=Recordings(tmp_path),
    )

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.5)
        emu.say(1.5)
        start = await emu.wait_agent_speech(2)
        await emu.sleep_until(start + 1.6)
        emu.say(1.5)
        await emu.wait_marks(".end", 2)
        await trio.sleep(0.5)

    out = await run_scenario(sc, script)
    path = tmp_path / "CA0001.flac"
    assert path.is_file() and not (tmp_path / "CA0001.flac.part").exists()
    info = soundfile.info(str(path))
    assert (info.samplerate, info.channels, info.format) == (8000, 2, "FLAC")
    # as long as the call (to a frame: the session's clock starts a tick before the first frame)
    assert info.duration * 1000 == pytest.approx(out.events("CALL_END")[0]["duration_ms"], abs=40)
    audio, _ = soundfile.read(str(path), dtype="int16")
    caller, agent = frame_rms(audio[:, 0]), frame_rms(audio[:, 1])
    n = len(caller)
    # the agent channel: loud exactly where the caller heard the agent (edge frames aside)
    heard = loud_frames(out.emu.heard_intervals(), n)
    agent_loud = agent > 300
    mismatch = np.flatnonzero(heard != agent_loud)
    edges = {i for a, b in out.emu.heard_intervals() for i in (int(round(a * 50)) - 1, int(round(a * 50)),
                                                                int(round(b * 50)) - 1, int(round(b * 50)))}
    assert set(mismatch.tolist()) <= edges, mismatch
    # the cut: after the clear nothing of the cleared reply, though frames had been sent for later
    clear_t = out.emu.report.clears[0]
    sent_after = [p for p in out.emu.report.media_rx if p < clear_t]
    assert sent_after, "frames went out before the clear"
    c = int(clear_t * 50) + 1
    next_speech = min(a for a, _ in out.emu.heard_intervals() if a > clear_t)
    assert not agent_loud[c: int(next_speech * 50)].any()
    assert agent_loud[c - 10: c - 1].all()  # it played right up to the cut
    # the caller channel: the voice where it was spoken
    voice = loud_frames(out.emu.voice, n)
    assert (caller > 300)[voice].mean() > 0.95 and (caller > 300)[~voice].mean() < 0.02
    assert out.events("RECORDING")[0]["seconds"] == pytest.approx(info.duration, abs=0.001)


async def test_listener_gets_both_sides_and_the_lines(autojump_clock, tmp_path: Path) -> None:
    live = LiveCalls()
    sc = RecordedScenario(recognizer=ScriptedRecognizer(["hello there"]), brain=ScriptedBrain([["Fine."]]),
                          live=live)
    got: dict[str, list] = {"audio": [], "lines": [], "stuck": []}

    async def script(emu: TwilioEmulator) -> None:
        await trio.sleep(0.1)
        tape = live.get("CA0001")
        assert tape is not None
        stuck = tape.listen(maxlen=5)  # never read: stays at 5 records, the oldest dropped
        listener = tape.listen()

        async def read() -> None:
            while True:
                audio, lines = await listener.batch()
                if audio is None:
                    return
                got["audio"].append(audio)
                got["lines"] += lines

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await emu.wait_marks(".end", 1)
            emu.say(1.2)
            await emu.wait_marks(".end", 2)
            await trio.sleep(0.3)
            got["stuck"] = [len(stuck.queue), stuck.dropped]
            await emu.stop()

    out = await run_scenario(sc, script)
    assert live.get("CA0001") is None  # gone with the call
    records = []
    for blob in got["audio"]:
        i = 0
        while i < len(blob):
            channel, pos, size = RECORD.unpack_from(blob, i)
            i += RECORD.size
            records.append((channel, pos, blob[i:i + size]))
            i += size
    caller = [r for r in records if r[0] == 0]
    agent = [r for r in records if r[0] == 1]
    assert len(caller) > 50 and len(agent) > 20
    assert all(b[1] - a[1] == FRAME for a, b in zip(caller, caller[1:]))  # in order, none lost
    lines = got["lines"]
    assert any('"speaker": "caller"' in x and "hello there" in x for x in lines)
    assert any('"type": "state"' in x for x in lines)
    assert got["stuck"][0] == 5 and got["stuck"][1] > 100
    assert out.result.close_reason == "twilio_stop"


async def test_recording_notice_is_said_before_the_greeting(autojump_clock, tmp_path: Path) -> None:
    notice = notice_text("on", "en-US")
    sc = RecordedScenario(brain=ScriptedBrain([]), notice=notice, recordings=Recordings(tmp_path))

    async def script(emu: TwilioEmulator) -> None:
        await emu.wait_marks(".end", 1)
        await trio.sleep(0.3)

    await run_scenario(sc, script)
    said = sc.recorder.turns("agent")[0][2]
    assert said.startswith(notice) and said != notice


def test_notice_setting() -> None:
    assert notice_text(None, "he-IL") is None and notice_text("off", "he-IL") is None
    assert "מוקלטת" in notice_text("1", "he-IL")
    assert notice_text("on", "en-US").startswith("Please note")
    assert notice_text("השיחה מוקלטת", "he-IL") == "השיחה מוקלטת"


def test_settings() -> None:
    assert Settings.from_env({}).recordings_dir == "recordings"
    assert Settings.from_env({"RECORDINGS_DIR": "off"}).recordings_dir is None
    assert Settings.from_env({"RECORDINGS_DIR": "/var/rec", "RECORDINGS_DAYS": "7"}).recordings_days == 7.0
    with pytest.raises(ConfigError, match="RECORDINGS_DAYS"):
        Settings.from_env({"RECORDINGS_DAYS": "-1"})


def test_prune_keeps_recent_recordings(tmp_path: Path) -> None:
    rec = Recordings(tmp_path, days=2)
    old, new, part, other = (tmp_path / n for n in ("CAold.flac", "CAnew.flac", "CAx.flac.part", "notes.txt"))
    for p in (old, new, part, other):
        p.write_bytes(b"x")
    past = time.time() - 3 * 86400
    for p in (old, part, other):
        os.utime(p, (past, past))
    assert rec.prune() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["CAnew.flac", "notes.txt"]


def test_tape_places_frames_by_time_and_cuts(tmp_path: Path) -> None:
    tape = CallTape("CA1", t0=0.0, recordings=Recordings(tmp_path))
    tone = pcm16_to_ulaw((3000 * np.sin(np.arange(FRAME) / 3)).astype("<i2").tobytes())
    tape.caller(0, tone, now_s=0.020)  # arrived as it was spoken: no shift
    assert tape.shift_ms == 0
    for k in range(10):
        tape.agent(0.020 * k, tone)
    tape.cut(0.100)  # the caller stopped hearing the agent 100 ms in
    caller, agent = tape._take(200 * 8)
    assert len(caller) == len(agent) == 1600
    assert agent[:800] == tone * 5 and agent[800:] == b"\xff" * 800
    assert caller[:160] == tone and caller[160:] == b"\xff" * 1440
    assert tape.base == 1600


def test_a_senseless_time_allocates_nothing(tmp_path: Path) -> None:
    tape = CallTape("CA1", t0=0.0, recordings=Recordings(tmp_path))
    tape.agent(86400.0 * 30, b"\x00" * 160)  # a month into the call
    assert len(tape._agent) == 0 and tape.dropped == 1
    for k in range(1000):  # a clock running away in steps just under the gap: bounded too
        tape.agent(k * 50.0, b"\x00" * 160)
    assert len(tape._agent) <= 61 * 8000


async def test_a_call_not_recorded_buffers_nothing_and_its_listeners_still_hear_it() -> None:
    tape = CallTape("CA1", t0=0.0, live=LiveCalls())
    listener = tape.listen()
    for k in range(500):  # 10 s of both sides
        tape.caller(20 * k, b"\x01" * 160, now_s=0.020 * (k + 1))
        tape.agent(0.020 * k, b"\x02" * 160)
    assert len(tape._caller) == len(tape._agent) == 0  # noqa: SLF001
    assert len(listener.queue) == min(1000, listener.queue.maxlen or 1000)
    with trio.move_on_after(1.0):
        await tape.run()  # nothing to flush: returns at once
    await tape.close(10.0)
    assert len(tape._caller) == len(tape._agent) == 0  # noqa: SLF001 - no call-long silence made at the end


def test_listener_drops_oldest() -> None:
    listener = Listener(maxlen=3)
    for i in range(5):
        listener.put((0, i, b"x"))
    assert [item[1] for item in listener.queue] == [2, 3, 4] and listener.dropped == 2
