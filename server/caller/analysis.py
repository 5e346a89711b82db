"""The call measured from the caller's side (pure: tracks and event lists in, figures out).

- turn latency: end of the caller's speech -> first agent audio heard (this includes the
  server's end-of-utterance wait: it is what the caller lives through);
- halt time: caller voice onset during agent speech -> agent audio stops at the caller;
- trigger -> clear: voice onset -> `clear` received;
- keepalive intervals: gaps before marks that arrive with no media since the last message;
- longest server silence: the longest stretch with no message at all from the server.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from native.config import SAMPLE_RATE
from server.caller.call import AUDIBLE_RMS, BLOCK, SimulatedCall

HALT_QUIET_S = 0.4  # agent audio counts as stopped once it stays quiet this long


def _audible_blocks(heard: np.ndarray, end_s: float) -> np.ndarray:
    n = int(end_s * SAMPLE_RATE) // BLOCK
    data = heard[: n * BLOCK]
    if len(data) < n * BLOCK:
        data = np.concatenate([data, np.zeros(n * BLOCK - len(data), dtype=np.int16)])
    blocks = data.astype(np.float64).reshape(n, BLOCK) if n else np.zeros((0, BLOCK))
    return np.sqrt((blocks**2).mean(axis=1)) > AUDIBLE_RMS if n else np.zeros(0, dtype=bool)


EDGE_LEVEL = 100  # |sample| above this marks the exact first / last sample of agent audio


def _first_loud_sample(heard: np.ndarray, block: int) -> float:
    seg = heard[block * BLOCK : (block + 1) * BLOCK]
    idx = np.flatnonzero(np.abs(seg.astype(np.int32)) > EDGE_LEVEL)
    return (block * BLOCK + (int(idx[0]) if len(idx) else 0)) / SAMPLE_RATE


def _last_loud_sample_end(heard: np.ndarray, block: int) -> float:
    seg = heard[block * BLOCK : (block + 1) * BLOCK]
    idx = np.flatnonzero(np.abs(seg.astype(np.int32)) > EDGE_LEVEL)
    return (block * BLOCK + (int(idx[-1]) + 1 if len(idx) else BLOCK)) / SAMPLE_RATE


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(arr, 50)), 1),
        "p95": round(float(np.percentile(arr, 95)), 1),
        "p99": round(float(np.percentile(arr, 99)), 1),
        "max": round(float(arr.max()), 1),
    }


@dataclass(slots=True)
class CallerFigures:
    turn_latency_ms: list[float] = field(default_factory=list)
    unanswered_turns: int = 0
    halt_ms: list[float] = field(default_factory=list)
    halt_spans: list[tuple[float, float]] = field(default_factory=list)  # (onset s, stop s), for the plot
    trigger_to_clear_ms: list[float] = field(default_factory=list)
    barge_ins: int = 0
    barge_ins_not_halted: int = 0
    keepalive_intervals_s: list[float] = field(default_factory=list)
    longest_server_silence_s: float = 0.0
    agent_spans: list[tuple[float, float]] = field(default_factory=list)
    media_jitter_ms: list[float] = field(default_factory=list)  # |arrival interval - 20 ms|, steady state

    def summary(self) -> dict[str, Any]:
        return {
            "turn_latency_ms": percentiles(self.turn_latency_ms) | {"values": [round(v, 1) for v in self.turn_latency_ms]},
            "unanswered_turns": self.unanswered_turns,
            "halt_ms": percentiles(self.halt_ms) | {"values": [round(v, 1) for v in self.halt_ms]},
            "trigger_to_clear_ms": percentiles(self.trigger_to_clear_ms),
            "barge_ins": self.barge_ins,
            "barge_ins_not_halted": self.barge_ins_not_halted,
            "keepalive_intervals_s": [round(v, 2) for v in self.keepalive_intervals_s],
            "longest_server_silence_s": round(self.longest_server_silence_s, 2),
            "media_jitter_ms": percentiles(self.media_jitter_ms),
        }


def _spans(audible: np.ndarray, merge_gap_blocks: int) -> list[tuple[float, float]]:
    spans: list[tuple[float, float]] = []
    idx = np.flatnonzero(audible)
    if len(idx) == 0:
        return spans
    start = prev = int(idx[0])
    for i in idx[1:]:
        i = int(i)
        if i - prev > merge_gap_blocks:
            spans.append((start * BLOCK / SAMPLE_RATE, (prev + 1) * BLOCK / SAMPLE_RATE))
            start = i
        prev = i
    spans.append((start * BLOCK / SAMPLE_RATE, (prev + 1) * BLOCK / SAMPLE_RATE))
    return spans


def media_jitter_ms(arrivals: list[float], frame_s: float = 0.02, burst_frames: int = 8) -> list[float]:
    """How far each media arrival interval is from 20 ms, in steady state.

    A reply starts with a burst (the pacer fills its lead at Twilio at once), so the first
    ``burst_frames`` of each run are skipped; a gap over 100 ms starts a new run.
    """
    out: list[float] = []
    run = 0
    for prev, cur in zip(arrivals, arrivals[1:]):
        gap = cur - prev
        if gap > 0.1:
            run = 0
            continue
        run += 1
        if run > burst_frames:
            out.append(abs(gap - frame_s) * 1000)
    return out


def analyse(call: SimulatedCall) -> CallerFigures:
    end = max(call.ended_at, 0.0)
    audible = _audible_blocks(call.heard.data, end + HALT_QUIET_S)
    block_s = BLOCK / SAMPLE_RATE
    quiet_blocks = int(round(HALT_QUIET_S / block_s))
    figures = CallerFigures(agent_spans=_spans(audible, quiet_blocks))
    utts = sorted(call.utterances, key=lambda u: u.onset)

    for i, utt in enumerate(utts):
        if utt.barge:
            continue
        window_end = utts[i + 1].onset if i + 1 < len(utts) else end
        lo, hi = int(np.ceil(utt.end / block_s)), int(window_end / block_s)
        hits = np.flatnonzero(audible[lo:hi])
        if len(hits):
            first = _first_loud_sample(call.heard.data, lo + int(hits[0]))
            figures.turn_latency_ms.append((first - utt.end) * 1000)
        else:
            figures.unanswered_turns += 1

    for utt in utts:
        if not utt.barge:
            continue
        onset_block = int(utt.onset / block_s)
        # Was the agent audible just before the caller started talking over it?
        if not audible[max(0, onset_block - 30) : onset_block + 1].any():
            continue
        figures.barge_ins += 1
        stop = None
        for b in range(onset_block, len(audible)):
            if not audible[b : b + quiet_blocks].any():
                # to the sample: where the last audible block's sound really ends
                stop = _last_loud_sample_end(call.heard.data, b - 1) if b > onset_block else b * block_s
                break
        if stop is None or stop - utt.onset > 2.0:
            figures.barge_ins_not_halted += 1
        if stop is not None:
            figures.halt_ms.append(max(0.0, (stop - utt.onset) * 1000))
            figures.halt_spans.append((utt.onset, max(stop, utt.onset)))
        clears = [t for t, _ in call.clears if t >= utt.onset]
        if clears and clears[0] - utt.onset < 5.0:
            figures.trigger_to_clear_ms.append((clears[0] - utt.onset) * 1000)

    figures.media_jitter_ms = media_jitter_ms([rx.t for rx in call.rx if rx.kind == "media"])

    prev_t = 0.0
    prev_kind = "start"
    longest = 0.0
    for rx in call.rx:
        gap = rx.t - prev_t
        longest = max(longest, gap)
        if rx.kind == "mark" and gap > 1.0 and prev_kind in ("media", "mark", "start"):
            figures.keepalive_intervals_s.append(gap)
        prev_t, prev_kind = rx.t, rx.kind
    figures.longest_server_silence_s = max(longest, end - prev_t)
    return figures
