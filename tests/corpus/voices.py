"""The caller's audio, rendered BEFORE a call runs (never inside the virtual-time run: the
autojump clock would move while a subprocess works).

Two kinds of voice for what the caller says:
- ``espeak``: espeak-ng renders (he / en), 22.05 kHz -> 8 kHz with soxr (speech.espeak.render),
  silence trimmed, words spread over the voiced span in proportion to their letters;
- ``synth``: a voiced tone (f0 with harmonics and a little vibrato) under a syllable-rate
  amplitude envelope (4-6 Hz), with word gaps; word times are exact.
Non-speech: a knock (~150 ms click + thud), a cough (~300 ms shaped noise burst) and the
hesitation hum "אממ" / "umm" (a low steady voiced hum, 300-600 ms).

Every clip is normalised so its voiced part has RMS ``SPEECH_RMS`` (speech) or a fixed level
(non-speech); line noise is set against ``SPEECH_RMS`` at a given SNR. Clips are cached for the
whole process (one pytest session renders each phrase once).
"""
from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from native.config import SAMPLE_RATE

SPEECH_RMS = 2000.0  # voiced RMS of caller speech (int16 units), ~ -24 dBFS: a normal phone level
VOICE_ON_RMS = 200.0  # 10 ms blocks above this are "the caller's voice is on" (clean track)
BLOCK = 80  # 10 ms
MERGE_GAP_S = 0.15  # gaps shorter than this inside a clip are still "talking" (between words)
CALLER_WPM = 160
CALLER_PITCH = 40


@dataclass(frozen=True, slots=True)
class Voice:
    """What to render: the spec is the cache key."""

    kind: str  # speech | knock | cough | hum
    text: str = ""  # the words said (speech) ; the hum's ASR text
    lang: str = "he"  # he | en
    voice: str = "espeak"  # espeak | synth (speech only)
    seed: int = 1
    ms: int = 0  # length of a hum (300-600); 0: the kind's default

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.voice}:{self.lang}:{self.seed}:{self.ms}:{self.text}"


@dataclass(frozen=True, slots=True)
class Clip:
    voice: Voice
    pcm: np.ndarray  # float32, int16 scale, 8 kHz
    words: tuple[tuple[str, float, float], ...]  # (word, start s, end s) within the clip
    voiced: tuple[tuple[float, float], ...]  # voice-on intervals within the clip (s)

    @property
    def duration(self) -> float:
        return len(self.pcm) / SAMPLE_RATE

    @property
    def voiced_end(self) -> float:
        return self.voiced[-1][1] if self.voiced else 0.0

    @property
    def voiced_start(self) -> float:
        return self.voiced[0][0] if self.voiced else 0.0


_CACHE: dict[str, Clip] = {}


def _rng(voice: Voice) -> np.random.Generator:
    digest = hashlib.sha1(voice.key.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


# -- analysis --------------------------------------------------------------------------------


def block_rms(pcm: np.ndarray) -> np.ndarray:
    n = len(pcm) // BLOCK
    if n == 0:
        return np.zeros(0)
    b = pcm[: n * BLOCK].astype(np.float64).reshape(n, BLOCK)
    return np.sqrt((b * b).mean(axis=1))


def intervals(mask: np.ndarray, block_s: float, merge_gap_s: float, min_run_s: float = 0.0) -> list[tuple[float, float]]:
    """Runs of True blocks as (start s, end s), gaps shorter than ``merge_gap_s`` closed."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return []
    out: list[list[float]] = []
    start = prev = int(idx[0])
    gap_blocks = merge_gap_s / block_s
    for i in idx[1:]:
        i = int(i)
        if i - prev - 1 >= gap_blocks:
            out.append([start * block_s, (prev + 1) * block_s])
            start = i
        prev = i
    out.append([start * block_s, (prev + 1) * block_s])
    return [(round(a, 4), round(b, 4)) for a, b in out if b - a >= min_run_s - 1e-9]


def voiced_intervals(pcm: np.ndarray, merge_gap_s: float = MERGE_GAP_S) -> list[tuple[float, float]]:
    return intervals(block_rms(pcm) > VOICE_ON_RMS, BLOCK / SAMPLE_RATE, merge_gap_s, 0.03)


def _voiced_rms(pcm: np.ndarray) -> float:
    r = block_rms(pcm)
    on = r > 0.1 * (r.max() if len(r) else 0)
    return float(np.sqrt((r[on] ** 2).mean())) if on.any() else 0.0


def _normalise(pcm: np.ndarray, rms: float) -> np.ndarray:
    cur = _voiced_rms(pcm)
    out = pcm.astype(np.float32) * (rms / cur if cur else 1.0)
    return np.clip(out, -32000, 32000).astype(np.float32)


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text.replace("…", " ").strip()) if w and re.search(r"\w", w)]


def spread_words(words: list[str], start: float, end: float) -> tuple[tuple[str, float, float], ...]:
    """Words over [start, end) in proportion to their letters (+1 for the gap after each)."""
    if not words:
        return ()
    weights = np.array([len(re.sub(r"\W", "", w)) + 1 for w in words], dtype=np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return tuple((w, round(float(a), 4), round(float(b), 4)) for w, a, b in zip(words, edges[:-1], edges[1:]))


# -- renderers ------------------------------------------------------------------------------


def _espeak(voice: Voice) -> Clip:
    from speech.espeak import render  # the project's own call of espeak-ng (+ soxr to 8 kHz)

    lang = "he-IL" if voice.lang == "he" else "en-US"
    raw = np.frombuffer(render(voice.text, lang, words_per_minute=CALLER_WPM, pitch=CALLER_PITCH), dtype="<i2")
    r = block_rms(raw)
    loud = np.flatnonzero(r > 100)
    if len(loud):
        raw = raw[int(loud[0]) * BLOCK : (int(loud[-1]) + 1) * BLOCK]
    pcm = _normalise(_agc(raw.astype(np.float32)), SPEECH_RMS)
    voiced = voiced_intervals(pcm)
    span = (voiced[0][0], voiced[-1][1]) if voiced else (0.0, len(pcm) / SAMPLE_RATE)
    return Clip(voice, pcm, spread_words(_words(voice.text), *span), tuple(voiced))


def _agc(pcm: np.ndarray, strength: float = 0.6, max_gain: float = 6.0) -> np.ndarray:
    """A phone's automatic gain control, roughly: quiet words come up toward the level of the
    loud ones (espeak-ng renders some Hebrew words 15-20 dB under the rest), silence stays."""
    r = block_rms(pcm)
    if not len(r) or r.max() <= 0:
        return pcm
    smooth = np.convolve(r, np.ones(9) / 9, mode="same")  # ~90 ms envelope
    target = np.sqrt((r[r > 0.1 * r.max()] ** 2).mean())
    gain = np.where(smooth > 60, np.clip((target / np.maximum(smooth, 1e-6)) ** strength, 1.0, max_gain), 1.0)
    per_sample = np.repeat(gain, BLOCK)
    per_sample = np.concatenate([per_sample, np.full(len(pcm) - len(per_sample), gain[-1])])
    kernel = np.ones(BLOCK) / BLOCK  # no gain steps at block edges
    return pcm * np.convolve(per_sample, kernel, mode="same").astype(np.float32)


def _syllables(word: str, lang: str) -> int:
    letters = re.sub(r"\W", "", word)
    if not letters:
        return 1
    if lang == "en":
        return max(1, len(re.findall(r"[aeiouy]+", letters.lower())))
    return max(1, round(len(letters) / 2.2))  # Hebrew: ~one syllable per two letters


def synth_speech(text: str, lang: str = "he", seed: int = 1) -> tuple[np.ndarray, tuple[tuple[str, float, float], ...]]:
    """Voiced tone under a syllable envelope; returns (float32 pcm, exact word spans)."""
    rng = np.random.default_rng(seed * 7919 + len(text))
    rate = rng.uniform(4.0, 6.0)  # syllables per second
    f0 = rng.uniform(105.0, 190.0)
    sr = SAMPLE_RATE
    parts: list[np.ndarray] = []
    spans: list[tuple[str, float, float]] = []
    t_total = 0.0
    phase = 0.0
    words = _words(text)
    for k, word in enumerate(words):
        syl = _syllables(word, lang)
        dur = syl / rate
        n = int(dur * sr)
        t = np.arange(n) / sr
        decl = 1.0 - 0.12 * (t_total + t) / max(1.0, len(words) * 0.4)  # slow declination
        inst = f0 * decl * (1.0 + 0.04 * np.sin(2 * np.pi * 5.5 * t + k))
        ph = phase + 2 * np.pi * np.cumsum(inst) / sr
        phase = float(ph[-1]) if n else phase
        wave = sum(np.sin(h * ph) / h for h in range(1, 9))
        frac = (t * rate) % 1.0
        env = 0.2 + 0.8 * np.sin(np.pi * frac) ** 2  # one bump per syllable
        edge = np.minimum(1.0, np.minimum(t, dur - t) / 0.012)  # 12 ms word attack / release
        parts.append((wave * env * np.clip(edge, 0, 1)).astype(np.float32))
        spans.append((word, round(t_total, 4), round(t_total + n / sr, 4)))
        t_total += n / sr
        if k + 1 < len(words):
            gap = int(rng.uniform(0.06, 0.11) * sr)
            parts.append(np.zeros(gap, dtype=np.float32))
            t_total += gap / sr
    pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return _normalise(pcm, SPEECH_RMS), tuple(spans)


def _synth(voice: Voice) -> Clip:
    pcm, words = synth_speech(voice.text, voice.lang, voice.seed)
    return Clip(voice, pcm, words, tuple(voiced_intervals(pcm)))


def knock_pcm(rng: np.random.Generator, ms: int = 150) -> np.ndarray:
    n = int(ms * SAMPLE_RATE / 1000)
    t = np.arange(n) / SAMPLE_RATE
    click = rng.normal(0, 1, n) * np.exp(-t / 0.006)
    thud = np.sin(2 * np.pi * rng.uniform(70, 110) * t) * np.exp(-t / 0.045)
    second = np.zeros(n)
    k = int(0.07 * SAMPLE_RATE)  # a second, weaker knock 70 ms later
    second[k:] = 0.5 * rng.normal(0, 1, n - k) * np.exp(-(t[: n - k]) / 0.005) + 0.5 * thud[: n - k]
    pcm = 14000 * (0.55 * click + 0.45 * thud) + 14000 * 0.6 * second
    return np.clip(pcm, -30000, 30000).astype(np.float32)


def cough_pcm(rng: np.random.Generator, ms: int = 300) -> np.ndarray:
    n = int(ms * SAMPLE_RATE / 1000)
    t = np.arange(n) / SAMPLE_RATE
    noise = rng.normal(0, 1, n + 8)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")[:n]  # a little low-passed: breathy
    env = np.minimum(1.0, t / 0.015) * np.exp(-np.maximum(0, t - 0.04) / 0.09)
    voiced = 0.3 * np.sin(2 * np.pi * 180 * t) * env
    pcm = (noise / (noise.std() or 1) * env + voiced)
    return _normalise(pcm, 3000.0)


def hum_pcm(rng: np.random.Generator, ms: int = 450) -> np.ndarray:
    n = int(ms * SAMPLE_RATE / 1000)
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.uniform(95, 125)
    ph = 2 * np.pi * f0 * t
    wave = np.sin(ph) + 0.5 * np.sin(2 * ph) + 0.2 * np.sin(3 * ph)  # nasal: energy low
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03)
    return _normalise(wave * fade, 0.6 * SPEECH_RMS)


def _nonspeech(voice: Voice) -> Clip:
    rng = _rng(voice)
    if voice.kind == "knock":
        pcm = knock_pcm(rng)
    elif voice.kind == "cough":
        pcm = cough_pcm(rng)
    elif voice.kind == "hum":
        pcm = hum_pcm(rng, voice.ms or 450)
    else:
        raise ValueError(voice.kind)
    voiced = tuple(voiced_intervals(pcm))
    words: tuple[tuple[str, float, float], ...] = ()
    if voice.kind == "hum" and voice.text:  # the ASR hears "אממ" / "umm"
        words = ((voice.text, 0.0, len(pcm) / SAMPLE_RATE),)
    return Clip(voice, pcm, words, voiced)


def render(voice: Voice) -> Clip:
    clip = _CACHE.get(voice.key)
    if clip is None:
        if voice.kind == "speech":
            clip = _espeak(voice) if voice.voice == "espeak" else _synth(voice)
        else:
            clip = _nonspeech(voice)
        _CACHE[voice.key] = clip
    return clip


def prerender(voices: Iterable[Voice], workers: int = 8) -> dict[str, Clip]:
    """Render everything a set of scenarios needs (espeak-ng in parallel threads)."""
    todo = {v.key: v for v in voices if v.key not in _CACHE}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for clip in pool.map(render, todo.values()):
            _CACHE[clip.voice.key] = clip
    return dict(_CACHE)


# -- the line ---------------------------------------------------------------------------------


def noise_rms_for(snr_db: float | None) -> float:
    return 0.0 if snr_db is None else SPEECH_RMS / 10 ** (snr_db / 20.0)


def line_noise(snr_db: float | None, seconds: float = 20.0, seed: int = 3) -> np.ndarray:
    """Phone-line noise (slightly coloured Gaussian hiss) at ``snr_db`` below SPEECH_RMS; the
    line loops it. Never exactly zero, like a real line (at least RMS 4)."""
    rms = max(4.0, noise_rms_for(snr_db))
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    white = rng.normal(0, 1, n + 2)
    hiss = (white[2:] + 0.6 * white[1:-1] + 0.2 * white[:-2])  # a bit of low-frequency weight
    hiss = hiss / hiss.std() * rms
    return hiss.astype(np.float32)
