"""Two-way WhatsApp: Twilio's Messaging webhook ``POST /whatsapp_inbound``.

Per message: the signature is checked like every Twilio route (X-Twilio-Signature over the
URL Twilio requested; 403 otherwise; without TWILIO_AUTH_TOKEN local requests only), the
message is stored on the lead's thread (leads.whatsapp; an unknown number becomes a lead
with source ``whatsapp``), the brain reads it (dialog.whatsapp's rules first, then the
OpenAI brain in text mode for what the rules cannot read, when OPENAI_API_KEY is set) and
its answer is applied in one transaction: the meeting booked / moved / cancelled, the lead
flagged for a person, the reply queued in the outbox. The outbox sender (leads.outbox)
delivers it, as free text inside the 24-hour window; Twilio's status callbacks
(/whatsapp_status) move its delivery state. "הסר" / "STOP" puts the number on the
do-not-call list (leads.optout): no more calls or messages, but the line confirming it.

The answer to Twilio is an empty TwiML ``<Response/>`` once the message and its reply are
stored — for the rules' answers in one durable transaction (leads.whatsapp.receive); an
opt-out and the OpenAI brain's answers in a second one. A retried delivery of the same
MessageSid is answered the same way, with nothing stored or sent twice; one stored but never
answered (the process died in between, or the second transaction failed: 500) is answered
then.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from typing import Any, Callable

import trio
from quart import Blueprint, Response, current_app, request

from dialog import whatsapp as rules
from leads import fields
from leads.optout import opt_out
from leads.whatsapp import Inbound, apply_decision, receive
from server.dashboard import _checker, _insecure, _peer, store_of, web_of
from server.security import request_base, signed_urls
from server.webauth import is_local
from telemetry import metrics
from telemetry.logs import log_event

whatsapp_bp = Blueprint("whatsapp", __name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
BRAIN_KEY = "agentlocator.whatsapp_brain"
LOCKS = 64  # messages of one lead are answered one at a time (a fixed set: nothing grows per number)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class TextBrain:
    """The rules first; the OpenAI brain in text mode (when configured) for a message the
    rules would hand to a person."""

    def __init__(self, openai: Any = None, clock: Callable[[], dt.datetime] = _now) -> None:
        self.openai = openai  # dialog.whatsapp_openai.OpenAIText | None
        self.clock = clock
        self.locks = [trio.Lock() for _ in range(LOCKS)]

    @classmethod
    def from_env(cls, env: Any) -> "TextBrain":
        brain = (env.get("BRAIN") or "auto").strip().lower()
        key = (env.get("OPENAI_API_KEY") or "").strip()
        if brain == "rules" or not key:
            return cls()
        from dialog.whatsapp_openai import OpenAIText

        return cls(OpenAIText.from_env(env))

    def lock(self, phone: str) -> trio.Lock:
        return self.locks[hashlib.blake2b(phone.encode(), digest_size=2).digest()[0] % LOCKS]

    def first(self, msg: Inbound, thread: rules.Thread, opted_out: bool, now: dt.datetime) -> rules.Decision:
        """The rules' answer (pure: runs inside the store's transaction)."""
        if opted_out:  # kept on the thread, never answered: they asked us to stop
            return rules.Decision("ignore", None, thread, meeting_at=thread.meeting_at)
        return rules.decide(msg.body, thread, now, num_media=msg.num_media)

    def wants_model(self, msg: Inbound, decision: rules.Decision) -> bool:
        """A handoff the OpenAI brain may still answer (not one for want of free windows)."""
        return (self.openai is not None and decision.action == "handoff" and bool(msg.body.strip())
                and decision.needs_person != rules.NO_WINDOWS)

    async def model(self, msg: Inbound, decision: rules.Decision, thread: rules.Thread, now: dt.datetime,
                    history: list[dict[str, Any]]) -> tuple[rules.Decision, str]:
        read = await self.openai.read(msg.body, thread, now, history)
        if read is None:  # the API failed, or its reading did not fit: a person takes it
            return decision, "rules"
        return read, "openai"


def brain_of(app: Any) -> TextBrain:
    brain = app.extensions.get(BRAIN_KEY)
    if brain is None:
        settings = getattr(app, "settings", None)
        brain = TextBrain.from_env(getattr(settings, "env", None) or os.environ)
        app.extensions[BRAIN_KEY] = brain
    return brain


def _signature_refusal(params: dict[str, str]) -> Response | None:
    """None when the request is Twilio's (or local, without TWILIO_AUTH_TOKEN)."""
    checker = _checker(current_app)
    if checker is None:
        if _insecure(current_app) or is_local(_peer(), request.headers):
            return None
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                  error="not a local request and TWILIO_AUTH_TOKEN is not set (AGENTLOCATOR_INSECURE=1 allows it)")
        return Response("forbidden", 403)
    public = getattr(getattr(current_app, "settings", None), "public_base_url", None)
    trusted = web_of(current_app).proxies.trusts(_peer())
    base = request_base(public, request.scheme, request.host, request.headers, trusted=trusted)
    urls = signed_urls(base, request.path, request.query_string.decode("latin1"))
    if checker.valid(urls, params, request.headers.get("X-Twilio-Signature")):
        return None
    log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
              error="invalid or missing X-Twilio-Signature", url=urls[0][:300])
    return Response("forbidden", 403)


def _twiml() -> Response:
    return Response(EMPTY_TWIML, 200, content_type="text/xml; charset=utf-8")


@whatsapp_bp.post("/whatsapp_inbound")
async def whatsapp_inbound() -> Any:
    """Twilio's Messaging webhook for the WhatsApp sender (A MESSAGE COMES IN)."""
    received = time.perf_counter()
    params = dict((await request.form).items())
    refused = _signature_refusal(params)
    if refused is not None:
        return refused
    try:
        msg = Inbound.from_form(params)
    except fields.InvalidField as exc:
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=400, error=str(exc)[:300])
        return Response(f"{exc.field}: {exc.reason}", 400)
    store = store_of(current_app)
    brain = brain_of(current_app)
    now = brain.clock()
    later: list[rules.Decision] = []

    def decide(thread: rules.Thread, opted_out: bool) -> rules.Decision | None:
        decision = brain.first(msg, thread, opted_out, now)
        if decision.opt_out or brain.wants_model(msg, decision):
            later.append(decision)  # done outside the transaction: the opt-out first, or the model
            return None
        return decision

    async with brain.lock(msg.phone):
        try:
            got = await store.run(receive, store, msg, now, decide, "rules")
        except Exception as exc:  # noqa: BLE001 - Twilio retries on 5xx; nothing was half-stored
            log_event("ERROR", logging.ERROR, where="whatsapp_inbound.store", error=repr(exc)[:300],
                      message_sid=msg.message_sid)
            return Response("store error", 500)
        if got is None:  # Twilio retried a message we answered already
            log_event("WEBHOOK", path=request.path, message_sid=msg.message_sid, duplicate=True)
            return _twiml()
        decision, used, key = got.decision, "rules", got.reply_key
        if decision is None:
            decision = later[-1]
            if brain.wants_model(msg, decision):
                history = [m for m in await store.run(_recent, store, msg.phone)
                           if m.get("message_sid") != msg.message_sid]
                decision, used = await brain.model(msg, decision, got.thread, now, history)
            try:
                if decision.opt_out:
                    await store.run(opt_out, store, msg.phone, "whatsapp")
                key = await store.run(apply_decision, store, msg, decision, used, now)
            except Exception as exc:  # noqa: BLE001 - stored, unanswered: Twilio's retry answers it
                log_event("ERROR", logging.ERROR, where="whatsapp_inbound.apply", error=repr(exc)[:300],
                          message_sid=msg.message_sid)
                return Response("store error", 500)
    if key is not None and store.outbox_wakeup is not None:
        store.outbox_wakeup.set()
    metrics.whatsapp_inbound_total.labels(decision.action, used if not got.opted_out else "none").inc()
    log_event("WEBHOOK", path=request.path, message_sid=msg.message_sid, from_number=msg.phone,
              new_lead=got.new_lead, action=decision.action, brain=used, needs_person=decision.needs_person,
              opted_out=got.opted_out or decision.opt_out, replied=key is not None, again=got.again or None,
              handled_ms=round((time.perf_counter() - received) * 1000, 2))
    return _twiml()


def _recent(store: Any, phone: str) -> list[dict[str, Any]]:
    from leads.whatsapp import thread

    return thread(store, phone, limit=12)
