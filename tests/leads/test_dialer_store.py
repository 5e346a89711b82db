"""Calling hours on frozen clocks, the retry schedule, and the dial jobs' transactions
(claim under a cap with several instances, callbacks, stale jobs) on SQLite and PostgreSQL."""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dialog.base import LeadState, Slots
from leads import dialjobs, schema
from leads.base import CallMetrics
from leads.hours import CallingHours, next_attempt, parse_retries
from leads.optout import opt_out
from leads.store import Store

TZ = ZoneInfo("Asia/Jerusalem")
HOURS = CallingHours.parse()
RETRIES = parse_retries()
PHONE = "+972501234567"


def il(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TZ)


# -- calling hours ---------------------------------------------------------------------------------

@pytest.mark.parametrize("at, expected", [
    (il(2026, 12, 4, 14, 0), il(2026, 12, 6, 9, 0)),  # Friday afternoon -> Sunday 09:00
    (il(2026, 12, 4, 12, 59), il(2026, 12, 4, 12, 59)),  # Friday before 13:00: now
    (il(2026, 12, 5, 11, 0), il(2026, 12, 6, 9, 0)),  # Shabbat -> Sunday 09:00
    (il(2026, 12, 3, 20, 0), il(2026, 12, 4, 9, 0)),  # Thursday 20:00 -> Friday 09:00
    (il(2026, 12, 1, 7, 30), il(2026, 12, 1, 9, 0)),  # Tuesday early -> 09:00 that day
    (il(2026, 12, 1, 19, 59), il(2026, 12, 1, 19, 59)),
    (il(2026, 9, 21, 10, 0), il(2026, 9, 22, 9, 0)),  # Yom Kippur (a Monday) -> the day after
    (il(2026, 9, 20, 15, 0), il(2026, 9, 22, 9, 0)),  # its eve: Friday's hours, closed at 15:00
    (il(2026, 9, 20, 10, 0), il(2026, 9, 20, 10, 0)),  # ...but open in the morning
    (il(2026, 9, 11, 14, 0), il(2026, 9, 14, 9, 0)),  # Friday before Rosh Hashanah (Sat+Sun) -> Monday
    (il(2026, 4, 22, 11, 0), il(2026, 4, 23, 9, 0)),  # Independence Day
])
def test_next_allowed_on_frozen_clocks(at: dt.datetime, expected: dt.datetime) -> None:
    assert HOURS.next_allowed(at) == expected
    assert HOURS.next_allowed(at).tzinfo is not None
    assert HOURS.allowed(expected) and (HOURS.allowed(at) == (at == expected))


def test_never_on_shabbat_or_a_holiday_all_year() -> None:
    t = il(2026, 1, 1, 0, 0)
    while t.year == 2026:
        nxt = HOURS.next_allowed(t).astimezone(TZ)
        assert nxt.weekday() != 5 and not HOURS.is_holiday(nxt.date())
        assert (9, 0) <= (nxt.hour, nxt.minute) < ((13, 0) if nxt.weekday() == 4 else (20, 0))
        t += dt.timedelta(hours=5, minutes=17)


def test_hours_are_configurable() -> None:
    hours = CallingHours.parse("mon-thu 10:00-18:30; fri 08:00-12:00", holidays_country="none", eve="")
    assert hours.next_allowed(il(2026, 12, 6, 12, 0)) == il(2026, 12, 7, 10, 0)  # Sunday closed now
    assert hours.next_allowed(il(2026, 9, 21, 11, 0)) == il(2026, 9, 21, 11, 0)  # no holiday calendar
    for bad in ("sunday 9-10", "thu-sun 09:00-10:00", "sun 10:00-09:00", "sun 25:00-26:00"):
        with pytest.raises(ValueError):
            CallingHours.parse(bad)


def test_retry_schedule() -> None:
    failed = il(2026, 12, 1, 11, 0)  # Tuesday
    assert next_attempt(RETRIES, 1, failed, HOURS) == il(2026, 12, 1, 11, 10)
    assert next_attempt(RETRIES, 2, failed, HOURS) == il(2026, 12, 1, 13, 0)
    assert next_attempt(RETRIES, 3, failed, HOURS) == il(2026, 12, 2, 10, 0)
    assert next_attempt(RETRIES, 4, failed, HOURS) is None  # at most 3 retries
    # a retry that would land outside calling hours waits for the next opening
    assert next_attempt(RETRIES, 1, il(2026, 12, 1, 19, 55), HOURS) == il(2026, 12, 2, 9, 0)
    assert next_attempt(RETRIES, 3, il(2026, 12, 4, 10, 0), HOURS) == il(2026, 12, 6, 10, 0)  # Fri -> Sun
    assert parse_retries("30s, 1.5h") == (dataclasses.replace(RETRIES[0], delay=dt.timedelta(seconds=30)),
                                          dataclasses.replace(RETRIES[0], delay=dt.timedelta(hours=1.5)))
    with pytest.raises(ValueError):
        parse_retries("soon")


# -- dial jobs in the store ----------------------------------------------------------------------------

def queue(store: Store, phone: str = PHONE, due: dt.datetime | None = None, reason: str = "intake") -> int:
    with store.engine.begin() as conn:
        dialjobs._ensure_lead(conn, phone, dt.datetime.now(dt.timezone.utc))
        job_id, _ = dialjobs.enqueue(conn, phone, reason, due or il(2026, 12, 1, 10, 0))
    return job_id


def job(store: Store, job_id: int) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(schema.dial_jobs).where(schema.dial_jobs.c.id == job_id)).mappings().one())


def test_claim_waits_for_calling_hours_without_using_an_attempt(store: Store) -> None:
    job_id = queue(store, due=il(2026, 12, 4, 13, 30))
    assert dialjobs.claim_due(store, il(2026, 12, 4, 14, 0), 5, HOURS) == []
    row = job(store, job_id)
    assert row["attempts"] == 0 and schema.utc(row["due_at"]) == il(2026, 12, 6, 9, 0)
    assert dialjobs.claim_due(store, il(2026, 12, 5, 12, 0), 5, HOURS) == []  # Shabbat: not due yet
    [claimed] = dialjobs.claim_due(store, il(2026, 12, 6, 9, 0), 5, HOURS)
    assert (claimed.id, claimed.attempts) == (job_id, 1)


def test_one_open_job_per_lead_and_opt_out_wins(store: Store) -> None:
    first = queue(store)
    assert queue(store) == first  # an intake again: no second call
    other = queue(store, "+972521234567")
    opt_out(store, "0521234567", "whatsapp")
    claimed = dialjobs.claim_due(store, il(2026, 12, 1, 10, 0), 5, HOURS)
    assert [c.id for c in claimed] == [first]
    assert job(store, other)["state"] == "cancelled"
    with store.engine.begin() as conn:
        assert dialjobs.enqueue(conn, "+972521234567", "operator", il(2026, 12, 1, 10, 0)) == (None, "opted_out")


def test_status_settles_once_and_late_callbacks_are_ignored(store: Store) -> None:
    job_id = queue(store)
    now = il(2026, 12, 1, 10, 0)
    dialjobs.claim_due(store, now, 5, HOURS)
    first_sid, second_sid = "CA" + "a" * 32, "CA" + "b" * 32
    dialjobs.placed(store, job_id, first_sid, now)
    assert dialjobs.apply_status(store, job_id, first_sid, "ringing", RETRIES, HOURS, now) is None
    assert dialjobs.apply_status(store, job_id, first_sid, "busy", RETRIES, HOURS, now) == "pending"
    assert dialjobs.apply_status(store, job_id, first_sid, "busy", RETRIES, HOURS, now) is None  # repeated
    assert schema.utc(job(store, job_id)["due_at"]) == il(2026, 12, 1, 10, 10)
    dialjobs.claim_due(store, il(2026, 12, 1, 10, 10), 5, HOURS)
    dialjobs.placed(store, job_id, second_sid)
    assert dialjobs.apply_status(store, job_id, first_sid, "no-answer", RETRIES, HOURS) is None  # the old call's
    assert dialjobs.apply_status(store, job_id, second_sid, "completed", RETRIES, HOURS) == "done"
    row = job(store, job_id)
    assert (row["state"], row["attempts"], row["outcome"]) == ("done", 2, "completed")
    assert [h["outcome"] for h in row["history"]] == ["busy", "completed"]


def test_retries_run_out(store: Store) -> None:
    job_id = queue(store)
    now = il(2026, 12, 1, 10, 0)
    for attempt in range(1, 5):
        [claimed] = dialjobs.claim_due(store, now, 5, HOURS)
        assert claimed.attempts == attempt
        sid = f"CA{attempt:032d}"
        dialjobs.placed(store, job_id, sid, now)
        state = dialjobs.apply_status(store, job_id, sid, "no-answer", RETRIES, HOURS, now)
        now = schema.utc(job(store, job_id)["due_at"]) or now
    assert state == "failed" and job(store, job_id)["due_at"] is None


def test_machine_gets_one_voicemail_per_job(store: Store) -> None:
    job_id = queue(store)
    now = il(2026, 12, 1, 10, 0)
    dialjobs.claim_due(store, now, 5, HOURS)
    sid = "CA" + "c" * 32
    dialjobs.placed(store, job_id, sid, now)
    assert dialjobs.apply_amd(store, job_id, sid, "machine_end_beep", now) is True
    assert dialjobs.apply_amd(store, job_id, sid, "machine_end_beep", now) is False  # said already
    assert dialjobs.apply_status(store, job_id, sid, "completed", RETRIES, HOURS, now) == "pending"
    assert job(store, job_id)["outcome"] == "machine"
    dialjobs.claim_due(store, il(2026, 12, 1, 10, 10), 5, HOURS)
    sid2 = "CA" + "d" * 32
    dialjobs.placed(store, job_id, sid2)
    assert dialjobs.apply_amd(store, job_id, sid2, "machine_end_silence") is False  # one voicemail per lead
    assert dialjobs.apply_amd(store, job_id, "CA" + "e" * 32, "human") is False  # not this job's call


def test_the_cap_holds_across_instances(db_url: str) -> None:
    """Four instances claim at once: never more than MAX_OUTBOUND_CALLS in flight, no job twice."""
    stores = [Store.open(db_url, {}, instance_id=f"inst-{i}") for i in range(4)]
    try:
        for i in range(12):
            queue(stores[0], f"+97250123{i:04d}")
        claimed: list[list[dialjobs.DialJob]] = [[] for _ in stores]
        barrier = threading.Barrier(len(stores))

        def claim(i: int) -> None:
            barrier.wait()
            for _ in range(3):
                claimed[i] += dialjobs.claim_due(stores[i], il(2026, 12, 1, 10, 0), 5, HOURS)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        ids = [j.id for c in claimed for j in c]
        assert len(ids) == 5 and len(set(ids)) == 5
        with stores[0].engine.connect() as conn:
            j = schema.dial_jobs
            owners = dict(conn.execute(sa.select(j.c.id, j.c.claimed_by).where(j.c.state == "dialing")).all())
        assert set(owners) == set(ids)
        assert all(owners[job.id] == f"inst-{i}" for i, c in enumerate(claimed) for job in c)
    finally:
        for s in stores:
            s.close()


def test_a_dead_instances_dialing_jobs_go_back(db_url: str) -> None:
    dead = Store.open(db_url, {}, instance_id="dead-one")
    live = Store.open(db_url, {}, instance_id="live-one")
    try:
        job_id = queue(live)
        dialjobs.claim_due(dead, il(2026, 12, 1, 10, 0), 5, HOURS)
        assert dialjobs.release_stale(live, il(2026, 12, 1, 10, 0), 3600) == 0  # its lease is live
        dead.close()  # gives the lease up
        assert dialjobs.release_stale(live, il(2026, 12, 1, 10, 0), 3600) == 1
        assert job(live, job_id)["state"] == "pending"
        # a 'calling' job whose final status never came stops counting against the cap
        dialjobs.claim_due(live, il(2026, 12, 1, 10, 0), 5, HOURS)
        dialjobs.placed(live, job_id, "CA" + "f" * 32, il(2026, 12, 1, 10, 0))
        assert dialjobs.release_stale(live, il(2026, 12, 1, 12, 0), 3600) == 1
        assert (job(live, job_id)["state"], job(live, job_id)["outcome"]) == ("done", "unknown")
    finally:
        live.close()


def test_a_callback_asked_for_in_the_call_is_a_new_job(store: Store) -> None:
    job_id = queue(store)
    now = il(2026, 12, 1, 10, 0)
    dialjobs.claim_due(store, now, 5, HOURS)
    sid = "CA" + "9" * 32
    dialjobs.placed(store, job_id, sid, now)
    lead = LeadState(Slots(name="דנה"), callback_at=il(2026, 12, 1, 18, 0))
    for _ in range(2):  # the call's end written twice (a journal replay): one callback
        store.record_call_end(sid, now + dt.timedelta(minutes=1), "agent_hangup", "new", CallMetrics(), PHONE, lead, "")
    jobs = dialjobs.jobs_for(store, PHONE)
    assert [(j["reason"], j["state"]) for j in jobs] == [("intake", "calling"), ("callback", "pending")]
    assert dt.datetime.fromisoformat(jobs[1]["due_at"]) == il(2026, 12, 1, 18, 0)


def test_dont_call_me_again_in_a_call_opts_out(store: Store) -> None:
    from leads.optout import is_opted_out, opted_out_at

    callback = queue(store, reason="callback", due=il(2026, 12, 3, 10, 0))
    sid = "CA" + "8" * 32
    lead = LeadState(Slots(name="דנה"), status="lost", do_not_call=True)
    store.record_call_end(sid, il(2026, 12, 1, 10, 0), "agent_hangup", "lost", CallMetrics(), PHONE, lead, "סיכום")
    assert is_opted_out(store, PHONE) and opted_out_at(store, PHONE)[1] == "call"
    assert job(store, callback)["state"] == "cancelled"
    with store.engine.connect() as conn:  # and no follow-up message
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.outbox)).scalar() == 0
