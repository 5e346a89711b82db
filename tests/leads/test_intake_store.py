"""Intake in the store (SQLite and PostgreSQL): concurrent deliveries of one lead."""
from __future__ import annotations

import threading

import sqlalchemy as sa

from leads import intake, schema
from leads.hours import CallingHours
from leads.store import Store

HOURS = CallingHours.parse("sun-sat 00:00-24:00", "none")


def run_at_once(n: int, fn) -> list:  # type: ignore[no-untyped-def]
    barrier, out, errors = threading.Barrier(n), [None] * n, []

    def one(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return out


def counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as conn:
        return tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in (  # type: ignore[return-value]
            schema.leads, schema.dial_jobs, schema.lead_intake))


def test_a_retried_delivery_at_the_same_moment_is_stored_once(store: Store) -> None:
    lead = intake.parse({"phone": "050-123-4567", "name": "דנה", "source": "web_form"})
    results = run_at_once(6, lambda i: intake.record(store, lead, HOURS, "same-key"))
    assert sum(not r.replayed for r in results) == 1
    assert len({(r.intake_id, r.job_id) for r in results}) == 1
    assert counts(store) == (1, 1, 1)


def test_one_lead_from_many_sources_at_once(store: Store) -> None:
    results = run_at_once(8, lambda i: intake.record(
        store, intake.parse({"phone": "+972 50 123 4567", "source": f"form-{i}"}), HOURS, f"key-{i}"))
    assert sum(r.created for r in results) == 1
    assert sorted(r.dial for r in results) == ["already_queued"] * 7 + ["queued"]
    assert counts(store) == (1, 1, 8)


def test_call_now_and_intake_at_once_queue_one_call(store: Store) -> None:
    from leads import dialjobs

    def one(i: int):  # type: ignore[no-untyped-def]
        if i % 2:
            return dialjobs.queue_call(store, "0501234567")
        return intake.record(store, intake.parse({"phone": "0501234567", "source": "x"}), HOURS).dial

    run_at_once(6, one)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.dial_jobs)).scalar() == 1
