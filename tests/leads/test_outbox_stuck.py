"""Review: an item the sender claimed must not stay in 'sending' for the life of the process
when the database fails mid-pass (a transient error, not a crash)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
import trio

from leads.outbox import OutboxSender
from leads.store import Store

from .test_outbox import cfg, drain, end_call, items


async def test_items_left_sending_by_a_failed_db_write_are_retried_without_a_restart(sqlite_url, fake_twilio) -> None:
    store = Store.open(sqlite_url)
    try:
        fake_twilio.script = [(503, {"message": "busy"})]
        await end_call(store, "CA00000000000000000000000000000001")
        await end_call(store, "CA00000000000000000000000000000002")
        # The database refuses the write that records the 503 (the disk is full for a moment):
        # the pass aborts with both claimed items in 'sending', the second never even tried.
        with store.engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER db_down BEFORE UPDATE OF state ON outbox WHEN NEW.state = 'pending' "
                "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
            )
        sender = OutboxSender(store, cfg(fake_twilio, stale_sending_s=0.2))
        with pytest.raises(sa.exc.SQLAlchemyError):
            await sender.pass_once()
        assert [i["state"] for i in items(store)] == ["sending", "sending"]
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TRIGGER db_down")
        # The database is back; the same sender (no restart) delivers both follow-ups.
        await drain(sender, store, {"sent"}, timeout=5.0)
        assert [i["state"] for i in items(store)] == ["sent", "sent"]
        bodies = [m["Body"] for m in fake_twilio.messages()]
        assert len(bodies) == 3  # the 503, then each follow-up once
    finally:
        store.close()


async def test_an_item_being_sent_is_not_released_while_fresh(sqlite_url, fake_twilio) -> None:
    # The periodic release only takes items claimed longer ago than stale_sending_s: a live
    # send is never handed to a second pass (that would send the WhatsApp twice).
    store = Store.open(sqlite_url)
    try:
        await end_call(store, "CA00000000000000000000000000000001")
        sender = OutboxSender(store, cfg(fake_twilio, stale_sending_s=3600))
        from leads.outbox import claim_due, _now

        claimed = await trio.to_thread.run_sync(claim_due, store, _now())
        assert len(claimed) == 1
        assert await sender.pass_once() == 0
        assert [i["state"] for i in items(store)] == ["sending"]
    finally:
        store.close()
