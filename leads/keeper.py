"""The store keeper: this instance's lease, crash recovery of dead instances, journal replay.

Runs next to the outbox sender (leads.outbox.run_outbox_sender starts it), for the life of
the server. Every ``renew_s`` (a third of INSTANCE_LEASE_SECONDS):

1. renew this instance's lease (a thread of its own: never queued behind slow writes);
2. replay this process's journal if it holds anything (the database answered again);
3. every ``orphan_every_s``, adopt the journals dead processes left on this host;
4. close the calls of dead instances and hand back their half-sent outbox items
   (Store.recover_interrupted). Expiry is trusted only after this instance's own lease has
   been renewed without a failure for a whole lease period: after a database outage every
   lease looks expired, and each live instance first gets the chance to renew.

At startup (:func:`startup`), before the sender's first pass: replay the journals (so a
call's real end, journaled when the database was down, lands before a recovery could close
that call as ``server_restart``), then recover what is certainly dead (leases gone; on
SQLite, processes gone from this host; calls written before leases existed).
"""
from __future__ import annotations

import datetime as dt
import logging
import trio

from leads import instances
from leads.store import WRITE_ERRORS, Store, adopt_orphans, describe, replay_journal
from telemetry.logs import log_event

# Calls without an owner were written by a server from before leases. On PostgreSQL one may
# still run (a rolling upgrade): only calls quiet for this long are taken for crashed.
LEGACY_GRACE_S = 3600.0
ORPHAN_EVERY_S = 30.0


def _wake(store: Store) -> None:
    if store.outbox_wakeup is not None:
        store.outbox_wakeup.set()


async def _recover(store: Store, lead_webhook: bool, *, trust_expiry: bool,
                   legacy_before: dt.datetime | None = None) -> tuple[list[str], int]:
    recovered = await trio.to_thread.run_sync(
        lambda: store.recover_interrupted(lead_webhook=lead_webhook, trust_expiry=trust_expiry,
                                          legacy_before=legacy_before),
        limiter=store.keeper_limiter,
    )
    released = store.last_released
    if recovered or released:
        log_event("STORE", logging.WARNING, state="recovered", recovered_calls=recovered, released=released,
                  instance=store.instance_id)
        _wake(store)
    return recovered, released


async def startup(store: Store, lead_webhook: bool) -> tuple[list[str], int]:
    """Journals first, then what is certainly dead. Returns (recovered calls, released items)."""
    try:
        await replay_journal(store)
        await adopt_orphans(store)
    except WRITE_ERRORS as exc:  # the keeper tries again
        log_event("ERROR", logging.ERROR, where="store.startup_replay", error=describe(exc))
    grace = 0.0 if store.backend == "sqlite" else LEGACY_GRACE_S
    return await _recover(store, lead_webhook, trust_expiry=False,
                          legacy_before=store.opened_at - dt.timedelta(seconds=grace))


async def run_store_keeper(
    store: Store, *, lead_webhook: bool = False, orphan_every_s: float = ORPHAN_EVERY_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    me = store.me
    healthy_since: float | None = None
    next_orphans = trio.current_time() + orphan_every_s
    task_status.started()
    while True:
        now = trio.current_time()
        try:
            kept = await trio.to_thread.run_sync(instances.renew, store.engine, me, limiter=store.keeper_limiter)
            if not kept:
                log_event("ERROR", logging.ERROR, where="store.lease", instance=me.id,
                          error="this instance's lease was gone (taken for dead after missing renewals): "
                                "its open calls may have been closed by another instance; lease taken again")
            if healthy_since is None:
                healthy_since = now
            if not store.journal.pending:
                # With writes waiting, a renewed lease says little (a full disk still takes
                # an update in place): the replay below says whether the database is back.
                store.health.ok()
        except WRITE_ERRORS as exc:
            healthy_since = None
            store.health.failed(exc, "store.lease")
        if healthy_since is not None:
            try:
                if store.journal.pending:
                    await replay_journal(store)
                if now >= next_orphans:
                    next_orphans = now + orphan_every_s
                    await adopt_orphans(store)
                await _recover(store, lead_webhook, trust_expiry=now - healthy_since >= me.ttl_s)
            except WRITE_ERRORS as exc:
                store.health.failed(exc, "store.keeper")
        await trio.sleep(me.renew_s)

