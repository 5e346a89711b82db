"""Durable writes: retries with backoff, the store's own threads, the local journal, replay.

The outages here run in virtual time (trio's MockClock jumps the waits: 30 s of database
outage take a moment) on SQLite (a volume gone read-only: SQLite's real error on every write)
and on the real throwaway PostgreSQL (reached through a proxy that is stopped: every
connection reset, new ones refused). Real-time calls through the whole server are in
test_durable_calls.py.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from dialog.base import LeadState, Slots
from leads import journal as journal_mod
from leads import queries, schema
from leads.base import CallInfo, CallMetrics
from leads.journal import Journal, Orphan, iter_records
from leads.outbox import OutboxConfig, run_outbox_sender
from leads.store import SqlRecorder, Store

from .faults import TcpProxy, sqlite_faults

PHONE = "+972501234567"
SID = "CA" + "d" * 32


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The JSON log lines, in a stream that stays open (a test's captured stdout is closed
    after it: later tests' background lines would hit a closed file)."""
    from telemetry import logs
    stream = io.StringIO()
    logs.configure(stream=stream)
    yield stream


@pytest.fixture
def virtual_clock() -> trio.testing.MockClock:
    # Jumps only after 20 ms of real idleness: a database round trip in a worker thread
    # (a few ms) is waited for, a 30 s outage or a backoff is skipped.
    return trio.testing.MockClock(autojump_threshold=0.02)


class Outage:
    """The database going away and coming back, for one backend."""

    def __init__(self, backend: str, url: str, proxy: TcpProxy | None = None) -> None:
        self.backend, self.url, self.proxy = backend, url, proxy
        self._faults: list[Any] = []

    def open(self, journal_dir: Path, **kw: Any) -> Store:
        store = Store.open(self.url, {}, journal_dir=journal_dir, **kw)
        if self.backend == "sqlite":
            self._faults.append(sqlite_faults(store.engine))
        return store

    def down(self) -> None:
        if self.proxy is not None:
            self.proxy.down()
        for f in self._faults:
            f.readonly = True

    def up(self) -> None:
        if self.proxy is not None:
            self.proxy.up()
        for f in self._faults:
            f.readonly = False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def outage(request: pytest.FixtureRequest) -> Iterator[Outage]:
    if request.param == "sqlite":
        yield Outage("sqlite", request.getfixturevalue("sqlite_url"))
        return
    url = request.getfixturevalue("postgres_url")
    proxy = TcpProxy(sa.make_url(url).port)
    try:
        yield Outage("postgres", proxy.url(url), proxy)
    finally:
        proxy.close()


def cfg(fake: Any, **kw: Any) -> OutboxConfig:
    base = dict(account_sid="AC" + "0" * 32, auth_token="tok", whatsapp_from="+14155238886", api_base_url=fake.url,
                backoff_base_s=0.5, backoff_cap_s=2.0, idle_poll_s=5.0, http_timeout_s=5)
    return OutboxConfig(**(base | kw))


def outbox(store: Store) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id)).mappings()]


def caller_lines(store: Store, sid: str = SID) -> list[str]:
    return [t["text"] for t in queries.call_detail(store, sid)["transcript"]]


async def settle(store: Store, until: Any, timeout: float = 600.0) -> None:
    # Virtual seconds: each worker-thread round trip over the clock's 20 ms autojump threshold
    # (a loaded box, an fsync) lets the clock run ahead to the next timer, so the budget is
    # generous (120 s ran out once in a full `make test`, the same test passing alone in 5 s).
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(until):
            await trio.sleep(0.5)


class Call:
    """One call's writes in the order the session makes them, two turns a step."""

    def __init__(self, rec: SqlRecorder, sid: str = SID, phone: str = PHONE) -> None:
        self.rec, self.sid, self.phone = rec, sid, phone
        self.lead = LeadState(Slots())
        self.lines: list[str] = []
        self.t = 0

    async def start(self) -> None:
        await self.rec.call_started(CallInfo(self.sid, "MZ" + self.sid[2:], self.phone, "+97233001122",
                                             dt.datetime.now(dt.timezone.utc)))

    async def turn(self, n: int, summary: str | None = None, **slots: Any) -> None:
        for speaker in ("agent", "caller"):
            line = f"{speaker} {n}"
            self.rec.timeline_event(self.sid, self.t, "STATE_CHANGE", to_state=speaker)
            await self.rec.transcript_turn(self.sid, speaker, line, self.t, self.t + 900, True)  # type: ignore[arg-type]
            self.lines.append(line)
            self.t += 1000
        for k, v in slots.items():
            setattr(self.lead.slots, k, v)
        if slots:
            await self.rec.lead_updated(self.sid, self.phone, self.lead, summary)

    async def end(self, summary: str) -> None:
        self.lead.status = "meeting_booked"
        await self.rec.call_ended(self.sid, dt.datetime.now(dt.timezone.utc), "agent_hangup", "meeting_booked",
                                  CallMetrics(turns=len(self.lines) // 2), self.phone, self.lead, summary)


# -- the journal file ------------------------------------------------------------------------

async def test_journal_records_survive_as_written_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    j = Journal(tmp_path, "f" * 32, "inst-1")
    lead = LeadState(Slots(area="חיפה", rooms=3.5), "meeting_booked",
                     dt.datetime(2026, 12, 6, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    records = [
        {"id": f"r{i}", "op": "end", "call_sid": SID, "owner": "inst-1",
         "args": {"ended_at": dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), "lead": lead,
                  "metrics": {"halt_ms": [1.5]}, "summary": "סיכום"}}
        for i in range(3)
    ]
    for r in records:
        j.reserve(SID)
        assert await j.append(r) is None
    assert j.has_pending(SID) and len(j.pending) == 3
    j.applied(records[0])
    await j.mark_done()
    with open(j.path, "ab") as f:
        f.write(b'{"id": "torn", "op": "tu')  # a crash mid-append
    assert [r["id"] for r in iter_records(j.path)] == ["r1", "r2"]
    back = list(iter_records(j.path))[0]
    assert back["args"]["lead"] == lead and back["args"]["ended_at"] == records[1]["args"]["ended_at"]
    # While its process holds the file, nobody adopts it; once it is gone, the next one does.
    assert j.orphans() == []
    other = Journal(tmp_path, "f" * 32, "inst-2")
    assert other.orphans() == [j.path]
    assert Orphan.adopt(j.path) is None
    j.close()
    orphan = Orphan.adopt(j.path)
    assert orphan is not None and [r["id"] for r in orphan.records] == ["r1", "r2"] and orphan.bad == 1
    orphan.finish(["r1", "r2"])
    assert not j.path.exists()
    assert Journal(tmp_path, "e" * 32, "inst-3").orphans() == []  # another database's journals are not ours


async def test_a_journal_emptied_by_replay_is_truncated(tmp_path: Path) -> None:
    j = Journal(tmp_path, "f" * 32, "inst-1")
    r = {"id": "a", "op": "turn", "call_sid": SID, "owner": "inst-1", "args": {}}
    j.reserve(SID)
    await j.append(r)
    assert j.path.stat().st_size > 0
    j.applied(r)
    await j.mark_done()
    assert j.path.stat().st_size == 0 and not j.has_pending(SID)
    j.close()
    assert not j.path.exists()


# -- threads ---------------------------------------------------------------------------------

async def test_database_threads_never_take_speechs_threads(sqlite_url: str, tmp_path: Path) -> None:
    store = Store.open(sqlite_url, {}, journal_dir=tmp_path)
    release = trio.Event()
    gate = __import__("threading").Event()
    try:
        async with trio.open_nursery() as nursery:
            # Every database thread hangs (a database that answers nothing).
            for _ in range(store.limiter.total_tokens + 5):
                nursery.start_soon(store.run, gate.wait)
            await trio.sleep(0.1)
            assert store.limiter.borrowed_tokens == store.limiter.total_tokens
            # Speech's threads (trio's default pool) are all there: TTS / ASR work runs at once.
            with trio.fail_after(2):
                for _ in range(trio.to_thread.current_default_thread_limiter().total_tokens):
                    assert await trio.to_thread.run_sync(lambda: 42) == 42
            gate.set()
            release.set()
    finally:
        gate.set()
        store.close()


# -- retries ---------------------------------------------------------------------------------

async def test_a_write_failing_for_a_moment_is_retried_and_lands(
        outage: Outage, tmp_path: Path, virtual_clock: trio.testing.MockClock) -> None:
    store = outage.open(tmp_path / "journal")
    rec = SqlRecorder(store)
    call = Call(rec)
    try:
        await call.start()
        outage.down()

        async def heal() -> None:
            await trio.sleep(0.6)  # past the first attempt and backoff, within the write's budget
            outage.up()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(heal)
            await call.turn(1)
        assert caller_lines(store) == ["agent 1", "caller 1"]
        assert not store.journal.pending and store.journal.path is not None and not store.journal.path.exists()
    finally:
        outage.up()
        store.close()


# -- outages in virtual time -----------------------------------------------------------------

async def test_database_down_30s_mid_call_nothing_lost_and_the_final_summary_goes_out_once(
        outage: Outage, tmp_path: Path, fake_twilio: Any, virtual_clock: trio.testing.MockClock, json_log: io.StringIO) -> None:
    store = outage.open(tmp_path / "journal")
    rec = SqlRecorder(store)
    call = Call(rec)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_outbox_sender, store, cfg(fake_twilio))
            await call.start()
            await call.turn(1, "סיכום ביניים: חיפה", area="חיפה")
            outage.down()
            t_down = trio.current_time()
            n = 2
            while trio.current_time() - t_down < 30:  # a turn every 4 s for 30 s, nothing reaches the database
                await call.turn(n, f"סיכום ביניים {n}", **({"name": "דנה"} if n == 3 else {}))
                n += 1
                await trio.sleep(4)
            assert store.health.down and len(store.journal.pending) >= 8
            assert [r["op"] for r in iter_records(store.journal.path)][:2] == ["turn", "turn"]  # on disk
            outage.up()
            await call.turn(n, "סיכום ביניים", budget_ils=2_000_000)
            await call.end("סיכום סופי: פגישה ביום ראשון")
            await settle(store, lambda: [i["state"] for i in outbox(store)] == ["sent"])
            await trio.sleep(3)  # a sender pass or two more: nothing further goes out
            nursery.cancel_scope.cancel()
        # Every write landed, in order, and the call is closed for real.
        assert caller_lines(store) == call.lines
        detail = queries.call_detail(store, SID)
        assert (detail["close_reason"], detail["outcome"]) == ("agent_hangup", "meeting_booked")
        assert len(queries.call_timeline(store, SID)) == len(call.lines)
        [lead] = queries.list_leads(store)
        assert (lead["area"], lead["name"], lead["budget_ils"], lead["status"]) == ("חיפה", "דנה", 2_000_000, "meeting_booked")
        [msg] = fake_twilio.messages()
        assert msg["Body"] == "סיכום סופי: פגישה ביום ראשון"
        assert not store.journal.pending
        out = json_log.getvalue()
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        states = [e.get("state") for e in events if e["event"] == "STORE"]
        assert "down" in states and "journaled" in states and "replayed" in states and "up" in states
    finally:
        outage.up()
        store.close()


async def test_database_down_at_hang_up_the_end_waits_in_the_journal_and_the_final_summary_goes_out_once(
        outage: Outage, tmp_path: Path, fake_twilio: Any, virtual_clock: trio.testing.MockClock) -> None:
    store = outage.open(tmp_path / "journal")
    rec = SqlRecorder(store)
    call = Call(rec)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_outbox_sender, store, cfg(fake_twilio))
            await call.start()
            await call.turn(1, "סיכום ביניים", area="חיפה", name="דנה")
            await call.turn(2)
            outage.down()
            await call.turn(3, "סיכום ביניים 3", budget_ils=1_000_000)
            t0 = trio.current_time()
            with trio.fail_after(10):  # the session's bound for one write
                await call.end("סיכום סופי")
            assert trio.current_time() - t0 < 3  # the database is known down: straight to the journal
            # The end is on disk (fsync-ed) before call_ended returned.
            assert [r["op"] for r in iter_records(store.journal.path)][-1] == "end"
            await trio.sleep(30)
            # Meanwhile nothing went out (not the mid-call summary either).
            assert fake_twilio.messages() == []
            outage.up()
            await settle(store, lambda: [i["state"] for i in outbox(store)] == ["sent"])
            await trio.sleep(3)
            nursery.cancel_scope.cancel()
        [msg] = fake_twilio.messages()
        assert msg["Body"] == "סיכום סופי"
        assert caller_lines(store) == call.lines
        assert queries.call_detail(store, SID)["close_reason"] == "agent_hangup"
        assert queries.list_leads(store)[0]["budget_ils"] == 1_000_000
        assert not store.journal.pending and not store.journal.path.exists() or store.journal.path.stat().st_size == 0
    finally:
        outage.up()
        store.close()


async def test_writes_of_other_calls_go_on_while_one_calls_writes_wait_in_the_journal(
        outage: Outage, tmp_path: Path, virtual_clock: trio.testing.MockClock) -> None:
    # The database comes back; a call whose writes are in the journal gets them replayed
    # first (in order), the others write straight away.
    store = outage.open(tmp_path / "journal")
    rec = SqlRecorder(store)
    a, b = Call(rec, "CA" + "a" * 32, "+972501111111"), Call(rec, "CA" + "b" * 32, "+972502222222")
    try:
        await a.start()
        outage.down()
        await a.turn(1)
        await a.turn(2)
        outage.up()
        await trio.sleep(3)  # past the probe interval
        await b.start()
        await b.turn(1)
        assert caller_lines(store, b.sid) == b.lines
        await a.turn(3)
        assert caller_lines(store, a.sid) == a.lines
        assert not store.journal.pending
    finally:
        outage.up()
        store.close()


async def test_a_write_cut_short_while_the_backlog_replays_is_journaled_not_lost(
        outage: Outage, tmp_path: Path, virtual_clock: trio.testing.MockClock) -> None:
    # The session bounds each write (10 s). A call's write that first replays the call's
    # journaled backlog (2 s a write on a slow database: longer than that) is cut short there:
    # it must still be kept (journaled), and land in order with the rest.
    store = outage.open(tmp_path / "journal")
    rec = SqlRecorder(store)
    call = Call(rec)
    try:
        await call.start()
        outage.down()
        await call.turn(1)
        outage.up()
        await trio.sleep(3)  # past the probe interval: the next write replays the backlog first
        with trio.CancelScope() as scope:
            scope.cancel()  # the session's bound, as it would expire during that replay
            await rec.transcript_turn(SID, "caller", "caller 2", call.t, call.t + 900, True)
        call.lines.append("caller 2")
        call.t += 1000
        assert store.journal.pending and store.journal.pending[-1]["args"]["text"] == "caller 2"
        await call.turn(3)
        assert caller_lines(store) == call.lines  # nothing lost, in order
        assert not store.journal.pending
    finally:
        outage.up()
        store.close()


# -- a process that died with journaled writes -----------------------------------------------

CHILD = Path(__file__).with_name("journal_child.py")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_process_killed_with_its_call_end_in_the_journal_is_replayed_at_the_next_start(
        backend: str, request: pytest.FixtureRequest, tmp_path: Path, fake_twilio: Any) -> None:
    url = request.getfixturevalue(f"{backend}_url")
    jdir = tmp_path / "journal"
    Store.open(url, {}, journal_dir=jdir).close()  # migrated
    child = subprocess.Popen([sys.executable, str(CHILD), url, str(jdir), SID, PHONE],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = await trio.to_thread.run_sync(child.stdout.readline)
        assert line.strip() == b"journaled", child.stderr.read().decode()[-3000:]
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait()
    [path] = list(jdir.glob("journal-*.jsonl"))
    assert [r["op"] for r in iter_records(path)] == ["end"]

    store = Store.open(url, {}, journal_dir=jdir)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_outbox_sender, store, cfg(fake_twilio, backoff_base_s=0.01))
            with trio.fail_after(20):
                while [i["state"] for i in outbox(store)] != ["sent"]:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        [msg] = fake_twilio.messages()
        assert msg["Body"] == "סיכום סופי מהיומן"
        detail = queries.call_detail(store, SID)
        assert (detail["close_reason"], detail["outcome"]) == ("agent_hangup", "meeting_booked")
        assert not path.exists()
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.journal_applied)).scalar() == 1
    finally:
        store.close()


async def test_replaying_a_record_twice_applies_it_once(db_url: str, tmp_path: Path) -> None:
    store = Store.open(db_url, {}, journal_dir=tmp_path)
    try:
        op = store.check_turn(SID, "caller", "שלום", 0, 900, True)
        record = {"id": "x1", "op": op.kind, "call_sid": SID, "owner": store.instance_id, "args": op.args}
        assert store.apply_record(record) is True
        assert store.apply_record(record) is False  # e.g. a crash between the commit and the done mark
        assert caller_lines(store) == ["שלום"]
    finally:
        store.close()


def test_journal_dir_defaults(tmp_path: Path) -> None:
    assert journal_mod.default_dir(sa.make_url(f"sqlite:///{tmp_path}/a/x.db"), {}) == tmp_path / "a"
    assert journal_mod.default_dir(sa.make_url("sqlite:///:memory:"), {}) is None
    assert journal_mod.default_dir(sa.make_url("postgresql+psycopg://h/db"), {"XDG_STATE_HOME": "/s"}) == Path("/s/agentlocator")
    assert journal_mod.default_dir(sa.make_url("postgresql+psycopg://h/db"), {"STORE_JOURNAL_DIR": "/j"}) == Path("/j")
    assert os.path.isabs(str(journal_mod.default_dir(sa.make_url("postgresql+psycopg://h/db"), {})))


# -- a full disk (SQLite's own "database or disk is full"), in virtual time --------------------

def log_events(out: str, name: str) -> list[dict]:
    return [e for e in (json.loads(line) for line in out.splitlines() if line.startswith("{")) if e["event"] == name]


class LongCall(Call):
    """Lines long enough that every turn needs new pages (a full database refuses each one)."""

    async def turn(self, n: int, summary: str | None = None, **slots: Any) -> None:
        for speaker in ("agent", "caller"):
            line = f"{speaker} {n} " + "מילה " * 390  # ~3.5 kB: a page of its own, under the 2000-character cap
            self.rec.timeline_event(self.sid, self.t, "STATE_CHANGE", to_state=speaker)
            await self.rec.transcript_turn(self.sid, speaker, line, self.t, self.t + 900, True)  # type: ignore[arg-type]
            self.lines.append(line)
            self.t += 1000
        for k, v in slots.items():
            setattr(self.lead.slots, k, v)
        if slots:
            await self.rec.lead_updated(self.sid, self.phone, self.lead, summary)


async def _disk_full_call(store: Store, faults: Any, fake_twilio: Any, *, journal_full: bool) -> tuple[LongCall, list[float]]:
    """A call that books a meeting; the database's disk fills up after its first turn and is
    freed 30 s after the hang-up. Returns the call and how long each of its writes took."""
    rec = SqlRecorder(store)
    call = LongCall(rec)
    took: list[float] = []

    async def timed(step: Any) -> None:
        t0 = trio.current_time()
        await step
        took.append(trio.current_time() - t0)

    async with trio.open_nursery() as nursery:
        await nursery.start(run_outbox_sender, store, cfg(fake_twilio))
        await timed(call.start())
        await timed(call.turn(1, "סיכום ביניים: חיפה", area="חיפה"))
        faults.full = True
        for n in range(2, 6):
            await timed(call.turn(n, f"סיכום ביניים {n}", **({"name": "דנה"} if n == 3 else {})))
            await trio.sleep(4)
        await timed(call.end("סיכום סופי: פגישה ביום ראשון"))
        assert store.journal.pending and store.journal.pending[-1]["op"] == "end"
        if not journal_full:  # on disk (fsync-ed) before the write returned
            assert [r["op"] for r in iter_records(store.journal.path)][-1] == "end"
        await trio.sleep(30)
        assert fake_twilio.messages() == []  # nothing goes out while the end waits (not the mid-call summary)
        faults.full = False  # space freed
        await settle(store, lambda: [i["state"] for i in outbox(store)] == ["sent"])
        await trio.sleep(10)  # sender passes and keeper replays: nothing further goes out
        nursery.cancel_scope.cancel()
    return call, took


def _nothing_lost_nothing_twice(store: Store, call: LongCall, fake_twilio: Any) -> None:
    assert caller_lines(store) == call.lines  # every line once, in order
    detail = queries.call_detail(store, SID)
    assert (detail["close_reason"], detail["outcome"]) == ("agent_hangup", "meeting_booked")
    assert len(queries.call_timeline(store, SID)) == len(call.lines)
    [lead] = queries.list_leads(store)
    assert (lead["area"], lead["name"], lead["status"]) == ("חיפה", "דנה", "meeting_booked")
    [item] = outbox(store)
    assert (item["state"], item["attempts"]) == ("sent", 1)
    [msg] = fake_twilio.messages()
    assert msg["Body"] == "סיכום סופי: פגישה ביום ראשון"
    assert not store.journal.pending
    with store.engine.connect() as conn:
        applied = conn.execute(sa.select(sa.func.count()).select_from(schema.journal_applied)).scalar()
    assert applied >= 1


async def test_sqlite_disk_full_mid_call_a_clear_error_the_call_goes_on_and_everything_lands_once(
        sqlite_url: str, tmp_path: Path, fake_twilio: Any, virtual_clock: trio.testing.MockClock, json_log: io.StringIO) -> None:
    store = Store.open(sqlite_url, {}, journal_dir=tmp_path / "journal")  # the journal on another disk
    faults = sqlite_faults(store.engine)
    try:
        call, took = await _disk_full_call(store, faults, fake_twilio, journal_full=False)
        _nothing_lost_nothing_twice(store, call, fake_twilio)
        # The call went on: no write of it waited past the session's bound for one write (10 s),
        # and once the database was known full they went straight to the journal.
        assert max(took) < 10, took
        out = json_log.getvalue()
        # One ERROR when the disk filled, one line when it was back (no up/down flapping while
        # the lease, an update in place, still fits).
        [down] = [e for e in log_events(out, "STORE") if e["state"] == "down"]
        assert "database or disk is full" in down["error"] and down["where"].startswith("store.")
        assert len([e for e in log_events(out, "STORE") if e["state"] == "up"]) == 1
        journaled = [e for e in log_events(out, "STORE") if e["state"] == "journaled"]
        assert journaled and all(e["durable"] for e in journaled)
        assert not [e for e in log_events(out, "ERROR") if e.get("where") == "store.journal"]
        assert "replayed" in [e["state"] for e in log_events(out, "STORE")]
    finally:
        faults.full = False
        store.close()


async def test_disk_full_for_the_journal_too_the_writes_are_held_in_memory_and_the_call_goes_on(
        sqlite_url: str, tmp_path: Path, fake_twilio: Any, virtual_clock: trio.testing.MockClock, json_log: io.StringIO) -> None:
    # The journal's file is /dev/full (the kernel's own ENOSPC on every write, no root needed):
    # the journaled writes are held in this process's memory only. What is lost, and only if
    # the process dies before the database takes them again: those writes (here the call's
    # last turns, its lead updates and its end, so the final summary too). The call goes on
    # regardless, and once the database has space everything lands, once.
    store = Store.open(sqlite_url, {}, journal_dir=tmp_path / "journal")
    assert store.journal.path is not None
    store.journal.path.parent.mkdir(parents=True, exist_ok=True)
    store.journal.path.symlink_to("/dev/full")
    faults = sqlite_faults(store.engine)
    try:
        call, took = await _disk_full_call(store, faults, fake_twilio, journal_full=True)
        _nothing_lost_nothing_twice(store, call, fake_twilio)
        assert max(took) < 10, took
        assert store.journal.durable_failures >= 5  # every journaled write was in memory only
        out = json_log.getvalue()
        journaled = [e for e in log_events(out, "STORE") if e["state"] == "journaled"]
        assert journaled and not any(e["durable"] for e in journaled)
        errors = [e for e in log_events(out, "ERROR") if e.get("where") == "store.journal"]
        assert len(errors) == len(journaled)
        assert "No space left on device" in errors[0]["error"]
        assert errors[0]["held"] == "in memory only: lost if this process dies before the database is back"
    finally:
        faults.full = False
        store.close()
