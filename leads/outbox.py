"""The outbox sender: WhatsApp follow-ups (Twilio REST) and lead webhooks, with retries.

Items are written by the store first (leads.store, in the same transaction as the call's
end), then this task delivers them. Per item: claim (state ``sending``, attempts + 1), send
in a worker thread, record the result; a failure is retried with exponential backoff until
``max_attempts``, a permanent one (Twilio 4xx, webhook 4xx) fails at once. One item per call
and channel makes delivery idempotent per call.

Several instances on one database each run a sender: on PostgreSQL the claim is
``SELECT ... FOR UPDATE SKIP LOCKED`` (each due item goes to exactly one sender); on SQLite the
claim's transaction takes the write lock up front (BEGIN IMMEDIATE), which serialises the
processes sharing the file the same way. An item claimed by an instance that then died
(``claimed_by`` names it; its lease is gone) is handed back by the store keeper
(leads.keeper): at-least-once only for the narrow window between Twilio's answer and the
write that records it.

Without Twilio credentials a WhatsApp item is logged and marked ``dry_run``.

WhatsApp's 24-hour customer service window: a WhatsApp item goes out as free text while the
lead's last message to us (leads.whatsapp) is under 24 hours old, and as the approved
template ``TWILIO_WHATSAPP_TEMPLATE_SID`` (Twilio's ContentSid, the text in its variables:
:func:`template_variables`) outside it; decided when it is sent, not when it was queued, and
recorded on the item (``sent_as``). A lead who opted out (leads.optout) gets nothing more
(state ``opted_out``) but the one line confirming it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

import requests
import sqlalchemy as sa
import trio
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from leads import fields, keeper, schema, whatsapp
from telemetry.metrics import outbox_deliveries_total
from leads.store import Store
from telemetry.logs import log_event

# Threads for the far ends' HTTP calls (Twilio, the lead webhook), apart from speech's pool.
SEND_THREADS = 4

SIGNATURE_HEADER = "X-AgentLocator-Signature"
TIMESTAMP_HEADER = "X-AgentLocator-Timestamp"
# Twilio's message statuses in the order they happen; a late callback never moves back.
DELIVERY_ORDER = ("sending", "queued", "accepted", "sent", "delivered", "read")
FINAL_FAILURES = ("failed", "undelivered")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    account_sid: str | None = None
    auth_token: str | None = None
    whatsapp_from: str | None = None
    # TWILIO_WHATSAPP_TEMPLATE_SID: the approved template (Content SID, HX...) for messages
    # outside the 24-hour window; unset: those go as free text too (WhatsApp refuses them).
    whatsapp_template_sid: str | None = None
    api_base_url: str | None = None  # TWILIO_API_BASE_URL: a proxy or a local fake of api.twilio.com
    status_callback_url: str | None = None  # {PUBLIC_BASE_URL}/whatsapp_status
    webhook_url: str | None = None
    webhook_secret: str | None = None
    max_attempts: int = 8
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 600.0
    http_timeout_s: float = 10.0
    idle_poll_s: float = 30.0  # the wakeup event normally comes first
    # An item claimed longer ago than this is no longer being sent by anyone (a send is
    # bounded by http_timeout_s): a DB error mid-pass left it in 'sending'; release it.
    stale_sending_s: float = 300.0

    @property
    def dry_run(self) -> bool:
        return not (self.account_sid and self.auth_token and self.whatsapp_from)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "OutboxConfig":
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        base = get("PUBLIC_BASE_URL")
        return cls(
            account_sid=get("TWILIO_ACCOUNT_SID"), auth_token=get("TWILIO_AUTH_TOKEN"),
            whatsapp_from=get("TWILIO_WHATSAPP_FROM"), api_base_url=get("TWILIO_API_BASE_URL"),
            whatsapp_template_sid=get("TWILIO_WHATSAPP_TEMPLATE_SID"),
            status_callback_url=f"{base.rstrip('/')}/whatsapp_status" if base else None,
            webhook_url=get("LEAD_WEBHOOK_URL"), webhook_secret=get("LEAD_WEBHOOK_SECRET"),
        )

    @classmethod
    def coerce(cls, value: "OutboxConfig | Mapping[str, str] | Any | None") -> "OutboxConfig":
        """Accepts a config, an env mapping, or server.settings.Settings (its raw env)."""
        if isinstance(value, OutboxConfig):
            return value
        if value is None:
            return cls.from_env(os.environ)
        if isinstance(value, Mapping):
            return cls.from_env(value)
        return cls.from_env(getattr(value, "env", None) or os.environ)


# -- pure rules -----------------------------------------------------------------------------

def backoff_s(attempts: int, base: float, cap: float) -> float:
    """Delay before the next try after ``attempts`` failed ones: base, 2·base, 4·base ... cap."""
    return min(cap, base * (2 ** max(0, attempts - 1)))


def is_permanent(exc: BaseException) -> bool:
    """A failure that retrying cannot fix (bad number, bad credentials, rejected payload)."""
    status = getattr(exc, "status", None)
    if status is None and isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
    return status is not None and 400 <= int(status) < 500 and int(status) not in (408, 409, 425, 429)


def next_delivery_state(current: str, reported: str) -> str | None:
    """The state after a Twilio status callback, or None when it is stale / not ours to apply."""
    reported = reported.lower()
    if current in FINAL_FAILURES or current in ("dry_run", "held", "pending", "opted_out"):
        return None
    if reported in FINAL_FAILURES:
        return reported
    if reported in DELIVERY_ORDER and current in DELIVERY_ORDER:
        return reported if DELIVERY_ORDER.index(reported) > DELIVERY_ORDER.index(current) else None
    return None


TEMPLATE_VARIABLE_MAX = 900  # WhatsApp's template body is 1,024 characters in all


def template_variables(name: str | None, body: str) -> dict[str, str]:
    """The template's variables: {{1}} the lead's first name ("" when unknown), {{2}} our
    message on one line (WhatsApp refuses a variable with a line break, a tab or more than
    four spaces in a row)."""
    first = (name or "").split()[0] if (name or "").strip() else ""
    flat = " · ".join(part.strip() for part in body.splitlines() if part.strip())
    flat = " ".join(flat.replace("\t", " ").split())
    if len(flat) > TEMPLATE_VARIABLE_MAX:
        flat = flat[: TEMPLATE_VARIABLE_MAX - 1].rstrip() + "…"
    return {"1": first[:60], "2": flat}


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, TwilioRestException):
        text = f"twilio HTTP {exc.status} error {exc.code}: {exc.msg}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text[:500]


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over ``"{timestamp}." + body``: the receiver checks both (no replays)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# -- store operations (blocking; run in worker threads) ----------------------------------------

@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    call_sid: str
    phone: str
    channel: str
    body: str
    attempts: int  # including the one just claimed


@dataclass(frozen=True, slots=True)
class Recipient:
    """What a WhatsApp send needs to know of the lead at the moment it goes out."""

    opted_out: bool
    last_inbound_at: dt.datetime | None
    name: str | None


def recipient(store: Store, phone: str) -> Recipient:
    """One read: the lead's name, the do-not-call list (leads.optout's table) and the time of
    the lead's last WhatsApp message (leads.whatsapp)."""
    leads, dnc, threads = schema.leads, schema.do_not_call, schema.whatsapp_threads
    query = sa.select(
        sa.select(leads.c.name).where(leads.c.phone == phone).scalar_subquery().label("name"),
        sa.exists().where(dnc.c.phone == phone).label("opted_out"),
        sa.select(threads.c.last_inbound_at).where(threads.c.phone == phone).scalar_subquery().label("last_in"),
    )
    with store.engine.connect() as conn:
        row = conn.execute(query).one()
    return Recipient(bool(row.opted_out), schema.utc(row.last_in), row.name)


def release_stuck(store: Store, claimed_before: dt.datetime) -> int:
    """Items claimed before ``claimed_before`` and still in ``sending`` go back to pending: a
    pass that died on a DB error left them (a send is bounded by http_timeout_s, so no live
    sender holds an item that long). Dead instances' items: Store.recover_interrupted."""
    o = schema.outbox
    with store.engine.begin() as conn:
        return conn.execute(
            o.update().where(o.c.state == "sending", o.c.provider_id.is_(None), o.c.updated_at < claimed_before)
            .values(state="pending", next_attempt_at=_now(), updated_at=_now(), claimed_by=None)
        ).rowcount


def claim_due(store: Store, now: dt.datetime, limit: int = 20) -> list[OutboxItem]:
    o = schema.outbox
    with store.engine.begin() as conn:
        query = (
            sa.select(o).where(o.c.state == "pending", o.c.next_attempt_at <= now)
            .order_by(o.c.next_attempt_at, o.c.id).limit(limit)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)  # several senders on one database
        rows = conn.execute(query).mappings().all()
        items = []
        for r in rows:
            conn.execute(
                o.update().where(o.c.id == r["id"]).values(
                    state="sending", attempts=r["attempts"] + 1, updated_at=now, claimed_by=store.instance_id,
                )
            )
            items.append(OutboxItem(r["id"], r["key"], r["call_sid"], r["phone"], r["channel"], r["body"],
                                    r["attempts"] + 1))
        return items


def record_result(
    store: Store, item_id: int, *, state: str, provider_id: str | None = None,
    error: str | None = None, next_attempt_at: dt.datetime | None = None, sent_as: str | None = None,
) -> None:
    o = schema.outbox
    values: dict[str, Any] = {"state": state, "updated_at": _now(), "next_attempt_at": next_attempt_at,
                              "last_error": fields.text(error, fields.ERROR_TEXT_MAX, "last_error")}
    if sent_as:
        values["sent_as"] = sent_as
    if provider_id:
        values["provider_id"] = fields.text(str(provider_id), fields.PROVIDER_ID_MAX, "provider_id")
    with store.engine.begin() as conn:
        conn.execute(o.update().where(o.c.id == item_id).values(**values))


def seconds_until_due(store: Store, now: dt.datetime) -> float | None:
    o = schema.outbox
    with store.engine.connect() as conn:
        nxt = conn.execute(
            sa.select(sa.func.min(o.c.next_attempt_at)).where(o.c.state == "pending")
        ).scalar()
    nxt = schema.utc(nxt)
    return None if nxt is None else max(0.0, (nxt - now).total_seconds())


def apply_status_callback(store: Store, message_sid: str, status: str, error_code: str | None) -> bool:
    """Twilio's delivery report for one message; returns whether it changed anything."""
    if not fields.message_sid(message_sid):
        return False  # not a MessageSid (SM/MM + 32 hex): none of ours
    o = schema.outbox
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(o.c.id, o.c.state).where(o.c.provider_id == message_sid)).first()
        if row is None:
            return False
        new = next_delivery_state(row.state, status)
        if new is None:
            return False
        conn.execute(
            o.update().where(o.c.id == row.id).values(
                state=new, updated_at=_now(),
                last_error=f"twilio error {error_code}"[: fields.ERROR_TEXT_MAX] if error_code else None,
            )
        )
        return True


# -- the far ends ------------------------------------------------------------------------------

def whatsapp_address(number: str) -> str:
    return number if number.startswith("whatsapp:") else f"whatsapp:{number}"


class WhatsAppSender:
    """Twilio Messages API over the official client (blocking: call from a worker thread)."""

    def __init__(self, cfg: OutboxConfig) -> None:
        self.cfg = cfg
        self.client = Client(cfg.account_sid, cfg.auth_token,
                             http_client=TwilioHttpClient(timeout=cfg.http_timeout_s))
        if cfg.api_base_url:
            # The Api domain's base URL is the documented seam for pointing the client elsewhere.
            self.client.api.base_url = cfg.api_base_url.rstrip("/")

    def send(self, item: OutboxItem, variables: dict[str, str] | None = None) -> str:
        """Free text, or with ``variables`` the template (ContentSid + ContentVariables)."""
        kwargs: dict[str, Any] = {}
        if self.cfg.status_callback_url:
            kwargs["status_callback"] = self.cfg.status_callback_url
        if variables is not None and self.cfg.whatsapp_template_sid:
            kwargs.update(content_sid=self.cfg.whatsapp_template_sid,
                          content_variables=json.dumps(variables, ensure_ascii=False))
        else:
            kwargs["body"] = item.body
        message = self.client.messages.create(
            to=whatsapp_address(item.phone), from_=whatsapp_address(self.cfg.whatsapp_from or ""), **kwargs,
        )
        return str(message.sid)


class WebhookSender:
    def __init__(self, cfg: OutboxConfig) -> None:
        self.cfg = cfg
        self.session = requests.Session()

    def send(self, item: OutboxItem) -> None:
        body = item.body.encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": item.key}
        if self.cfg.webhook_secret:
            ts = int(time.time())
            headers[TIMESTAMP_HEADER] = str(ts)
            headers[SIGNATURE_HEADER] = sign_webhook(self.cfg.webhook_secret, ts, body)
        response = self.session.post(self.cfg.webhook_url or "", data=body, headers=headers,
                                     timeout=self.cfg.http_timeout_s)
        response.raise_for_status()


# -- the task ---------------------------------------------------------------------------------

class OutboxSender:
    """One delivery pass at a time; the trio loop around it is :func:`run_outbox_sender`."""

    def __init__(self, store: Store, cfg: OutboxConfig, clock: Callable[[], dt.datetime] = _now) -> None:
        self.store = store
        self.cfg = cfg
        self.clock = clock  # the 24-hour window is judged on it (tests freeze it)
        self.whatsapp = None if cfg.dry_run else WhatsAppSender(cfg)
        self.webhook = WebhookSender(cfg) if cfg.webhook_url else None
        self.send_limiter = trio.CapacityLimiter(SEND_THREADS)

    def _send_blocking(self, item: OutboxItem) -> tuple[str, str | None, str | None]:
        """(final state, provider id, sent_as) or raises the far end's error."""
        if item.channel == "whatsapp":
            to = recipient(self.store, item.phone)
            if to.opted_out and not item.key.startswith(whatsapp.OPT_OUT_PREFIX):
                return "opted_out", None, None
            mode = whatsapp.send_mode(to.last_inbound_at, self.clock())
            if mode == "template" and not self.cfg.whatsapp_template_sid:
                mode = "text"  # no template configured: as before (WhatsApp may refuse it: 63016)
            if self.whatsapp is None:
                return "dry_run", None, mode
            variables = template_variables(to.name, item.body) if mode == "template" else None
            return "sent", self.whatsapp.send(item, variables), mode
        if item.channel == "webhook":
            if self.webhook is None:
                return "dry_run", None, None
            self.webhook.send(item)
            return "delivered", None, None
        raise ValueError(f"unknown outbox channel {item.channel!r}")

    async def deliver(self, item: OutboxItem) -> str:
        try:
            state, provider_id, sent_as = await trio.to_thread.run_sync(
                self._send_blocking, item, abandon_on_cancel=True, limiter=self.send_limiter)
        except Exception as exc:  # noqa: BLE001 - every far-end failure is recorded on the item
            error = describe_error(exc)
            if is_permanent(exc) or item.attempts >= self.cfg.max_attempts:
                state, due = "failed", None
            else:
                state = "pending"
                due = _now() + dt.timedelta(seconds=backoff_s(item.attempts, self.cfg.backoff_base_s,
                                                              self.cfg.backoff_cap_s))
            await self.store.run(
                lambda: record_result(self.store, item.id, state=state, error=error, next_attempt_at=due)
            )
            outbox_deliveries_total.labels(item.channel, "retry" if state == "pending" else "failed").inc()
            log_event("ERROR", logging.WARNING if state == "pending" else logging.ERROR,
                      call_sid=item.call_sid, where=f"outbox.{item.channel}", attempt=item.attempts,
                      error=error, next_state=state)
            return state
        with trio.CancelScope(shield=True):  # it went out: a shutdown now must not forget that
            await self.store.run(
                lambda: record_result(self.store, item.id, state=state, provider_id=provider_id, sent_as=sent_as)
            )
        outbox_deliveries_total.labels(item.channel, state).inc()
        if item.channel == "whatsapp":
            log_event("WHATSAPP_SENT", call_sid=item.call_sid, to=item.phone, attempt=item.attempts,
                      dry_run=state == "dry_run", message_sid=provider_id, sent_as=sent_as, state=state,
                      key=item.key.split(":", 1)[0])
        else:
            log_event("WEBHOOK", direction="out", call_sid=item.call_sid, attempt=item.attempts, state=state)
        return state

    async def pass_once(self) -> int:
        # A pass that raised (the DB failed while recording a result) left its claimed items
        # in 'sending'; without this they would wait for the next process start.
        stale = _now() - dt.timedelta(seconds=self.cfg.stale_sending_s)
        await self.store.run(release_stuck, self.store, stale)
        items = await self.store.run(claim_due, self.store, self.clock())
        for item in items:
            await self.deliver(item)
        return len(items)


async def run_outbox_sender(
    store: Store, settings: Any = None, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Deliver the outbox forever, with the store keeper (leads.keeper: lease, crash recovery,
    journal replay) beside it. At start, before the first pass: replay the journals, close the
    calls of instances that are certainly dead (their held follow-ups become due) and hand
    back the items they were sending."""
    cfg = OutboxConfig.coerce(settings)
    lead_webhook = bool(cfg.webhook_url)
    store.outbox_wakeup = trio.Event()
    recovered, released = await keeper.startup(store, lead_webhook)
    sender = OutboxSender(store, cfg)
    notes = ["whatsapp: dry-run (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN / TWILIO_WHATSAPP_FROM unset)"
             if cfg.dry_run else "whatsapp: twilio"]
    if not cfg.dry_run and not cfg.whatsapp_template_sid:
        notes.append("whatsapp: TWILIO_WHATSAPP_TEMPLATE_SID unset - messages outside the 24-hour window go "
                     "as free text, which WhatsApp refuses (error 63016)")
    if cfg.webhook_url and not cfg.webhook_secret:
        notes.append("lead webhook: LEAD_WEBHOOK_SECRET unset - posts are NOT signed")
    log_event("STARTUP", component="outbox", notes=notes, recovered_calls=recovered, released=released,
              instance=store.instance_id, lease_s=store.me.ttl_s,
              journal=str(store.journal.path) if store.journal.path else "memory")
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: keeper.run_store_keeper(
            store, lead_webhook=lead_webhook, task_status=task_status))
        task_status.started()
        while True:
            store.outbox_wakeup = trio.Event()  # fresh before the pass: a wake during it is kept
            try:
                if await sender.pass_once():
                    continue
                delay = await store.run(seconds_until_due, store, _now())
            except (sa.exc.SQLAlchemyError, OSError) as exc:
                log_event("ERROR", logging.ERROR, where="outbox.loop", error=f"{type(exc).__name__}: {exc}"[:500])
                delay = cfg.backoff_base_s
            with trio.move_on_after(cfg.idle_poll_s if delay is None else min(delay, cfg.idle_poll_s)):
                await store.outbox_wakeup.wait()


def outbox_task(recorder: Any, env: Mapping[str, str] | None = None) -> Callable[[], Awaitable[None]]:
    """For server.wiring: the sender as a zero-argument task for the app's nursery."""

    async def task() -> None:
        await run_outbox_sender(recorder.store, OutboxConfig.coerce(env))

    return task
