"""The one place that picks the providers, the store and the background tasks for the app.

Everything from the other packages (speech/, dialog/, leads/, the call session) is imported
here, inside the builders, so importing the app loads no provider (the Whisper model, gRPC
clients) and tests can hand the app a :class:`Wiring` of their own (fake fast providers).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from leads.base import CallRecorder
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
    meetings: Any = None  # leads.meetings.Meetings: calendars, booking, reschedule / cancel for other flows


def build_recorder(settings: Settings, notes: list[str]) -> tuple[CallRecorder, list[Background], list[Any]]:
    """The lead/call store, its outbox sender task and the dashboard blueprint."""
    from leads.dialer import dialer_task
    from leads.outbox import outbox_task
    from leads.store import open_store
    from native.config import ConfigError
    from server.dashboard import dashboard_bp
    from server.inflow import inflow_bp
    from server.whatsapp import whatsapp_bp

    from server.workers import WORKER_ENV, instance_started_at

    env = settings.env
    if (env.get("INSTANCE_ID") or "").strip() and env.get(WORKER_ENV):
        # One name set for the server: each worker is an instance with its own lease.
        env = {**env, "INSTANCE_ID": f"{env['INSTANCE_ID'].strip()[:58]}-w{env[WORKER_ENV]}"}
    recorder = open_store(settings.database_url, env)
    started = instance_started_at(settings.env)
    if started is not None:  # a worker: sibling workers' calls written before leases (owner NULL) are not a crash's
        recorder.store.opened_at = started
    notes.append(f"store: {settings.database_url}")
    try:
        dialer = dialer_task(recorder.store, settings.env)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return recorder, [outbox_task(recorder, settings.env), dialer], [dashboard_bp, inflow_bp, whatsapp_bp]


def build_meetings(
    settings: Settings, recorder: CallRecorder, new_brain: Callable[..., Any], notes: list[str],
    background: list[Background], blueprints: list[Any],
) -> tuple[Any, Callable[..., Any]]:
    """The realtors' calendars (README "Meetings in the realtor's calendar"): every call's brain
    wrapped so its windows are free there and its bookings land there; the .ics route; the
    task that keeps the busy lists fresh. Unset: today's office-hour rules, said at startup."""
    import datetime as dt

    from leads.meetings import open_meetings
    from server.calltokens import server_secret, subkey
    from server.meeting_brain import CalendarBrain
    from server.meeting_links import meetings_bp

    master, _ = server_secret(settings.agentlocator_secret, settings.twilio_auth_token)
    meetings = open_meetings(settings.env, recorder.store, settings.public_base_url, subkey(master, "meeting-ics"))  # type: ignore[attr-defined]
    notes.append(meetings.describe())
    if not settings.public_base_url:
        notes.append("calendar: PUBLIC_BASE_URL unset: the WhatsApp summary carries no add-to-calendar link")
    if any(r.calendar for r in meetings.realtors.all) or len(meetings.realtors.all) > 1:
        background.append(meetings.refresh_all)  # busy lists warm; round-robin across processes
    blueprints.append(meetings_bp)

    def calendar_brain(language: str, caller_phone: str, now: dt.datetime) -> Any:
        return CalendarBrain(new_brain(language, caller_phone, now), meetings, caller_phone, language)

    return meetings, calendar_brain


def recording_parts(settings: Settings, notes: list[str], background: list[Background]) -> tuple[Any, Any, str | None]:
    """Recordings (RECORDINGS_DIR, their retention task), live listen-in and the notice."""
    from server.recording import LiveCalls, notice_text, recordings_from

    recordings = recordings_from(settings.recordings_dir, settings.recordings_days)
    if recordings is None:
        notes.append("recordings: off (RECORDINGS_DIR=off)")
    else:
        notes.append(f"recordings: {recordings.directory} (stereo FLAC, kept {settings.recordings_days:g} days)")
        background.append(recordings.retention_task)
    notice = notice_text(settings.recording_notice, settings.agent_language)
    return recordings, LiveCalls(), notice


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

    from dialog.brains import select_brain
    from dialog.phrases import fixed_lines
    from server.session import CallDeps, run_call
    from speech.providers import select_speech

    notes: list[str] = []
    speech = select_speech(settings.env)
    brain = select_brain(settings.env)
    recorder, background, blueprints = build_recorder(settings, notes)
    meetings, new_brain = build_meetings(settings, recorder, brain.new_brain, notes, background, blueprints)
    recordings, live, notice = recording_parts(settings, notes, background)
    deps = CallDeps(
        config=settings.timing,
        new_recognizer=speech.new_recognizer,
        synthesizer=speech.synthesizer,
        new_brain=new_brain,
        recorder=recorder,
        language=settings.agent_language,
        max_call_s=settings.max_call_minutes * 60.0,
        recordings=recordings,
        live=live,
        recording_notice=notice,
    )
    store = getattr(recorder, "store", None)
    if store is not None:  # a call we placed: the agent knows whom it called (leads.dialer)
        from leads.dialer import outbound_lookup

        deps.outbound_context = outbound_lookup(store)
    return Wiring(
        run_call=run_call,
        call_deps=deps,
        providers={"asr": speech.asr_name, "tts": speech.tts_name, "brain": brain.name},
        recorder=recorder,
        background=background,
        blueprints=blueprints,
        notes=notes,
        warm_lines=fixed_lines(settings.agent_language) + ([notice] if notice else []),
        speech=speech.describe(),
        meetings=meetings,
    )
