"""The realtor's calendar: what it adds to a call.

1. A turn of the rule brain wrapped in the calendar brain (busy list from the warm cache,
   set into the dialog) against the same turn of the bare rule brain (baseline, same run):
   the per-turn overhead a call pays for having a calendar.
2. Booking in a real CalDAV server on loopback (Radicale: re-check REPORT + PUT + our
   meetings row) against one REPORT of the busy list (baseline, same run).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_meetings.py -s -o addopts="")
"""
from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import trio

from dialog import schedule
from dialog.base import CallerTurn
from dialog.rules import RuleBrain
from leads.meetings import Booking, Meetings, MeetingsConfig, new_uid
from leads.realtors import Realtor, Realtors
from leads.store import Store
from server.meeting_brain import CalendarBrain

from bench.support import pick, target

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests" / "meetings"))
from radicale_server import radicale_server  # noqa: E402

TZ = schedule.TZ
NOW = dt.datetime(2027, 3, 24, 8, 0, tzinfo=TZ)
CALL = ["a 4 room apartment in Tel Aviv", "two million", "within a year", "my name is Dana", "yes", "the first one"]
CALLS = pick(200, 2)
BOOKINGS = pick(60, 2)


async def _turns(meetings: Meetings, wrapped: list[float], bare: list[float]) -> None:
    for _ in range(CALLS):
        a = CalendarBrain(RuleBrain("en-US", "+972501234567", NOW), meetings, "+972501234567", "en-US")
        b = RuleBrain("en-US", "+972501234567", NOW)
        for brain, out in ((a, wrapped), (b, bare)):
            brain.heard(brain.opening(), True)
        for text in CALL:
            for brain, out in ((a, wrapped), (b, bare)):
                t0 = time.perf_counter()
                reply = " ".join([s async for s in brain.respond(CallerTurn(text, 0.95))])
                out.append(time.perf_counter() - t0)
                brain.heard(reply, True)


async def _bookings(meetings: Meetings, realtor: Realtor, book: list[float], report: list[float]) -> None:
    day = dt.datetime(2027, 4, 4, 10, tzinfo=TZ)  # a Sunday
    for i in range(BOOKINGS):
        t0 = time.perf_counter()
        await meetings.busy(realtor, max_age_s=0)
        report.append(time.perf_counter() - t0)
        at = day + dt.timedelta(days=i // 3, hours=3 * (i % 3))
        t0 = time.perf_counter()
        outcome = await meetings.book(Booking(new_uid(), realtor.name, "+972501234567", at, name="Dana"))
        book.append(time.perf_counter() - t0)
        assert outcome == "booked", outcome


def test_calendar_costs(benchmark) -> None:
    wrapped: list[float] = []
    bare: list[float] = []
    book: list[float] = []
    report: list[float] = []
    with radicale_server() as radicale, tempfile.TemporaryDirectory() as tmp:
        access, _ = radicale.new_calendar()
        store = Store.open(f"sqlite:///{tmp}/bench.db", env={}, journal_dir=None)
        realtor = Realtor("dana", frozenset(), access)
        config = MeetingsConfig(refresh_s=3600)
        meetings = Meetings(Realtors([realtor]), store, config, clock=lambda: NOW)

        async def main() -> None:
            await meetings.busy(realtor)  # warm, as the background refresh keeps it
            await _turns(meetings, [], [])  # warm-up: regexes, holiday tables
            await _turns(meetings, wrapped, bare)
            await _bookings(meetings, realtor, book, report)

        try:
            benchmark.pedantic(lambda: trio.run(main), rounds=1, iterations=1)
        finally:
            store.close()
    w, b = np.asarray(wrapped) * 1e6, np.asarray(bare) * 1e6
    bk, rp = np.asarray(book) * 1e3, np.asarray(report) * 1e3
    print(f"\n[meetings] {len(w)} turns each (µs): calendar brain p50 {np.percentile(w, 50):.1f} p99 {np.percentile(w, 99):.1f};"
          f" bare rule brain p50 {np.percentile(b, 50):.1f} p99 {np.percentile(b, 99):.1f}")
    print(f"[meetings] {len(bk)} bookings in Radicale on loopback (ms): book p50 {np.percentile(bk, 50):.1f}"
          f" p95 {np.percentile(bk, 95):.1f}; one busy REPORT p50 {np.percentile(rp, 50):.1f} p95 {np.percentile(rp, 95):.1f}")
    overhead = np.percentile(w, 50) / np.percentile(b, 50)
    print(f"[meetings] calendar brain / bare (p50) = {overhead:.2f}x; booking / one REPORT (p50) = "
          f"{np.percentile(bk, 50) / np.percentile(rp, 50):.1f}x")
    benchmark.extra_info.update({"turn_overhead_x": round(float(overhead), 2),
                                 "book_p50_ms": round(float(np.percentile(bk, 50)), 1)})
    target("meetings", "calendar brain turn / bare rule-brain turn (p50)", overhead, 1.5, "x")
    target("meetings", "booking / one busy REPORT (p50)", np.percentile(bk, 50) / np.percentile(rp, 50), 4.0, "x")
