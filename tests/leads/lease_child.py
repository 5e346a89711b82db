"""Another server instance in miniature for test_instances: opens the store (taking its lease),
records a live call with a lead, says "ready" and waits — renewing its lease with the store
keeper unless told not to — until it is killed.

    python tests/leads/lease_child.py DATABASE_URL CALL_SID PHONE LEASE_S [--no-keeper]
"""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import trio  # noqa: E402

from dialog.base import LeadState, Slots  # noqa: E402
from leads.base import CallInfo  # noqa: E402
from leads.keeper import run_store_keeper  # noqa: E402
from leads.store import SqlRecorder, Store  # noqa: E402


async def main(url: str, sid: str, phone: str, lease_s: str, *flags: str) -> None:
    store = Store.open(url, {}, lease_s=float(lease_s), journal_dir=None)
    rec = SqlRecorder(store)
    await rec.call_started(CallInfo(sid, "MZ" + sid[2:], phone, "+97233001122", dt.datetime.now(dt.timezone.utc)))
    await rec.lead_updated(sid, phone, LeadState(Slots(area="עכו")), "סיכום ביניים עכו")
    print("ready", store.instance_id, flush=True)
    if "--no-keeper" in flags:
        await trio.sleep_forever()
    await run_store_keeper(store)


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:])
