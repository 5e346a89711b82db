"""Several server instances on one database: leases, crash recovery of dead instances only,
each follow-up sent exactly once. Real time (leases are judged by the database's clock)."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
import trio

from dialog.base import LeadState, Slots
from leads import instances, schema
from leads.base import CallInfo, CallMetrics
from leads.keeper import run_store_keeper
from leads.outbox import OutboxConfig, OutboxSender
from leads.store import SqlRecorder, Store

from .faults import TcpProxy

CHILD = Path(__file__).with_name("lease_child.py")
PHONE = "+972501234567"


def calls(store: Store) -> dict[str, dict]:
    with store.engine.connect() as conn:
        return {r["call_sid"]: dict(r) for r in conn.execute(sa.select(schema.calls)).mappings()}


def lease_ids(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(schema.instances.c.id)).scalars())


class Child:
    """tests/leads/lease_child.py: another instance with one live call."""

    def __init__(self, url: str, sid: str, lease_s: float, *flags: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(CHILD), url, sid, PHONE, str(lease_s), *flags],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode().split()
        assert line[:1] == ["ready"], self.proc.stderr.read().decode()[-3000:]
        self.instance_id = line[1]

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    made: list[Child] = []
    yield made
    for c in made:
        if c.proc.poll() is None:
            c.kill()


def test_an_instance_takes_its_lease_renews_it_and_gives_it_up(db_url: str) -> None:
    store = Store.open(db_url, {}, lease_s=7, journal_dir=None)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(schema.instances)).mappings().one()
    assert row["id"] == store.instance_id and row["pid"] > 0
    assert (schema.utc(row["expires_at"]) - schema.utc(row["renewed_at"])).total_seconds() == pytest.approx(7, abs=0.01)
    assert instances.renew(store.engine, store.me) is True
    with store.engine.begin() as conn:
        conn.execute(schema.instances.delete())  # another instance took it for dead
    assert instances.renew(store.engine, store.me) is False  # ... and it is taken again
    assert lease_ids(store) == {store.instance_id}
    url = store.engine.url.render_as_string(hide_password=False)
    store.close()
    again = Store.open(url, {}, journal_dir=None)
    assert lease_ids(again) == {again.instance_id}  # the closed one gave its lease up
    again.close()


def test_instance_id_and_lease_from_the_environment(sqlite_url: str) -> None:
    store = Store.open(sqlite_url, {"INSTANCE_ID": "eu-1", "INSTANCE_LEASE_SECONDS": "9"}, journal_dir=None)
    assert (store.instance_id, store.me.ttl_s, store.me.renew_s) == ("eu-1", 9.0, 3.0)
    store.close()


def test_sqlite_a_process_gone_from_this_host_is_dead_at_once_a_live_one_never(
        sqlite_url: str, children: list[Child]) -> None:
    store = Store.open(sqlite_url, {}, journal_dir=None)
    try:
        children.append(live := Child(sqlite_url, "CA" + "1" * 32, 3600, "--no-keeper"))
        children.append(dead := Child(sqlite_url, "CA" + "2" * 32, 3600, "--no-keeper"))
        dead.kill()
        # Its hour-long lease has not expired, but its process is gone: recovered at once (as
        # a restarted single server always did). The live sibling (a --workers process) is not.
        assert store.recover_interrupted(trust_expiry=False) == ["CA" + "2" * 32]
        assert store.recover_interrupted() == []
        open_calls = {sid for sid, c in calls(store).items() if c["ended_at"] is None}
        assert open_calls == {"CA" + "1" * 32}
        assert lease_ids(store) == {store.instance_id, live.instance_id}
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_a_killed_instance_is_dead_once_its_lease_expired(postgres_url: str, children: list[Child]) -> None:
    import time

    store = Store.open(postgres_url, {}, journal_dir=None)
    try:
        children.append(child := Child(postgres_url, "CA" + "3" * 32, 2.0))
        time.sleep(2.5)
        assert store.recover_interrupted() == []  # it renews its lease: alive
        child.kill()
        t_kill = time.monotonic()
        assert store.recover_interrupted() == []  # same host, but PostgreSQL goes by the lease only
        while not (recovered := store.recover_interrupted()):
            assert time.monotonic() - t_kill < 5
            time.sleep(0.05)
        waited = time.monotonic() - t_kill
        assert recovered == ["CA" + "3" * 32]
        assert 2.0 - 2.0 / 3 - 0.1 <= waited <= 2.5  # expiry: at most a renewal period before ttl
        [call] = calls(store).values()
        assert call["close_reason"] == "server_restart"
        assert child.instance_id not in lease_ids(store)
    finally:
        store.close()


@pytest.mark.postgres
async def test_after_a_database_outage_no_live_instance_is_taken_for_dead(postgres_url: str) -> None:
    # Both instances lose the database for three lease periods: every lease expires. When it
    # is back, B must not close A's live call before A had its chance to renew; once A is
    # really gone, B does.
    proxy = TcpProxy(sa.make_url(postgres_url).port)
    url = proxy.url(postgres_url)
    a = Store.open(url, {}, lease_s=1.5, journal_dir=None)
    b = Store.open(url, {}, lease_s=1.5, journal_dir=None)
    sid = "CA" + "4" * 32
    try:
        await SqlRecorder(a).call_started(CallInfo(sid, "MZ" + "4" * 32, PHONE, "+97233001122",
                                                   dt.datetime.now(dt.timezone.utc)))
        async with trio.open_nursery() as nursery:
            a_scope = trio.CancelScope()

            async def keep_a(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                nonlocal a_scope
                a_scope = trio.CancelScope()
                with a_scope:
                    await run_store_keeper(a, task_status=task_status)

            nursery.start_soon(run_store_keeper, b)
            await nursery.start(keep_a)
            await trio.sleep(1)
            proxy.down()
            await trio.sleep(4.5)
            assert a.health.down and b.health.down
            # A's next renewal comes a moment after B's first look (their phases differ by up
            # to a renewal period): B sees A's lease expired by the outage, and must wait.
            a_scope.cancel()
            proxy.up()
            await trio.sleep(a.me.renew_s)
            await nursery.start(keep_a)
            await trio.sleep(4.5)  # three lease periods with both renewing
            assert calls(b)[sid]["ended_at"] is None
            a_scope.cancel()  # A dies (its keeper stops renewing)
            with trio.fail_after(6):
                while calls(b)[sid]["ended_at"] is None:
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()
        assert calls(b)[sid]["close_reason"] == "server_restart"
    finally:
        a.close()
        b.close()
        proxy.close()


async def test_n_senders_on_one_database_send_each_follow_up_exactly_once(db_url: str, fake_twilio: Any) -> None:
    stores = [Store.open(db_url, {}, journal_dir=None) for _ in range(3)]
    cfg = OutboxConfig(account_sid="AC" + "0" * 32, auth_token="tok", whatsapp_from="+14155238886",
                       api_base_url=fake_twilio.url, backoff_base_s=0.01, idle_poll_s=0.2)
    try:
        rec = SqlRecorder(stores[0])
        now = dt.datetime.now(dt.timezone.utc)
        n = 60
        for i in range(n):
            sid, phone = f"CA{i:032x}", f"+9725{i:08d}"
            await rec.call_started(CallInfo(sid, f"MZ{i:032x}", phone, "+97233001122", now))
            await rec.call_ended(sid, now, "agent_hangup", "qualified", CallMetrics(), phone,
                                 LeadState(Slots(area="לוד"), status="qualified"), f"סיכום {i}")
        senders = [OutboxSender(s, cfg) for s in stores]
        sent_by: dict[int, int] = {}

        async def run(k: int) -> None:
            while True:
                got = await senders[k].pass_once()
                sent_by[k] = sent_by.get(k, 0) + got
                await trio.sleep(0)

        async with trio.open_nursery() as nursery:
            for k in range(3):
                nursery.start_soon(run, k)
            with trio.fail_after(30):
                while len(fake_twilio.messages()) < n:
                    await trio.sleep(0.05)
            await trio.sleep(0.5)
            nursery.cancel_scope.cancel()
        bodies = sorted(m["Body"] for m in fake_twilio.messages())
        assert bodies == sorted(f"סיכום {i}" for i in range(n))  # every one, once
        with stores[0].engine.connect() as conn:
            rows = conn.execute(sa.select(schema.outbox.c.state, schema.outbox.c.attempts,
                                          schema.outbox.c.claimed_by)).all()
        assert {(state, attempts) for state, attempts, _ in rows} == {("sent", 1)}
        assert len({claimer for *_, claimer in rows}) >= 2  # the work was shared
    finally:
        for s in stores:
            s.close()
