"""What a simulated call leaves behind: a JSON summary, a stereo WAV and a timeline PNG."""
from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from native.config import SAMPLE_RATE
from server.caller.analysis import CallerFigures
from server.caller.call import SimulatedCall


def summary(call: SimulatedCall, figures: CallerFigures) -> dict[str, Any]:
    kinds = [rx.kind for rx in call.rx]
    return {
        "call_sid": call.ids.call_sid,
        "duration_s": round(call.duration, 2),
        "close": {"code": call.close_code, "reason": call.close_reason},
        "frames_sent": call.frames_sent,
        "received": {k: kinds.count(k) for k in ("media", "mark", "clear", "other")},
        "marks_echoed": len(call.marks_echoed),
        "clears": [{"t": round(t, 3), "dropped_ms": round(d, 1)} for t, d in call.clears],
        "utterances": [
            {"text": u.text, "onset_s": round(u.onset, 3), "end_s": round(u.end, 3), "barge": u.barge}
            for u in call.utterances
        ],
        "protocol_errors": list(call.errors),
        "script_problems": list(call.problems),
        **figures.summary(),
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_stereo_wav(path: Path, call: SimulatedCall) -> None:
    """Left: the caller's voice as sent. Right: the agent as heard at the caller (after clears)."""
    n = int((call.duration + 0.5) * SAMPLE_RATE)
    left = np.zeros(n, dtype=np.int16)
    right = np.zeros(n, dtype=np.int16)
    c, h = call.caller.data[:n], call.heard.data[:n]
    left[: len(c)] = c
    right[: len(h)] = h
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(np.column_stack([left, right]).astype("<i2").tobytes())


def _energy_db(samples: np.ndarray, block: int = 160) -> tuple[np.ndarray, np.ndarray]:
    n = len(samples) // block
    if n == 0:
        return np.zeros(0), np.zeros(0)
    blocks = samples[: n * block].astype(np.float64).reshape(n, block)
    rms = np.sqrt((blocks**2).mean(axis=1))
    return np.arange(n) * block / SAMPLE_RATE, 20 * np.log10(np.maximum(rms, 1.0))


STATE_COLORS = {"LISTENING": "#d9f0d3", "PROCESSING": "#fee391", "SPEAKING": "#c6dbef"}


def write_timeline_png(
    path: Path,
    call: SimulatedCall,
    figures: CallerFigures,
    states: Iterable[tuple[float, str]] = (),
) -> None:
    """Both voices (energy), the server's state spans (if its log was available), marks,
    clears and barge-ins on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(call.duration, 0.1)
    n = int(end * SAMPLE_RATE)
    fig, (ax_c, ax_a, ax_s) = plt.subplots(
        3, 1, figsize=(max(10, min(40, end / 3)), 6.5), sharex=True,
        gridspec_kw={"height_ratios": [3, 3, 1]},
    )
    for ax, track, label, color in (
        (ax_c, call.caller.data[:n], "caller (sent)", "#1b7837"),
        (ax_a, call.heard.data[:n], "agent (as heard)", "#2166ac"),
    ):
        t, db = _energy_db(track)
        ax.fill_between(t, 0, db, color=color, alpha=0.7, linewidth=0)
        ax.set_ylabel(f"{label}\ndB RMS")
        ax.set_ylim(0, 95)
    for utt in call.utterances:
        ax_c.axvline(utt.onset, color="#762a83" if utt.barge else "#999999", lw=0.8, ls="--")
        if utt.barge:
            ax_c.annotate("barge-in", (utt.onset, 88), fontsize=7, color="#762a83")
    for t, _ in call.marks_echoed:
        ax_a.axvline(t, color="#f46d43", lw=0.6, alpha=0.8)
    for t, _ in call.clears:
        ax_a.axvline(t, color="#d73027", lw=1.5)
        ax_a.annotate("clear", (t, 88), fontsize=7, color="#d73027")
    for onset, stop in figures.halt_spans:  # caller talks over the agent until it goes quiet
        ax_a.axvspan(onset, stop, color="#d73027", alpha=0.15)
    states = list(states)
    for (t0, state), nxt in zip(states, states[1:] + [(end, "")]):
        ax_s.axvspan(t0, nxt[0], color=STATE_COLORS.get(state, "#eeeeee"), lw=0)
        if nxt[0] - t0 > end / 60:
            ax_s.text(t0 + 0.05, 0.35, state[:4], fontsize=6)
    ax_s.set_yticks([])
    ax_s.set_ylabel("server\nstate")
    ax_s.set_xlabel("seconds since stream start (marks: orange lines, clear: red)")
    ax_s.set_xlim(0, end)
    fig.suptitle(
        f"simulated call {call.ids.call_sid}: {len(call.utterances)} caller utterances, "
        f"{figures.barge_ins} barge-ins, {len(call.marks_echoed)} marks"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
