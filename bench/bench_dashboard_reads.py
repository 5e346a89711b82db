"""What the dashboard's reads cost on a store with many leads (SQLite, WAL, a temp dir); each
page refreshes every 2 s, so each read is one short query set, timed here.

1. The leads list searched (a name substring, a phone number typed "050-…", a status and a
   day range) over 10,000 leads, against the unfiltered newest-500 list of the same store
   (the list the dashboard showed before the filters). Target: each search p50 <= 50 ms.
2. One lead's page (its timeline: 30 calls of 20 transcript lines, their follow-ups, dial
   jobs, the WhatsApp thread) against reading the same 30 calls one by one through
   /api/calls/<sid>'s query (what the page would otherwise take). Target: p50 <= 50 ms.
3. The CSV export of all 10,000 leads (informational; target <= 1 s).
Run: make bench  (or: .venv/bin/python -m pytest -q bench/bench_dashboard_reads.py -s -o addopts="")
"""
from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


from leads import lead_filter, queries, schema
from leads.export import leads_csv
from leads.store import Store

from bench.support import pick, target

LEADS = pick(10_000, 200)
CALLS = pick(30, 3)
LINES = pick(20, 2)
ROUNDS = pick(30, 2)
T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.timezone.utc)
NAMES = ("דנה לוי", "יוסי כהן", "Dana Levi", "רונית אברהם", "משה פרץ", "Noa Katz")
PHONE = "+972501234567"


def _seed(store: Store) -> None:
    rows = [{"phone": f"+9725{i:08d}", "name": f"{NAMES[i % len(NAMES)]} {i}", "area": "רמת גן",
             "status": ("new", "qualified", "meeting_booked", "lost")[i % 4], "source": ("call", "web_form", "facebook")[i % 3],
             "created_at": T0 + dt.timedelta(minutes=7 * i), "updated_at": T0 + dt.timedelta(minutes=7 * i + 3)}
            for i in range(LEADS)]
    rows.append({"phone": PHONE, "name": "דנה לוי", "area": "רמת גן", "status": "meeting_booked", "source": "web_form",
                 "created_at": T0, "updated_at": T0})
    calls, turns, outbox = [], [], []
    for n in range(CALLS):
        sid = f"CA{n:032x}"
        start = T0 + dt.timedelta(hours=n)
        calls.append({"call_sid": sid, "from_number": PHONE, "to_number": "+97233001122", "phone": PHONE,
                      "started_at": start, "last_activity_at": start, "ended_at": start + dt.timedelta(minutes=2),
                      "duration_s": 120.0, "close_reason": "agent_hangup", "outcome": "qualified", "turns": LINES // 2,
                      "metrics": {"turn_latency_ms": [700.0] * (LINES // 2), "asr_latency_ms": [300.0] * (LINES // 2)}})
        turns += [{"call_sid": sid, "speaker": "agent" if k % 2 else "caller", "text": "שורה של תמליל " * 4,
                   "t_start_ms": 3000 * k, "t_end_ms": 3000 * k + 2500, "heard_fully": True} for k in range(LINES)]
        outbox.append({"key": f"whatsapp:{sid}", "call_sid": sid, "phone": PHONE, "channel": "whatsapp",
                       "body": "סיכום השיחה", "state": "delivered", "created_at": start, "updated_at": start})
    with store.engine.begin() as conn:
        conn.execute(schema.leads.insert(), rows)
        conn.execute(schema.calls.insert(), calls)
        conn.execute(schema.transcripts.insert(), turns)
        conn.execute(schema.outbox.insert(), outbox)


def _p50(fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def test_dashboard_reads(benchmark) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
        _seed(store)
        searches = {
            "name": lead_filter.parse({"q": "רונית"}),
            "phone": lead_filter.parse({"q": "050-0000001"}),
            "status + days": lead_filter.parse({"status": "qualified", "since": "2026-11-10", "until": "2026-11-20"}),
            "source": lead_filter.parse({"source": "facebook"}),
        }
        assert queries.list_leads(store, 500, searches["phone"])  # the search finds what it should
        baseline = _p50(lambda: queries.list_leads(store, 500))
        benchmark.pedantic(lambda: queries.list_leads(store, 500, searches["name"]), rounds=pick(10, 1), iterations=1)
        found = {name: _p50(lambda where=where: queries.list_leads(store, 500, where)) for name, where in searches.items()}
        page = _p50(lambda: queries.lead_page(store, PHONE))
        one_by_one = _p50(lambda: [queries.call_detail(store, f"CA{n:032x}") for n in range(CALLS)])
        items = len(queries.lead_page(store, PHONE)["timeline"])
        t = time.perf_counter()
        text = leads_csv(queries.list_leads(store, 100_000))
        export = time.perf_counter() - t
        store.close()
    print(f"\n[dashboard] {LEADS} leads: newest-500 list {baseline * 1000:.1f} ms (baseline); searches "
          + ", ".join(f"{k} {v * 1000:.1f} ms ({v / baseline:.2f}x)" for k, v in found.items()))
    print(f"[dashboard] lead page ({CALLS} calls x {LINES} lines, {items} timeline items) {page * 1000:.1f} ms; "
          f"the same calls one by one {one_by_one * 1000:.1f} ms ({one_by_one / page:.1f}x the page)")
    print(f"[dashboard] CSV of {LEADS + 1} leads: {export * 1000:.0f} ms, {len(text.encode()) / 1e6:.2f} MB")
    for name, value in found.items():
        target("dashboard", f"leads search ({name}) p50, {LEADS} leads", value * 1000, 50, "ms")
    target("dashboard", f"lead page p50 ({CALLS} calls)", page * 1000, 50, "ms")
    target("dashboard", f"CSV export, {LEADS} leads", export * 1000, 1000, "ms")
    benchmark.extra_info.update(baseline_ms=round(baseline * 1000, 2), page_ms=round(page * 1000, 2),
                                csv_ms=round(export * 1000, 1), **{f"search_{k}_ms": round(v * 1000, 2) for k, v in found.items()})
