"""The native API other areas build against (design.md + the [core] brief): names and values."""
from __future__ import annotations

import inspect

from native import codec, framer, vad
from native.config import TimingConfig


def test_codec_names() -> None:
    for name in ("ulaw_to_pcm16", "pcm16_to_ulaw", "ulaw_to_pcm16_into", "pcm16_to_ulaw_into", "decode_with_energy", "pcm16_rms"):
        assert callable(getattr(codec, name)), name


def test_eou_constants() -> None:
    assert (vad.EOU_NONE, vad.EOU_ONSET, vad.EOU_END, vad.EOU_FORCED) == (0, 1, 2, 3)


def test_detectors_take_the_config_and_expose_their_state() -> None:
    cfg = TimingConfig(barge_in_grace_ms=150)
    c, e, b = vad.FrameClassifier(cfg), vad.EouDetector(cfg), vad.BargeInDetector(cfg)
    assert c.cfg is cfg and e.cfg is cfg and b.cfg is cfg
    assert (c.threshold, c.noise_floor, c.calibrated) == (35.0, 0.0, False)
    assert (e.onset_ms, e.in_utterance, e.silence_ms) == (-1, False, 0)
    assert (b.onset_ms, b.armed) == (-1, False)
    assert c.update(rms=10.0, t_ms=0) is False
    assert e.update(voice=False, rms=10.0, t_ms=0) == vad.EOU_NONE
    assert b.update(voice=False, t_ms=0) is False
    # the detectors take the classifier that decided the frame (its run_start_ms / pending)
    assert c.update(rms=10.0, t_ms=20) is False and (c.run_start_ms, c.pending) == (0, False)
    assert e.update(voice=False, rms=10.0, t_ms=20, classifier=c) == vad.EOU_NONE
    assert b.update(voice=False, t_ms=20, classifier=c) is False
    b.arm(t_ms=0)
    b.disarm()
    e.reset()


def test_echo_guard_and_eou_additions() -> None:
    cfg = TimingConfig()
    c, e, g = vad.FrameClassifier(cfg), vad.EouDetector(cfg), vad.EchoGuard(cfg)
    assert g.cfg is cfg
    g.played(rms=1000.0, t_ms=0)
    g.cut(t_ms=20)
    assert isinstance(g.level(t_ms=60), float) and g.level(t_ms=60) > 0.0
    g.reset()
    assert c.update(rms=10.0, t_ms=0, echo=g.level(0)) is False
    assert c.update(10.0, 20) is False  # echo defaults to 0.0: the old call stays valid
    assert (e.voiced_ms, e.hold) == (0, False)
    e.hold = True
    e.open(onset_ms=0, t_ms=40, voiced_ms=40, min_utt_ms=0)
    assert e.in_utterance and e.onset_ms == 0 and e.voiced_ms == 40
    e.open(0, 40)  # voiced_ms and min_utt_ms are optional
    e.reset()
    assert not e.hold


def test_framer_api() -> None:
    f = framer.Framer()
    assert f.capacity_frames == 1500 and f.free_bytes == 1500 * 160 and f.frames == 0
    assert framer.Framer(capacity_frames=2).free_bytes == 320
    for name in ("write_pcm16", "write_ulaw", "read_frame", "flush", "clear"):
        assert callable(getattr(f, name)), name


def test_public_functions_are_documented() -> None:
    for mod in (codec, framer, vad):
        for name, obj in vars(mod).items():
            if not name.startswith("_") and (inspect.isbuiltin(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
                assert obj.__doc__, f"{mod.__name__}.{name} has no docstring"
