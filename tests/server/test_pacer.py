"""The pacer in virtual time: exact deadlines, bounded lead, marks on frame edges, clear."""
from __future__ import annotations

import json

import trio

from native.config import TimingConfig
from server.keepalive import Keepalive
from server.pacer import Pacer
from server.twilio_codec import TwilioFrames

from .fakes import tone_pcm


class Wire:
    def __init__(self) -> None:
        self.sent: list[tuple[float, dict]] = []

    async def send(self, text: str) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append((trio.current_time(), json.loads(text)))

    def media_times(self) -> list[float]:
        return [t for t, m in self.sent if m["event"] == "media"]

    def names(self) -> list[str]:
        return [m["mark"]["name"] if m["event"] == "mark" else m["event"] for _, m in self.sent]


async def test_paces_minutes_of_audio_without_drift_and_within_the_lead(autojump_clock) -> None:
    cfg = TimingConfig()
    wire = Wire()
    pacer = Pacer(cfg, wire.send, TwilioFrames("MZ"))
    minutes = 3
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        t0 = trio.current_time()
        second = tone_pcm(8000)
        for _ in range(minutes * 60):  # the producer is far faster than real time
            await pacer.write_pcm16(second, pacer.epoch)
        pacer.cue(pacer.epoch, mark="done")
        await trio.sleep_until(t0 + minutes * 60 + 1)
        nursery.cancel_scope.cancel()
    times = wire.media_times()
    n = minutes * 60 * 50
    assert len(times) == n
    lead = cfg.pacer_lead_ms / 1000
    # frame k leaves exactly at t0 + k*20ms - lead (the first ones at once): no drift at all
    for k in (0, 1, 5, 6, 7, 1000, n - 1):
        assert abs(times[k] - max(t0, t0 + k * 0.02 - lead)) < 1e-9
    # audio queued at Twilio never exceeds the lead (plus the frame now playing)
    for k, t in enumerate(times):
        played_until = t0 + (k + 1) * 0.02
        assert played_until - t <= lead + 0.02 + 1e-9
    assert wire.names()[-1] == "done" and wire.names()[-2] == "media"


async def test_underrun_reanchors_instead_of_bursting(autojump_clock) -> None:
    cfg = TimingConfig()
    wire = Wire()
    pacer = Pacer(cfg, wire.send, TwilioFrames("MZ"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        await pacer.write_pcm16(tone_pcm(1600), pacer.epoch)  # 200 ms
        await trio.sleep(1.0)  # the TTS stalls: Twilio's buffer runs dry
        t1 = trio.current_time()
        await pacer.write_pcm16(tone_pcm(8000), pacer.epoch)  # 1 s more
        await trio.sleep(2.0)
        nursery.cancel_scope.cancel()
    later = [t for t in wire.media_times() if t >= t1]
    assert len(later) == 50
    # restarts with the lead's worth at once, then one per 20 ms: no catch-up burst
    lead_frames = cfg.pacer_lead_ms // 20 + 1
    assert all(t == t1 for t in later[:lead_frames])
    assert abs(later[-1] - (t1 + 49 * 0.02 - cfg.pacer_lead_ms / 1000)) < 1e-9


async def test_marks_go_after_their_frames_and_callbacks_fire_in_order(autojump_clock) -> None:
    wire = Wire()
    pacer = Pacer(TimingConfig(), wire.send, TwilioFrames("MZ"))
    fired: list[tuple[str, float]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        epoch = pacer.epoch
        pacer.cue(epoch, callback=lambda now: fired.append(("first", now)), after_frames=1)
        await pacer.write_pcm16(tone_pcm(250), epoch)  # 1.56 frames: flushed to 2 by the cue
        pacer.cue(epoch, mark="s0", callback=lambda now: fired.append(("s0", now)))
        pacer.cue(epoch, mark="empty")  # a sentence with no audio: a mark right after s0
        await pacer.write_silence(60, epoch)
        pacer.cue(epoch, mark="end")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert wire.names() == ["media", "media", "s0", "empty", "media", "media", "media", "end"]
    assert [name for name, _ in fired] == ["first", "s0"]
    assert pacer.frames_sent == 5 and pacer.marks_sent == 3


async def test_clear_drops_queue_and_cues_and_stale_writers(autojump_clock) -> None:
    wire = Wire()
    pacer = Pacer(TimingConfig(), wire.send, TwilioFrames("MZ"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        old = pacer.epoch
        await pacer.write_pcm16(tone_pcm(8000), old)
        pacer.cue(old, mark="never")
        await trio.sleep(0.3)
        sent_before = pacer.frames_sent
        assert pacer.clear() == ["never"]
        assert pacer.framer.frames == 0
        # a producer that runs one more step with the old epoch can no longer queue audio
        assert await pacer.write_pcm16(tone_pcm(800), old) is False
        assert pacer.cue(old, mark="late") is False
        await trio.sleep(1)
        assert pacer.frames_sent == sent_before
        await pacer.write_pcm16(tone_pcm(160), pacer.epoch)
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert "never" not in wire.names() and "late" not in wire.names()
    assert pacer.frames_sent == sent_before + 1


async def test_a_clear_while_a_mark_is_being_sent_drops_the_callback_after_it(autojump_clock) -> None:
    """A cue's callback runs after its mark, for the same audio: if a barge-in's `clear` came
    while the mark's send was still waiting (a slow socket), the callback belongs to audio
    that was dropped and does not run."""
    wire = Wire()
    release = trio.Event()

    async def slow_marks(text: str) -> None:
        if '"mark"' in text:
            await release.wait()
        await wire.send(text)

    pacer = Pacer(TimingConfig(), slow_marks, TwilioFrames("MZ"))
    fired: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        epoch = pacer.epoch
        await pacer.write_pcm16(tone_pcm(320), epoch)
        pacer.cue(epoch, mark="s0", callback=lambda now: fired.append("s0"))
        await trio.sleep(0.2)  # the frames went; the mark's send waits
        assert pacer.marks_sent == 0
        pacer.clear()
        release.set()
        await trio.sleep(0.1)
        pacer.cue(pacer.epoch, mark="s1", callback=lambda now: fired.append("s1"))
        await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    assert wire.names()[-2:] == ["s0", "s1"] and fired == ["s1"]


async def test_backpressure_when_the_framer_is_full(autojump_clock) -> None:
    wire = Wire()
    pacer = Pacer(TimingConfig(), wire.send, TwilioFrames("MZ"), capacity_frames=10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        t0 = trio.current_time()
        assert await pacer.write_pcm16(tone_pcm(8000), pacer.epoch)  # 50 frames through a 10-frame ring
        # the writer returned once the last 10 frames fit: about 40 frames of real time later
        assert 0.6 <= trio.current_time() - t0 <= 0.8
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert pacer.frames_sent == 50


async def test_idle_keepalive_heartbeats_and_guard_silence(autojump_clock) -> None:
    cfg = TimingConfig()
    wire = Wire()
    beats: list[tuple[str, bool]] = []
    pacer = Pacer(cfg, wire.send, TwilioFrames("MZ"), on_heartbeat=lambda name, silence: beats.append((name, silence)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pacer.run)
        t0 = trio.current_time()
        await trio.sleep(130)
        nursery.cancel_scope.cancel()
    marks = [(t - t0, m["mark"]["name"]) for t, m in wire.sent if m["event"] == "mark"]
    assert [round(t, 3) for t, _ in marks[:3]] == [17.0, 34.0, 51.0]
    # at 60 s without media: 200 ms of silence, then a mark after it
    media = [t - t0 for t in wire.media_times()]
    assert len(media) == 2 * cfg.idle_silence_ms // 20 and media[0] == 60.0
    assert marks[3][0] >= media[cfg.idle_silence_ms // 20 - 1]
    assert beats[3] == ("hb4", True) and [b for _, b in beats].count(True) == 2
    gaps = [b - a for (a, _), (b, _) in zip(marks, marks[1:])]
    assert max(gaps) <= cfg.heartbeat_ms / 1000


def test_keepalive_schedule() -> None:
    cfg = TimingConfig()
    k = Keepalive(cfg, now=0.0)
    assert k.next_due() == 17.0
    assert k.due(16.9) == (False, False)
    assert k.due(17.0) == (True, False) and k.next_due() == 34.0
    k.media_sent(20.0)
    assert k.next_due() == 37.0
    k2 = Keepalive(cfg, now=0.0)
    for t in (17.0, 34.0, 51.0):
        assert k2.due(t) == (True, False)
    assert k2.next_due() == 60.0
    assert k2.due(60.0) == (True, True)
    assert k2.next_due() == 77.0
