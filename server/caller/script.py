"""Caller scripts: one step per line; a line starting with ``#`` is a comment.

    wait_agent [quiet_ms] [timeout_s]   until the agent has spoken and then gone quiet
    say <lang> <text>                   speak (espeak-ng), e.g. ``say en-US I live in Haifa``
    wav <path>                          speak a WAV file (any rate, mono or first channel)
    silence <ms>                        stay quiet
    noise <rms> <ms>                    white noise at that RMS (int16 units)
    line_noise <rms>                    from here on, hiss under everything the caller sends
    barge <ms> <lang> <text>            talk over the agent <ms> after its audio starts
    hangup                              send `stop` and close
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Union


@dataclass(frozen=True, slots=True)
class WaitAgent:
    quiet_ms: int = 900
    timeout_s: float = 25.0


@dataclass(frozen=True, slots=True)
class Say:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Wav:
    path: str


@dataclass(frozen=True, slots=True)
class Silence:
    ms: int


@dataclass(frozen=True, slots=True)
class Noise:
    rms: float
    ms: int


@dataclass(frozen=True, slots=True)
class Barge:
    after_ms: int
    language: str
    text: str
    timeout_s: float = 25.0


@dataclass(frozen=True, slots=True)
class LineNoise:
    rms: float


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Step = Union[WaitAgent, Say, Wav, Silence, Noise, Barge, LineNoise, Hangup]


class ScriptError(ValueError):
    pass


def parse_script(text: str, base_dir: Path | None = None) -> list[Step]:
    steps: list[Step] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()  # no inline comments: a text may contain '#'
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        try:
            steps.append(_step(word, rest, base_dir))
        except (ValueError, IndexError) as exc:
            raise ScriptError(f"line {lineno}: {raw.strip()!r}: {exc}") from None
    return steps


def _step(word: str, rest: str, base_dir: Path | None) -> Step:
    args = rest.split()
    if word == "wait_agent":
        return WaitAgent(*( [int(args[0])] if args else []), *([float(args[1])] if len(args) > 1 else []))
    if word == "say":
        lang, _, text = rest.partition(" ")
        if not text.strip():
            raise ValueError("say needs a language and a text")
        return Say(lang, text.strip())
    if word == "wav":
        path = Path(shlex.split(rest)[0])
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return Wav(str(path))
    if word == "silence":
        return Silence(_positive(int(args[0])))
    if word == "noise":
        return Noise(float(args[0]), _positive(int(args[1])))
    if word == "barge":
        after, lang, text = rest.split(" ", 2)
        return Barge(int(after), lang, text.strip())
    if word == "line_noise":
        rms = float(args[0])
        if rms < 0:
            raise ValueError("must be >= 0")
        return LineNoise(rms)
    if word == "hangup":
        return Hangup()
    raise ValueError(f"unknown step {word!r}")


def _positive(value: int) -> int:
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def load_script(path: str | Path) -> list[Step]:
    path = Path(path)
    return parse_script(path.read_text(encoding="utf-8"), path.parent)
