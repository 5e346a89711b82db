"""The do-not-call list (leads.optout) on SQLite and PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import trio

from leads import schema
from leads.fields import InvalidField
from leads.optout import is_opted_out, opt_out, opted_out_at


def _job(store, phone: str, state: str = "pending") -> int:
    now = dt.datetime.now(dt.timezone.utc)
    with store.engine.begin() as conn:
        return conn.execute(schema.dial_jobs.insert().values(
            phone=phone, reason="intake", state=state, due_at=now, created_at=now, updated_at=now,
        ).returning(schema.dial_jobs.c.id)).scalar_one()


def test_opt_out_any_spelling_and_idempotent(store) -> None:
    assert not is_opted_out(store, "050-123-4567")
    opt_out(store, "whatsapp:+972501234567", "whatsapp")
    assert is_opted_out(store, "050-123-4567")
    assert is_opted_out(store, "+972 50 123 4567")
    assert not is_opted_out(store, "0521234567")
    opt_out(store, "0501234567", "operator")  # again: no error, the first source kept
    at, source = opted_out_at(store, "0501234567")
    assert source == "whatsapp" and at.tzinfo is not None


def test_opt_out_cancels_pending_dial_jobs_only(store) -> None:
    pending = _job(store, "+972501234567")
    done = _job(store, "+972501234567", "done")
    other = _job(store, "+972521234567")
    opt_out(store, "0501234567", "api")
    j = schema.dial_jobs
    with store.engine.connect() as conn:
        states = dict(conn.execute(sa.select(j.c.id, j.c.state)).all())
    assert states == {pending: "cancelled", done: "done", other: "pending"}


@pytest.mark.parametrize("bad", ["", "hello", "12", "whatsapp:"])
def test_bad_phone_is_named(store, bad: str) -> None:
    with pytest.raises(InvalidField) as err:
        opt_out(store, bad, "api")
    assert err.value.field == "phone"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.do_not_call)).scalar() == 0


def test_through_the_store_threads(store) -> None:
    async def main() -> bool:
        await store.run(opt_out, store, "0501234567", "whatsapp")
        return await store.run(is_opted_out, store, "+972501234567")

    assert trio.run(main)
