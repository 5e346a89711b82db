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
GAP0 = TimingConfig(barge_in_gap_ms=0)  # the barge-in's continuous rule: no stretch across gaps
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


@pytest.mark.parametrize("cfg", [CFG, GAP0], ids=["gap120", "gap0"])
def test_barge_in_fires_after_min_voice_with_the_real_onset(cfg: TimingConfig) -> None:
    _, barges = drive(levels((NOISE, 1000), (NOISE, 1000), (SPEECH, 1000), (NOISE, 500)), cfg=cfg, arm_at=1000)
    assert barges == [(2200, 2000)]  # voice from 2000: fires on the frame ending at 2000 + 200


@pytest.mark.parametrize("min_voice", [180, 200, 220])
def test_barge_in_fires_min_voice_after_a_tone_starts_for_any_allowed_value(min_voice: int) -> None:
    cfg = TimingConfig(barge_in_min_voice_ms=min_voice)
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 1000), (NOISE, 500)), cfg=cfg, arm_at=400)
    assert barges == [(1000 + min_voice, 1000)]


@pytest.mark.parametrize("cfg", [CFG, GAP0], ids=["gap120", "gap0"])
def test_barge_in_counts_a_bridged_dip_but_not_a_pending_one(cfg: TimingConfig) -> None:
    # 120 ms of voice, a 40 ms dip (bridged by the hysteresis), voice again: the run began at
    # 1000 and counts through the dip, so it fires at 1200 on a loud frame
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 120), (NOISE, 40), (SPEECH, 400), (NOISE, 500)), cfg=cfg, arm_at=400)
    assert barges == [(1200, 1000)]
    # the dip spans the 200 ms mark: no trigger on a quiet frame; the first loud frame after it
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 180), (NOISE, 40), (SPEECH, 400), (NOISE, 500)), cfg=cfg, arm_at=400)
    assert barges == [(1240, 1000)]


@pytest.mark.parametrize("cfg", [CFG, GAP0], ids=["gap120", "gap0"])
def test_voice_inside_the_grace_window_counts_from_its_end(cfg: TimingConfig) -> None:
    _, barges = drive(levels((NOISE, 1000), (NOISE, 60), (SPEECH, 1000), (NOISE, 500)), cfg=cfg, arm_at=1000)
    assert barges == [(1000 + cfg.barge_in_grace_ms + cfg.barge_in_min_voice_ms, 1060)]  # 1400


@pytest.mark.parametrize("cfg", [CFG, GAP0], ids=["gap120", "gap0"])
def test_150_ms_click_does_not_barge_in(cfg: TimingConfig) -> None:
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 160), (NOISE, 1000)), cfg=cfg, arm_at=1000)
    assert barges == []
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 180), (NOISE, 1000)), cfg=cfg, arm_at=1000)
    assert barges == []
    _, barges = drive(levels((NOISE, 1500), (SPEECH, 200), (NOISE, 1000)), cfg=cfg, arm_at=1000)
    assert barges == [(1700, 1500)]  # exactly 200 ms of voice: fires on its last frame


@pytest.mark.parametrize("cfg", [CFG, GAP0], ids=["gap120", "gap0"])
def test_disarmed_never_fires_and_fires_once_per_arm(cfg: TimingConfig) -> None:
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 2000)), cfg=cfg, arm_at=None)
    assert barges == []
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 2000)), cfg=cfg, arm_at=1000, disarm_at=1100)
    assert barges == []
    b = BargeInDetector(cfg)
    b.arm(0)
    fired = [b.update(True, t) for t in range(0, 2000, 20)]
    assert fired.count(True) == 1 and fired.index(True) * 20 + 20 == 400
    b.arm(2000)  # re-arming (the next TTS sentence) allows the next one
    fired = [b.update(True, t) for t in range(2000, 3000, 20)]
    assert fired.index(True) * 20 + 2020 == 2400 and b.onset_ms == 0


# --- barge-in: the caller's voice counted across the short gaps between words --------------------
# Voice runs separated by silence shorter than barge_in_gap_ms (120 ms) are one stretch; the
# barge-in fires when the stretch's VOICE (the gaps not counted) reaches barge_in_min_voice_ms,
# onset_ms = the stretch's first run. A run counts once the classifier has confirmed it, i.e.
# hysteresis_ms (60 ms) after it starts: that is when its first frames are known to be voice.


@pytest.mark.parametrize("gap,joined", [(60, True), (80, True), (100, True), (120, False), (140, False)])
def test_barge_in_counts_the_voice_of_a_stretch_not_its_gaps(gap: int, joined: bool) -> None:
    # a 120 ms word, a gap, the next word: joined, the next word's first 80 ms complete the
    # 200 ms of voice (the gap is not counted) and the onset is the first word's
    rms = levels((NOISE, 1000), (SPEECH, 120), (NOISE, gap), (SPEECH, 400), (NOISE, 500))
    second = 1120 + gap
    _, barges = drive(rms, arm_at=400)
    assert barges == ([(second + 80, 1000)] if joined else [(second + 200, second)])
    # barge_in_gap_ms = 0: the continuous rule, the count restarts at every gap
    _, barges = drive(rms, cfg=GAP0, arm_at=400)
    assert barges == [(second + 200, second)]


@pytest.mark.parametrize("gap_ms", [0, 80, 100, 120, 140, 200])
def test_a_gap_joins_exactly_when_shorter_than_barge_in_gap(gap_ms: int) -> None:
    cfg = TimingConfig(barge_in_gap_ms=gap_ms)
    for gap in (60, 80, 100, 120, 140, 160, 180, 200, 220):
        second = 1120 + gap
        _, barges = drive(levels((NOISE, 1000), (SPEECH, 120), (NOISE, gap), (SPEECH, 400), (NOISE, 500)), cfg=cfg, arm_at=400)
        assert barges == ([(second + 80, 1000)] if gap < gap_ms else [(second + 200, second)]), gap


def test_the_next_run_counts_once_the_classifier_confirms_it() -> None:
    # "רגע" (180 ms), 100 ms, the next word: 20 ms more would make 200 ms, but a 20 ms blip
    # after a word is no voice; the next run is voice from its third frame (hysteresis 60 ms) on,
    # and the barge-in fires there with 240 ms of voice
    _, barges = drive(levels((NOISE, 1000), (SPEECH, 180), (NOISE, 100), (SPEECH, 400), (NOISE, 500)), arm_at=400)
    assert barges == [(1280 + CFG.hysteresis_ms, 1000)]
    # ... and a 40 ms blip after the word is silence, not voice: it never completes the 200 ms,
    # and the silence around it (160 ms) ends the stretch
    _, barges = drive(
        levels((NOISE, 1000), (SPEECH, 180), (NOISE, 60), (SPEECH, 40), (NOISE, 60), (SPEECH, 400), (NOISE, 500)), arm_at=400
    )
    assert barges == [(1340 + 200, 1340)]


def test_three_runs_and_two_gaps_make_one_stretch() -> None:
    # 60 + 80 (gap) + 60 + 80 (gap) + voice: 120 ms of voice before the third run, which brings
    # the last 80; counting the gaps would have fired at 1200
    _, barges = drive(
        levels((NOISE, 1000), (SPEECH, 60), (NOISE, 80), (SPEECH, 60), (NOISE, 80), (SPEECH, 400), (NOISE, 500)), arm_at=400
    )
    assert barges == [(1280 + 80, 1000)]


def test_a_long_gap_resets_the_count() -> None:
    # three 180 ms words 140 ms apart: 540 ms of voice, but never 200 in one stretch
    rms = levels((NOISE, 1000), (SPEECH, 180), (NOISE, 140), (SPEECH, 180), (NOISE, 140), (SPEECH, 180), (NOISE, 1000))
    _, barges = drive(rms, arm_at=400)
    assert barges == []
    # 140 ms, then a 100 ms gap: the count restarted at the second word and goes on from there
    rms = levels((NOISE, 1000), (SPEECH, 180), (NOISE, 140), (SPEECH, 180), (NOISE, 100), (SPEECH, 400), (NOISE, 500))
    _, barges = drive(rms, arm_at=400)
    assert barges == [(1600 + CFG.hysteresis_ms, 1320)]


def test_a_stretch_counts_only_voice_after_the_grace_window() -> None:
    # armed at 1000 (grace to 1200): a run 1100-1260 counts 60 ms, 100 ms gap, the next run
    # from 1360 brings the other 140; the onset is where the stretch began, inside the window
    rms = levels((NOISE, 1100), (SPEECH, 160), (NOISE, 100), (SPEECH, 400), (NOISE, 500))
    _, barges = drive(rms, arm_at=1000)
    assert barges == [(1500, 1100)]
    # a stretch that ended inside the window counts nothing: the next one from scratch
    rms = levels((NOISE, 1000), (SPEECH, 140), (NOISE, 140), (SPEECH, 400), (NOISE, 500))
    _, barges = drive(rms, arm_at=1000)
    assert barges == [(1280 + 200, 1280)]


def test_arming_keeps_the_stretch_but_not_its_earlier_voice() -> None:
    # the caller is still talking when the agent starts (arm at 1200): the 180 ms before counts
    # nothing, the onset is still the stretch's start
    b = BargeInDetector(CFG)
    voice = [False] * 50 + [True] * 9 + [False] * 5 + [True] * 40  # 1000-1180, gap 100, 1280-2080
    fired = []
    for i, v in enumerate(voice):
        t = 20 * i
        if t == 1200:
            b.arm(t)
        if b.update(v, t):
            fired.append((t + 20, b.onset_ms))
    assert fired == [(1200 + CFG.barge_in_grace_ms + CFG.barge_in_min_voice_ms, 1000)]


def test_skipped_frames_end_the_stretch() -> None:
    b = BargeInDetector(CFG)
    b.arm(0)
    for t in range(200, 360, 20):  # 160 ms of voice after the grace window, then 40 ms quiet
        assert not b.update(True, t)
    for t in (360, 380):
        assert not b.update(False, t)
    # not fed for 200 ms: the gap is unknown, the stretch restarts
    assert [b.update(True, t) for t in range(600, 800, 20)].index(True) * 20 + 620 == 800
    assert b.onset_ms == 600


# What the stretch costs: sounds that are not words. A click shorter than the hysteresis is
# never voice; one sound needs barge_in_min_voice_ms of voice as before; two sounds closer than
# barge_in_gap_ms now add up (the session resumes the agent after such a false interruption:
# server/turn.py, PAUSED -> FalseInterruption).
@pytest.mark.parametrize(
    "segments,fires",
    [
        ([(SPEECH, 160)], None),  # a 160 ms click: never
        ([(SPEECH, 300)], 200),  # a 300 ms cough: 200 ms after its onset, as with the continuous rule
        ([(SPEECH, 100), (NOISE, 80), (SPEECH, 100)], 280),  # two 100 ms knocks 80 ms apart: 200 ms of voice
        ([(SPEECH, 100), (NOISE, 120), (SPEECH, 100)], None),  # ... 120 ms apart: two sounds
        ([(SPEECH, 100), (NOISE, 140), (SPEECH, 100)], None),
        ([(SPEECH, 100), (NOISE, 160), (SPEECH, 100)], None),
        ([(SPEECH, 60), (NOISE, 80)] * 3 + [(SPEECH, 60)], 3 * 140 + 60),  # four 60 ms knocks, 80 ms apart: on the 4th
        ([(SPEECH, 40), (NOISE, 40)] * 20, None),  # a rattle of 40 ms clicks: never voice
    ],
)
def test_what_fires_and_what_does_not(segments: list[tuple[float, int]], fires: int | None) -> None:
    rms = levels((NOISE, 1000), *segments, (NOISE, 1000))
    _, barges = drive(rms, arm_at=400)
    assert barges == ([] if fires is None else [(1000 + fires, 1000)])
    # the continuous rule fires only on one sound of 200 ms
    _, barges = drive(rms, cfg=GAP0, arm_at=400)
    assert barges == ([(1200, 1000)] if segments == [(SPEECH, 300)] else [])


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


def sounds_through_the_codec(
    lens_ms: tuple[int, ...], gaps_ms: tuple[int, ...], at_ms: float, cfg: TimingConfig = CFG, words: bool = False
):
    """Sounds at ``at_ms`` (any sub-frame position) in white noise (RMS 12), μ-law encoded, the
    agent armed at 400 ms; returns the barge-ins. Knocks (default): noise bursts at RMS 2000 with
    sharp edges. Words: a voiced tone at RMS 1500, a 30 ms rise and a 40 ms fall."""
    rng = np.random.default_rng(11)
    x = rng.normal(0, 12.0, 8000 * 3)
    pos = round(at_ms * 8)
    for k, ms in enumerate(lens_ms):
        n = ms * 8
        if words:
            env = np.ones(n)
            env[:240] = np.sin(np.linspace(0, np.pi / 2, 240)) ** 2
            env[n - 320 :] = np.cos(np.linspace(0, np.pi / 2, 320)) ** 2
            tone = sum(np.sin(2 * np.pi * h * 150 * np.arange(n) / 8000) / h for h in range(1, 7))
            x[pos : pos + n] += 1500.0 * env * tone / np.sqrt(np.mean(tone * tone))
        else:
            x[pos : pos + n] += rng.normal(0, 2000.0, n)
        pos += n + (gaps_ms[k] * 8 if k < len(gaps_ms) else 0)
    ulaw = codec.pcm16_to_ulaw(np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes())
    pcm = bytearray(320)
    return drive([codec.decode_with_energy(ulaw[160 * i : 160 * i + 160], pcm) for i in range(len(ulaw) // 160)], cfg, arm_at=400)[1]


@pytest.mark.parametrize("offset_ms", range(20))  # where in a frame the first sound starts (ms)
def test_what_fires_through_the_codec_at_any_position_in_a_frame(offset_ms: int) -> None:
    """The frame grid moves a sound's edges by up to a frame: a sharp-edged 100 ms knock covers
    100-120 ms of loud frames, and the silence between two reads up to 40 ms SHORTER than it is
    (a frame with 1 ms of a knock is loud). Under barge_in_gap_ms = 120 a silence that reads
    100 ms or less joins: two knocks 80 ms apart always do, 150 ms apart never."""
    at = 1000 + offset_ms
    assert sounds_through_the_codec((160,), (), at) == []
    ((fired, onset),) = sounds_through_the_codec((300,), (), at)  # a cough: 200 ms after its first frame
    assert onset == 1000 and fired == 1200
    ((fired, onset),) = sounds_through_the_codec((100, 100), (80,), at)
    assert onset == 1000 and fired <= at + 100 + 80 + 100 + 20
    assert sounds_through_the_codec((100, 100), (150,), at) == []
    assert sounds_through_the_codec((100, 100), (80,), at, GAP0) == []


def test_knock_gaps_through_the_codec() -> None:
    """Two 100 ms knocks, a gap, at each 1 ms position in a frame: how often they barge in. Under
    the default (120 ms) up to 120 ms apart, at 130 ms about half the time, from 140 ms never;
    at 140 ms the line moves up a frame — two knocks 150 ms apart would barge in about half the time."""

    def fires(gap: int, cfg: TimingConfig) -> int:
        return sum(bool(sounds_through_the_codec((100, 100), (gap,), 1000 + offset, cfg)) for offset in range(20))

    gaps = (80, 100, 110, 120, 130, 140, 150, 160)
    assert [fires(gap, CFG) for gap in gaps] == [20, 20, 20, 19, 9, 0, 0, 0]
    assert [fires(gap, TimingConfig(barge_in_gap_ms=140)) for gap in gaps] == [20, 20, 20, 20, 20, 19, 9, 0]


def test_word_gaps_through_the_codec() -> None:
    """Between words the silence reads LONGER than it is (a word's fall and the next one's rise
    sit partly under the threshold). A 170 ms word, a gap, a 300 ms word, at each 1 ms position
    in a frame: joined (the barge-in fires from the first word's onset, before the second word
    alone could) whenever the gap is <= 100 ms, never from 130 ms on; 110 and 120 ms in between."""

    def joined(gap: int) -> int:
        n = 0
        for offset in range(20):
            at = 1000 + offset
            ((fired, onset),) = sounds_through_the_codec((170, 300), (gap,), at, words=True)
            if onset < at + 100:  # the first word's onset (its rise: the frame it starts in or the next)
                assert fired <= at + 170 + gap + CFG.hysteresis_ms + 20  # confirmed 60 ms into the second
                n += 1
            else:
                assert onset < at + 170 + gap + 20 and fired == onset + 200  # the second word alone
        return n

    assert [joined(gap) for gap in (60, 80, 100, 110, 120, 130, 150)] == [20, 20, 20, 15, 5, 0, 0]


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
