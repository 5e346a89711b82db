"""The dashboard blueprint on a bare Quart-Trio app: JSON shapes, protection, status callbacks."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
import sqlalchemy as sa
from quart_trio import QuartTrio

from dialog.base import LeadState, Slots
from leads import schema
from leads.base import CallInfo, CallMetrics
from leads.outbox import claim_due, record_result
from leads.store import SqlRecorder, Store
from server.dashboard import dashboard_bp
from server.webauth import is_local
from server.security import SignatureChecker

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)
PHONE = "+972501234567"


def make_app(store: Store, token: str | None = None) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.config["DASHBOARD_TOKEN"] = token or ""
    app.register_blueprint(dashboard_bp)
    return app


async def seed(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    await rec.call_started(CallInfo("CA00000000000000000000000000000001", "MZ00000000000000000000000000000001", PHONE, "+97233001122", T0))
    await rec.transcript_turn("CA00000000000000000000000000000001", "agent", "שלום! באיזה אזור אתם מחפשים?", 0, 2500, True)
    await rec.transcript_turn("CA00000000000000000000000000000001", "caller", "ברמת גן", 3000, 4200, True)
    rec.timeline_event("CA00000000000000000000000000000001", 4700, "STATE_CHANGE", to_state="PROCESSING")
    rec.timeline_event("CA00000000000000000000000000000001", 5400, "BARGE_IN", halt_ms=120)
    lead = LeadState(Slots(area="רמת גן", name="יוסי"), status="meeting_booked",
                     meeting_at=dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc))
    await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(seconds=90), "agent_hangup", "meeting_booked",
                         CallMetrics(turn_latency_ms=[700.0], asr_latency_ms=[350.0], halt_ms=[120.0],
                                     barge_ins=1, barge_ins_clean=1, heartbeats=3, turns=1, turns_to_meeting=1),
                         PHONE, lead, "סיכום")
    await rec.call_started(CallInfo("CA00000000000000000000000000000002", "MZ00000000000000000000000000000002", "+972529998877", "+97233001122", T0 + dt.timedelta(minutes=5)))


@pytest.fixture
def sqlite_store(sqlite_url: str):
    s = Store.open(sqlite_url)
    yield s
    s.close()


async def test_api_shapes_match_the_contract(sqlite_store: Store) -> None:
    await seed(sqlite_store)
    client = make_app(sqlite_store).test_client()
    calls = await (await client.get("/api/calls")).get_json()
    assert [c["call_sid"] for c in calls] == ["CA00000000000000000000000000000002", "CA00000000000000000000000000000001"]
    assert set(calls[0]) == {"call_sid", "from", "to", "started_at", "ended_at", "close_reason", "turns", "outcome"}
    assert calls[0]["ended_at"] is None  # live
    leads = await (await client.get("/api/leads")).get_json()
    assert set(leads[0]) == {"phone", "name", "area", "property_type", "rooms", "budget_ils", "deal", "timeframe",
                             "status", "meeting_at", "updated_at", "needs_person", "needs_person_reason",
                             "needs_person_at"}
    assert leads[0]["needs_person"] is False and leads[0]["needs_person_reason"] is None
    assert leads[0]["meeting_at"] == "2026-11-30T10:00:00+02:00"
    detail = await (await client.get("/api/calls/CA00000000000000000000000000000001")).get_json()
    assert set(detail) == set(calls[0]) | {"transcript", "metrics"}
    assert set(detail["metrics"]) == {"turn_latency_ms", "asr_latency_ms", "halt_ms", "barge_ins",
                                      "barge_ins_clean", "heartbeats", "false_interruptions", "resumed",
                                      "ignored", "continuations", "talk_over_ms", "dead_air_ms"}
    assert set(detail["transcript"][0]) == {"speaker", "text", "t_start_ms", "t_end_ms", "heard_fully"}
    assert (await client.get("/api/calls/nope")).status_code == 404
    timeline = await (await client.get("/api/calls/CA00000000000000000000000000000001/timeline")).get_json()
    assert [e["kind"] for e in timeline] == ["STATE_CHANGE", "BARGE_IN"]
    series = await (await client.get("/api/series")).get_json()
    assert series["targets"] == {"turn_latency_ms": 1200, "asr_latency_ms": 700, "halt_ms": 200,
                                 "talk_over_ms": 100, "dead_air_ms": 2000}
    [point] = series["points"]  # only the finished call
    assert (point["turn_latency_ms"], point["barge_in_success_pct"], point["heartbeats_per_min"]) == (700.0, 100.0, 2.0)
    assert point["disconnect"] is False
    assert point["turn_taking_pct"] == 0.0  # the seeded metrics report no state cycles
    outbox = await (await client.get("/api/outbox")).get_json()
    assert [(o["channel"], o["state"]) for o in outbox] == [("whatsapp", "pending")]


# Three finished calls with known turn-taking figures (the seeded CA00000000000000000000000000000001 above has none of them).
TURN_TAKING = {
    "CA000000000000000000000000000c0001": CallMetrics(turns=4, false_interruptions=2, resumed=2, ignored=1, continuations=1,
                       talk_over_ms=[40.0, 260.0, 80.0], dead_air_ms=[900.0, 1500.0, 2600.0, 700.0]),
    "CA000000000000000000000000000c0002": CallMetrics(turns=3, false_interruptions=0, resumed=1, talk_over_ms=[],
                       dead_air_ms=[1100.0, 850.0]),
    # 25 agent turns with talk-over: the 95th percentile is the 24th smallest, not the largest
    "CA000000000000000000000000000c0003": CallMetrics(turns=25, false_interruptions=1, talk_over_ms=[float(20 * i) for i in range(25, 0, -1)],
                       dead_air_ms=[]),
}


def expected_figures(m: CallMetrics) -> dict[str, object]:
    talk = sorted(m.talk_over_ms) or [0.0]
    rank = -(-95 * len(talk) // 100)  # nearest rank: ceil(0.95 n)
    return {
        "false_interruptions": m.false_interruptions, "resumed": m.resumed, "ignored": m.ignored,
        "continuations": m.continuations,
        "talk_over_max_ms": talk[-1], "talk_over_p95_ms": talk[rank - 1],
        "dead_air_max_ms": max(m.dead_air_ms) if m.dead_air_ms else None,
        "dead_air_mean_ms": round(sum(m.dead_air_ms) / len(m.dead_air_ms), 1) if m.dead_air_ms else None,
    }


async def seed_turn_taking(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    for i, (sid, m) in enumerate(TURN_TAKING.items()):
        start = T0 + dt.timedelta(minutes=10 * (i + 1))
        await rec.call_started(CallInfo(sid, "MZ" + sid[2:], f"+97250000000{i}", "+97233001122", start))
        await rec.call_ended(sid, start + dt.timedelta(seconds=60), "twilio_stop", "qualified", m,
                             f"+97250000000{i}", LeadState(Slots()), "סיכום")


async def test_turn_taking_figures_in_the_api(sqlite_store: Store) -> None:
    await seed(sqlite_store)
    await seed_turn_taking(sqlite_store)
    client = make_app(sqlite_store).test_client()
    # /api/calls/<sid>: the stored figures as they were measured
    for sid, m in TURN_TAKING.items():
        metrics = (await (await client.get(f"/api/calls/{sid}")).get_json())["metrics"]
        assert {k: metrics[k] for k in ("false_interruptions", "resumed", "ignored", "continuations",
                                        "talk_over_ms", "dead_air_ms")} == {
            "false_interruptions": m.false_interruptions, "resumed": m.resumed, "ignored": m.ignored,
            "continuations": m.continuations, "talk_over_ms": m.talk_over_ms, "dead_air_ms": m.dead_air_ms,
        }
    # /api/series: one point per finished call, oldest first
    points = (await (await client.get("/api/series")).get_json())["points"]
    assert [p["call_sid"] for p in points] == ["CA00000000000000000000000000000001", *TURN_TAKING]
    for point, m in zip(points[1:], TURN_TAKING.values()):
        assert {k: point[k] for k in expected_figures(m)} == expected_figures(m), point["call_sid"]
    assert (points[1]["talk_over_max_ms"], points[1]["talk_over_p95_ms"]) == (260.0, 260.0)
    assert (points[1]["dead_air_max_ms"], points[1]["dead_air_mean_ms"]) == (2600.0, 1425.0)
    assert (points[2]["talk_over_max_ms"], points[2]["talk_over_p95_ms"]) == (0.0, 0.0)  # none at all
    assert (points[3]["talk_over_max_ms"], points[3]["talk_over_p95_ms"]) == (500.0, 480.0)
    assert points[3]["dead_air_max_ms"] is None and points[3]["dead_air_mean_ms"] is None


async def test_calls_stored_before_the_turn_taking_figures(sqlite_store: Store) -> None:
    """A call whose stored metrics predate the figures: the API lists them empty, the chart
    points leave them out (None) rather than counting zeros."""
    await seed(sqlite_store)
    with sqlite_store.engine.begin() as conn:
        conn.execute(schema.calls.update().where(schema.calls.c.call_sid == "CA00000000000000000000000000000001").values(metrics={
            "turn_latency_ms": [700.0], "asr_latency_ms": [350.0], "halt_ms": [120.0], "barge_ins": 1,
            "barge_ins_clean": 1, "heartbeats": 3, "turns": 1}))
    client = make_app(sqlite_store).test_client()
    metrics = (await (await client.get("/api/calls/CA00000000000000000000000000000001")).get_json())["metrics"]
    assert (metrics["false_interruptions"], metrics["talk_over_ms"], metrics["dead_air_ms"]) == (0, [], [])
    [point] = (await (await client.get("/api/series")).get_json())["points"]
    assert all(point[k] is None for k in ("false_interruptions", "resumed", "ignored", "continuations",
                                          "talk_over_max_ms", "talk_over_p95_ms", "dead_air_max_ms",
                                          "dead_air_mean_ms"))
    assert point["turn_latency_ms"] == 700.0


async def test_pages_render_with_vendored_assets(sqlite_store: Store) -> None:
    client = make_app(sqlite_store).test_client()
    page = await (await client.get("/dashboard")).get_data(as_text=True)
    body = page.split('<body data-page="dashboard">')[1]
    assert 'dir="rtl"' in page and "uPlot.iife.min.js" in page and "http" not in body and "<script>" not in body
    assert (await client.get("/dashboard/static/uPlot.iife.min.js")).status_code == 200
    assert (await client.get("/dashboard/static/dashboard.js")).status_code == 200
    call = await (await client.get("/dashboard/calls/CA00000000000000000000000000000001")).get_data(as_text=True)
    # no inline script (the CSP forbids it): the page names itself, dashboard.js starts it
    assert 'data-page="call" data-call-sid="CA00000000000000000000000000000001"' in call and "<script>" not in call


async def test_token_protects_dashboard_and_api(sqlite_store: Store) -> None:
    client = make_app(sqlite_store, token="s3cret").test_client()
    denied = await client.get("/api/calls")
    assert denied.status_code == 401 and "Bearer" in denied.headers["WWW-Authenticate"]
    page = await client.get("/dashboard")
    assert page.status_code == 401 and 'action="/dashboard/login"' in await page.get_data(as_text=True)
    assert (await client.get("/api/calls", headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await client.get("/api/calls", headers={"Authorization": "Bearer s3cret"})).status_code == 200
    # the token is not taken from API URLs, nor as a Basic password (browsers replay those)
    assert (await client.get("/api/calls?token=s3cret")).status_code == 401
    basic = base64.b64encode(b"owner:s3cret").decode()
    assert (await client.get("/dashboard", headers={"Authorization": f"Basic {basic}"})).status_code == 401
    # a browser signs in once and is then served by its cookie
    signed_in = await client.post("/dashboard/login", form={"token": "s3cret"})
    assert signed_in.status_code == 303 and "al_session=" in signed_in.headers["Set-Cookie"]
    assert (await client.get("/api/calls")).status_code == 200


def test_without_a_token_only_local_requests() -> None:
    assert is_local("127.0.0.1", {})
    assert is_local("::1", {})
    assert not is_local("10.0.0.7", {})
    assert is_local(None, {})  # unix socket / in-process
    # A local proxy (or tunnel) forwarding an outside client is not a local request.
    assert not is_local("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"})
    assert not is_local("127.0.0.1", {"X-Real-IP": "127.0.0.1"})


async def test_remote_request_refused_without_token(sqlite_store: Store) -> None:
    client = make_app(sqlite_store).test_client()
    resp = await client.get("/api/leads", scope_base={"client": ("198.51.100.4", 5555)})
    assert resp.status_code == 403


async def test_whatsapp_status_callback_updates_delivery_state(sqlite_store: Store, monkeypatch) -> None:
    await seed(sqlite_store)
    [item] = claim_due(sqlite_store, dt.datetime.now(dt.timezone.utc))
    record_result(sqlite_store, item.id, state="sent", provider_id="SM00000000000000000000000000000123")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "authtok")
    client = make_app(sqlite_store).test_client()
    form = {"MessageSid": "SM00000000000000000000000000000123", "MessageStatus": "delivered"}
    assert (await client.post("/whatsapp_status", form=form)).status_code == 403  # unsigned
    sig = SignatureChecker("authtok").sign("http://localhost/whatsapp_status", form)
    resp = await client.post("/whatsapp_status", form=form, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 204
    # A late "sent" after "delivered" does not move the state back.
    late = {"MessageSid": "SM00000000000000000000000000000123", "MessageStatus": "sent"}
    sig = SignatureChecker("authtok").sign("http://localhost/whatsapp_status", late)
    assert (await client.post("/whatsapp_status", form=late, headers={"X-Twilio-Signature": sig})).status_code == 204
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(sa.select(schema.outbox.c.state)).scalar() == "delivered"
