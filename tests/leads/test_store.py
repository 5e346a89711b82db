"""The store on SQLite and on a real PostgreSQL: calls, leads, transcripts, outbox rows."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import trio

from dialog.base import LeadState, Slots
from leads import queries, schema
from leads.base import CallInfo, CallMetrics
from leads.migrations import MIGRATIONS, applied_versions, migrate
from leads.store import SqlRecorder, Store

import pytest

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)
JLM_MEETING = dt.datetime(2026, 11, 29, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def info(sid: str = "CA00000000000000000000000000000001", started: dt.datetime = T0, phone: str = "+972501234567") -> CallInfo:
    return CallInfo(call_sid=sid, stream_sid="MZ" + sid[2:], from_number=phone, to_number="+97233001122",
                    started_at=started)


def outbox_rows(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id)).mappings()]


def test_migrations_are_versioned_and_run_once(store: Store) -> None:
    assert applied_versions(store.engine) == {v for v, _, _ in MIGRATIONS}
    assert migrate(store.engine) == []
    again = Store.open(str(store.engine.url.render_as_string(hide_password=False)))
    again.close()
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.schema_version)).scalar() == len(MIGRATIONS)


def test_sqlite_runs_in_wal_mode(sqlite_url: str) -> None:
    s = Store.open(sqlite_url)
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    s.close()


async def test_a_call_recorded_as_it_goes(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=True)
    await rec.call_started(info())
    assert queries.list_calls(store) == [{
        "call_sid": "CA00000000000000000000000000000001", "from": "+972501234567", "to": "+97233001122",
        "started_at": "2026-11-26T10:00:00+02:00", "ended_at": None, "close_reason": None,
        "turns": 0, "outcome": None,
    }]
    await rec.transcript_turn("CA00000000000000000000000000000001", "agent", "שלום, כאן AgentLocator. באיזה אזור אתם מחפשים?", 0, 3100, True)
    await rec.transcript_turn("CA00000000000000000000000000000001", "caller", "בתל אביב, דירת שלושה חדרים", 3900, 6200, True)
    rec.timeline_event("CA00000000000000000000000000000001", 6650, "STATE_CHANGE", to_state="PROCESSING")
    lead = LeadState(Slots(area="תל אביב", property_type="דירה", rooms=3))
    await rec.lead_updated("CA00000000000000000000000000000001", "+972501234567", lead)
    # Mid-call the lead is already there, and the follow-up is held (not due) in the outbox.
    [saved] = queries.list_leads(store)
    assert (saved["area"], saved["rooms"], saved["status"]) == ("תל אביב", 3.0, "new")
    [held] = outbox_rows(store)
    assert (held["state"], held["channel"], held["next_attempt_at"]) == ("held", "whatsapp", None)
    assert "תל אביב" in held["body"]

    lead.slots.budget_ils = 2_500_000
    lead.status = "meeting_booked"
    lead.meeting_at = JLM_MEETING
    metrics = CallMetrics(turn_latency_ms=[640.0, 810.0], asr_latency_ms=[300.0, 420.0], halt_ms=[120.0],
                          barge_ins=1, barge_ins_clean=1, heartbeats=4, turns=1, turns_to_meeting=1,
                          false_interruptions=1, resumed=1, ignored=2, continuations=1,
                          talk_over_ms=[60.0, 140.0], dead_air_ms=[980.5, 1210.0])
    await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(minutes=2), "agent_hangup", "meeting_booked", metrics,
                         "+972501234567", lead, "סיכום: פגישה ביום ראשון 10:30")

    detail = queries.call_detail(store, "CA00000000000000000000000000000001")
    assert detail["ended_at"] == "2026-11-26T10:02:00+02:00"
    assert (detail["close_reason"], detail["outcome"], detail["turns"]) == ("agent_hangup", "meeting_booked", 1)
    assert [t["speaker"] for t in detail["transcript"]] == ["agent", "caller"]
    assert detail["transcript"][1] == {"speaker": "caller", "text": "בתל אביב, דירת שלושה חדרים",
                                       "t_start_ms": 3900, "t_end_ms": 6200, "heard_fully": True}
    assert detail["metrics"] == {"turn_latency_ms": [640.0, 810.0], "asr_latency_ms": [300.0, 420.0],
                                 "halt_ms": [120.0], "barge_ins": 1, "barge_ins_clean": 1, "heartbeats": 4,
                                 "false_interruptions": 1, "resumed": 1, "ignored": 2, "continuations": 1,
                                 "talk_over_ms": [60.0, 140.0], "dead_air_ms": [980.5, 1210.0]}
    assert queries.call_timeline(store, "CA00000000000000000000000000000001") == [{"t_ms": 6650, "kind": "STATE_CHANGE",
                                                    "detail": {"to_state": "PROCESSING"}}]
    [lead_row] = queries.list_leads(store)
    assert lead_row["status"] == "meeting_booked"
    assert lead_row["meeting_at"] == "2026-11-29T10:30:00+02:00"
    assert lead_row["budget_ils"] == 2_500_000
    rows = outbox_rows(store)
    assert [(r["channel"], r["state"]) for r in rows] == [("whatsapp", "pending"), ("webhook", "pending")]
    assert rows[0]["body"] == "סיכום: פגישה ביום ראשון 10:30"


async def test_repeat_caller_updates_the_same_lead(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    phone = "+972541112233"
    await rec.call_started(info("CA00000000000000000000000000000001", phone=phone))
    first = LeadState(Slots(name="דנה", area="חיפה", budget_ils=1_800_000), status="qualified")
    await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(minutes=1), "twilio_stop", "qualified", CallMetrics(turns=3),
                         phone, first, "סיכום 1")
    await rec.call_started(info("CA00000000000000000000000000000002", started=T0 + dt.timedelta(days=1), phone=phone))
    second = LeadState(Slots(area="קריות"))  # new conversation: only the area changed so far
    await rec.lead_updated("CA00000000000000000000000000000002", phone, second)
    [lead] = queries.list_leads(store)
    assert (lead["name"], lead["area"], lead["budget_ils"], lead["status"]) == ("דנה", "קריות", 1_800_000, "qualified")
    second.status = "lost"
    await rec.call_ended("CA00000000000000000000000000000002", T0 + dt.timedelta(days=1, minutes=1), "twilio_stop", "lost", CallMetrics(turns=1),
                         phone, second, "סיכום 2")
    [lead] = queries.list_leads(store)
    assert lead["status"] == "lost"
    assert [c["call_sid"] for c in queries.list_calls(store)] == ["CA00000000000000000000000000000002", "CA00000000000000000000000000000001"]
    # One WhatsApp per call; no webhook without LEAD_WEBHOOK_URL.
    assert [(r["key"], r["state"]) for r in outbox_rows(store)] == [("whatsapp:CA00000000000000000000000000000001", "pending"), ("whatsapp:CA00000000000000000000000000000002", "pending")]


async def test_call_end_twice_queues_one_follow_up(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    await rec.call_started(info())
    lead = LeadState(Slots(area="חולון"))
    for _ in range(2):
        await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(seconds=30), "ws_drop", "dropped", CallMetrics(),
                             "+972501234567", lead, "סיכום")
    assert len(outbox_rows(store)) == 1


def _url(store: Store) -> str:
    return store.engine.url.render_as_string(hide_password=False)


def _expire_lease(store: Store, instance_id: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(schema.instances.update().where(schema.instances.c.id == instance_id).values(
            expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))


async def test_recovery_closes_a_dead_instances_calls_and_releases_their_follow_up(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=True)
    await rec.call_started(info())
    lead = LeadState(Slots(area="רמת גן", property_type="דירה"), status="qualified")
    await rec.lead_updated("CA00000000000000000000000000000001", "+972501234567", lead, whatsapp_summary="סיכום חלקי: רמת גן, דירה")
    assert queries.list_calls(store)[0]["ended_at"] is None  # live
    other = Store.open(_url(store))  # a second instance on the same database
    try:
        # The first one's lease is valid: nothing of it is touched, by either instance.
        assert other.recover_interrupted(lead_webhook=True) == []
        assert store.recover_interrupted(lead_webhook=True) == []
        _expire_lease(store, store.instance_id)  # it stopped renewing (killed)
        # Expiry is only believed by an instance whose own lease has held for a while (the keeper says so).
        assert other.recover_interrupted(lead_webhook=True, trust_expiry=False) == []
        assert other.recover_interrupted(lead_webhook=True) == ["CA00000000000000000000000000000001"]
        [call] = queries.list_calls(store)
        assert (call["close_reason"], call["outcome"]) == ("server_restart", "interrupted")
        assert call["ended_at"] is not None
        rows = outbox_rows(store)
        assert [(r["channel"], r["state"]) for r in rows] == [("whatsapp", "pending"), ("webhook", "pending")]
        assert rows[0]["body"] == "סיכום חלקי: רמת גן, דירה"
        assert other.recover_interrupted(lead_webhook=True) == []
        with store.engine.connect() as conn:  # the dead lease is cleared away
            assert conn.execute(sa.select(schema.instances.c.id)).scalars().all() == [other.instance_id]
    finally:
        other.close()


async def test_a_live_instances_quiet_calls_are_left_alone(store: Store) -> None:
    rec = SqlRecorder(store)
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    await rec.call_started(info(started=long_ago))  # no activity for hours, but its server lives
    other = Store.open(_url(store))
    try:
        assert other.recover_interrupted(legacy_before=dt.datetime.now(dt.timezone.utc)) == []
        assert queries.list_calls(store)[0]["ended_at"] is None
    finally:
        other.close()


async def test_calls_of_a_cleanly_closed_instance_are_recovered_at_once(store: Store) -> None:
    first = Store.open(_url(store))
    await SqlRecorder(first).call_started(info())
    first.close()  # gave its lease up with a call still open (its process is going away)
    assert store.recover_interrupted(trust_expiry=False) == ["CA00000000000000000000000000000001"]


async def test_calls_written_before_leases_are_recovered_by_their_age(store: Store) -> None:
    await SqlRecorder(store).call_started(info(started=dt.datetime.now(dt.timezone.utc)))
    with store.engine.begin() as conn:
        conn.execute(schema.calls.update().values(owner=None))
    other = Store.open(_url(store))
    try:
        before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        assert other.recover_interrupted(legacy_before=before) == []  # active within the grace
        assert other.recover_interrupted(legacy_before=dt.datetime.now(dt.timezone.utc)) == [
            "CA00000000000000000000000000000001"]
    finally:
        other.close()


async def test_db_errors_are_logged_and_the_call_goes_on(store: Store, capsys) -> None:
    from telemetry import logs
    logs.configure()
    rec = SqlRecorder(store)
    await rec.call_started(info())
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE transcripts"))
    await rec.transcript_turn("CA00000000000000000000000000000001", "caller", "שלום", 0, 900, True)  # must not raise
    await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(seconds=5), "twilio_stop", "new", CallMetrics(), "+972501234567",
                         LeadState(), "סיכום")
    out = capsys.readouterr().out
    assert '"event":"ERROR"' in out and "store.transcript_turn" in out
    assert queries.list_calls(store)[0]["close_reason"] == "twilio_stop"


def test_migration_2_upgrades_a_version_1_database(db_url: str, monkeypatch) -> None:
    from leads import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the v1 tables as released: without today's turns_to_meeting
        schema.schema_version.create(conn)
        conn.execute(schema.schema_version.insert().values(version=1, applied_at=T0))
        migrations._initial(conn)
        conn.execute(sa.text("ALTER TABLE calls DROP COLUMN turns_to_meeting"))
    monkeypatch.undo()
    assert migrate(engine) == [v for v, *_ in MIGRATIONS[1:]]  # 2 and every later step
    with engine.connect() as conn:
        assert "turns_to_meeting" in {c["name"] for c in sa.inspect(conn).get_columns("calls")}
    engine.dispose()


def test_migration_3_adds_the_deal_to_a_version_2_database(db_url: str, monkeypatch) -> None:
    from leads import migrations

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the v2 tables as released: without leads.deal
        schema.schema_version.create(conn)
        for version in (1, 2):
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=T0))
        migrations._initial(conn)
        conn.execute(sa.text("ALTER TABLE leads DROP COLUMN deal"))
    monkeypatch.undo()
    assert migrate(engine) == [v for v, *_ in MIGRATIONS[2:]]  # 3 and every later step
    with engine.connect() as conn:
        assert "deal" in {c["name"] for c in sa.inspect(conn).get_columns("leads")}
    assert migrate(engine) == []
    engine.dispose()


def test_migration_4_upgrades_a_version_3_database(db_url: str) -> None:
    from leads import migrations

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the v3 tables as released: no owners, leases, journal ids
        schema.schema_version.create(conn)
        for version in (1, 2, 3):
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=T0))
        migrations._initial(conn)
        conn.execute(sa.text("DROP INDEX ix_calls_open_owner"))
        conn.execute(sa.text("ALTER TABLE calls DROP COLUMN owner"))
        conn.execute(sa.text("ALTER TABLE outbox DROP COLUMN claimed_by"))
        conn.execute(sa.text("INSERT INTO calls (call_sid, started_at, last_activity_at) VALUES "
                             "('CA00000000000000000000000000000001', '2026-01-01', '2026-01-01')"))
    assert migrate(engine) == [v for v, *_ in MIGRATIONS if v >= 4]  # 4 and every later step
    with engine.connect() as conn:
        assert "owner" in {c["name"] for c in sa.inspect(conn).get_columns("calls")}
        assert "claimed_by" in {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
        assert {"instances", "journal_applied", "store_meta"} <= set(sa.inspect(conn).get_table_names())
        assert "ix_calls_open_owner" in {i["name"] for i in sa.inspect(conn).get_indexes("calls")}
        [database_id] = conn.execute(sa.select(schema.store_meta.c.value)).scalars().all()
        assert len(database_id) == 32
        assert conn.execute(sa.select(schema.calls.c.owner)).scalar_one() is None
    assert migrate(engine) == []
    engine.dispose()


def test_migration_5_upgrades_a_version_4_database(db_url: str) -> None:
    from leads import migrations

    engine = sa.create_engine(db_url)
    with engine.begin() as conn:  # the v4 tables as released: no intake, dialer, do-not-call
        schema.schema_version.create(conn)
        for version in (1, 2, 3, 4):
            conn.execute(schema.schema_version.insert().values(version=version, applied_at=T0))
        migrations._initial(conn)
        migrations._instances(conn)
        conn.execute(sa.text("ALTER TABLE leads DROP COLUMN source"))
        conn.execute(sa.text("ALTER TABLE leads DROP COLUMN notes"))
    assert migrate(engine) == [v for v, *_ in MIGRATIONS[4:]]  # 5 and every later step
    with engine.connect() as conn:
        assert {"source", "notes"} <= {c["name"] for c in sa.inspect(conn).get_columns("leads")}
        assert {"lead_intake", "dial_jobs", "do_not_call"} <= set(sa.inspect(conn).get_table_names())
    assert migrate(engine) == []
    engine.dispose()


async def test_the_deal_is_stored_and_served(store: Store) -> None:
    from leads.fields import InvalidField
    from leads.lead import check_lead, lead_json, whatsapp_fallback_summary

    lead = LeadState(Slots(area="חולון", budget_ils=8000, deal="rent"), status="qualified")
    rec = SqlRecorder(store, lead_webhook=True)
    await rec.call_started(info())
    await rec.lead_updated("CA00000000000000000000000000000001", "+972501234567", lead)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(schema.leads)).mappings().one()
    assert (row["deal"], row["budget_ils"]) == ("rent", 8000)
    assert lead_json(row)["deal"] == "rent"
    assert [(x["deal"], x["budget_ils"]) for x in queries.list_leads(store)] == [("rent", 8000)]
    assert "שכירות" in whatsapp_fallback_summary(lead) and "8,000 ₪ לחודש" in whatsapp_fallback_summary(lead)
    with pytest.raises(InvalidField):
        check_lead(LeadState(Slots(deal="lease")))


async def test_turns_to_meeting_counted_by_the_store(store: Store) -> None:
    rec = SqlRecorder(store)
    await rec.call_started(info())
    lead = LeadState(Slots(area="יפו"))
    for n, status in enumerate(["new", "qualified", "meeting_booked", "meeting_booked"], start=1):
        await rec.transcript_turn("CA00000000000000000000000000000001", "caller", f"תשובה {n}", n * 1000, n * 1000 + 800, True)
        lead.status = status
        await rec.lead_updated("CA00000000000000000000000000000001", "+972501234567", lead)
    await rec.call_ended("CA00000000000000000000000000000001", T0 + dt.timedelta(minutes=1), "agent_hangup", "meeting_booked",
                         CallMetrics(turns=4, state_cycles=3), "+972501234567", lead, "סיכום")
    [point] = queries.metric_series(store)
    assert (point["turns"], point["turns_to_meeting"]) == (4, 3)
    assert point["turn_taking_pct"] == 75.0


async def test_turns_before_the_start_was_written_still_land(store: Store) -> None:
    rec = SqlRecorder(store)
    await rec.transcript_turn("CA00000000000000000000000000001a7e", "caller", "הלו?", 0, 700, True)  # call_started lost (disk full...)
    await rec.call_started(info("CA00000000000000000000000000001a7e"))
    detail = queries.call_detail(store, "CA00000000000000000000000000001a7e")
    assert detail["from"] == "+972501234567" and [t["text"] for t in detail["transcript"]] == ["הלו?"]


async def test_two_calls_of_one_caller_at_once_merge_into_one_lead(store: Store) -> None:
    phone = "+972509990000"
    for sid in ("CA00000000000000000000000000000001", "CA00000000000000000000000000000002"):
        store.record_call_start(info(sid, phone=phone))

    async def update(sid: str, slots: Slots) -> None:
        for _ in range(10):
            await trio.to_thread.run_sync(store.record_lead, sid, phone, LeadState(slots))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(update, "CA00000000000000000000000000000001", Slots(area="נתניה"))
        nursery.start_soon(update, "CA00000000000000000000000000000002", Slots(budget_ils=1_500_000))
    [lead] = queries.list_leads(store)
    assert (lead["area"], lead["budget_ils"]) == ("נתניה", 1_500_000)
