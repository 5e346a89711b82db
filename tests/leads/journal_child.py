"""A server process in miniature for test_durable: records a call, loses its database, journals
the call's end, says "journaled" and waits to be killed.

    python tests/leads/journal_child.py DATABASE_URL JOURNAL_DIR CALL_SID PHONE
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402
import trio  # noqa: E402

from dialog.base import LeadState, Slots  # noqa: E402
from leads import store as store_mod  # noqa: E402
from leads.base import CallInfo, CallMetrics  # noqa: E402
from leads.store import SqlRecorder, Store  # noqa: E402


async def main(url: str, journal_dir: str, sid: str, phone: str) -> None:
    store = Store.open(url, {}, journal_dir=journal_dir)
    rec = SqlRecorder(store)
    now = dt.datetime.now(dt.timezone.utc)
    await rec.call_started(CallInfo(sid, "MZ" + sid[2:], phone, "+97233001122", now))
    lead = LeadState(Slots(area="חיפה", name="דנה"))
    await rec.lead_updated(sid, phone, lead, "סיכום ביניים")
    # The database goes away.
    if store.backend == "sqlite":
        from faults import sqlite_faults

        sqlite_faults(store.engine).readonly = True
    else:
        store.engine = store_mod._postgres_engine(sa.make_url("postgresql+psycopg://postgres@127.0.0.1:1/gone"))
    lead.status = "meeting_booked"
    await rec.call_ended(sid, now + dt.timedelta(seconds=40), "agent_hangup", "meeting_booked", CallMetrics(turns=3),
                         phone, lead, "סיכום סופי מהיומן")
    assert store.journal.pending, "the end should be in the journal"
    print("journaled", flush=True)
    await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:5])
