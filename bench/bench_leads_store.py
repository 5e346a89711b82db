"""What the store costs a call, on the default SQLite (WAL, synchronous=FULL) in a temp dir.

1. Event-loop lateness while a call is recorded and the database is sometimes busy: a 2 ms
   ticker runs on the trio loop while a 40-turn call is recorded (a turn every 20 ms: turns,
   lead updates, the end + outbox) and another writer holds the database lock for 150 ms
   every 400 ms (a backup, a second process, a slow disk: what busy_timeout waits out).
   Ours: SqlRecorder (writes in worker threads). Baseline, same run and conditions: the same
   Store calls made on the loop. Reported: p99 and worst tick lateness, an idle loop's as the
   floor; target: ours p99 < 20 ms (one audio frame).
2. One transcript turn written (Store.record_turn, a durable transaction) against a plain
   sqlite3 INSERT + COMMIT: the price of WAL + FULL + our bookkeeping (informational).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_leads_store.py -s -o addopts="")
"""
from __future__ import annotations

import datetime as dt
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import trio

from dialog.base import LeadState, Slots
from leads.base import CallInfo, CallMetrics
from leads.store import SqlRecorder, Store

from bench.support import pick, target

TURNS = pick(40, 4)


def _info(sid: str) -> CallInfo:
    return CallInfo(sid, "MZ" + sid[2:], "+972501234567", "+97233001122", dt.datetime.now(dt.timezone.utc))


async def _ticker(stop: trio.Event, late: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await trio.sleep(0.002)
        late.append(time.perf_counter() - t - 0.002)


def _p99(xs: list[float]) -> float:
    return sorted(xs)[int(0.99 * (len(xs) - 1))]


async def _record_call(store: Store, sid: str, threaded: bool) -> None:
    rec = SqlRecorder(store)
    lead = LeadState(Slots(area="תל אביב"))
    if threaded:
        await rec.call_started(_info(sid))
        for n in range(TURNS):
            await trio.sleep(0.02)
            await rec.transcript_turn(sid, "caller" if n % 2 else "agent", "שורה " * 8, n * 3000, n * 3000 + 2000, True)
            if n % 4 == 1:
                await rec.lead_updated(sid, "+972501234567", lead)
        await rec.call_ended(sid, dt.datetime.now(dt.timezone.utc), "agent_hangup", "qualified", CallMetrics(turns=20),
                             "+972501234567", lead, "סיכום")
    else:
        # The loop gets control back between writes, as a session would between turns:
        # the stall measured is the worst single write, not the whole call.
        store.record_call_start(_info(sid))
        await trio.sleep(0)
        for n in range(TURNS):
            await trio.sleep(0.02)
            store.record_turn(sid, "caller" if n % 2 else "agent", "שורה " * 8, n * 3000, n * 3000 + 2000, True)
            await trio.sleep(0)
            if n % 4 == 1:
                store.record_lead(sid, "+972501234567", lead)
                await trio.sleep(0)
        store.record_call_end(sid, dt.datetime.now(dt.timezone.utc), "agent_hangup", "qualified",
                              CallMetrics(turns=20), "+972501234567", lead, "סיכום")
        await trio.sleep(0)


def _busy_writer(path: Path, stop: threading.Event) -> None:
    """Another writer: holds the write lock 150 ms out of every 400 ms."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    while not stop.is_set():
        conn.execute("BEGIN IMMEDIATE")
        time.sleep(0.15)
        conn.execute("COMMIT")
        stop.wait(0.25)
    conn.close()


def _lateness(store: Store | None, sid: str, threaded: bool, path: Path | None = None) -> list[float]:
    """Every tick's lateness while one call is recorded (store None: an idle loop, ~1 s)."""

    async def main() -> list[float]:
        stop, late = trio.Event(), []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_ticker, stop, late)
            await trio.sleep(0.01)
            if store is None:
                await trio.sleep(pick(1.0, 0.1))
            else:
                await _record_call(store, sid, threaded)
            await trio.sleep(0.01)
            stop.set()
        return late

    if path is None:
        return trio.run(main)
    halt = threading.Event()
    blocker = threading.Thread(target=_busy_writer, args=(path, halt))
    blocker.start()
    try:
        return trio.run(main)
    finally:
        halt.set()
        blocker.join()


def test_event_loop_stall_while_recording(benchmark) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = Store.open(f"sqlite:///{path}")
        ours: list[float] = []

        def threaded() -> None:
            ours.extend(_lateness(store, f"CA{len(ours):032x}", True, path))

        benchmark.pedantic(threaded, rounds=pick(3, 1), iterations=1)
        on_loop = [x for i in range(pick(3, 1)) for x in _lateness(store, f"CA{0xb0 + i:032x}", False, path)]
        idle = _lateness(None, "", False)
        store.close()
    p_ours, p_loop, p_idle = _p99(ours), _p99(on_loop), _p99(idle)
    ratio = p_loop / max(p_ours, 1e-6)
    verdict = "met" if p_ours < 0.020 else "MISSED"
    print(f"\n[leads] 2 ms ticker lateness p99 while recording a {TURNS}-turn call, DB busy 150/400 ms: worker threads "
          f"{p_ours * 1000:.2f} ms (target < one 20 ms frame, {verdict}), writes on the loop "
          f"{p_loop * 1000:.2f} ms -> {ratio:.1f}x less; idle loop {p_idle * 1000:.2f} ms; worst: threads "
          f"{max(ours) * 1000:.1f} ms, on the loop {max(on_loop) * 1000:.1f} ms")
    target("leads", "event-loop lateness p99 while recording (DB busy)", p_ours * 1000, 20, "ms")
    benchmark.extra_info.update(p99_threads_ms=round(p_ours * 1000, 2), p99_on_loop_ms=round(p_loop * 1000, 2),
                                p99_idle_ms=round(p_idle * 1000, 2), ratio=round(ratio, 2))


def _raw_connection(path: Path, journal: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def test_turn_write_cost(benchmark) -> None:
    """Store.record_turn against plain sqlite3 doing the same durable work: the same database
    file and schema, WAL + synchronous=FULL + foreign keys, BEGIN IMMEDIATE, the very statements
    (and parameters) record_turn sent, caught from SQLAlchemy and replayed, then COMMIT. What is
    left is our price: SQLAlchemy (statement build, pool) and field checks. A single-INSERT
    commit in WAL and in rollback-journal mode are shown as the floor (the old baseline was
    the rollback-journal one: a journal mode the store does not run)."""
    import sqlalchemy as sa

    n = pick(200, 5)
    sid = "CA00000000000000000000000000000001"
    text = "שורה " * 8
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = Store.open(f"sqlite:///{path}")
        store.record_call_start(_info(sid))
        benchmark(store.record_turn, sid, "caller", text, 0, 2000, True)
        caught: list[tuple[str, tuple]] = []

        def catch(conn, cursor, statement, params, context, many) -> None:  # type: ignore[no-untyped-def]
            caught.append((statement, tuple(params)))

        sa.event.listen(store.engine, "before_cursor_execute", catch)
        store.record_turn(sid, "caller", text, 0, 2000, True)
        sa.event.remove(store.engine, "before_cursor_execute", catch)
        statements = [(q, p) for q, p in caught if not q.startswith("BEGIN")]
        assert any(q.startswith("INSERT INTO transcripts") for q, _ in statements), caught
        raw = _raw_connection(path, "WAL")

        def same_work() -> None:
            raw.execute("BEGIN IMMEDIATE")
            for q, p in statements:
                raw.execute(q, p)
            raw.execute("COMMIT")

        row = (sid, "caller", text, 0, 2000, 1)
        plain = {}
        for journal in ("WAL", "DELETE"):
            plain[journal] = _raw_connection(Path(tmp) / f"plain-{journal}.db", journal)
            plain[journal].execute("CREATE TABLE t (call_sid TEXT, speaker TEXT, text TEXT, a INT, b INT, c INT)")

        def one_insert(conn: sqlite3.Connection):  # type: ignore[no-untyped-def]
            def run() -> None:
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t VALUES (?,?,?,?,?,?)", row)
                conn.execute("COMMIT")
            return run

        # interleaved, one of each per round: the same disk and machine load for all four
        runs = {"ours": lambda: store.record_turn(sid, "caller", text, 0, 2000, True), "same": same_work,
                "WAL": one_insert(plain["WAL"]), "DELETE": one_insert(plain["DELETE"])}
        samples: dict[str, list[float]] = {k: [] for k in runs}
        for _ in range(n):
            for k, fn in runs.items():
                t = time.perf_counter()
                fn()
                samples[k].append(time.perf_counter() - t)
        med = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
        ours, same, floors = med["ours"], med["same"], {"WAL": med["WAL"], "DELETE": med["DELETE"]}
        raw.close()
        for conn in plain.values():
            conn.close()
        store.close()
    print(f"\n[leads] one transcript turn, durable (median of {n}):")
    print(f"[leads]   Store.record_turn                                      {ours * 1e6:7.0f} us")
    print(f"[leads]   same statements, plain sqlite3, same file, WAL + FULL   {same * 1e6:7.0f} us -> ours {ours / same:.2f}x")
    print(f"[leads]   one INSERT + COMMIT, WAL + FULL (floor)                {floors['WAL'] * 1e6:7.0f} us -> ours {ours / floors['WAL']:.2f}x")
    print(f"[leads]   one INSERT + COMMIT, rollback journal + FULL (old base) {floors['DELETE'] * 1e6:7.0f} us -> ours {ours / floors['DELETE']:.2f}x")
    benchmark.extra_info.update(ours_us=round(ours * 1e6, 1), same_work_us=round(same * 1e6, 1),
                                ratio_same_work=round(ours / same, 2), wal_insert_us=round(floors["WAL"] * 1e6, 1),
                                ratio_wal_insert=round(ours / floors["WAL"], 2))
