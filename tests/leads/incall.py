"""Whole calls through the real app in this process, on a store the test controls.

The app, session, Hebrew rule brain, recorder, outbox sender and store keeper are the real
ones; speech is stood in for (tests/leads/agent_server.py); the caller is the simulated
Twilio caller over a real websocket, in real time.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable

from leads.store import SqlRecorder

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    return sys.modules[name]


def harness() -> Any:
    return _load("agentlocator_tests_integration_harness", ROOT / "tests" / "integration" / "harness.py")


def agent_server() -> Any:
    return _load("agentlocator_tests_agent_server", ROOT / "tests" / "leads" / "agent_server.py")


def wiring_factory(recorder: SqlRecorder, outbox_env: dict[str, str] | None = None) -> Callable[[Any], Any]:
    """The app's wiring around ``recorder`` (its outbox sender and keeper in the background)."""
    mod = agent_server()

    def factory(settings: Any) -> Any:
        from dialog.brains import select_brain
        from leads.outbox import outbox_task
        from leads.timeline import attach_timeline
        from server.session import CallDeps, run_call
        from server.wiring import Wiring

        attach_timeline(recorder)
        brain = select_brain({"BRAIN": "rules"})
        deps = CallDeps(
            config=settings.timing, new_recognizer=lambda language: mod.LinesRecognizer(list(mod.MEETING_CALL)),
            synthesizer=mod.ToneSynthesizer(), new_brain=brain.new_brain, recorder=recorder,
            language=settings.agent_language,
        )
        return Wiring(run_call=run_call, call_deps=deps, providers={"asr": "scripted", "tts": "tone", "brain": brain.name},
                      recorder=recorder, background=[outbox_task(recorder, outbox_env or {})])

    return factory


@asynccontextmanager
async def server(recorder: SqlRecorder, outbox_env: dict[str, str] | None = None) -> AsyncIterator[int]:
    """The app on a free loopback port (yields the port), its background tasks running."""
    async with harness().running_server(wiring_factory(recorder, outbox_env), {"AGENT_LANGUAGE": "he-IL"}) as (_, port):
        yield port


async def meeting_call(port: int, timeout_s: float = 60.0) -> Any:
    """One whole booking call (six caller lines, then the agent's goodbye; about 18 s): the
    caller's outcome. A call the server does not hang up on time fails after ``timeout_s``."""
    import trio

    from server.caller.client import place_call

    mod = agent_server()
    with trio.fail_after(timeout_s):
        return await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", mod.caller_steps(mod.MEETING_CALL),
                                max_duration_s=120)
