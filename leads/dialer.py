"""The speed-to-lead dialer: dial jobs (leads.dialjobs) become Twilio calls to the leads.

One trio task per server (:func:`run_dialer`), woken at once by a new job (an intake, the
operator's "call now"), else sleeping until the next job is due. Each pass claims what is
due, within calling hours (leads.hours) and the MAX_OUTBOUND_CALLS cap counted across every
instance, and places each call with the official client's ``calls.create``: the call's
TwiML is our own /twiml (the agent talks; session.py knows it is a call we placed from
Twilio's Direction), its final status comes to /dial/status, and answering machine detection
(asynchronous: the agent starts talking at once) to /dial/amd. A machine hears one short
voicemail line in the agent's voice (``calls(sid).update(twiml=<Say>…<Hangup/>)``); no
answer, busy, failed or a machine → the next attempt on the retry schedule.

Without TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_CALLER_ID / PUBLIC_BASE_URL the
dialer does not run: jobs wait in the database (the dashboard shows them).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping
from urllib.parse import urlencode

import sqlalchemy as sa
import trio
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from leads import dialjobs, schema
from leads.hours import DEFAULT_EVE_HOURS, DEFAULT_HOURS, DEFAULT_RETRIES, CallingHours, Step, parse_retries
from leads.outbox import describe_error, is_permanent
from leads.store import Store
from telemetry.logs import log_event

DIAL_THREADS = 4
CAPPED_POLL_S = 1.0
DEFAULT_VOICE = "Google.he-IL-Wavenet-A"  # Twilio's name for the agent's default Google voice


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class DialerConfig:
    account_sid: str | None = None
    auth_token: str | None = None
    caller_id: str | None = None  # TWILIO_CALLER_ID: our voice number, the calls' From
    public_base_url: str | None = None
    api_base_url: str | None = None  # TWILIO_API_BASE_URL: a local fake in tests
    max_outbound_calls: int = 5
    hours: CallingHours = field(default_factory=CallingHours.parse)
    retries: tuple[Step, ...] = field(default_factory=parse_retries)
    ring_s: int = 30  # calls.create timeout: how long it rings before no-answer
    amd: bool = True
    voice: str = DEFAULT_VOICE
    language: str = "he-IL"
    http_timeout_s: float = 10.0
    idle_poll_s: float = 30.0
    calling_timeout_s: float = 3900.0  # a call's final status, at the latest (MAX_CALL_MINUTES + margin)
    stale_every_s: float = 15.0

    @property
    def enabled(self) -> bool:
        return bool(self.account_sid and self.auth_token and self.caller_id and self.public_base_url)

    def missing(self) -> list[str]:
        names = {"TWILIO_ACCOUNT_SID": self.account_sid, "TWILIO_AUTH_TOKEN": self.auth_token,
                 "TWILIO_CALLER_ID": self.caller_id, "PUBLIC_BASE_URL": self.public_base_url}
        return [k for k, v in names.items() if not v]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "DialerConfig":
        """Raises ValueError naming the variable on a bad value (startup fails, not a call)."""
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        def number(name: str, default: float, integer: bool = False) -> Any:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} must be a positive number") from None
            if value <= 0:
                raise ValueError(f"{name}={raw!r} must be a positive number")
            return value

        try:
            hours = CallingHours.parse(get("DIAL_HOURS") or DEFAULT_HOURS,
                                       env.get("DIAL_HOLIDAYS", "IL"),
                                       env.get("DIAL_HOLIDAY_EVE_HOURS", DEFAULT_EVE_HOURS))
        except ValueError as exc:
            raise ValueError(f"DIAL_HOURS / DIAL_HOLIDAYS / DIAL_HOLIDAY_EVE_HOURS: {exc}") from None
        try:
            retries = parse_retries(env.get("DIAL_RETRIES", DEFAULT_RETRIES))
        except ValueError as exc:
            raise ValueError(f"DIAL_RETRIES: {exc}") from None
        tts_voice = get("GOOGLE_TTS_VOICE")
        amd = (get("DIAL_AMD") or "1").lower()
        if amd not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"DIAL_AMD={amd!r} must be 1 or 0")
        max_minutes = number("MAX_CALL_MINUTES", 60.0)
        return cls(
            account_sid=get("TWILIO_ACCOUNT_SID"), auth_token=get("TWILIO_AUTH_TOKEN"),
            caller_id=get("TWILIO_CALLER_ID"),
            public_base_url=(get("PUBLIC_BASE_URL") or "").rstrip("/") or None,
            api_base_url=get("TWILIO_API_BASE_URL"),
            max_outbound_calls=number("MAX_OUTBOUND_CALLS", 5, integer=True),
            hours=hours, retries=retries, ring_s=number("DIAL_RING_SECONDS", 30, integer=True),
            amd=amd in ("1", "true", "yes", "on"),
            voice=get("VOICEMAIL_VOICE") or (f"Google.{tts_voice}" if tts_voice else DEFAULT_VOICE),
            language=get("AGENT_LANGUAGE") or "he-IL",
            calling_timeout_s=max_minutes * 60.0 + 300.0,
        )


# -- what is said and sent ------------------------------------------------------------------------

def voicemail_line(name: str | None, hebrew: bool) -> str:
    first = (name or "").strip().split(" ")[0]
    if hebrew:
        hello = f"היי {first}, " if first else "היי, "
        return hello + "כאן נועה מ-AgentLocator, קיבלנו את הפרטים שלך ונחזור אליך שוב בקרוב. יום נעים."
    hello = f"Hi {first}, " if first else "Hi, "
    return hello + "this is Noa from AgentLocator. We got your details and will call you again soon. Have a great day."


def voicemail_twiml(line: str, language: str, voice: str | None, audio_url: str | None = None) -> str:
    """One short line, then hang up: the agent's own recording of it (``audio_url``, made by
    the call's synthesizer), else Twilio's <Say> in the agent's Google voice."""
    response = VoiceResponse()
    if audio_url:
        response.play(audio_url)
    else:
        lang = "he-IL" if language.lower().startswith(("he", "iw")) else "en-US"
        if voice:
            response.say(line, language=lang, voice=voice)
        else:
            response.say(line, language=lang)
    response.hangup()
    return response.to_xml()


def callback_urls(base: str, job_id: int) -> dict[str, str]:
    query = urlencode({"job": job_id})
    return {"twiml": f"{base}/twiml", "status": f"{base}/dial/status?{query}", "amd": f"{base}/dial/amd?{query}"}


class TwilioCalls:
    """Twilio's Calls API over the official client (blocking: call from a worker thread)."""

    def __init__(self, cfg: DialerConfig) -> None:
        self.cfg = cfg
        self.client = Client(cfg.account_sid, cfg.auth_token, http_client=TwilioHttpClient(timeout=cfg.http_timeout_s))
        if cfg.api_base_url:
            self.client.api.base_url = cfg.api_base_url.rstrip("/")

    def create(self, job: dialjobs.DialJob) -> str:
        urls = callback_urls(self.cfg.public_base_url or "", job.id)
        kwargs: dict[str, Any] = {}
        if self.cfg.amd:
            # Asynchronous: the call connects to the agent at once; the verdict comes later.
            kwargs.update(machine_detection="DetectMessageEnd", async_amd="true",
                          async_amd_status_callback=urls["amd"], async_amd_status_callback_method="POST")
        call = self.client.calls.create(
            to=job.phone, from_=self.cfg.caller_id or "", url=urls["twiml"], method="POST",
            status_callback=urls["status"], status_callback_method="POST",
            status_callback_event=["answered", "completed"], timeout=self.cfg.ring_s, **kwargs,
        )
        return str(call.sid)

    def voicemail(self, call_sid: str, twiml: str) -> None:
        self.client.calls(call_sid).update(twiml=twiml)


# -- the task ------------------------------------------------------------------------------------

class Dialer:
    """Claims due jobs and places their calls; :func:`run_dialer` is the loop around it."""

    def __init__(self, store: Store, cfg: DialerConfig, calls: TwilioCalls | None = None) -> None:
        self.store = store
        self.cfg = cfg
        self.calls = calls if calls is not None else (TwilioCalls(cfg) if cfg.enabled else None)
        self.limiter = trio.CapacityLimiter(DIAL_THREADS)
        self.wakeup = trio.Event()
        self.placed_at: dict[int, float] = {}  # job id -> trio time calls.create returned (bench)

    def wake(self) -> None:
        self.wakeup.set()

    async def place(self, job: dialjobs.DialJob) -> str:
        """calls.create for one claimed job; records the result. Returns the job's state."""
        store = self.store
        assert self.calls is not None
        try:
            sid = await trio.to_thread.run_sync(self.calls.create, job, abandon_on_cancel=True, limiter=self.limiter)
        except Exception as exc:  # noqa: BLE001 - every far-end failure is recorded on the job
            error, permanent = describe_error(exc), is_permanent(exc)
            state = await store.run(lambda: dialjobs.create_failed(store, job.id, error, permanent,
                                                                     self.cfg.retries, self.cfg.hours))
            log_event("DIAL", logging.WARNING if state == "pending" else logging.ERROR, job=job.id, to=job.phone,
                      attempt=job.attempts, error=error, state=state)
            return state
        self.placed_at[job.id] = trio.current_time()
        with trio.CancelScope(shield=True):  # it went out: a shutdown now must not forget that
            await store.run(dialjobs.placed, store, job.id, sid)
        log_event("DIAL", job=job.id, to=job.phone, attempt=job.attempts, reason=job.reason, call_sid=sid,
                  state="calling")
        return "calling"

    async def pass_once(self, nursery: trio.Nursery | None = None) -> int:
        store, cfg = self.store, self.cfg
        jobs = await store.run(lambda: dialjobs.claim_due(store, _now(), cfg.max_outbound_calls, cfg.hours))
        for job in jobs:
            if nursery is None:
                await self.place(job)
            else:
                nursery.start_soon(self.place, job)
        return len(jobs)

    async def voicemail_text(self, job_id: int) -> str:
        store = self.store
        phone = await store.run(_job_phone, store, job_id)
        name = await store.run(_lead_name, store, phone) if phone else None
        return voicemail_line(name, self.cfg.language.lower().startswith(("he", "iw")))

    async def voicemail(self, job_id: int, call_sid: str, audio_url: str | None = None) -> None:
        """A machine answered: the voicemail line (``audio_url``: its recording in the agent's
        voice, served by the app), then the call hangs up."""
        twiml = voicemail_twiml(await self.voicemail_text(job_id), self.cfg.language, self.cfg.voice, audio_url)
        if self.calls is None:
            return
        try:
            await trio.to_thread.run_sync(self.calls.voicemail, call_sid, twiml, abandon_on_cancel=True,
                                          limiter=self.limiter)
            log_event("DIAL", job=job_id, call_sid=call_sid, state="voicemail")
        except Exception as exc:  # noqa: BLE001 - the call then just ends; the retry stands
            log_event("ERROR", logging.WARNING, where="dialer.voicemail", job=job_id, error=describe_error(exc))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        store, cfg = self.store, self.cfg
        last_stale = -1e9
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self.wakeup = trio.Event()  # fresh before the pass: a wake during it is kept
                delay: float | None
                try:
                    if trio.current_time() - last_stale >= cfg.stale_every_s:
                        last_stale = trio.current_time()
                        # Expiry is not trusted here (after a database outage every lease looks expired):
                        # a job goes back only once its instance's lease is gone (the keeper's recovery
                        # removes a dead one's) or, on SQLite, its process is gone from this host.
                        await store.run(lambda: dialjobs.release_stale(store, _now(), cfg.calling_timeout_s,
                                                                       trust_expiry=False))
                    if await self.pass_once(nursery):
                        continue
                    delay = await store.run(dialjobs.seconds_until_due, store, _now())
                except (sa.exc.SQLAlchemyError, OSError) as exc:
                    log_event("ERROR", logging.ERROR, where="dialer.loop", error=f"{type(exc).__name__}: {exc}"[:500])
                    delay = 2.0
                wait = cfg.idle_poll_s if delay is None else min(delay, cfg.idle_poll_s)
                if delay == 0:
                    # Due jobs but none claimed: MAX_OUTBOUND_CALLS are in flight. A call's final
                    # status (or a new job) wakes us; poll slowly meanwhile, never spin.
                    wait = CAPPED_POLL_S
                with trio.move_on_after(max(wait, 0.05)):
                    await self.wakeup.wait()


def _job_phone(store: Store, job_id: int) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(schema.dial_jobs.c.phone).where(schema.dial_jobs.c.id == job_id)).scalar()


def _lead_name(store: Store, phone: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(schema.leads.c.name).where(schema.leads.c.phone == phone)).scalar()


def attach_dialer(store: Store, env: Mapping[str, str] | None = None) -> Dialer:
    """The store's dialer (one per store: the intake and the callbacks wake it)."""
    dialer = getattr(store, "dialer", None)
    if dialer is None:
        dialer = Dialer(store, DialerConfig.from_env(os.environ if env is None else env))
        store.dialer = dialer  # type: ignore[attr-defined]
    return dialer


def dialer_task(store: Store, env: Mapping[str, str] | None = None) -> Callable[[], Awaitable[None]]:
    """For server.wiring: the dialer as a zero-argument task for the app's nursery."""
    dialer = attach_dialer(store, env)

    async def task() -> None:
        if not dialer.cfg.enabled:
            log_event("STARTUP", component="dialer",
                      notes=[f"dialer: off ({', '.join(dialer.cfg.missing())} unset) - dial jobs wait in the database"])
            return
        log_event("STARTUP", component="dialer", max_outbound_calls=dialer.cfg.max_outbound_calls,
                  amd=dialer.cfg.amd, caller_id=dialer.cfg.caller_id)
        await dialer.run()

    return task


def outbound_lookup(store: Store) -> Callable[[str, str], Awaitable[Any]]:
    """For the call session (CallDeps.outbound_context): on a call we placed, whom we called
    (the lead row, the dial job) as a dialog.outbound.OutboundContext; None for a number we
    know nothing about (the agent then greets as on an inbound call)."""
    from dialog.outbound import OutboundContext

    async def lookup(phone: str, call_sid: str) -> OutboundContext | None:
        lead, job = await store.run(dialjobs.lead_for_call, store, phone, call_sid)
        if lead is None and job is None:
            return None
        dialer = getattr(store, "dialer", None)
        hours = dialer.cfg.hours if dialer is not None else None
        return OutboundContext.from_lead(phone, lead, reason=(job or {}).get("reason") or "intake",
                                         job_id=(job or {}).get("id"), hours=hours)

    return lookup
