"""Exact decision times of the detectors on synthetic signals (all times in ms, frames of 20 ms).

Conventions (native/vad.pyx docstring): a frame at t covers [t, t+20) and its decision is
taken at t+20; the classifier's symmetric hysteresis REPORTS both edges of a run
hysteresis_ms - 20 = 40 ms late (LAG), without changing its length, and tells when the run
really began (run_start_ms). The detectors, handed the classifier, measure in real time: the
expected times below are written from the user's rules (barge-in 200 ms after the voice
starts, EOU 400 ms after it stops, ...), with no LAG in them.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from native import codec
from native.config import TimingConfig
from native.vad import (
    EOU_END,
    EOU_FORCED,
    EOU_NONE,
    EOU_ONSET,
    NOISE_RESEAT_MS,
    BargeInDetector,
    EouDetector,
    FrameClassifier,
)

CFG = TimingConfig()
LAG = CFG.hysteresis_ms - 20
NOISE = 10.0
SPEECH = 2000.0


def levels(*segments: tuple[float, int]) -> list[float]:
    """(rms, duration_ms) segments -> one RMS per 20 ms frame."""
    out: list[float] = []
    for rms, ms in segments:
        assert ms % 20 == 0
        out += [rms] * (ms // 20)
    return out


def talk(ms: int) -> list[tuple[float, int]]:
    """Speech as syllables: 260 ms at SPEECH, a 40 ms dip to NOISE (bridged by the hysteresis),
    ..., ending on a full 300 ms syllable. Real speech dips between syllables and words; a
    level that never dips for 2 s is line noise (FrameClassifier re-seats its floor)."""
    assert ms % 300 == 0
    return [(SPEECH, 260), (NOISE, 40)] * (ms // 300 - 1) + [(SPEECH, 300)]


def drive(rms: list[float], cfg: TimingConfig = CFG, arm_at: int | None = None, disarm_at: int | None = None):
    """Run classifier + EOU + barge-in; return (eou events [(decision time, kind, onset)], barge-ins)."""
    c, e, b = FrameClassifier(cfg), EouDetector(cfg), BargeInDetector(cfg)
    eous, barges = [], []
    for i, r in enumerate(rms):
        t = 20 * i
        if arm_at is not None and t == arm_at:
            b.arm(t)
        if disarm_at is not None and t == disarm_at:
            b.disarm()
        v = c.update(r, t)
        k = e.update(v, r, t, c)
        if k != EOU_NONE:
            eous.append((t + 20, k, e.onset_ms))
        if b.update(v, t, c):
            barges.append((t + 20, b.onset_ms))
    return eous, barges


# --- classifier -----------------------------------------------------------------------------


def test_calibration_sets_the_threshold_from_the_median_noise() -> None:
    c = FrameClassifier(CFG)
    frames = [20.0] * 12 + [3000.0] * 8  # a word inside the window: less than half of it
    assert [c.update(r, 20 * i) for i, r in enumerate(frames)] == [False] * 20
    assert not c.calibrated
    c.update(20.0, 400)
    assert c.calibrated and c.noise_floor == 20.0
    assert c.threshold == pytest.approx(20 * 2.2 + 8)


def test_quiet_line_uses_the_floor_threshold_and_calibration_uses_the_stream_start() -> None:
    c = FrameClassifier(CFG)
    for i in range(21):
        c.update(2.0, 1000 + 20 * i)  # the stream need not start at 0
    assert c.calibrated and c.threshold == 35.0
    c2 = FrameClassifier(TimingConfig(calibration_ms=300))
    assert [c2.update(5.0, 20 * i) for i in range(15)] == [False] * 15 and not c2.calibrated
    c2.update(5.0, 300)
    assert c2.calibrated


def test_hysteresis_is_a_symmetric_debounce() -> None:
    c = FrameClassifier(CFG)
    for i in range(20):
        c.update(NOISE, 20 * i)
    seq = levels((NOISE, 100), (SPEECH, 40), (NOISE, 100), (SPEECH, 200), (NOISE, 40), (SPEECH, 100), (NOISE, 200))
    got = [c.update(r, 400 + 20 * i) for i, r in enumerate(seq)]
    # the 40 ms burst is never voice; the 200 ms run becomes voice on its 3rd frame, the 40 ms
    # dip does not break it, and it ends on the 3rd quiet frame after the last loud one.
    expect = [False] * 14 + [True] * 17 + [False] * 8
    assert got == expect
    runs = np.diff(np.flatnonzero(np.diff([0, *got, 0])))
    assert list(runs) == [340 // 20]  # 200 + 40 + 100 ms: the run keeps its real length


def test_run_start_is_where_the_reported_run_really_began() -> None:
    c = FrameClassifier(CFG)
    for i in range(20):
        c.update(NOISE, 20 * i)
    assert c.run_start_ms == 0 and not c.voice  # silence since the stream start
    seq = levels((NOISE, 100), (SPEECH, 40), (NOISE, 100), (SPEECH, 200), (NOISE, 40), (SPEECH, 100), (NOISE, 200))
    seen = []
    for i, r in enumerate(seq):
        t = 400 + 20 * i
        v = c.update(r, t)
        seen.append((t, v, c.run_start_ms, c.pending))
    by_t = {t: (v, rs, p) for t, v, rs, p in seen}
    assert by_t[500] == (False, 0, True)  # the 40 ms burst: pending, never a run
    assert by_t[640] == (False, 0, True) and by_t[660] == (False, 0, True)
    assert by_t[680] == (True, 640, False)  # flips on its 3rd frame; the run began at 640
    assert by_t[840] == (True, 640, True) and by_t[860] == (True, 640, True)  # the dip: pending
    assert by_t[880] == (True, 640, False)  # bridged: still the run that began at 640
    assert by_t[1020] == (False, 980, False)  # silence since the end of the last loud frame
    c.update(SPEECH, 2000)  # a gap: the (silence) run restarts after it
    assert c.run_start_ms == 2000


def test_noise_floor_tracks_slowly_in_silence_and_never_in_voice() -> None:
    c = FrameClassifier(CFG)
    for i in range(20):
        c.update(10.0, 20 * i)
    t = 400
    for _ in range(100):  # 2 s at a slightly higher noise (one time constant)
        assert not c.update(20.0, t)
        t += 20
    assert 10.0 + 10 * (1 - math.exp(-1)) - 0.3 < c.noise_floor < 10.0 + 10 * (1 - math.exp(-1)) + 0.3
    before = c.noise_floor
    got = []
    for r in levels(*talk(6000)):  # a 6 s monologue does not move the floor
        got.append(c.update(r, t))
        t += 20
    assert got == [False] * (LAG // 20) + [True] * (300 - LAG // 20)  # one voice run, dips bridged
    assert c.noise_floor == before and c.reseats == 0


def test_a_steady_tone_of_7_s_stays_voice() -> None:
    c = FrameClassifier(CFG)
    got = [c.update(r, 20 * i) for i, r in enumerate(levels((NOISE, 1000), (SPEECH, 7000)))]
    assert c.reseats == 0 and all(got[(1000 + LAG) // 20 :])


def test_a_noise_step_above_the_threshold_reseats_the_floor() -> None:
    c = FrameClassifier(CFG)
    got = [c.update(r, 20 * i) for i, r in enumerate(levels((NOISE, 1000), (300.0, NOISE_RESEAT_MS + 3000)))]
    step = 1000
    # voice from the step (+ hysteresis), until 10 s without a quiet frame re-seat the floor at
    # the step's level; then silence once the hysteresis has passed again
    reseat = step + NOISE_RESEAT_MS
    assert c.reseats == 1 and c.noise_floor > 250
    first_voice = got.index(True) * 20
    back_to_silence = first_voice + got[first_voice // 20 :].index(False) * 20
    assert first_voice == step + LAG
    assert back_to_silence == reseat - 20 + LAG
    assert not any(got[back_to_silence // 20 :])


def test_a_noisy_line_does_not_barge_in_on_every_sentence() -> None:
    rms = levels((NOISE, 1000), (300.0, 30000))
    c, b = FrameClassifier(CFG), BargeInDetector(CFG)
    fired = []
    for i, r in enumerate(rms):
        t = 20 * i
        if t >= 1000 and (t - 1000) % 3000 == 0:
            b.arm(t)  # the agent starts a sentence every 3 s
        if b.update(c.update(r, t), t, c):
            fired.append((t, b.onset_ms))
    # the sentences started before the re-seat are interrupted, none after it (frame starts);
    # the onset is the noise step itself, not the hysteresis' decision
    assert fired == [(1000 + k * 3000 + 200 + 200 - 20, 1000) for k in range(4)] and c.reseats == 1


# --- end of utterance ------------------------------------------------------------------------


def test_300_ms_word_ends_at_min_utt() -> None:
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, 300), (NOISE, 2000)))
    onset = 1000  # the word's first frame, not the hysteresis' decision
    assert eous == [(1100, EOU_ONSET, onset), (2000, EOU_END, onset)]  # onset + 100, onset + MIN_UTT


def test_silence_ends_a_long_utterance_after_eou_silence() -> None:
    # a gradual fall (3 dB per frame: 9 dB in 60 ms, not sharp) then noise
    fade = [SPEECH * 10 ** (-3 * k / 20) for k in range(1, 15)]
    rms = levels((NOISE, 1000), *talk(2100)) + fade + levels((NOISE, 1000))
    threshold = max(35.0, 2.2 * NOISE + 8)
    fade_quiet = 1000 + 2100 + 20 * next(k for k, r in enumerate(fade) if r <= threshold)
    eous, _ = drive(rms)
    assert [k for _, k, _ in eous] == [EOU_ONSET, EOU_END]
    assert eous[1][0] == fade_quiet + CFG.eou_silence_ms  # 400 ms after the last voiced frame ends
    assert eous[1][2] == 1000


def test_sharp_drop_ends_200_ms_after_the_drop() -> None:
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, 1500), (NOISE, 1000)))
    drop = 2500
    assert eous[1] == (drop + CFG.eou_drop_silence_ms, EOU_END, 1000)


def test_sharp_drop_needs_the_configured_dB() -> None:
    # an 11 dB step down at 2500 (still voice) is no sharp drop: the utterance ends only at the
    # real drop to noise at 3500
    quieter = SPEECH * 10 ** (-11 / 20)
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, 1500), (quieter, 500), (NOISE, 1000)))
    assert eous[1] == (3000 + CFG.eou_drop_silence_ms, EOU_END, 1000)
    # a 13 dB step is a drop, but still voice at the 200 ms mark: quieter speech, not a stop
    quiet_voice = SPEECH * 10 ** (-13 / 20)
    e = EouDetector(CFG)
    c = FrameClassifier(CFG)
    kinds = {}
    for i, r in enumerate(levels((NOISE, 1000), (SPEECH, 1500), (quiet_voice, 400), (NOISE, 1000))):
        kinds[20 * i + 20] = e.update(c.update(r, 20 * i), r, 20 * i, c)
        if 20 * i == 2500:
            assert e.drop_ms == 2500
        if 20 * i == 2680:
            assert e.drop_ms == -1 and kinds[2700] == EOU_NONE
    assert [t for t, k in kinds.items() if k == EOU_END] == [2900 + CFG.eou_drop_silence_ms]


def test_drop_before_min_utt_waits_for_min_utt() -> None:
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, 500), (NOISE, 1000)))
    assert eous[1] == (2000, EOU_END, 1000)  # the drop at 1500 waits for onset + MIN_UTT


def test_voice_back_before_eou_continues_the_utterance() -> None:
    # a 160 ms pause: the drop at 2200 is pending, the voice comes back before its 200 ms
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, 1200), (NOISE, 160), (SPEECH, 600), (NOISE, 1000)))
    assert [k for _, k, _ in eous] == [EOU_ONSET, EOU_END]
    assert eous[1][0] == 2960 + CFG.eou_drop_silence_ms


def test_6_s_monologue_is_forced_at_max_utt_and_goes_on() -> None:
    eous, _ = drive(levels((NOISE, 1000), *talk(6000), (NOISE, 1000)))
    onset = 1000
    forced = onset + CFG.max_utt_ms  # 5500
    assert eous == [
        (onset + 100, EOU_ONSET, onset),
        (forced, EOU_FORCED, onset),
        (forced + 100, EOU_ONSET, forced),
        (7000 + CFG.eou_drop_silence_ms, EOU_END, forced),  # the rest ends by the sharp drop at 7000
    ]


@pytest.mark.parametrize("click_ms,starts", [(40, False), (80, False), (100, True), (160, True)])
def test_clicks_shorter_than_min_voice_onset_never_start_an_utterance(click_ms: int, starts: bool) -> None:
    eous, _ = drive(levels((NOISE, 1000), (SPEECH, click_ms), (NOISE, 2000)))
    assert bool(eous) == starts


def test_reset_returns_to_idle() -> None:
    e = EouDetector(CFG)
    for i in range(10):
        e.update(True, SPEECH, 20 * i)
    assert e.in_utterance
    e.reset()
    assert not e.in_utterance and e.onset_ms == -1
    assert e.update(True, SPEECH, 200) == EOU_NONE


# --- barge-in ---------------------------------------------------------------------------------


def test_barge_in_fires_after_min_voice_with_the_real_onset() -> None:
    _, barges = drive(levels((NOISE, 1000), (NOISE, 1000), (SPEECH, 1000), (NOISE, 500)), arm_at=1000)
    assert barges == [(2200, 2000)]  # voice from 2000: fires on the frame ending at 2000 + 200


@pytest.mark.parametrize("min_voice", [180, 200, 220])
def test_barge_in_fires_min_voice_after_a_tone_starts_for_any_allowed_value(min_voice: int) -> None:
    cfg = TimingConfig(barge_in_min_voice_ms=min_voice)
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 1000), (NOISE, 500)), cfg=cfg, arm_at=400)
    assert barges == [(1000 + min_voice, 1000)]


def test_barge_in_counts_a_bridged_dip_but_not_a_pending_one() -> None:
    # 120 ms of voice, a 40 ms dip (bridged by the hysteresis), voice again: the run began at
    # 1000 and counts through the dip, so it fires at 1200 on a loud frame
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 120), (NOISE, 40), (SPEECH, 400), (NOISE, 500)), arm_at=400)
    assert barges == [(1200, 1000)]
    # the dip spans the 200 ms mark: no trigger on a quiet frame; the first loud frame after it
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 180), (NOISE, 40), (SPEECH, 400), (NOISE, 500)), arm_at=400)
    assert barges == [(1240, 1000)]


def test_voice_inside_the_grace_window_counts_from_its_end() -> None:
    _, barges = drive(levels((NOISE, 1000), (NOISE, 60), (SPEECH, 1000), (NOISE, 500)), arm_at=1000)
    assert barges == [(1000 + CFG.barge_in_grace_ms + CFG.barge_in_min_voice_ms, 1060)]  # 1400


def test_150_ms_click_does_not_barge_in() -> None:
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 160), (NOISE, 1000)), arm_at=1000)
    assert barges == []
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 180), (NOISE, 1000)), arm_at=1000)
    assert barges == []
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 200), (NOISE, 1000)), arm_at=1000)
    assert barges == [(1700, 1500)]  # exactly 200 ms of voice: fires on its last frame


def test_disarmed_never_fires_and_fires_once_per_arm() -> None:
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 2000)), arm_at=None)
    assert barges == []
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 2000)), arm_at=1000, disarm_at=1100)
    assert barges == []
    b = BargeInDetector(CFG)
    b.arm(0)
    fired = [b.update(True, t) for t in range(0, 2000, 20)]
    assert fired.count(True) == 1 and fired.index(True) * 20 + 20 == 400
    b.arm(2000)  # re-arming (the next TTS sentence) allows the next one
    fired = [b.update(True, t) for t in range(2000, 3000, 20)]
    assert fired.index(True) * 20 + 2020 == 2400 and b.onset_ms == 0


# --- real audio through the codec ------------------------------------------------------------


def test_tone_bursts_in_noise_through_the_codec() -> None:
    """Sine bursts at a known RMS in white noise, μ-law encoded as Twilio sends them."""
    rng = np.random.default_rng(7)
    n = 8000 * 4
    x = rng.normal(0, 12.0, n)  # noise RMS 12 -> threshold 12*2.2+8 = 34.4 -> floor 35
    t = np.arange(n) / 8000
    burst = (t >= 1.0) & (t < 1.3)  # a 300 ms "word" at RMS 800
    x += burst * 800 * math.sqrt(2) * np.sin(2 * math.pi * 440 * t)
    ulaw = codec.pcm16_to_ulaw(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())
    c, e = FrameClassifier(CFG), EouDetector(CFG)
    pcm = bytearray(320)
    events = []
    for i in range(n // 160):
        rms = codec.decode_with_energy(ulaw[160 * i : 160 * i + 160], pcm)
        k = e.update(c.update(rms, 20 * i), rms, 20 * i, c)
        if k:
            events.append((20 * i + 20, k))
    assert 11 < c.noise_floor < 15  # μ-law quantisation adds a little to the 12 RMS noise
    assert c.threshold == max(35.0, c.noise_floor * 2.2 + 8)
    assert events == [(1100, EOU_ONSET), (1000 + CFG.min_utt_ms, EOU_END)]  # the word starts at 1000


def test_skipped_frames_are_counted_as_neither_voice_nor_silence() -> None:
    e = EouDetector(CFG)
    assert [e.update(True, SPEECH, t) for t in (0, 20, 40)] == [EOU_NONE] * 3  # 60 ms, no onset yet
    # not fed for 1 s (the shell was not LISTENING): the 60 ms run does not carry over
    assert [e.update(True, SPEECH, t) for t in (1060, 1080, 1100, 1120)] == [EOU_NONE] * 4
    assert e.update(True, SPEECH, 1140) == EOU_ONSET and e.onset_ms == 1060
    # inside an utterance, unseen audio is not silence either: the silence count restarts
    for t in range(1160, 1400, 20):
        e.update(False, NOISE, t)
    assert e.silence_ms == 240
    assert e.update(False, NOISE, 3000) == EOU_NONE and e.silence_ms == 20
    b = BargeInDetector(CFG)
    b.arm(0)
    for t in range(200, 360, 20):  # 160 ms of voice after the grace window
        assert not b.update(True, t)
    assert not b.update(True, 1000)  # a jump: the run restarts at 1000
    assert [b.update(True, t) for t in range(1020, 1200, 20)].index(True) * 20 + 1020 == 1180
    assert b.onset_ms == 1000


def test_classifier_hysteresis_does_not_span_skipped_frames() -> None:
    c = FrameClassifier(CFG)
    for i in range(20):
        c.update(NOISE, 20 * i)
    assert [c.update(SPEECH, t) for t in (400, 420)] == [False, False]
    assert c.update(SPEECH, 1000) is False  # would complete 60 ms only by counting the gap
    assert [c.update(SPEECH, t) for t in (1020, 1040)] == [False, True]


# --- EOU: voiced time, open(), hold ------------------------------------------------------------


def run_eou(rms: list[float], cfg: TimingConfig = CFG, before: dict | None = None, feed_from: int = 0):
    """Classifier on every frame, the EouDetector from ``feed_from`` on (the shell feeds it only
    while listening); ``before[t](e)`` runs before the frame at t. Returns (events, detector)."""
    c, e = FrameClassifier(cfg), EouDetector(cfg)
    events = []
    for i, r in enumerate(rms):
        t = 20 * i
        if before and t in before:
            before[t](e)
        v = c.update(r, t)
        if t >= feed_from:
            k = e.update(v, r, t, c)
            if k != EOU_NONE:
                events.append((t + 20, k, e.onset_ms, e.voiced_ms))
    return events, e


def test_voiced_ms_is_the_real_voice_of_the_utterance() -> None:
    # 500 ms, a 160 ms pause (not bridged: the classifier reports silence), 600 ms: 1100 ms of
    # voice in an utterance of 1460 ms; the onset run counts in full at ONSET
    events, e = run_eou(levels((NOISE, 1000), (SPEECH, 500), (NOISE, 160), (SPEECH, 600), (NOISE, 1000)))
    assert events == [(1100, EOU_ONSET, 1000, 100), (2460, EOU_END, 1000, 1100)]
    # syllables with 40 ms dips the hysteresis bridges: the dips are part of the run
    events, e = run_eou(levels((NOISE, 1000), *talk(1200), (NOISE, 1000)))
    assert events[-1][1] == EOU_END and e.voiced_ms == 1200
    # kept after END (the shell reads it when it resolves the turn), until the next onset
    events, e = run_eou(levels((NOISE, 1000), (SPEECH, 300), (NOISE, 1400), (SPEECH, 200), (NOISE, 1000)))
    assert [(k, v) for _, k, _, v in events] == [(EOU_ONSET, 100), (EOU_END, 300), (EOU_ONSET, 100), (EOU_END, 200)]
    e.reset()
    assert e.voiced_ms == 0


def test_voiced_ms_without_a_classifier_counts_voice_frames() -> None:
    e = EouDetector(CFG)
    seq = [True] * 10 + [False] * 5 + [True] * 7 + [False] * 30
    got = [e.update(v, SPEECH if v else NOISE, 20 * i) for i, v in enumerate(seq)]
    assert got.count(EOU_ONSET) == 1 and got.count(EOU_END) == 1
    assert e.voiced_ms == 20 * 17


def test_open_judges_an_interruption_as_soon_as_it_ends() -> None:
    # a 260 ms "yes" over the agent from 1000; the barge-in fires at 1200 (onset 1000) and the
    # shell hands the EouDetector the utterance in progress with MIN_UTT 0
    rms = levels((NOISE, 1000), (SPEECH, 260), (NOISE, 2000))
    opened = {1200: lambda e: e.open(1000, 1200, voiced_ms=200, min_utt_ms=0)}
    events, e = run_eou(rms, before=opened, feed_from=1200)
    assert events == [(1260 + CFG.eou_drop_silence_ms, EOU_END, 1000, 260)]  # the sharp drop at 1260
    assert e.utterance_ms == 460 and not e.in_utterance
    # with the configured MIN_UTT it would wait for onset + 1 s
    opened = {1200: lambda e: e.open(1000, 1200, voiced_ms=200)}
    events, _ = run_eou(rms, before=opened, feed_from=1200)
    assert events == [(1000 + CFG.min_utt_ms, EOU_END, 1000, 260)]


def test_open_then_voice_then_silence_ends_by_the_drop_or_the_silence_rule() -> None:
    # opened at the onset; 260 ms of voice, then a sharp stop: END 200 ms after it
    opened = {1000: lambda e: e.open(1000, 1000, min_utt_ms=0)}
    events, _ = run_eou(levels((NOISE, 1000), (SPEECH, 260), (NOISE, 1000)), before=opened, feed_from=1000)
    assert events == [(1460, EOU_END, 1000, 260)]
    # a gradual fade (no sharp drop): END eou_silence_ms after the last voiced frame
    fade = [SPEECH * 10 ** (-3 * k / 20) for k in range(1, 15)]
    threshold = max(35.0, 2.2 * NOISE + 8)
    quiet = 1260 + 20 * next(k for k, r in enumerate(fade) if r <= threshold)
    events, _ = run_eou(levels((NOISE, 1000), (SPEECH, 260)) + fade + levels((NOISE, 1000)), before=opened, feed_from=1000)
    assert [(t, k) for t, k, _, _ in events] == [(quiet + CFG.eou_silence_ms, EOU_END)]
    # MIN_UTT 0 was for that utterance only: the next 300 ms word waits for its onset + MIN_UTT
    opened = {1000: lambda e: e.open(1000, 1000, min_utt_ms=0)}
    events, _ = run_eou(levels((NOISE, 1000), (SPEECH, 260), (NOISE, 1000), (SPEECH, 300), (NOISE, 1500)), before=opened, feed_from=1000)
    assert [(t, k) for t, k, _, _ in events] == [(1460, EOU_END), (2360, EOU_ONSET), (2260 + CFG.min_utt_ms, EOU_END)]


def test_open_counts_silence_only_from_the_frames_fed_after_it() -> None:
    # the caller stopped at 1260, unseen by this detector; opened at 1500: silence from 1500
    opened = {1500: lambda e: e.open(1000, 1500, voiced_ms=260, min_utt_ms=0)}
    events, e = run_eou(levels((NOISE, 1000), (SPEECH, 260), (NOISE, 2000)), before=opened, feed_from=1500)
    assert events == [(1500 + CFG.eou_silence_ms, EOU_END, 1000, 260)]


def test_open_with_long_voice_is_forced_at_onset_plus_max_utt() -> None:
    opened = {1300: lambda e: e.open(1000, 1300, voiced_ms=300)}
    events, e = run_eou(levels((NOISE, 1000), *talk(6000), (NOISE, 1000)), before=opened, feed_from=1300)
    forced = 1000 + CFG.max_utt_ms
    # voice all along, dips bridged — but FORCED falls on a dip (5460-5500) not yet bridged
    assert events[0] == (forced, EOU_FORCED, 1000, forced - 1000 - 40)
    assert events[1][1] == EOU_ONSET and events[1][2] == forced  # the voice goes on: next utterance


def test_open_keeps_a_voice_run_going() -> None:
    # opened mid-voice with the detector already fed (contiguous): the run continues, the
    # sharp drop at its end is seen
    opened = {1400: lambda e: e.open(900, 1400, voiced_ms=400, min_utt_ms=0)}
    events, e = run_eou(levels((NOISE, 1000), (SPEECH, 700), (NOISE, 1000)), before=opened, feed_from=1000)
    assert events == [(1100, EOU_ONSET, 1000, 100), (1900, EOU_END, 900, 700)]  # 400 + 300 after 1400


def pause_utterance(pause_ms: int) -> list[float]:
    return levels((NOISE, 1000), (SPEECH, 1500), (NOISE, pause_ms), (SPEECH, 600), (NOISE, 1500))


def test_hold_lets_a_speaker_search_for_the_next_word() -> None:
    # a 300 ms pause after a sharp drop at 2500: ends the utterance at 2700 without hold
    events, _ = run_eou(pause_utterance(300))
    assert [(t, k) for t, k, _, _ in events] == [
        (1100, EOU_ONSET),
        (2500 + CFG.eou_drop_silence_ms, EOU_END),
        (2900, EOU_ONSET),  # the words after the pause: a new utterance ...
        (2800 + CFG.min_utt_ms, EOU_END),  # ... cut at its own MIN_UTT
    ]
    # with hold (the partial transcript ended on "and"): the pause does not end it; the real
    # stop at 3400 ends it after eou_hold_silence_ms of silence, not by the drop
    events, e = run_eou(pause_utterance(300), before={2400: lambda e: setattr(e, "hold", True)})
    assert [(t, k) for t, k, _, _ in events] == [(1100, EOU_ONSET), (3400 + CFG.eou_hold_silence_ms, EOU_END)]
    assert not e.hold  # END clears it
    assert events[-1][3] == 2100  # 1500 + 600 of voice


def test_hold_needs_eou_hold_silence_and_keeps_min_max_utt() -> None:
    # 500 ms of silence ends a held utterance, 480 ms does not
    events, _ = run_eou(pause_utterance(480), before={2400: lambda e: setattr(e, "hold", True)})
    assert [k for _, k, _, _ in events] == [EOU_ONSET, EOU_END] and events[1][0] == 3580 + CFG.eou_hold_silence_ms
    events, _ = run_eou(pause_utterance(500), before={2400: lambda e: setattr(e, "hold", True)})
    assert [(t, k) for t, k, _, _ in events][:2] == [(1100, EOU_ONSET), (2500 + CFG.eou_hold_silence_ms, EOU_END)]
    # MAX_UTT still forces a held utterance
    events, _ = run_eou(levels((NOISE, 1000), *talk(6000)), before={1200: lambda e: setattr(e, "hold", True)})
    assert events[1][:2] == (1000 + CFG.max_utt_ms, EOU_FORCED)
    # MIN_UTT too: a held 300 ms word ends at max(onset + MIN_UTT, its end + hold silence)
    events, _ = run_eou(levels((NOISE, 1000), (SPEECH, 300), (NOISE, 2000)), before={1100: lambda e: setattr(e, "hold", True)})
    assert events[1][:2] == (max(1000 + CFG.min_utt_ms, 1300 + CFG.eou_hold_silence_ms), EOU_END)


def test_lifting_the_hold_lets_a_pending_drop_end_the_utterance() -> None:
    def lift(e: EouDetector) -> None:
        assert e.drop_ms == 2500 and e.in_utterance
        e.hold = False

    events, _ = run_eou(pause_utterance(400), before={2400: lambda e: setattr(e, "hold", True), 2760: lift})
    assert [(t, k) for t, k, _, _ in events][:2] == [(1100, EOU_ONSET), (2780, EOU_END)]


def test_reset_clears_the_hold_and_the_open_min_utt() -> None:
    e = EouDetector(CFG)
    e.hold = True
    e.open(0, 0, min_utt_ms=0)
    e.reset()
    assert not e.hold and not e.in_utterance and e.voiced_ms == 0
    seq = [True] * 15 + [False] * 60  # 300 ms word: MIN_UTT is back
    got = [(20 * i + 20, e.update(v, SPEECH if v else NOISE, 20 * i)) for i, v in enumerate(seq)]
    assert [t for t, k in got if k == EOU_END] == [CFG.min_utt_ms]
