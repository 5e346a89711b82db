"""Leads flowing in, and the dialer's side of Twilio: the inflow blueprint.

- ``POST /api/leads/intake`` (JSON or form-encoded): ``Authorization: Bearer $INTAKE_TOKEN``
  or ``X-AgentLocator-Signature`` (+ ``X-AgentLocator-Timestamp``) signed with
  $INTAKE_SECRET exactly like the outgoing lead webhook (leads.outbox.sign_webhook);
  neither set: local requests only. ``Idempotency-Key`` honoured. 422 names the bad field.
- ``GET|POST /webhooks/facebook/leads``: Facebook Lead Ads (leads.facebook).
- ``POST /dial/status``, ``POST /dial/amd``: Twilio's callbacks for the calls the dialer
  placed (X-Twilio-Signature, as every Twilio route).
- ``GET /api/leads/<phone>``, ``POST /api/leads/<phone>/call``, ``POST /api/leads/<phone>/opt_out``:
  authorised like the dashboard (server.webauth, the dashboard's guard).
"""
from __future__ import annotations

import datetime as dt
import hmac
import io
import json
import logging
import os
import time
import wave
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
import trio
from quart import Blueprint, Response, current_app, request

from leads import dialjobs, facebook, fields, intake, optout, queries, schema
from leads.dialer import Dialer, DialerConfig
from leads.fields import InvalidField
from leads.lead import iso_local, lead_json
from leads.outbox import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook
from leads.store import Store
from server import dashboard
from server.calltokens import subkey
from server.security import request_base, signed_urls
from server.webauth import bearer, is_local
from telemetry.logs import log_event

inflow_bp = Blueprint("inflow", __name__)

SIGNATURE_TOLERANCE_S = 300  # a signed intake older (or newer) than this is a replay: refused
OWN_AUTH = ("inflow.intake_route", "inflow.facebook_verify", "inflow.facebook_leads", "inflow.dial_status",
            "inflow.dial_amd", "inflow.dial_voicemail")
DIALER_CFG = "agentlocator.dialer_cfg"


def _env() -> Any:
    settings = getattr(current_app, "settings", None)
    return getattr(settings, "env", None) or os.environ


def _secret(name: str) -> str | None:
    return (_env().get(name) or "").strip() or None


def dialer_config() -> DialerConfig:
    """The dialer's settings (its calling hours decide an intake's first due time)."""
    store = dashboard.store_of(current_app)
    dialer = getattr(store, "dialer", None)
    if dialer is not None:
        return dialer.cfg
    cfg = current_app.extensions.get(DIALER_CFG)
    if cfg is None:
        cfg = current_app.extensions[DIALER_CFG] = DialerConfig.from_env(_env())
    return cfg


def _wake(store: Store) -> None:
    dialer: Dialer | None = getattr(store, "dialer", None)
    if dialer is not None:
        dialer.wake()


def _peer() -> str | None:
    client = request.scope.get("client")
    return client[0] if client else None


@inflow_bp.before_request
async def _guard() -> Any:
    if request.endpoint in OWN_AUTH:
        return None  # each checks its own credentials
    return await dashboard._guard()


@inflow_bp.after_request
async def _after(response: Response) -> Response:
    return await dashboard._after(response)


def _error(status: int, message: str, **extra: Any) -> Response:
    return Response(json.dumps({"error": message, **extra}, ensure_ascii=False), status,
                    content_type="application/json; charset=utf-8")


def _invalid(exc: InvalidField) -> Response:
    return _error(422, f"invalid {exc.field}: {exc.reason}", field=exc.field, reason=exc.reason)


# -- the intake ------------------------------------------------------------------------------------

def _intake_auth(body: bytes) -> str | None:
    """None when the request may post a lead, else why not."""
    token, secret = _secret("INTAKE_TOKEN"), _secret("INTAKE_SECRET")
    given = bearer(request.headers)
    if token and given is not None:
        return None if hmac.compare_digest(given.encode(), token.encode()) else "wrong bearer token"
    signature = request.headers.get(SIGNATURE_HEADER)
    if secret and signature:
        stamp = request.headers.get(TIMESTAMP_HEADER) or ""
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > SIGNATURE_TOLERANCE_S:
            return f"{TIMESTAMP_HEADER} missing or more than {SIGNATURE_TOLERANCE_S} s off"
        expected = sign_webhook(secret, int(stamp), body)
        return None if hmac.compare_digest(expected.encode(), signature.strip().encode()) else "wrong signature"
    if not token and not secret:
        return None if is_local(_peer(), request.headers) else "INTAKE_TOKEN / INTAKE_SECRET unset: local requests only"
    return "Authorization: Bearer or X-AgentLocator-Signature required"


def _submission(body: bytes) -> dict[str, Any]:
    mimetype = request.mimetype
    if mimetype == "application/json":
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("the JSON body must be an object")
        return data
    if mimetype == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    raise ValueError("send application/json or application/x-www-form-urlencoded")


async def _record(store: Store, submission: dict[str, Any], key: str | None) -> Response:
    try:
        lead = intake.parse(submission)
    except InvalidField as exc:
        log_event("INTAKE", logging.WARNING, status=422, field=exc.field, reason=exc.reason)
        return _invalid(exc)
    hours = dialer_config().hours
    try:
        recorded = await store.run(lambda: intake.record(store, lead, hours, key))
    except intake.Conflict as exc:
        return _error(409, str(exc), field="Idempotency-Key")
    except InvalidField as exc:
        return _invalid(exc)
    if recorded.dial == "queued" and not recorded.replayed:
        _wake(store)
    log_event("INTAKE", phone=recorded.phone, source=lead.source, created=recorded.created,
              replayed=recorded.replayed, dial=recorded.dial, job=recorded.job_id)
    status = 201 if recorded.created and not recorded.replayed else 200
    return Response(json.dumps(recorded.json(), ensure_ascii=False), status,
                    content_type="application/json; charset=utf-8")


@inflow_bp.post("/api/leads/intake")
async def intake_route() -> Any:
    body = await request.get_data()
    why = _intake_auth(body)
    if why is not None:
        log_event("INTAKE", logging.WARNING, status=403, error=why)
        return _error(403, why)
    try:
        submission = _submission(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(422 if request.mimetype == "application/json" else 415, str(exc)[:200], field="body")
    store = dashboard.store_of(current_app)
    return await _record(store, submission, request.headers.get("Idempotency-Key"))



# -- Facebook Lead Ads -------------------------------------------------------------------------------

def _facebook() -> facebook.FacebookConfig:
    return facebook.FacebookConfig.from_env(_env())


@inflow_bp.get("/webhooks/facebook/leads")
async def facebook_verify() -> Any:
    challenge = facebook.verify(_facebook(), request.args)
    if challenge is None:
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403, error="facebook verify token mismatch")
        return "forbidden", 403
    return Response(challenge, 200, content_type="text/plain")


@inflow_bp.post("/webhooks/facebook/leads")
async def facebook_leads() -> Any:
    cfg = _facebook()
    body = await request.get_data()
    if not facebook.signature_ok(cfg.app_secret, body, request.headers.get(facebook.SIGNATURE_HEADER)):
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                  error="invalid or missing X-Hub-Signature-256" if cfg.app_secret else "FACEBOOK_APP_SECRET unset")
        return "forbidden", 403
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return _error(400, "not JSON")
    store = dashboard.store_of(current_app)
    results = []
    for leadgen_id, value in facebook.leadgen_ids(payload):
        try:
            lead = await trio.to_thread.run_sync(facebook.fetch_lead, cfg, leadgen_id, abandon_on_cancel=True)
        except Exception as exc:  # noqa: BLE001 - Facebook delivers again on a non-200
            log_event("ERROR", logging.ERROR, where="facebook.fetch_lead", leadgen_id=leadgen_id, error=repr(exc)[:300])
            return _error(502, "the Graph API did not give the lead; deliver again")
        response = await _record(store, facebook.to_submission(lead, value), f"facebook:{leadgen_id}")
        results.append({"leadgen_id": leadgen_id, "status": response.status_code})
    return {"leads": results}


# -- Twilio's callbacks for the calls we placed --------------------------------------------------------

def _twilio_ok(params: dict[str, str]) -> bool:
    checker = dashboard._checker(current_app)
    if checker is None:
        if dashboard._insecure(current_app) or is_local(_peer(), request.headers):
            return True
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                  error="not a local request and TWILIO_AUTH_TOKEN is not set (AGENTLOCATOR_INSECURE=1 allows it)")
        return False
    public = getattr(getattr(current_app, "settings", None), "public_base_url", None)
    trusted = dashboard.web_of(current_app).proxies.trusts(_peer())
    base = request_base(public, request.scheme, request.host, request.headers, trusted=trusted)
    urls = signed_urls(base, request.path, request.query_string.decode("latin1"))
    if checker.valid(urls, params, request.headers.get("X-Twilio-Signature")):
        return True
    log_event("WEBHOOK", logging.WARNING, path=request.path, status=403, error="invalid or missing X-Twilio-Signature")
    return False


async def _dial_params() -> tuple[dict[str, str], int | None, Response | None]:
    params = dict((await request.form).items())
    if not _twilio_ok(params):
        return params, None, Response("forbidden", 403)
    job = request.args.get("job", "")
    if not job.isdigit() or len(job) > 12:
        return params, None, Response("job missing", 400)
    call_sid = params.get("CallSid", "")
    try:
        fields.call_sid(call_sid)
    except InvalidField:
        return params, None, Response("CallSid missing or malformed", 400)
    return params, int(job), None


@inflow_bp.post("/dial/status")
async def dial_status() -> Any:
    params, job, refused = await _dial_params()
    if refused is not None:
        return refused
    store = dashboard.store_of(current_app)
    cfg = dialer_config()
    status = params.get("CallStatus", "")
    state = await store.run(lambda: dialjobs.apply_status(store, job, params["CallSid"], status, cfg.retries,
                                                          cfg.hours))
    log_event("DIAL", job=job, call_sid=params["CallSid"], status=status, state=state,
              duration_s=params.get("CallDuration"))
    if state is not None:
        _wake(store)  # a retry is queued, or a call slot (MAX_OUTBOUND_CALLS) is free again
    return "", 204


@inflow_bp.post("/dial/amd")
async def dial_amd() -> Any:
    params, job, refused = await _dial_params()
    if refused is not None:
        return refused
    store = dashboard.store_of(current_app)
    answered_by = params.get("AnsweredBy", "")
    leave = await store.run(dialjobs.apply_amd, store, job, params["CallSid"], answered_by)
    log_event("DIAL", job=job, call_sid=params["CallSid"], answered_by=answered_by, voicemail=leave)
    dialer: Dialer | None = getattr(store, "dialer", None)
    if leave and dialer is not None:
        audio = _voicemail_url(job, dialer.cfg.public_base_url) if _synthesizer() is not None else None
        current_app.nursery.start_soon(dialer.voicemail, job, params["CallSid"], audio)
    return "", 204


# -- the voicemail line in the agent's own voice ----------------------------------------------------

def _synthesizer() -> Any:
    wiring = getattr(current_app, "wiring", None)
    return getattr(getattr(wiring, "call_deps", None), "synthesizer", None)


def _voicemail_sig(job: int) -> str:
    key = subkey(dashboard.web_of(current_app).master, "voicemail")
    return hmac.new(key, str(job).encode(), "sha256").hexdigest()[:32]


def _voicemail_url(job: int, base: str | None) -> str | None:
    if not base:
        return None
    return f"{base}/dial/voicemail.wav?job={job}&sig={_voicemail_sig(job)}"


@inflow_bp.route("/dial/voicemail.wav", methods=["GET", "POST"])
async def dial_voicemail() -> Any:
    """The voicemail line as the agent says it (the calls' own synthesizer), for Twilio's
    <Play>. The URL carries an HMAC of the job (AGENTLOCATOR_SECRET's key): nobody else can
    make the server synthesize anything."""
    job = request.args.get("job", "")
    sig = request.args.get("sig", "")
    if not job.isdigit() or len(job) > 12 or not hmac.compare_digest(sig.encode(), _voicemail_sig(int(job)).encode()):
        return "forbidden", 403
    store = dashboard.store_of(current_app)
    dialer: Dialer | None = getattr(store, "dialer", None)
    synthesizer = _synthesizer()
    if dialer is None or synthesizer is None:
        return "no voicemail here", 404
    pcm = bytearray()
    with trio.fail_after(20):
        async for chunk in synthesizer.synthesize(await dialer.voicemail_text(int(job))):
            pcm += chunk
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(pcm))
    return Response(out.getvalue(), 200, content_type="audio/wav")


# -- the lead API (dashboard auth) ----------------------------------------------------------------------

def _phone(raw: str) -> str:
    number = fields.phone(raw)
    if not number:
        raise InvalidField("phone", "no phone number", raw)
    return number


def lead_detail(store: Store, phone: str) -> dict[str, Any] | None:
    """The lead with its calls, dial jobs, intake history, opt-out and WhatsApp thread (blocking)."""
    leads_t, calls = schema.leads, schema.calls
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(leads_t).where(leads_t.c.phone == phone)).mappings().first()
        if row is None:
            return None
        call_rows = conn.execute(sa.select(calls).where(calls.c.phone == phone)
                                 .order_by(calls.c.started_at)).mappings().all()
    out = lead_json(row)
    out.update(source=row["source"], notes=row["notes"], created_at=iso_local(row["created_at"]))
    stopped = optout.opted_out_at(store, phone)
    return {
        "lead": out,
        "calls": [queries._call_json(c) | {"duration_s": c["duration_s"]} for c in call_rows],
        "dial_jobs": dialjobs.jobs_for(store, phone),
        "intake": intake.intake_for(store, phone),
        "opted_out": None if stopped is None else {"at": iso_local(stopped[0]), "source": stopped[1]},
        # the WhatsApp thread both ways, with delivery states (leads.whatsapp.thread)
        "messages": queries.lead_messages(store, phone),
    }


STATES = ("pending", "dialing", "calling", "done", "failed", "cancelled")


@inflow_bp.get("/api/dial_jobs")
async def api_dial_jobs() -> Any:
    """The dialer's queue: open jobs by due time (next attempts), then outcomes, newest first.
    ``?state=pending,calling`` filters; ``?limit=`` (default 500)."""
    wanted = tuple(s for s in (request.args.get("state") or "").split(",") if s)
    if any(s not in STATES for s in wanted):
        return _error(422, f"state must be among {', '.join(STATES)}", field="state")
    try:
        limit = max(1, min(int(request.args.get("limit", 500)), 5000))
    except ValueError:
        return _error(422, "limit must be a whole number", field="limit")
    store = dashboard.store_of(current_app)
    return await store.run(lambda: dialjobs.list_jobs(store, wanted, limit))


@inflow_bp.get("/api/leads/<path:raw>")
async def api_lead(raw: str) -> Any:
    if raw.endswith(("/call", "/opt_out")):
        return _error(405, "POST this")
    try:
        phone = _phone(raw)
    except InvalidField as exc:
        return _invalid(exc)
    store = dashboard.store_of(current_app)
    detail = await store.run(lead_detail, store, phone)
    if detail is None:
        return _error(404, "no such lead")
    return detail


@inflow_bp.post("/api/leads/<raw>/call")
async def api_lead_call(raw: str) -> Any:
    try:
        phone = _phone(raw)
    except InvalidField as exc:
        return _invalid(exc)
    store = dashboard.store_of(current_app)
    hours = dialer_config().hours
    due = hours.next_allowed(dt.datetime.now(dt.timezone.utc))
    job_id, status = await store.run(lambda: dialjobs.queue_call(store, phone, "operator", due))
    if status == "opted_out":
        return _error(409, "this number opted out: it is never called", field="phone")
    _wake(store)
    log_event("DIAL", job=job_id, to=phone, reason="operator", queued=status)
    return {"phone": phone, "job_id": job_id, "status": status, "due_at": iso_local(due)}


@inflow_bp.post("/api/leads/<raw>/opt_out")
async def api_lead_opt_out(raw: str) -> Any:
    try:
        phone = _phone(raw)
    except InvalidField as exc:
        return _invalid(exc)
    store = dashboard.store_of(current_app)
    await store.run(optout.opt_out, store, phone, "operator")
    log_event("DIAL", to=phone, opted_out=True, source="operator")
    return {"phone": phone, "opted_out": True}
