"""The Google streaming recognizer (real google-cloud-speech client) against the fake server.

Audio is pushed faster than real time (compressed time): restart decisions use stream time,
so a 15-minute call runs in seconds.
"""
import random

import grpc
import pytest
import trio

from fake_google import Fault
from speech.base import ProviderError
from speech.google_stt import GoogleSttSettings, GoogleStreamingRecognizer, make_speech_client
from speech.stt_ledger import RestartPolicy
from tone_words import silence, word_audio

FRAME = 320


class Driver:
    """Plays audio into the recognizer frame by frame, the way the session does."""

    def __init__(self, rec, pace_s=0.0):
        self.rec = rec
        self.frames = 0
        self.pace_s = pace_s  # real seconds per 100 ms of audio (0: as fast as possible)

    @property
    def now(self):
        return self.frames * 20

    async def play(self, pcm):
        await trio.sleep(0)
        for i in range(0, len(pcm), FRAME):
            self.rec.push(pcm[i : i + FRAME])
            self.frames += 1
            if self.pace_s and self.frames % 5 == 0:
                await trio.sleep(self.pace_s)
            elif self.frames % 50 == 0:
                await trio.sleep(0)  # let the pumps run, as the 20 ms cadence would

    async def say(self, numbers, gap_ms=40):
        """An utterance: begin at onset, the words, 420 ms of silence, EOU."""
        onset = self.now
        self.rec.begin_utterance(onset)
        for n in numbers:
            await self.play(word_audio(n) + silence(gap_ms))
        await self.play(silence(420))
        return await self.rec.end_utterance(onset, self.now)


def make(fake, policy=None, **kw):
    settings = GoogleSttSettings(policy=policy or RestartPolicy(), backoff_s=(0.01, 0.02, 0.05), **kw)
    client = make_speech_client({"GOOGLE_SPEECH_ENDPOINT": fake.endpoint})
    return GoogleStreamingRecognizer(client, settings, "he-IL", preroll_ms=300, log=lambda *a, **k: None)


def words(transcript):
    return transcript.text.split()


async def test_utterance_final_with_partials_and_hebrew_config(fake_google):
    rec = make(fake_google)
    partials = []
    rec.on_partial = partials.append
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec, pace_s=0.01)
        await d.play(silence(1000))
        t0 = trio.current_time()
        result = await d.say([101, 102, 103])
        latency = trio.current_time() - t0
        assert words(result) == ["w101", "w102", "w103"]
        assert result.is_final and result.provider == "google" and result.confidence == pytest.approx(0.93)
        assert [p.text for p in partials] == ["w101", "w102", "w103"] and not any(p.is_final for p in partials)
        nursery.cancel_scope.cancel()
    first = fake_google.speech.streams[0]
    assert (first.language, first.model, first.encoding, first.sample_rate) == ("iw-IL", "default", "LINEAR16", 8000)
    assert first.interim and "תל אביב" in first.phrases and first.half_closed
    assert latency < 2.0


async def test_words_outside_an_utterance_are_not_a_turn(fake_google):
    rec = make(fake_google)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(word_audio(7) + silence(3000))  # a murmur while the agent talks
        first = await d.say([11, 12])
        second = await d.say([13])
        nursery.cancel_scope.cancel()
    assert words(first) == ["w11", "w12"] and words(second) == ["w13"]


async def test_fifteen_minute_call_loses_nothing_across_restarts(fake_google):
    """15 minutes of call audio against a fake whose streams die after 60 s of audio (scaled
    down from ~5 min): speech lands right on the restart points, long silences force quiet
    restarts, and every word of every utterance comes back exactly once."""
    fake_google.speech.limit_ms = 60_000
    policy = RestartPolicy(restart_after_ms=40_000, hard_limit_ms=55_000, replay_ms=500)
    rec = make(fake_google, policy=policy)
    rng = random.Random(7)
    spoken, heard = [], []
    word = 1000
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        while d.now < 15 * 60_000:
            # Often start speaking just before the stream's soft restart point.
            stream_age = d.now - rec.stream_start_ms
            if rng.random() < 0.5 and stream_age < policy.restart_after_ms:
                await d.play(silence(max(0, policy.restart_after_ms - stream_age - rng.randrange(0, 600)) // 20 * 20))
            else:
                await d.play(silence(rng.randrange(500, 70_000) // 20 * 20))
            utterance = list(range(word, word + rng.randrange(1, 8)))
            word += len(utterance)
            spoken.append(utterance)
            heard.append(words(await d.say(utterance)))
        nursery.cancel_scope.cancel()
    assert heard == [[f"w{n}" for n in u] for u in spoken]
    assert d.now >= 15 * 60_000 and len(spoken) > 20
    assert rec.restarts["quiet"] >= 3 and rec.restarts["eou"] == len(spoken)
    assert not [s for s in fake_google.speech.streams if s.aborted]
    assert max(s.audio_ms for s in fake_google.speech.streams) <= policy.hard_limit_ms + 1000


async def test_hard_restart_mid_speech_keeps_every_word(fake_google):
    """Continuous speech past the hard limit (no EOU comes): the restart cuts a word in two;
    the replay gives the new stream the whole word and the ledger keeps exactly one copy."""
    fake_google.speech.limit_ms = 12_000
    policy = RestartPolicy(restart_after_ms=8_000, hard_limit_ms=10_000, replay_ms=500)
    rec = make(fake_google, policy=policy)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        numbers = list(range(2000, 2140))  # 140 words * 240 ms = 33.6 s without a pause
        result = await d.say(numbers, gap_ms=40)
        nursery.cancel_scope.cancel()
    assert words(result) == [f"w{n}" for n in numbers]
    assert rec.restarts["hard"] >= 3
    assert rec._ledger.dropped > 0  # the overlaps really did produce duplicates to drop
    assert not [s for s in fake_google.speech.streams if s.aborted]


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_reconnects_after_transient_errors_without_losing_words(fake_google, code):
    fake_google.speech.faults = [Fault(stream=1, after_ms=3_000, code=code), Fault(stream=2, after_ms=600, code=code)]
    rec = make(fake_google)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(silence(1000))
        onset = d.now
        rec.begin_utterance(onset)
        for n in range(300, 320):
            await d.play(word_audio(n) + silence(40))
            await trio.sleep(0.005)  # real time passes: the error and the backoff happen mid-utterance
        with trio.fail_after(10):  # both faults have hit and been recovered from before EOU
            while rec.restarts["reconnect"] < 2:
                await trio.sleep(0.01)
        await d.play(silence(420))
        result = await rec.end_utterance(onset, d.now)
        nursery.cancel_scope.cancel()
    assert words(result) == [f"w{n}" for n in range(300, 320)]
    assert rec.restarts["reconnect"] == 2
    assert [s.aborted for s in fake_google.speech.streams[:2]] == [code.name, code.name]


async def test_slow_final_is_a_provider_error(fake_google):
    fake_google.speech.final_delay_s = 1.0
    rec = make(fake_google, final_timeout_s=0.2)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        with pytest.raises(ProviderError, match="no final"):
            await d.say([5, 6])
        fake_google.speech.final_delay_s = 0.0
        assert words(await d.say([8])) == ["w8"]  # the next turn works again
        nursery.cancel_scope.cancel()


async def test_unsupported_model_is_reported(fake_google):
    rec = make(fake_google, model="latest_short")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        with pytest.raises(ProviderError, match="INVALID_ARGUMENT"):
            await d.say([5])
        nursery.cancel_scope.cancel()


async def test_v2_selectable_with_chirp_3(fake_google):
    env = {"GOOGLE_SPEECH_ENDPOINT": fake_google.endpoint, "GOOGLE_SPEECH_API": "v2",
           "GOOGLE_CLOUD_PROJECT": "agentlocator-test", "GOOGLE_SPEECH_LOCATION": "eu"}
    settings = GoogleSttSettings.from_env(env)
    rec = GoogleStreamingRecognizer(make_speech_client(env, settings), settings, "he-IL", log=lambda *a, **k: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        await d.play(silence(500))
        assert words(await d.say([41, 42])) == ["w41", "w42"]
        assert words(await d.say([43])) == ["w43"]
        nursery.cancel_scope.cancel()
    s = fake_google.speech.streams[0]
    assert (s.api, s.recognizer, s.model, s.language) == (
        "v2", "projects/agentlocator-test/locations/eu/recognizers/_", "chirp_3", "iw-IL")
    assert s.encoding == "LINEAR16" and s.sample_rate == 8000 and "חיפה" in s.phrases


def test_v2_needs_a_project():
    from native.config import ConfigError

    with pytest.raises(ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        GoogleSttSettings.from_env({"GOOGLE_SPEECH_API": "v2"})


async def test_call_end_closes_every_stream_and_thread(fake_google):
    import threading

    before = threading.active_count()
    rec = make(fake_google)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        d = Driver(rec)
        rec.begin_utterance(0)
        await d.play(word_audio(9) + silence(100))  # the call ends mid-utterance
        nursery.cancel_scope.cancel()
    with trio.fail_after(5):
        while threading.active_count() > before + 2:  # grpc keeps a channel poller thread
            await trio.sleep(0.02)
        while not all(s.half_closed or s.aborted for s in fake_google.speech.streams):
            await trio.sleep(0.02)
