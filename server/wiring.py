"""The one place that picks the providers, the store and the background tasks for the app.

Everything from the other packages (speech/, dialog/, leads/, the call session) is imported
here, lazily, so the app module itself stays importable and tests can hand the app a
:class:`Wiring` of their own (fake fast providers) without touching the environment.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Awaitable, Callable

from leads.base import CallRecorder, NullRecorder
from server.settings import Settings
from server.transport import Transport

RunCall = Callable[[Transport, Any], Awaitable[Any]]
Background = Callable[[], Awaitable[None]]
WebhookHandler = Callable[[str, dict[str, str]], Awaitable[None]]


@dataclass(slots=True)
class Wiring:
    """What the app needs to serve calls: the session entry point and its dependencies."""

    run_call: RunCall
    call_deps: Any  # server.session.CallDeps (built per app; it holds per-call factories)
    providers: dict[str, str]  # {"asr": ..., "tts": ..., "brain": ...} for STARTUP and /version
    recorder: CallRecorder
    background: list[Background] = field(default_factory=list)  # run in the app's nursery
    blueprints: list[Any] = field(default_factory=list)  # e.g. the dashboard
    webhook_handlers: list[WebhookHandler] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once at startup
    warm_lines: list[str] = field(default_factory=list)  # the synthesizer caches these at startup
    speech: dict[str, Any] = field(default_factory=dict)  # speech's describe(): fallbacks and why


def fixed_lines(language: str) -> list[str]:
    """The brain's fixed lines for ``language``, exactly as the synthesizer is asked for them:
    the opening, the clarify line, the goodbyes that carry no name or date (whole, as the
    OpenAI brain speaks them, and sentence by sentence, as the rule brain does) and the
    holding line. Read from dialog's phrase table: dialog has no accessor for these yet."""
    from dialog.base import CLARIFY_EN, CLARIFY_HE
    from dialog.guardrails import sentences
    from dialog.phrases import is_hebrew, table

    hebrew = is_hebrew(language)
    say = table(hebrew)
    lines = [say["opening"], CLARIFY_HE if hebrew else CLARIFY_EN]
    for goodbye in (say["bye"].format(name=""), say["bye_lost"]):
        lines.append(goodbye)
        lines.extend(sentences(goodbye))
    lines.append(say["holding"])
    return list(dict.fromkeys(line for line in lines if line))


def _optional(module: str) -> ModuleType | None:
    """Import ``module`` if that area has landed; a missing *dependency* inside it still raises."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise


def build_recorder(settings: Settings, notes: list[str]) -> tuple[CallRecorder, list[Background], list[Any]]:
    """The lead/call store, its outbox sender task and the dashboard blueprint, when present."""
    background: list[Background] = []
    blueprints: list[Any] = []
    store_mod = _optional("leads.store")
    recorder: CallRecorder = NullRecorder()
    if store_mod is not None and hasattr(store_mod, "open_store"):
        recorder = store_mod.open_store(settings.database_url)
        notes.append(f"store: {settings.database_url}")
    else:
        notes.append("store: none (leads.store not available) - calls are not recorded")
    outbox_mod = _optional("leads.outbox")
    if outbox_mod is not None and hasattr(outbox_mod, "outbox_task"):
        background.append(outbox_mod.outbox_task(recorder, settings.env))
    dash_mod = _optional("server.dashboard")
    if dash_mod is not None and hasattr(dash_mod, "blueprint"):
        blueprints.append(dash_mod.blueprint)
    return recorder, background, blueprints


TEST_WIRING_ENV = "AGENTLOCATOR_TEST_WIRING"


def build_wiring(settings: Settings) -> Wiring:
    """Select real providers from the environment (speech/, dialog/) and the store.

    ``AGENTLOCATOR_TEST_WIRING=package.module:factory`` replaces all of this with a factory
    of the caller's (fast fake providers for load benches against a real server process).
    """
    hook = settings.env.get(TEST_WIRING_ENV, "").strip()
    if hook:
        module, _, attr = hook.partition(":")
        factory = getattr(importlib.import_module(module), attr or "wiring")
        wiring = factory(settings)
        wiring.notes.append(f"{TEST_WIRING_ENV}={hook}: test providers, not for production")
        return wiring

    from server.session import CallDeps, run_call  # the engine; required

    notes: list[str] = []
    speech = importlib.import_module("speech.providers").select_speech(settings.env)
    brain = importlib.import_module("dialog.brains").select_brain(settings.env)
    recorder, background, blueprints = build_recorder(settings, notes)
    deps = CallDeps(
        config=settings.timing,
        new_recognizer=speech.new_recognizer,
        synthesizer=speech.synthesizer,
        new_brain=brain.new_brain,
        recorder=recorder,
        language=settings.agent_language,
    )
    return Wiring(
        run_call=run_call,
        call_deps=deps,
        providers={"asr": speech.asr_name, "tts": speech.tts_name, "brain": brain.name},
        recorder=recorder,
        background=background,
        blueprints=blueprints,
        notes=notes,
        warm_lines=fixed_lines(settings.agent_language),
        speech=speech.describe(),
    )
