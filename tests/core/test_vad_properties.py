"""Property tests: the detectors' guarantees hold for any input and any config in the user's ranges."""
from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from native.config import TimingConfig
from native.vad import (EOU_END, EOU_FORCED, EOU_NONE, EOU_ONSET, NEVER_FRAMES, BargeInDetector, EouDetector,
                        FrameClassifier)

FRAME = 20


def frames_for(ms: int) -> int:
    return math.ceil(ms / FRAME)


configs = st.builds(
    TimingConfig,
    calibration_ms=st.sampled_from([300, 400, 500]),
    hysteresis_ms=st.sampled_from([40, 60, 80]),
    eou_silence_ms=st.sampled_from([360, 400, 500]),
    eou_drop_silence_ms=st.sampled_from([160, 200, 240]),
    sharp_drop_db=st.sampled_from([6.0, 12.0, 20.0]),
    sharp_drop_window_ms=st.sampled_from([20, 60, 100]),
    min_utt_ms=st.sampled_from([900, 1000, 1200]),
    max_utt_ms=st.sampled_from([4000, 4500, 5000]),
    min_voice_onset_ms=st.sampled_from([60, 100, 160]),
    barge_in_min_voice_ms=st.sampled_from([180, 200, 220]),
    barge_in_grace_ms=st.sampled_from([150, 200, 250]),
    barge_in_gap_ms=st.sampled_from([0, 60, 100, 120, 200]),
)

# runs of (voice?, rms level, frames): speech-like on/off patterns of any length
runs = st.lists(
    st.tuples(st.booleans(), st.sampled_from([5.0, 30.0, 200.0, 3000.0]), st.integers(1, 60)), min_size=1, max_size=40
)


def expand(rs: list[tuple[bool, float, int]]) -> list[tuple[bool, float]]:
    return [(v, r) for v, r, n in rs for _ in range(n)]


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, runs)
def test_eou_guarantees(cfg: TimingConfig, rs: list[tuple[bool, float, int]]) -> None:
    e = EouDetector(cfg)
    seq = expand(rs)
    voice = [v for v, _ in seq]
    onset = None
    last_eou_frame = -1
    for i, (v, r) in enumerate(seq):
        t = FRAME * i
        k = e.update(v, r, t)
        end = t + FRAME
        if k == EOU_ONSET:
            assert onset is None, "ONSET inside an utterance"
            onset = e.onset_ms
            first = onset // FRAME
            assert all(voice[first : i + 1]), "ONSET on a broken voice run"
            assert end - onset == FRAME * frames_for(cfg.min_voice_onset_ms), "ONSET not exactly at min_voice_onset"
            assert first == 0 or not voice[first - 1] or first == last_eou_frame + 1, "run did not start at onset_ms"
            assert e.in_utterance
        elif k in (EOU_END, EOU_FORCED):
            assert onset is not None, "EOU without an utterance"
            assert end - onset >= cfg.min_utt_ms, "EOU before MIN_UTT"
            assert end - onset <= FRAME * frames_for(cfg.max_utt_ms), "utterance longer than MAX_UTT"
            if k == EOU_FORCED:
                assert end - onset == FRAME * frames_for(cfg.max_utt_ms), "FORCED not exactly at MAX_UTT"
            else:
                assert not v, "END on a voice frame"
            assert e.utterance_ms == end - onset and not e.in_utterance
            assert e.voiced_ms == FRAME * sum(voice[onset // FRAME : i + 1]), "voiced_ms is not the voice since onset"
            onset, last_eou_frame = None, i
        else:
            assert k == EOU_NONE
            if onset is not None:
                # MAX_UTT always forces: no utterance outlives it
                assert end - onset < cfg.max_utt_ms
                # continuous silence always ends it once MIN_UTT has passed
                quiet = frames_for(cfg.eou_silence_ms)
                if end - onset >= cfg.min_utt_ms and i + 1 >= quiet and not any(voice[i + 1 - quiet : i + 1]):
                    assert (i + 1 - quiet) * FRAME < onset, "silence did not end the utterance"


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, runs, st.booleans())
def test_eou_says_how_far_its_end_is_at_least(cfg: TimingConfig, rs: list[tuple[bool, float, int]],
                                               hold: bool) -> None:
    """``frames_to_end_in_silence`` / ``frames_to_forced`` (the shell reads frames as they arrive
    only from there on): never an END or FORCED sooner than said, whatever follows — with the
    hold on too; and, fed settled decisions and silence after, END or FORCED exactly then."""
    e = EouDetector(cfg)
    seq = expand(rs)
    said: list[tuple[int, int, int]] = []  # (frame, frames to END if all silent, frames to FORCED)
    for i, (v, r) in enumerate(seq):
        k = e.update(v, r, FRAME * i)
        if k in (EOU_END, EOU_FORCED):
            for j, to_end, to_forced in said:
                if k == EOU_FORCED:
                    assert i - j >= to_forced, "FORCED sooner than said"
                elif to_end != NEVER_FRAMES and not any(x for x, _ in seq[j + 1 : i + 1]):
                    assert i - j >= to_end, "END sooner than said"  # (said on silent frames only)
            said.clear()
        e.hold = hold and e.in_utterance
        if e.in_utterance:
            to_end = e.frames_to_end_in_silence() if not v else NEVER_FRAMES
            said.append((i, to_end, e.frames_to_forced()))
            assert min(to_end, said[-1][2]) >= 1
        else:
            assert e.frames_to_end_in_silence() == e.frames_to_forced() == NEVER_FRAMES
    if e.in_utterance and not seq[-1][0] and not hold:
        to_end, to_forced = e.frames_to_end_in_silence(), e.frames_to_forced()
        n = len(seq)
        for m in range(1, min(to_end, to_forced) + 1):
            k = e.update(False, 5.0, FRAME * (n - 1 + m))
            if m < min(to_end, to_forced):
                assert k == EOU_NONE, "ended sooner than said"
        assert k == (EOU_FORCED if to_forced < to_end else EOU_END if to_end < to_forced else k)
        assert k in (EOU_END, EOU_FORCED), "not ended when said"


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs.map(lambda c: replace(c, eou_hold_silence_ms=c.eou_silence_ms + 100)), runs)
def test_eou_guarantees_with_hold(cfg: TimingConfig, rs: list[tuple[bool, float, int]]) -> None:
    """Held all along (the shell sets hold again after every END): only silence ends an
    utterance, and only eou_hold_silence_ms of it, once MIN_UTT has passed; MAX_UTT still forces."""
    e = EouDetector(cfg)
    voice = [v for v, _ in expand(rs)]
    rms = [r for _, r in expand(rs)]
    hold_frames = frames_for(cfg.eou_hold_silence_ms)
    onset = None
    for i, (v, r) in enumerate(zip(voice, rms)):
        e.hold = True
        k = e.update(v, r, FRAME * i)
        end = FRAME * (i + 1)
        if k == EOU_ONSET:
            onset = e.onset_ms
        elif k == EOU_END:
            assert onset is not None and end - onset >= cfg.min_utt_ms
            assert i + 1 >= hold_frames and not any(voice[i + 1 - hold_frames : i + 1]), "held END without hold silence"
            assert not e.hold, "END did not clear the hold"
            onset = None
        elif k == EOU_FORCED:
            assert onset is not None and end - onset == FRAME * frames_for(cfg.max_utt_ms)
            onset = None
        elif onset is not None:
            if end - onset >= cfg.min_utt_ms and i + 1 >= hold_frames and not any(voice[i + 1 - hold_frames : i + 1]):
                assert (i + 1 - hold_frames) * FRAME < onset, "hold silence did not end the utterance"


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, runs, st.integers(0, 60), st.integers(0, 300), st.sampled_from([-1, 0, 300]), st.integers(0, 500))
def test_open_guarantees(
    cfg: TimingConfig, rs: list[tuple[bool, float, int]], open_frame: int, back_ms: int, min_utt: int, seed_ms: int
) -> None:
    """An opened utterance: END / FORCED measured from the given onset, MIN_UTT as asked,
    silence only from the frames fed after open(), the voice count seeded."""
    e = EouDetector(cfg)
    seq = expand(rs)
    voice = [v for v, _ in seq]
    t_open = FRAME * open_frame
    onset = t_open - back_ms
    need = cfg.min_utt_ms if min_utt < 0 else min_utt
    quiet = frames_for(cfg.eou_silence_ms)
    for i in range(open_frame, len(seq)):
        if i == open_frame:
            e.open(onset, t_open, voiced_ms=seed_ms, min_utt_ms=min_utt)
            assert e.in_utterance and e.onset_ms == onset and e.voiced_ms == seed_ms
        v, r = seq[i]
        k = e.update(v, r, FRAME * i)
        end = FRAME * (i + 1)
        if k in (EOU_END, EOU_FORCED):
            assert e.onset_ms == onset and e.utterance_ms == end - onset
            assert e.voiced_ms == seed_ms + FRAME * sum(voice[open_frame : i + 1])
            if k == EOU_END:
                assert end - onset >= need and not v
            else:
                assert end - onset >= cfg.max_utt_ms and (i == open_frame or end - FRAME - onset < cfg.max_utt_ms)
            break
        assert k == EOU_NONE, "ONSET inside an opened utterance"
        assert end - onset < cfg.max_utt_ms
        if end - onset >= need and i + 1 - quiet >= open_frame and not any(voice[i + 1 - quiet : i + 1]):
            raise AssertionError("silence after open() did not end the utterance")


def stretch_start(voice: list[bool], i: int, gap_ms: int) -> int:
    """The frame where the stretch holding voice frame ``i`` began: back over its run, then over
    every silence shorter than ``gap_ms`` (in frames x 20 ms) to the run before it."""
    s = i
    while s > 0 and voice[s - 1]:
        s -= 1
    while True:
        g = s
        while g > 0 and not voice[g - 1]:
            g -= 1
        if g == 0 or (s - g) * FRAME >= gap_ms:
            return s
        s = g - 1
        while s > 0 and voice[s - 1]:
            s -= 1


def counted_voice(voice: list[bool], first: int, i: int, grace_end: int) -> int:
    """Voice (ms) in frames first..i at or after grace_end (a frame straddling it counts in part)."""
    return sum(max(0, min(FRAME, (k + 1) * FRAME - grace_end)) for k in range(first, i + 1) if voice[k])


# words and the gaps between them, in frames: short enough that stretches form and break often
words = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12)), min_size=1, max_size=30)


def expand_words(lead: int, ws: list[tuple[int, int]]) -> list[bool]:
    return [False] * lead + [x for v, q in ws for x in [True] * v + [False] * q]


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, runs, st.integers(0, 100), st.integers(1, 150))
def test_barge_in_guarantees(cfg: TimingConfig, rs: list[tuple[bool, float, int]], arm_frame: int, play_frames: int) -> None:
    check_barge_in(cfg, [v for v, _ in expand(rs)], arm_frame, play_frames)


@settings(max_examples=400, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, st.integers(0, 20), words, st.integers(0, 30), st.integers(1, 300))
def test_barge_in_guarantees_on_words(
    cfg: TimingConfig, lead: int, ws: list[tuple[int, int]], arm_frame: int, play_frames: int
) -> None:
    check_barge_in(cfg, expand_words(lead, ws), arm_frame, play_frames)


def check_barge_in(cfg: TimingConfig, voice: list[bool], arm_frame: int, play_frames: int) -> None:
    """Plain decisions (no classifier): a frame's voice is its own. The rule, exactly: the first
    voice frame while armed where the voice of its stretch (runs apart by less than
    barge_in_gap_ms), counted from the grace window's end, reaches barge_in_min_voice_ms."""
    b = BargeInDetector(cfg)
    arm_t = FRAME * arm_frame
    stop_frame = arm_frame + play_frames
    need = frames_for(cfg.barge_in_min_voice_ms)
    grace_end = arm_t + cfg.barge_in_grace_ms
    fired_at = []
    for i, v in enumerate(voice):
        t = FRAME * i
        if i == arm_frame:
            b.arm(t)
        if i == stop_frame:
            b.disarm()
        if b.update(v, t):
            fired_at.append(i)
            end = t + FRAME
            o = b.onset_ms // FRAME
            assert arm_frame <= i < stop_frame, "fired while the agent was silent"
            assert v, "fired on a quiet frame"
            assert end >= grace_end + cfg.barge_in_min_voice_ms, "fired inside / too soon after the grace window"
            assert o == stretch_start(voice, i, cfg.barge_in_gap_ms), "onset_ms is not the stretch's start"
            assert voice[o] and (o == 0 or not voice[o - 1]), "onset_ms is not a run's start"
            assert "0" * frames_for(max(cfg.barge_in_gap_ms, FRAME)) not in "".join("1" if x else "0" for x in voice[o : i + 1]), (
                "the stretch spans a silence of barge_in_gap_ms"
            )
            assert counted_voice(voice, o, i, grace_end) >= cfg.barge_in_min_voice_ms, "fired with less voice than min_voice"
            if cfg.barge_in_gap_ms == 0:  # the continuous rule
                assert all(voice[i + 1 - need : i + 1]), "fired without min_voice of continuous voice"
    assert len(fired_at) <= 1, "fired twice for one arm"
    # completeness: the first frame where the rule holds is exactly where it fired, and a
    # stretch whose voice stays under min_voice never fires
    expected = None
    for i in range(arm_frame, min(stop_frame, len(voice))):
        if voice[i] and counted_voice(voice, stretch_start(voice, i, cfg.barge_in_gap_ms), i, grace_end) >= cfg.barge_in_min_voice_ms:
            expected = i
            break
    assert fired_at == ([] if expected is None else [expected])


@settings(max_examples=200, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, st.lists(st.sampled_from([0.0, 8.0, 20.0, 34.0, 36.0, 60.0, 500.0, 4000.0]), min_size=1, max_size=400))
def test_classifier_hysteresis_guarantees(cfg: TimingConfig, rms: list[float]) -> None:
    c = FrameClassifier(cfg)
    h = cfg.hysteresis_ms // FRAME
    cal = frames_for(cfg.calibration_ms)
    loud: list[bool] = []
    decisions: list[bool] = []
    for i, r in enumerate(rms):
        threshold = c.threshold
        floor_before, reseats_before, calibrated_before = c.noise_floor, c.reseats, c.calibrated
        d = c.update(r, FRAME * i)
        decisions.append(d)
        if calibrated_before and c.reseats == reseats_before and c.noise_floor != floor_before:
            # the floor moves only on a quiet frame decided silence, and toward that frame
            assert r <= threshold and not d, "the noise floor moved during voice"
            assert min(r, floor_before) <= c.noise_floor <= max(r, floor_before)
        if i < cal:
            assert not d and not c.calibrated, "a decision during calibration"
            loud.append(False)
            continue
        if i == cal:
            # calibration ended inside this update; the noise tracking after it cannot change
            # the loud/quiet reading (a quiet frame only moves the threshold away from itself)
            threshold = c.threshold
        loud.append(r > threshold)
        assert c.threshold >= cfg.threshold_floor
        if i >= cal + h - 1:
            window = loud[i + 1 - h : i + 1]
            if all(window):
                assert d, "h loud frames in a row and still silence"
            if not any(window):
                assert not d, "h quiet frames in a row and still voice"
    # every decided run but the last is at least hysteresis_ms long
    flips = [i for i in range(1, len(decisions)) if decisions[i] != decisions[i - 1]]
    for a, b in zip(flips, flips[1:]):
        assert b - a >= h


# --- classifier + detectors together: durations are real time --------------------------------

NOISE_RMS, SPEECH_RMS = 10.0, 3000.0  # threshold 35 after calibration: loud is unambiguous
loud_runs = st.lists(st.tuples(st.booleans(), st.integers(1, 40)), min_size=1, max_size=30)


def loud_frames(cfg: TimingConfig, rs: list[tuple[bool, int]]) -> list[bool]:
    """Calibration on noise, then the runs (loud / quiet, in frames); under 10 s of loud in
    all, so the noise re-seat never acts."""
    return [False] * frames_for(cfg.calibration_ms) + [v for v, n in rs for _ in range(n)]


def isolated_stretches(loud: list[bool], h: int, first: int) -> list[tuple[int, int]]:
    """(start, length) of loud stretches from frame `first` on with at least h quiet frames
    before them and after them (or the end of the input after them): what the hysteresis
    cannot merge with anything."""
    out, i = [], first
    while i < len(loud):
        if not loud[i]:
            i += 1
            continue
        j = i
        while j < len(loud) and loud[j]:
            j += 1
        before = i - first >= h and not any(loud[i - h : i])
        after = j == len(loud) or (j + h <= len(loud) and not any(loud[j : j + h]))
        if before and after:
            out.append((i, j - i))
        i = j
    return out


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, loud_runs, st.integers(0, 60), st.integers(1, 200), st.sampled_from([1.0, 0.3, 3.0]))
def test_barge_in_says_how_far_it_is_at_least(
    cfg: TimingConfig, rs: list[tuple[bool, int]], arm_after: int, play_frames: int, level: float
) -> None:
    """``frames_to_fire`` (the shell reads frames as they arrive only from there on): never a
    barge-in sooner than said, through the classifier, whatever the voice does after."""
    c, b = FrameClassifier(cfg), BargeInDetector(cfg)
    loud = loud_frames(cfg, rs)
    arm_frame = frames_for(cfg.calibration_ms) + arm_after
    said: list[tuple[int, int]] = []
    fired = 0
    for i, l in enumerate(loud):
        t = FRAME * i
        if i == arm_frame:
            b.arm(t)
            said.clear()
        if i == arm_frame + play_frames:
            b.disarm()
        if b.update(c.update(SPEECH_RMS * level if l else NOISE_RMS, t), t, c):
            fired += 1
            for j, k in said:
                assert i - j >= k, f"fired {i - j} frames after saying at least {k}"
        k = b.frames_to_fire()
        assert k >= 1
        if b.armed and not b.fired:
            said.append((i, k))
        else:
            assert k == NEVER_FRAMES
    assert fired <= 1


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs.map(lambda c: replace(c, barge_in_gap_ms=0)), loud_runs, st.integers(0, 60), st.integers(1, 200))
def test_barge_in_counts_real_voice_through_the_classifier(
    cfg: TimingConfig, rs: list[tuple[bool, int]], arm_after: int, play_frames: int
) -> None:
    """The continuous rule (barge_in_gap_ms = 0) through the classifier."""
    c, b = FrameClassifier(cfg), BargeInDetector(cfg)
    loud = loud_frames(cfg, rs)
    cal, h = frames_for(cfg.calibration_ms), cfg.hysteresis_ms // FRAME
    need = frames_for(cfg.barge_in_min_voice_ms)
    arm_frame = cal + arm_after
    stop_frame = arm_frame + play_frames
    grace_end = FRAME * arm_frame + cfg.barge_in_grace_ms
    fired: list[tuple[int, int]] = []
    for i, l in enumerate(loud):
        t = FRAME * i
        if i == arm_frame:
            b.arm(t)
        if i == stop_frame:
            b.disarm()
        if b.update(c.update(SPEECH_RMS if l else NOISE_RMS, t), t, c):
            fired.append((i, b.onset_ms // FRAME))
    assert len(fired) <= 1
    for i, o in fired:
        assert arm_frame <= i < stop_frame
        assert loud[i] and loud[o], "fired on a quiet frame / onset on a quiet frame"
        assert o == cal or not loud[o - 1], "onset_ms is not where the loud run began"
        gaps = "".join("1" if x else "0" for x in loud[o : i + 1])
        assert "0" * h not in gaps, "the run spans a pause the hysteresis does not bridge"
        assert (i + 1) * FRAME - max(o * FRAME, grace_end) >= cfg.barge_in_min_voice_ms, "fired early"
    for s, n in isolated_stretches(loud, h, cal):
        if n < need:
            assert not any(s <= i < s + n + h for i, _ in fired), "a click shorter than min_voice barged in"
        elif arm_frame <= s and s * FRAME >= grace_end and s + need - 1 < stop_frame and not any(
            i < s for i, _ in fired
        ):
            # the rule in real time: fires on the frame ending min_voice after the voice starts
            assert fired == [(s + need - 1, s)], "not exactly min_voice after the real onset"


def real_voice(loud: list[bool], cal: int, h: int) -> tuple[list[bool], list[bool]]:
    """The classifier's decisions, in a few lines: (reported, real). ``reported[i]``: the decision
    on frame i (a flip once h frames in a row disagree); ``real[i]``: whether frame i really was
    voice — each decided run moved back to where it began (a bridged dip belongs to its run)."""
    reported, real = [False] * len(loud), [False] * len(loud)
    state, since = False, -1
    for i in range(cal, len(loud)):
        if loud[i] != state:
            if since < 0:
                since = i
            if i + 1 - since >= h:
                state, since = loud[i], -1
                for k in range(i + 1 - h, i + 1):
                    real[k] = state
                reported[i] = state
                continue
        else:
            since = -1
        reported[i] = real[i] = state
    return reported, real


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, loud_runs, st.integers(0, 60), st.integers(1, 200))
def test_barge_in_counts_the_voice_of_a_stretch_through_the_classifier(
    cfg: TimingConfig, rs: list[tuple[bool, int]], arm_after: int, play_frames: int
) -> None:
    check_barge_in_through_the_classifier(cfg, loud_frames(cfg, rs), arm_after, play_frames)


@settings(max_examples=400, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, words, st.integers(0, 30), st.integers(1, 300))
def test_barge_in_counts_the_voice_of_words_through_the_classifier(
    cfg: TimingConfig, ws: list[tuple[int, int]], arm_after: int, play_frames: int
) -> None:
    check_barge_in_through_the_classifier(cfg, [False] * frames_for(cfg.calibration_ms) + expand_words(0, ws), arm_after, play_frames)


def check_barge_in_through_the_classifier(cfg: TimingConfig, loud: list[bool], arm_after: int, play_frames: int) -> None:
    """The rule in real time, exactly: fires on the first frame, while armed, that is loud and
    decided voice (the trigger frame is itself loud) where the real voice of its stretch — runs
    apart by silences shorter than barge_in_gap_ms, the silences not counted — counted from the
    grace window's end reaches barge_in_min_voice_ms; onset_ms = the stretch's real start. So
    a stretch with less voice never fires, and one fires exactly when its voice gets there
    (or, when the last piece is a new run, once the hysteresis has confirmed it)."""
    c, b = FrameClassifier(cfg), BargeInDetector(cfg)
    cal, h = frames_for(cfg.calibration_ms), cfg.hysteresis_ms // FRAME
    arm_frame = cal + arm_after
    stop_frame = arm_frame + play_frames
    grace_end = FRAME * arm_frame + cfg.barge_in_grace_ms
    fired: list[tuple[int, int]] = []
    for i, l in enumerate(loud):
        t = FRAME * i
        if i == arm_frame:
            b.arm(t)
        if i == stop_frame:
            b.disarm()
        if b.update(c.update(SPEECH_RMS if l else NOISE_RMS, t), t, c):
            fired.append((i, b.onset_ms // FRAME))
    if c.reseats:
        return  # 10 s of loud frames in a row: a noisier line, not voice (another rule)
    reported, real = real_voice(loud, cal, h)
    expected = []
    for i in range(arm_frame, min(stop_frame, len(loud))):
        if reported[i] and loud[i]:
            o = stretch_start(real, i, cfg.barge_in_gap_ms)
            if counted_voice(real, o, i, grace_end) >= cfg.barge_in_min_voice_ms:
                expected = [(i, o)]
                break
    assert fired == expected
    for i, o in fired:
        assert loud[i] and loud[o], "fired on a quiet frame / onset on a quiet frame"


@settings(max_examples=300, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, loud_runs)
def test_eou_counts_real_voice_and_silence_through_the_classifier(cfg: TimingConfig, rs: list[tuple[bool, int]]) -> None:
    c, e = FrameClassifier(cfg), EouDetector(cfg)
    loud = loud_frames(cfg, rs)
    cal, h = frames_for(cfg.calibration_ms), cfg.hysteresis_ms // FRAME
    events: list[tuple[int, int, int]] = []  # (frame, kind, onset frame)
    for i, l in enumerate(loud):
        r = SPEECH_RMS if l else NOISE_RMS
        k = e.update(c.update(r, FRAME * i), r, FRAME * i, c)
        if k != EOU_NONE:
            events.append((i, k, e.onset_ms // FRAME))
    in_utt_at: dict[int, bool] = {}
    onset = None
    for i, k, o in events:
        if k == EOU_ONSET:
            onset = o
            assert loud[i] and loud[o], "ONSET on a quiet frame / onset_ms on a quiet frame"
            assert (i + 1 - o) * FRAME >= cfg.min_voice_onset_ms, "ONSET on less than min_voice_onset of voice"
            assert "0" * h not in "".join("1" if x else "0" for x in loud[o : i + 1])
        elif k == EOU_END:
            assert not loud[i], "END on a loud frame"
            assert onset is not None and (i + 1 - onset) * FRAME >= cfg.min_utt_ms
        in_utt_at[i] = k == EOU_ONSET
    # a stretch is voice only if it outlasts the hysteresis too (min_voice_onset may be shorter)
    onset_frames = max(frames_for(cfg.min_voice_onset_ms), h)
    ends = [i for i, k, _ in events if k in (EOU_END, EOU_FORCED)]
    for s, n in isolated_stretches(loud, h, cal):
        idle = not any(i < s for i, k, _ in events) or (ends and ends[-1] < s and max(i for i, _, _ in events if i < s) in ends)
        if not idle:
            continue
        if n < onset_frames:
            assert not any(s <= i < s + n + h for i, _, _ in events), "a click started an utterance"
        elif n * FRAME < cfg.max_utt_ms:
            # ONSET exactly min_voice_onset (or the hysteresis) after the real start; then, with silence after the
            # stretch, END no later than eou_silence after its last loud frame (or MIN_UTT)
            got = [(i, k, o) for i, k, o in events if s <= i]
            assert got[0] == (s + onset_frames - 1, EOU_ONSET, s), "ONSET not in real time"
            quiet_after = loud[s + n : s + n + frames_for(cfg.eou_silence_ms) + frames_for(cfg.min_utt_ms)]
            due = max((s + n) * FRAME + cfg.eou_silence_ms, s * FRAME + cfg.min_utt_ms)
            if len(quiet_after) == frames_for(cfg.eou_silence_ms) + frames_for(cfg.min_utt_ms) and not any(quiet_after):
                assert got[1][1] == EOU_END and (got[1][0] + 1) * FRAME <= FRAME * frames_for(due), "EOU late"


# runs of (level, frames): quiet, the threshold's edge, speech, loud speech — a drop of 6-20 dB
# happens inside speech too
level_runs = st.lists(st.tuples(st.sampled_from([NOISE_RMS, 30.0, 60.0, 300.0, 1000.0, SPEECH_RMS]), st.integers(1, 40)),
                      min_size=1, max_size=40)


@settings(max_examples=400, deadline=None, derandomize=True)  # deterministic runs (CI)
@given(configs, level_runs, st.lists(st.integers(0, 400), max_size=4), st.booleans())
def test_eou_says_how_far_any_end_is_at_least(cfg: TimingConfig, rs: list[tuple[float, int]], holds: list[int],
                                              through_classifier: bool) -> None:
    """``frames_to_end`` (a call's reads may wait that long, less a margin: server.inbound):
    never an END or FORCED sooner than said, whatever the frames after — voice, silence, a
    sharp drop, the hold switched on and off, through the classifier or fed directly; outside
    an utterance too (one that begins and ends)."""
    c, e = FrameClassifier(cfg), EouDetector(cfg)
    levels = [NOISE_RMS] * frames_for(cfg.calibration_ms) + [r for r, n in rs for _ in range(n)]
    said: list[tuple[int, int]] = []
    for i, r in enumerate(levels):
        t = FRAME * i
        if i in holds:
            e.hold = e.in_utterance and not e.hold
        if through_classifier:
            k = e.update(c.update(r, t), r, t, c)
        else:
            k = e.update(r >= 300.0, r, t)
        if k in (EOU_END, EOU_FORCED):
            for j, n in said:
                assert i - j >= n, f"{'FORCED' if k == EOU_FORCED else 'END'} {i - j} frames after saying at least {n}"
            said.clear()
        n = e.frames_to_end()
        assert 1 <= n <= max(1, e.frames_to_forced())
        said.append((i, n))
