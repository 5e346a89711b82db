"""Which brain a call gets: BRAIN=auto|openai|rules (auto: openai when OPENAI_API_KEY is set)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Mapping

from dialog.base import Brain

BRAINS = ("auto", "openai", "rules")
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


@dataclass(frozen=True, slots=True)
class BrainChoice:
    new_brain: Callable[[str, str, dt.datetime], Brain]  # (language, caller_phone, now) -> Brain
    name: str  # "openai" | "rules", for the startup line and /version
    model: str | None = None


def select_brain(env: Mapping[str, str]) -> BrainChoice:
    """Decide once at startup; an unknown BRAIN or BRAIN=openai without a key is a startup error."""
    from native.config import ConfigError

    wanted = (env.get("BRAIN") or "auto").strip().lower()
    if wanted not in BRAINS:
        raise ConfigError(f"BRAIN={wanted!r} is not one of {', '.join(BRAINS)}")
    key = (env.get("OPENAI_API_KEY") or "").strip()
    if wanted == "openai" and not key:
        raise ConfigError("BRAIN=openai needs OPENAI_API_KEY")
    if wanted == "rules" or not key:
        from dialog.rules import RuleBrain

        return BrainChoice(new_brain=RuleBrain, name="rules")

    from dialog.openai_brain import OpenAIBrain, OpenAIConfig, make_client

    config = OpenAIConfig(
        api_key=key,
        base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
        model=(env.get("OPENAI_MODEL") or "").strip() or DEFAULT_OPENAI_MODEL,
    )

    # One client for the process, made now: the SDK's import and a client's construction block
    # the event loop (~0.9 s the first time, ~30 ms each), which no call's audio may wait for.
    client = make_client(config)

    def new_brain(language: str, caller_phone: str, now: dt.datetime) -> Brain:
        return OpenAIBrain(config, language, caller_phone, now, client=client)

    return BrainChoice(new_brain=new_brain, name="openai", model=config.model)
