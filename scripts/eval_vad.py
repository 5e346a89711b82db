#!/usr/bin/env python3
"""Evaluate end-of-utterance and barge-in on real speech, the way the phone line delivers it.

Hebrew and English utterances are synthesised with espeak-ng (speech.espeak.render, 8 kHz),
scaled to telephone level (active-speech RMS 2000 ≈ -24 dBov), mixed with white or pink
noise at several SNRs, μ-law encoded as Twilio sends it and decoded back, cut into 20 ms
frames (energy over the whole recording with the Numba kernel, native.batch.frame_rms) and
fed to the native detectors with the default TimingConfig. The truth comes from the clean
rendering: a frame is speech when its clean RMS is within 20 dB of the active level.

EOU scenario: 1 s of noise (calibration + margin), the utterance, 2 s of noise.
  onset ok   the first ONSET's onset_ms is within [-100, +preroll_ms] of the true start: the
             ASR, handed audio from onset_ms - preroll_ms (300 ms), still hears the first
             syllable, and the onset was not set off by noise before the speech
  EOU ok     exactly one utterance; it ends by END (not FORCED), not before the true end,
             and within 700 ms of max(true end, onset + MIN_UTT)
  split      more than one utterance (an inner pause ended the turn early)
  latency    EOU time - true end of speech (median / p90 over the EOU-ok cases)
Barge-in scenario: the agent starts speaking at 1.0 s (arm); the caller starts at
  +0 / +100 / +300 / +800 ms (the first two inside the 200 ms grace window), with the
  utterances of at least 600 ms (one-word answers are left out of the positives).
  TP         it fired, not before the caller's true start; latency = fire - max(true start,
             end of grace window)
  FP         fired on noise alone or on clicks (80 ms and 150 ms bursts at speech level)
Frame F1: frame-level voice decisions vs the truth, ours (FrameClassifier) and webrtcvad
  (mode 2), on the EOU recordings after calibration. The last column feeds webrtcvad's
  decisions to the same EouDetector: how much of the EOU error is the energy VAD's.

Run: .venv/bin/python scripts/eval_vad.py            (full table, ~1 min)
     .venv/bin/python scripts/eval_vad.py --quick    (the small version the tests run)
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from native import batch, codec  # noqa: E402
from native.config import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, TimingConfig  # noqa: E402
from native.vad import EOU_END, EOU_FORCED, EOU_ONSET, BargeInDetector, EouDetector, FrameClassifier  # noqa: E402

SPEECH_RMS = 2000.0
TRUTH_DB = 20.0
LEAD_MS = 1000
TAIL_MS = 2000
ARM_MS = 1000
CALLER_OFFSETS_MS = (0, 100, 300, 800)
BARGE_MIN_SPEECH_MS = 600  # barge-in positives: utterances at least this long

UTTERANCES = {
    "he": [
        "כן",
        "לא, תודה",
        "אני מחפש דירה בתל אביב",
        "שלושה חדרים, עד שני מיליון שקל",
        "אפשר ביום שלישי בבוקר",
        "קוראים לי דני כהן",
        "בעוד חצי שנה בערך",
        "דירת גן ברמת גן או בגבעתיים",
    ],
    "en": [
        "yes",
        "no, thanks",
        "I am looking for an apartment in Tel Aviv",
        "three rooms, up to two million shekels",
        "Tuesday morning works for me",
        "my name is Danny Cohen",
        "in about six months",
        "a garden flat in Ramat Gan or Givatayim",
    ],
}


@dataclass
class Row:
    lang: str
    noise: str
    snr_db: float
    n: int = 0
    onset_ok: int = 0
    eou_ok: int = 0
    split: int = 0
    missed: int = 0
    latencies: list[int] = field(default_factory=list)
    barge_n: int = 0
    barge_tp: int = 0
    barge_latencies: list[int] = field(default_factory=list)
    neg_n: int = 0
    barge_fp: int = 0
    f1_ours: float = 0.0
    f1_webrtc: float | None = None
    eou_ok_webrtc: int = 0

    def pct(self, k: int, n: int) -> str:
        return f"{100 * k / n:5.1f}" if n else "   - "


@lru_cache(maxsize=None)
def clean_utterance(lang: str, text: str) -> np.ndarray:
    """espeak-ng rendering, scaled so that its speech frames have RMS SPEECH_RMS, as float64."""
    from speech.espeak import render

    x = np.frombuffer(render(text, "he-IL" if lang == "he" else "en-US"), dtype="<i2").astype(np.float64)
    x = x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES]
    rms = batch.frame_rms(x.astype(np.int16))
    active = rms > rms.max() / 10 ** (TRUTH_DB / 20)
    level = float(np.sqrt(np.mean(rms[active] ** 2)))
    return x * (SPEECH_RMS / level)


def make_noise(kind: str, n: int, rms: float, rng: np.random.Generator) -> np.ndarray:
    white = rng.normal(0.0, 1.0, n)
    if kind == "pink":  # 1/f power: shape the spectrum by 1/sqrt(f)
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
        f[0] = f[1]
        white = np.fft.irfft(spec / np.sqrt(f), n)
    return white * (rms / np.sqrt(np.mean(white**2)))


def phone_line(x: np.ndarray) -> np.ndarray:
    """Clip to int16 and pass through μ-law both ways, as the caller's audio reaches us."""
    pcm = np.clip(np.round(x), -32768, 32767).astype("<i2").tobytes()
    return np.frombuffer(codec.ulaw_to_pcm16(codec.pcm16_to_ulaw(pcm)), dtype=np.int16)


def truth_frames(clean: np.ndarray, start_sample: int, total_frames: int) -> np.ndarray:
    rms = batch.frame_rms(np.clip(clean, -32768, 32767).astype(np.int16))
    speech = rms > SPEECH_RMS / 10 ** (TRUTH_DB / 20)
    truth = np.zeros(total_frames, dtype=bool)
    first = start_sample // FRAME_SAMPLES
    truth[first : first + len(speech)] = speech[: total_frames - first]
    return truth


def run_eou(
    rms: np.ndarray, cfg: TimingConfig, voice: np.ndarray | None = None
) -> tuple[list[tuple[int, int, int]], list[bool]]:
    """EouDetector fed by our FrameClassifier, or by the given per-frame decisions (webrtcvad)."""
    c, e = FrameClassifier(cfg), EouDetector(cfg)
    events, decisions = [], []
    for i, r in enumerate(rms.tolist()):
        t = i * FRAME_MS
        v = c.update(r, t) if voice is None else bool(voice[i])
        decisions.append(v)
        k = e.update(v, r, t, c if voice is None else None)
        if k:
            events.append((t + FRAME_MS, k, e.onset_ms))
    return events, decisions


def eou_ok(events: list[tuple[int, int, int]], true_end: int, cfg: TimingConfig) -> int | None:
    """EOU latency if the recording made exactly one utterance that ended well, else None."""
    onsets = [ev for ev in events if ev[1] == EOU_ONSET]
    ends = [ev for ev in events if ev[1] in (EOU_END, EOU_FORCED)]
    if len(onsets) != 1 or not ends or ends[0][1] != EOU_END:
        return None
    t_eou, onset = ends[0][0], onsets[0][2]
    due = max(true_end, onset + cfg.min_utt_ms)
    return t_eou - true_end if true_end <= t_eou <= due + 700 else None


def run_barge(rms: np.ndarray, cfg: TimingConfig, arm_ms: int) -> tuple[int, int] | None:
    c, b = FrameClassifier(cfg), BargeInDetector(cfg)
    for i, r in enumerate(rms.tolist()):
        t = i * FRAME_MS
        if t == arm_ms:
            b.arm(t)
        if b.update(c.update(r, t), t, c):
            return t + FRAME_MS, b.onset_ms
    return None


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = float(np.sum(pred & truth))
    fp = float(np.sum(pred & ~truth))
    fn = float(np.sum(~pred & truth))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def webrtc_decisions(pcm: np.ndarray) -> np.ndarray | None:
    try:
        import webrtcvad
    except ImportError:
        return None
    vad = webrtcvad.Vad(2)
    b = pcm.astype("<i2").tobytes()
    return np.array([vad.is_speech(b[320 * i : 320 * i + 320], SAMPLE_RATE) for i in range(len(b) // 320)])


def evaluate_condition(lang: str, noise: str, snr_db: float, texts: list[str], cfg: TimingConfig, seed: int) -> Row:
    rng = np.random.default_rng(seed)
    row = Row(lang, noise, snr_db)
    noise_rms = SPEECH_RMS / 10 ** (snr_db / 20)
    cal_frames = cfg.calibration_ms // FRAME_MS
    preds, webrtc_preds, truths = [], [], []
    for text in texts:
        clean = clean_utterance(lang, text)
        # ---- EOU ---------------------------------------------------------------------------
        lead = LEAD_MS * SAMPLE_RATE // 1000
        n = lead + len(clean) + TAIL_MS * SAMPLE_RATE // 1000
        x = make_noise(noise, n, noise_rms, rng)
        x[lead : lead + len(clean)] += clean
        pcm = phone_line(x)
        rms = batch.frame_rms(pcm)
        truth = truth_frames(clean, lead, len(rms))
        true_on = int(np.argmax(truth)) * FRAME_MS
        true_end = (len(truth) - int(np.argmax(truth[::-1]))) * FRAME_MS
        events, decisions = run_eou(rms, cfg)
        onsets = [ev for ev in events if ev[1] == EOU_ONSET]
        ends = [ev for ev in events if ev[1] in (EOU_END, EOU_FORCED)]
        row.n += 1
        if not onsets:
            row.missed += 1
        else:
            if -100 <= onsets[0][2] - true_on <= cfg.preroll_ms:
                row.onset_ok += 1
            if len(onsets) > 1:
                row.split += 1
            latency = eou_ok(events, true_end, cfg)
            if latency is not None:
                row.eou_ok += 1
                row.latencies.append(latency)
        preds.append(np.array(decisions[cal_frames:]))
        truths.append(truth[cal_frames:])
        w = webrtc_decisions(pcm)
        if w is not None:
            webrtc_preds.append(w[cal_frames:])
            w = w.copy()
            w[:cal_frames] = False  # the same calibration period as ours
            if eou_ok(run_eou(rms, cfg, w)[0], true_end, cfg) is not None:
                row.eou_ok_webrtc += 1
        # ---- barge-in: caller starts at several offsets after the agent starts --------------
        if true_end - true_on < BARGE_MIN_SPEECH_MS:
            continue  # a lone "yes" is not talking over the agent (it is, or is not, by design)
        for off in CALLER_OFFSETS_MS:
            start = (ARM_MS + off) * SAMPLE_RATE // 1000
            n = start + len(clean) + SAMPLE_RATE
            x = make_noise(noise, n, noise_rms, rng)
            x[start : start + len(clean)] += clean
            rms = batch.frame_rms(phone_line(x))
            truth = truth_frames(clean, start, len(rms))
            caller_on = int(np.argmax(truth)) * FRAME_MS
            row.barge_n += 1
            fired = run_barge(rms, cfg, ARM_MS)
            if fired is not None and fired[0] > caller_on:
                row.barge_tp += 1
                row.barge_latencies.append(fired[0] - max(caller_on, ARM_MS + cfg.barge_in_grace_ms))
    # ---- barge-in negatives: noise alone, and clicks --------------------------------------------
    for click_ms in (0, 80, 150):
        n = 4 * SAMPLE_RATE
        x = make_noise(noise, n, noise_rms, rng)
        if click_ms:
            for at_ms in (1500, 2500):
                s = at_ms * SAMPLE_RATE // 1000
                x[s : s + click_ms * SAMPLE_RATE // 1000] += rng.normal(0, SPEECH_RMS * 1.5, click_ms * SAMPLE_RATE // 1000)
        row.neg_n += 1
        if run_barge(batch.frame_rms(phone_line(x)), cfg, ARM_MS) is not None:
            row.barge_fp += 1
    truth_all = np.concatenate(truths)
    row.f1_ours = f1(np.concatenate(preds), truth_all)
    if webrtc_preds:
        row.f1_webrtc = f1(np.concatenate(webrtc_preds), truth_all)
    return row


def evaluate(
    langs: tuple[str, ...] = ("he", "en"),
    noises: tuple[str, ...] = ("white", "pink"),
    snrs: tuple[float, ...] = (30, 20, 15, 10, 5),
    per_lang: int | None = None,
    cfg: TimingConfig | None = None,
    seed: int = 1,
) -> list[Row]:
    cfg = cfg or TimingConfig()
    rows = []
    for lang in langs:
        texts = UTTERANCES[lang][:per_lang] if per_lang else UTTERANCES[lang]
        for noise in noises:
            for snr in snrs:
                rows.append(evaluate_condition(lang, noise, snr, texts, cfg, seed))
    return rows


def pct(values: list[int], q: float) -> str:
    if not values:
        return "   -"
    return f"{int(np.percentile(values, q)):4d}"


def table(rows: list[Row]) -> str:
    head = (
        "| lang | noise | SNR dB | utts | onset ok % | EOU ok % | split % | missed % | EOU latency p50 / p90 ms "
        "| barge-in TP % | barge-in latency p50 ms | FP (noise, clicks) | frame F1 ours / webrtcvad "
        "| EOU ok % fed by webrtcvad |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r.lang} | {r.noise} | {r.snr_db:g} | {r.n} | {r.pct(r.onset_ok, r.n)} | {r.pct(r.eou_ok, r.n)} "
            f"| {r.pct(r.split, r.n)} | {r.pct(r.missed, r.n)} | {pct(r.latencies, 50)} / {pct(r.latencies, 90)} "
            f"| {r.pct(r.barge_tp, r.barge_n)} | {pct(r.barge_latencies, 50)} | {r.barge_fp}/{r.neg_n} "
            f"| {r.f1_ours:.2f} / {'-' if r.f1_webrtc is None else f'{r.f1_webrtc:.2f}'} "
            f"| {'-' if r.f1_webrtc is None else r.pct(r.eou_ok_webrtc, r.n)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 utterances per language, SNR 20 and 10, white noise")
    ap.add_argument("--snr", type=float, nargs="*", help="SNRs in dB (default 30 20 15 10 5)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--noise", nargs="*", choices=("white", "pink"), help="noise kinds (default both)")
    ap.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="TimingConfig overrides, e.g. --set sharp_drop_db=20 eou_drop_silence_ms=250")
    args = ap.parse_args(argv)
    overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = TimingConfig.from_env({f"AL_{k.upper()}": str(v) for k, v in overrides.items()})
    if args.quick:
        rows = evaluate(noises=tuple(args.noise or ("white",)), snrs=tuple(args.snr or (20, 10)), per_lang=3, cfg=cfg, seed=args.seed)
    else:
        rows = evaluate(noises=tuple(args.noise or ("white", "pink")), snrs=tuple(args.snr or (30, 20, 15, 10, 5)), cfg=cfg, seed=args.seed)
    if overrides:
        print("config overrides: " + ", ".join(f"{k}={v:g}" for k, v in overrides.items()) + "\n")
    print(table(rows))
    all_lat = [x for r in rows for x in r.latencies]
    if all_lat:
        print(f"\nEOU latency over all EOU-ok cases: median {statistics.median(all_lat):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
