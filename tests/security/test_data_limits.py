"""Every stored field is validated and capped at the store boundary, the same on SQLite and
PostgreSQL (leads/fields.py holds the rules and the limits).

Identifiers are checked by format and rejected (InvalidField, naming the field) before any
SQL runs; phone numbers are normalised to E.164 (≤ 16 characters) or rejected; free text is
cut to its documented length. The recorder the call session talks to turns a rejection into
an ERROR line and the call goes on.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from dialog.base import LeadState, Slots
from leads import fields, queries, schema
from leads.base import CallInfo, CallMetrics
from leads.fields import InvalidField
from leads.store import SqlRecorder, Store

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_leads = _load(ROOT / "tests/leads/conftest.py", "agentlocator_sec_leads_fixtures")
postgres_server, postgres_db, postgres_url, sqlite_url = (
    _leads.postgres_server, _leads.postgres_db, _leads.postgres_url, _leads.sqlite_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    s = Store.open(request.getfixturevalue(f"{request.param}_url"))
    try:
        yield s
    finally:
        s.close()


T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)
SID = "CA" + "0123456789abcdef" * 2
STREAM = "MZ" + "fedcba9876543210" * 2
PHONE = "+972501234567"
HUGE = "9" * 10_000_000
HUGE_TEXT = "א" * 10_000_000


def info(sid: str = SID, stream: str = STREAM, frm: str = PHONE, to: str = "+97233001122") -> CallInfo:
    return CallInfo(call_sid=sid, stream_sid=stream, from_number=frm, to_number=to, started_at=T0)


def rows(store: Store, table: sa.Table) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table)).mappings()]


BAD_CALL_SIDS = ["CA1", "CA0001", "", "CA" + "g" * 32, "CA" + "0" * 33, "ca" + "0" * 32, "MZ" + "0" * 32,
                 "CAsimulated0000000000000000000000", "CA' OR '1'='1", "CA" + "0" * 32 + "\n", HUGE]


@pytest.mark.parametrize("bad", BAD_CALL_SIDS, ids=lambda v: repr(v[:12]) + f"/{len(v)}")
def test_call_sids_are_checked_by_format_and_nothing_is_written(store: Store, bad: str) -> None:
    writes: list[Callable[[], object]] = [
        lambda: store.record_call_start(info(sid=bad)),
        lambda: store.record_turn(bad, "caller", "שלום", 0, 900, True),
        lambda: store.record_timeline(bad, [(10, "EOU", {})]),
        lambda: store.record_lead(bad, PHONE, LeadState(Slots(area="חיפה"))),
        lambda: store.record_call_end(bad, T0, "twilio_stop", "new", CallMetrics(), PHONE, LeadState(), "סיכום"),
    ]
    for write in writes:
        with pytest.raises(InvalidField) as caught:
            write()
        assert caught.value.field == "call_sid"
        assert len(str(caught.value)) < 200  # the message names the field, not the whole value
    for table in (schema.calls, schema.leads, schema.transcripts, schema.timeline, schema.outbox):
        assert rows(store, table) == []


@pytest.mark.parametrize("bad", ["MZ1", "CA" + "0" * 32, "MZ" + "x" * 32, HUGE])
def test_stream_sids_are_checked_by_format(store: Store, bad: str) -> None:
    with pytest.raises(InvalidField) as caught:
        store.record_call_start(info(stream=bad))
    assert caught.value.field == "stream_sid"
    assert rows(store, schema.calls) == []


def test_account_sid_format() -> None:
    assert fields.account_sid("AC" + "ab" * 16) == "AC" + "ab" * 16
    for bad in ("AC1", "CA" + "0" * 32, HUGE):
        with pytest.raises(InvalidField):
            fields.account_sid(bad)


@pytest.mark.parametrize("raw,want", [
    (PHONE, PHONE), ("050-123-4567", PHONE), ("+972 50 123 4567", PHONE), (" 0501234567 ", PHONE),
    ("+1 (415) 523-8886", "+14155238886"), ("", ""), ("anonymous", ""), ("Restricted", ""),
    ("+266696687", ""), ("+7378742833", ""), ("+8656696", ""), ("+2562533", ""), ("+86282452253", ""),
])
def test_phone_numbers_are_normalised_to_e164(store: Store, raw: str, want: str) -> None:
    store.record_call_start(info(frm=raw, to=raw))
    [call] = rows(store, schema.calls)
    assert (call["from_number"], call["to_number"]) == (want, want)
    assert fields.phone(raw) == want and len(want) <= fields.PHONE_MAX


@pytest.mark.parametrize("bad", ["client:alice", "sip:bob@example.com", "12", "+972" + "5" * 20, "+0501234567",
                                 "phone me", "+972501234567; DROP TABLE leads", HUGE])
def test_numbers_that_are_not_phone_numbers_are_rejected(store: Store, bad: str) -> None:
    for field, write in [
        ("from_number", lambda: store.record_call_start(info(frm=bad))),
        ("to_number", lambda: store.record_call_start(info(to=bad))),
        ("phone", lambda: store.record_lead(SID, bad, LeadState(Slots(area="חיפה")))),
        ("phone", lambda: store.record_call_end(SID, T0, "twilio_stop", "new", CallMetrics(), bad, LeadState(), "x")),
    ]:
        with pytest.raises(InvalidField) as caught:
            write()
        assert caught.value.field == field
    assert rows(store, schema.calls) == [] and rows(store, schema.leads) == []


def test_the_lead_is_keyed_by_the_normalised_number(store: Store) -> None:
    store.record_call_start(info())
    store.record_lead(SID, "050-123-4567", LeadState(Slots(area="חיפה")))
    store.record_call_end(SID, T0 + dt.timedelta(minutes=1), "twilio_stop", "new", CallMetrics(), "+972 50 123 4567",
                          LeadState(Slots(area="חיפה")), "סיכום")
    assert [r["phone"] for r in rows(store, schema.leads)] == [PHONE]
    assert {r["phone"] for r in rows(store, schema.outbox)} == {PHONE}


def test_free_text_is_capped(store: Store) -> None:
    store.record_call_start(info())
    store.record_turn(SID, "caller", HUGE_TEXT, 0, 2**40, True)
    store.record_timeline(SID, [(2**40, "K" * 10_000, {"text": HUGE_TEXT, "nested": {"a": [HUGE_TEXT] * 3},
                                                       **{f"k{i}": i for i in range(1000)}})] * 3)
    lead = LeadState(Slots(area=HUGE_TEXT, property_type=HUGE_TEXT, name=HUGE_TEXT, timeframe=HUGE_TEXT,
                           rooms=3.0, budget_ils=2_000_000))
    store.record_lead(SID, PHONE, lead, whatsapp_summary=HUGE_TEXT)
    metrics = CallMetrics(turns=3, turn_latency_ms=[500.0] * 100_000)
    store.record_call_end(SID, T0 + dt.timedelta(minutes=1), "R" * 10_000_000, "O" * 10_000_000, metrics,
                          PHONE, lead, HUGE_TEXT)
    [call] = rows(store, schema.calls)
    assert len(call["close_reason"]) == fields.CLOSE_REASON_MAX and len(call["outcome"]) == fields.OUTCOME_MAX
    assert len(call["pending_summary"]) <= fields.SUMMARY_MAX
    assert len(json.dumps(call["metrics"])) < 64 * 1024
    [turn] = rows(store, schema.transcripts)
    assert len(turn["text"]) == fields.TRANSCRIPT_TEXT_MAX and turn["t_end_ms"] == fields.INT_MAX
    for event in rows(store, schema.timeline):
        assert len(event["kind"]) <= fields.TIMELINE_KIND_MAX
        assert len(json.dumps(event["detail"], ensure_ascii=False)) <= fields.TIMELINE_DETAIL_MAX
    [saved] = rows(store, schema.leads)
    for name in ("name", "area", "property_type", "timeframe"):
        assert len(saved[name]) == fields.SLOT_TEXT_MAX, name
    for item in rows(store, schema.outbox):
        assert len(item["body"]) <= fields.SUMMARY_MAX


@pytest.mark.parametrize("bad", [{"speaker": "robot"}, {"speaker": HUGE}])
def test_transcript_speaker_is_one_of_two(store: Store, bad: dict) -> None:
    store.record_call_start(info())
    with pytest.raises(InvalidField) as caught:
        store.record_turn(SID, bad["speaker"], "x", 0, 1, True)
    assert caught.value.field == "speaker"


@pytest.mark.parametrize("slots,field", [
    (Slots(rooms=float("nan")), "rooms"), (Slots(rooms=1e12), "rooms"), (Slots(budget_ils=10**30), "budget_ils"),
    (Slots(budget_ils=-5), "budget_ils"),
])
def test_numeric_slots_out_of_range_are_rejected(store: Store, slots: Slots, field: str) -> None:
    store.record_call_start(info())
    with pytest.raises(InvalidField) as caught:
        store.record_lead(SID, PHONE, LeadState(slots))
    assert caught.value.field == field
    assert rows(store, schema.leads) == []


def test_a_huge_caller_id_does_not_grow_the_sqlite_file(sqlite_url: str) -> None:
    store = Store.open(sqlite_url)
    rec = SqlRecorder(store)
    import trio

    async def attack() -> None:
        await rec.call_started(info(frm=HUGE, to=HUGE))
        lead = LeadState(Slots(area=HUGE_TEXT, name=HUGE_TEXT))
        await rec.transcript_turn(SID, "caller", HUGE_TEXT, 0, 100, True)
        await rec.lead_updated(SID, HUGE, lead, HUGE_TEXT)
        await rec.call_ended(SID, T0 + dt.timedelta(seconds=30), "twilio_stop", "new", CallMetrics(), HUGE, lead, HUGE_TEXT)

    trio.run(attack)
    store.close()
    path = sa.make_url(sqlite_url).database
    size = sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    assert size < 2 * 1024 * 1024, size


# -- the recorder: a rejected write is an ERROR line, and the call goes on ---------------------


@pytest.fixture
def log_lines():  # type: ignore[no-untyped-def]
    from telemetry import logs

    stream = io.StringIO()
    logs.configure("INFO", stream, env={})
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.configure("INFO", io.StringIO(), env={})


async def test_the_recorder_logs_rejections_and_keeps_the_call(store: Store, log_lines) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    await rec.call_started(info(frm="client:alice"))  # must not raise
    await rec.transcript_turn(SID, "caller", "שלום", 0, 900, True)
    await rec.lead_updated(SID, "client:alice", LeadState(Slots(area="חיפה")))
    await rec.call_ended(SID, T0 + dt.timedelta(seconds=30), "twilio_stop", "new", CallMetrics(turns=1),
                         "client:alice", LeadState(Slots(area="חיפה")), "סיכום")
    errors = [e for e in log_lines() if e["event"] == "ERROR"]
    assert [e["where"] for e in errors] == ["store.call_started", "store.lead_updated", "store.call_ended"]
    assert all("from_number" in e["error"] or "phone" in e["error"] for e in errors)
    assert all(e["call_sid"] == SID for e in errors)
    # the call itself is stored and closed, without the number it could not read and without a lead
    [call] = rows(store, schema.calls)
    assert (call["from_number"], call["close_reason"], call["phone"]) == ("", "twilio_stop", None)
    assert rows(store, schema.leads) == [] and rows(store, schema.outbox) == []
    assert [t["text"] for t in rows(store, schema.transcripts)] == ["שלום"]


async def test_the_recorder_survives_an_invalid_call_sid(store: Store, log_lines) -> None:
    rec = SqlRecorder(store)
    for sid in ("CA1", HUGE):
        await rec.call_started(info(sid=sid))
        await rec.transcript_turn(sid, "caller", "שלום", 0, 900, True)
        rec.timeline_event(sid, 10, "EOU")
        await rec.lead_updated(sid, PHONE, LeadState(Slots(area="חיפה")))
        await rec.call_ended(sid, T0, "twilio_stop", "new", CallMetrics(), PHONE, LeadState(), "x")
    errors = [e for e in log_lines() if e["event"] == "ERROR"]
    assert errors and all("call_sid" in e["error"] for e in errors)
    assert max(len(json.dumps(e)) for e in errors) < 8 * 1024
    assert rows(store, schema.calls) == [] and rec._timeline == {}


# -- the same outcome on both backends ---------------------------------------------------------

SCENARIOS: list[tuple[str, Callable[[Store], object]]] = [
    ("huge from", lambda s: s.record_call_start(info(frm=HUGE))),
    ("huge to", lambda s: s.record_call_start(info(to=HUGE))),
    ("bad call sid", lambda s: s.record_call_start(info(sid="CA1"))),
    ("bad stream sid", lambda s: s.record_call_start(info(stream="MZ1"))),
    ("local from", lambda s: s.record_call_start(info(frm="050-123-4567"))),
    ("anonymous", lambda s: s.record_call_start(info(sid="CA" + "1" * 32, frm="anonymous"))),
    ("huge turn", lambda s: s.record_turn(SID, "caller", HUGE_TEXT, 0, 2**40, True)),
    ("huge timeline", lambda s: s.record_timeline(SID, [(2**40, "X" * 100, {"t": HUGE_TEXT})])),
    ("huge slots", lambda s: s.record_lead(SID, "050-123-4567", LeadState(Slots(area=HUGE_TEXT, name=HUGE_TEXT)), HUGE_TEXT)),
    ("huge lead phone", lambda s: s.record_lead(SID, HUGE, LeadState(Slots(area="x")))),
    ("bad rooms", lambda s: s.record_lead(SID, PHONE, LeadState(Slots(rooms=float("inf"))))),
    ("huge end", lambda s: s.record_call_end(SID, T0 + dt.timedelta(minutes=2), "R" * 10_000, "O" * 10_000,
                                             CallMetrics(turns=2**40, halt_ms=[1.0] * 10_000), PHONE,
                                             LeadState(Slots(timeframe=HUGE_TEXT)), HUGE_TEXT)),
]


def _outcomes(store: Store) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, write in SCENARIOS:
        try:
            write(store)
            out[name] = "ok"
        except InvalidField as exc:
            out[name] = f"invalid {exc.field}"
        except Exception as exc:  # noqa: BLE001 - a DB error is an outcome that must not differ
            out[name] = f"error {type(exc).__name__}"
    skip = {"id", "started_at", "last_activity_at", "ended_at", "created_at", "updated_at", "next_attempt_at",
            "meeting_at", "owner", "claimed_by"}  # owner: each store is its own instance
    for table in (schema.calls, schema.leads, schema.transcripts, schema.timeline, schema.outbox):
        out[table.name] = sorted(
            (json.dumps({k: v for k, v in r.items() if k not in skip}, sort_keys=True, ensure_ascii=False, default=str)
             for r in rows(store, table)))
    return out


@pytest.mark.postgres
def test_the_same_inputs_give_the_same_outcome_on_sqlite_and_postgresql(sqlite_url: str, postgres_url: str) -> None:
    results = {}
    for name, url in (("sqlite", sqlite_url), ("postgres", postgres_url)):
        s = Store.open(url)
        try:
            results[name] = _outcomes(s)
        finally:
            s.close()
    assert results["sqlite"] == results["postgres"]
    sq = results["sqlite"]
    assert sq["huge from"] == "invalid from_number" and sq["bad call sid"] == "invalid call_sid"
    assert sq["huge turn"] == "ok" and sq["huge end"] == "ok" and sq["huge lead phone"] == "invalid phone"


# -- what the dashboard API serves stays small -----------------------------------------------


async def test_api_responses_stay_small_after_oversized_input(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    for i in range(20):
        sid = f"CA{i:032x}"
        await rec.call_started(info(sid=sid, stream=f"MZ{i:032x}", frm=HUGE if i % 2 else PHONE, to=HUGE))
        await rec.transcript_turn(sid, "caller", HUGE_TEXT, 0, 100, True)
        lead = LeadState(Slots(area=HUGE_TEXT, name=HUGE_TEXT, property_type=HUGE_TEXT, timeframe=HUGE_TEXT))
        await rec.lead_updated(sid, f"+97250{i:07d}", lead, HUGE_TEXT)
        await rec.call_ended(sid, T0 + dt.timedelta(minutes=1), "R" * 10_000, "O" * 10_000, CallMetrics(),
                             f"+97250{i:07d}", lead, HUGE_TEXT)
    calls = json.dumps(queries.list_calls(store), ensure_ascii=False).encode()
    leads_ = json.dumps(queries.list_leads(store), ensure_ascii=False).encode()
    detail = json.dumps(queries.call_detail(store, f"CA{1:032x}"), ensure_ascii=False).encode()
    assert len(calls) < 20 * 1024 and len(leads_) < 40 * 1024 and len(detail) < 16 * 1024
    assert queries.call_detail(store, HUGE) is None  # an invalid SID is simply not found

    # and through the routes themselves
    test_dashboard = _load(ROOT / "tests/leads/test_dashboard.py", "agentlocator_sec_test_dashboard")
    client = test_dashboard.make_app(store).test_client()
    for path in ("/api/calls", "/api/leads"):
        response = await client.get(path)
        assert response.status_code == 200
        assert len(await response.get_data()) < 64 * 1024, path  # Hebrew letters as JSON escapes: 6 bytes each
