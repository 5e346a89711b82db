"""All timing constants of turn-taking in one object, with the user's allowed ranges.

The ranges are the user's brief (mission.md item 2); a value outside its range is a startup
error, never silently clamped. Every field can be overridden by an env var named
``AL_<FIELD>`` in upper case (e.g. ``AL_BARGE_IN_MIN_VOICE_MS=190``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Mapping

FRAME_MS = 20
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
FRAME_ULAW_BYTES = 160
FRAME_PCM_BYTES = 320
SAMPLE_RATE = 8000


class ConfigError(ValueError):
    """A configuration value is outside the range the user allowed."""


def _ranged(default: float, lo: float, hi: float, doc: str) -> float:
    return field(default=default, metadata={"range": (lo, hi), "doc": doc})


@dataclass(frozen=True, slots=True)
class TimingConfig:
    # -- energy / VAD -------------------------------------------------------------------------
    calibration_ms: int = _ranged(400, 300, 500, "noise calibration window at call start")
    threshold_floor: float = _ranged(35.0, 35.0, 35.0, "minimum voice threshold (RMS of int16)")
    noise_gain: float = _ranged(2.2, 2.2, 2.2, "threshold = max(floor, noise*gain + offset)")
    noise_offset: float = _ranged(8.0, 8.0, 8.0, "threshold = max(floor, noise*gain + offset)")
    hysteresis_ms: int = _ranged(60, 40, 80, "voice/silence hysteresis")
    # -- end of utterance ---------------------------------------------------------------------
    eou_silence_ms: int = _ranged(400, 350, 500, "continuous silence that ends an utterance")
    eou_drop_silence_ms: int = _ranged(200, 150, 250, "silence after a sharp energy drop that ends it")
    sharp_drop_db: float = _ranged(12.0, 6.0, 30.0, "energy fall (dB) that counts as a sharp drop")
    sharp_drop_window_ms: int = _ranged(60, 20, 100, "window in which the fall must happen")
    min_utt_ms: int = _ranged(1000, 900, 1200, "earliest EOU after the utterance began")
    max_utt_ms: int = _ranged(4500, 4000, 5000, "utterance length that forces EOU")
    min_voice_onset_ms: int = _ranged(100, 60, 160, "voice shorter than this never starts an utterance")
    eou_hold_silence_ms: int = _ranged(
        500, 400, 800, "silence that ends an utterance whose words stop mid-phrase (no sharp-drop end then)"
    )
    # -- echo (speakerphones: the agent's own voice comes back in the caller's audio) ----------
    echo_min_delay_ms: int = _ranged(60, 0, 200, "shortest delay of the agent's echo in the caller's audio")
    echo_max_delay_ms: int = _ranged(250, 100, 500, "longest delay of the agent's echo in the caller's audio")
    echo_return_db: float = _ranged(
        -15.0, -40.0, -6.0, "loudest echo expected, relative to the agent's audio (dB); each call starts there and learns its line's"
    )
    echo_margin_db: float = _ranged(6.0, 0.0, 20.0, "caller audio must exceed the expected echo by this to count as voice")
    # -- barge-in -----------------------------------------------------------------------------
    barge_in_min_voice_ms: int = _ranged(200, 180, 220, "caller voice (over a stretch: barge_in_gap_ms) that interrupts TTS")
    barge_in_grace_ms: int = _ranged(200, 150, 250, "no barge-in this soon after TTS starts")
    barge_in_gap_ms: int = _ranged(
        120, 0, 200, "caller voice runs closer than this are one stretch: the barge-in counts their voice together (0: continuous voice only)"
    )
    # -- resolving a turn (server/turn.py) ----------------------------------------------------
    yield_window_ms: int = _ranged(
        120, 0, 200, "caller voice starting this soon after the agent's first audible frame: the agent yields at once"
    )
    interruption_silence_ms: int = _ranged(
        120, 100, 400, "silence that ends an interruption being judged (MIN_UTT does not apply to it)"
    )
    resume_max_voiced_ms: int = _ranged(
        1200, 400, 2000, "an interruption with more voice than this is a real turn, whatever its words"
    )
    noise_max_voiced_ms: int = _ranged(
        250, 100, 500, "an utterance with this little voice and no confident words gets no reply"
    )
    clarify_min_voiced_ms: int = _ranged(
        700, 400, 1500, "an utterance with this much voice but no words gets the clarify line, not silence"
    )
    turn_resolve_ms: int = _ranged(2000, 1000, 3000, "an open utterance is resolved at the latest this long after voice ended")
    goodbye_linger_ms: int = _ranged(1000, 500, 3000, "after the goodbye played: hang up once the caller is quiet this long")
    # -- outbound / keepalive -----------------------------------------------------------------
    pacer_lead_ms: int = _ranged(100, 40, 400, "audio kept queued at Twilio ahead of playback")
    tail_silence_ms: int = _ranged(200, 100, 400, "silence after the last TTS frame, before the mark")
    mark_timeout_ms: int = _ranged(1500, 500, 5000, "back to LISTENING if the mark echo never comes")
    heartbeat_ms: int = _ranged(17000, 15000, 20000, "keepalive mark while no media goes out")
    idle_guard_ms: int = _ranged(60000, 30000, 120000, "no outbound media this long -> also send silence")
    idle_silence_ms: int = _ranged(200, 100, 400, "silence sent by the idle guard")
    preroll_ms: int = _ranged(300, 200, 600, "caller audio kept before voice onset for the ASR")

    def __post_init__(self) -> None:
        for f in fields(self):
            lo, hi = f.metadata["range"]
            value = getattr(self, f.name)
            if not lo <= value <= hi:
                raise ConfigError(
                    f"{f.name}={value} is outside its allowed range {lo}..{hi} ({f.metadata['doc']})"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "TimingConfig":
        env = os.environ if env is None else env
        values: dict[str, float] = {}
        for f in fields(cls):
            raw = env.get(f"AL_{f.name.upper()}")
            if raw is None:
                continue
            try:
                values[f.name] = type(f.default)(float(raw)) if isinstance(f.default, int) else float(raw)
            except ValueError as exc:
                raise ConfigError(f"AL_{f.name.upper()}={raw!r} is not a number") from exc
        return cls(**values)

    @classmethod
    def describe(cls) -> list[tuple[str, float, tuple[float, float], str]]:
        """(name, default, range, doc) rows, for the README and `agentlocator config`."""
        return [(f.name, f.default, f.metadata["range"], f.metadata["doc"]) for f in fields(cls)]
