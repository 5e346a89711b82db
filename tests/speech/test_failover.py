"""Failover decisions, in virtual time (MockClock autojump) with scripted engines."""
import pytest
import trio
import trio.testing

from telemetry import metrics
from speech.base import ProviderError, Recognizer, Synthesizer, Transcript
from speech.failover import FailoverRecognizer, FailoverSynthesizer


class Scripted(Recognizer):
    """A recognizer whose answers are a script: a Transcript, an exception, or 'hang'."""

    def __init__(self, name, script):
        self.name = name
        self.script = list(script)
        self.frames = 0
        self.cancelled = 0

    def push(self, pcm16):
        self.frames += 1

    def cancel_utterance(self):
        self.cancelled += 1

    async def end_utterance(self, onset_ms, eou_ms):
        step = self.script.pop(0)
        if step == "hang":
            await trio.sleep_forever()
        if isinstance(step, Exception):
            raise step
        return Transcript(step, 0.9, True, self.name, onset_ms, eou_ms)


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0)


def value(counter, **labels):
    return counter.labels(**labels)._value.get()


async def test_error_and_stall_go_to_fallback_and_are_counted(autojump_clock):
    primary = Scripted("google", ["one", ProviderError("google", "UNAVAILABLE"), "hang", "four"])
    fallback = Scripted("whisper", ["two", "three"])
    logs = []
    rec = FailoverRecognizer(primary, fallback, stall_s=1.0, log=lambda ev, *a, **kw: logs.append((ev, kw)))
    errors0 = value(metrics.provider_errors_total, provider="google")
    switches0 = value(metrics.provider_fallbacks_total, kind="asr")
    rec.push(b"\0" * 320)
    assert primary.frames == fallback.frames == 1
    assert (await rec.end_utterance(0, 1000)).text == "one"
    assert (await rec.end_utterance(2000, 3000)).text == "two"
    t0 = trio.current_time()
    third = await rec.end_utterance(4000, 5000)
    assert third.text == "three" and third.provider == "whisper"
    assert trio.current_time() - t0 == pytest.approx(1.0)
    # two failures in a row bench the primary for a few utterances; it is not asked
    fallback.script += ["x1", "x2", "x3"]
    assert [(await rec.end_utterance(i, i + 1)).text for i in range(3)] == ["x1", "x2", "x3"]
    assert (await rec.end_utterance(9000, 9500)).text == "four"  # probed again, back
    assert value(metrics.provider_errors_total, provider="google") - errors0 == 2
    assert value(metrics.provider_fallbacks_total, kind="asr") - switches0 == 5
    switches = [kw for ev, kw in logs if ev == "PROVIDER_SWITCH"]
    assert switches[0]["reason"].endswith("UNAVAILABLE") and "1.00 s" in switches[1]["reason"]
    assert switches[0]["from"] == "google" and switches[0]["to"] == "whisper"
    # the two failures, then each of the three benched utterances it never finished
    assert primary.cancelled == 5


async def test_both_failing_raises_provider_error(autojump_clock):
    rec = FailoverRecognizer(Scripted("google", ["hang"]), Scripted("whisper", [ProviderError("whisper", "boom")]),
                             log=lambda *a, **k: None)
    with pytest.raises(ProviderError):
        await rec.end_utterance(0, 1000)


async def test_primary_loop_crash_does_not_end_the_call(autojump_clock):
    class Crashy(Scripted):
        async def run(self):
            raise RuntimeError("channel gone")

    rec = FailoverRecognizer(Crashy("google", []), Scripted("whisper", ["ok"]), log=lambda *a, **k: None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.run)
        await trio.sleep(1)
        assert (await rec.end_utterance(0, 100)).text == "ok"
        nursery.cancel_scope.cancel()


class Voice(Synthesizer):
    def __init__(self, name, mode):
        self.name = name
        self.mode = mode

    async def synthesize(self, text):
        if self.mode == "error":
            raise ProviderError(self.name, "quota")
        if self.mode == "slow":
            await trio.sleep(10)
        yield f"{self.name}:{text}:1".encode()
        if self.mode == "error-late":
            raise ProviderError(self.name, "reset")
        yield f"{self.name}:{text}:2".encode()


@pytest.mark.parametrize(
    "mode, want",
    [
        ("ok", [b"g:hi:1", b"g:hi:2"]),
        ("error", [b"e:hi:1", b"e:hi:2"]),
        ("slow", [b"e:hi:1", b"e:hi:2"]),
        ("error-late", [b"g:hi:1"]),  # audio already flowed: end the sentence, don't restart it
    ],
)
async def test_synthesizer_failover(autojump_clock, mode, want):
    synth = FailoverSynthesizer(Voice("g", mode), Voice("e", "ok"), first_audio_s=1.0, log=lambda *a, **k: None)
    assert [c async for c in synth.synthesize("hi")] == want


def test_bind_log_reaches_both_engines():
    got = []
    primary, fallback = Scripted("google", []), Scripted("whisper", [])
    rec = FailoverRecognizer(primary, fallback)
    primary.bind_log = lambda log: got.append(("p", log))
    fallback.bind_log = lambda log: got.append(("f", log))
    marker = lambda *a, **k: None  # noqa: E731
    rec.bind_log(marker)
    assert rec.log is marker and got == [("p", marker), ("f", marker)]
