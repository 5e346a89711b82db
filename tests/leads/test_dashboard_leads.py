"""The leads list's filters and CSV export, one lead's timeline and the charts' ranges, through
the dashboard blueprint on a bare Quart-Trio app over a real store (SQLite and PostgreSQL)."""
from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from quart_trio import QuartTrio

from dialog.base import LeadState, Slots
from leads import lead_filter, schema
from leads.base import CallInfo, CallMetrics
from leads.export import leads_csv
from leads.fields import InvalidField
from leads.store import SqlRecorder, Store
from server.dashboard import dashboard_bp, range_start

T0 = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.timezone.utc)  # 10:00 in Israel
OUR_NUMBER = "+97233001122"


def make_app(store: Store) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["STORE"] = store
    app.config["DASHBOARD_TOKEN"] = ""
    app.register_blueprint(dashboard_bp)
    return app


def sid(n: int, prefix: str = "CA") -> str:
    return f"{prefix}{n:032x}"


async def a_call(rec: SqlRecorder, n: int, phone: str, start: dt.datetime, lead: LeadState,
                 lines: list[tuple[str, str]] = (), outbound: bool = False) -> None:
    frm, to = (OUR_NUMBER, phone) if outbound else (phone, OUR_NUMBER)
    await rec.call_started(CallInfo(sid(n), sid(n, "MZ"), frm, to, start))
    for i, (speaker, text) in enumerate(lines):
        await rec.transcript_turn(sid(n), speaker, text, 1000 * i, 1000 * i + 800, True)
    await rec.call_ended(sid(n), start + dt.timedelta(seconds=60), "agent_hangup", lead.status,
                         CallMetrics(turn_latency_ms=[650.0], asr_latency_ms=[300.0], turns=len(lines)),
                         phone, lead, "סיכום: " + (lead.slots.name or ""))


async def seed(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    await a_call(rec, 1, "+972501234567", T0, LeadState(Slots(name="דנה לוי", area="רמת גן"), status="meeting_booked",
                 meeting_at=dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.timezone.utc)),
                 [("agent", "Hi, this is Noa from AgentLocator?"), ("caller", "כן, המספר שלי 050-123-4567")])
    await a_call(rec, 2, "+972529876543", T0 + dt.timedelta(days=2), LeadState(Slots(name="Dan O'Brien"), status="qualified"))
    await a_call(rec, 3, "+972541112222", T0 + dt.timedelta(days=5), LeadState(Slots(name="=HYPERLINK(\"x\")"), status="lost"))
    # the first lead calls again, this time we called them
    await a_call(rec, 4, "+972501234567", T0 + dt.timedelta(days=6), LeadState(Slots(), status="new"),
                 [("agent", "היי דנה, מדברת נועה")], outbound=True)
    # leads came in on T0, T0+2d, T0+5d (created_at is the first call's end)
    with store.engine.begin() as conn:
        for phone, days in (("+972501234567", 0), ("+972529876543", 2), ("+972541112222", 5)):
            conn.execute(sa.update(schema.leads).where(schema.leads.c.phone == phone)
                         .values(created_at=T0 + dt.timedelta(days=days)))
        # the follow-ups were queued at the calls' end (the store stamps them with the real now)
        for n, days in ((1, 0), (2, 2), (3, 5), (4, 6)):
            conn.execute(sa.update(schema.outbox).where(schema.outbox.c.call_sid == sid(n))
                         .values(created_at=T0 + dt.timedelta(days=days, seconds=61)))


async def get(client, path: str):  # type: ignore[no-untyped-def]
    resp = await client.get(path)
    return resp.status_code, await resp.get_json()


async def test_leads_filtered_by_status_date_name_and_phone(store: Store) -> None:
    await seed(store)
    client = make_app(store).test_client()
    phones = lambda leads: sorted(lead["phone"] for lead in leads)  # noqa: E731
    _, all_leads = await get(client, "/api/leads")
    assert len(all_leads) == 3 and {"created_at", "source"} <= set(all_leads[0])
    _, booked = await get(client, "/api/leads?status=meeting_booked")
    assert phones(booked) == ["+972501234567"]
    # days in Israel, both ends inclusive
    _, mid = await get(client, "/api/leads?since=2026-11-27&until=2026-11-28")
    assert phones(mid) == ["+972529876543"]
    _, late = await get(client, "/api/leads?since=2026-11-29")
    assert phones(late) == ["+972541112222"]
    # a name, case-insensitive, and a phone number in the forms people type
    for q, want in (("dan o'", ["+972529876543"]), ("דנה", ["+972501234567"]), ("050-123", ["+972501234567"]),
                    ("0529876543", ["+972529876543"]), ("+972 54 111", ["+972541112222"]), ("2222", ["+972541112222"]),
                    ("%", []), ("nobody", [])):
        _, found = await get(client, "/api/leads?" + urlencode({"q": q}))
        assert phones(found) == want, q
    # combined: AND
    _, none = await get(client, "/api/leads?" + urlencode({"status": "lost", "q": "דנה"}))
    assert none == []
    # the leads the WhatsApp brain handed to a person
    with store.engine.begin() as conn:
        conn.execute(sa.update(schema.leads).where(schema.leads.c.phone == "+972529876543").values(needs_person="reschedule"))
    _, flagged = await get(client, "/api/leads?needs_person=1")
    assert phones(flagged) == ["+972529876543"]
    _, everyone = await get(client, "/api/leads?needs_person=0")
    assert len(everyone) == 3
    # a source nobody has; the callers' leads have none recorded: "call"
    _, by_source = await get(client, "/api/leads?source=facebook")
    assert by_source == []
    _, callers = await get(client, "/api/leads?source=call")
    assert len(callers) == 3 and {lead["source"] for lead in callers} == {"call"}
    assert (await get(client, "/api/lead_sources"))[1] == ["call"]


async def test_bad_filters_are_refused_naming_the_parameter(store: Store) -> None:
    client = make_app(store).test_client()
    for query, field in (("since=26/11/2026", "since"), ("until=2026-02-30", "until"), ("status=Robert'); DROP", "status"),
                         ("since=2026-11-28&until=2026-11-27", "until"), ("q=" + "x" * 101, "q"),
                         ("needs_person=yes", "needs_person")):
        status, body = await get(client, "/api/leads?" + query)
        assert (status, body["field"]) == (400, field), query
        status, _ = await get(client, "/api/leads.csv?" + query)
        assert status == 400


async def test_csv_export_follows_the_filters(store: Store) -> None:
    await seed(store)
    client = make_app(store).test_client()
    resp = await client.get("/api/leads.csv?since=2026-11-27")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="leads-')
    text = (await resp.get_data()).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert [r["phone"] for r in rows] == ["+972541112222", "+972529876543"]
    assert rows[0]["name"] == "'=HYPERLINK(\"x\")"  # not a formula in a spreadsheet
    assert rows[1]["name"] == "Dan O'Brien" and rows[1]["status"] == "qualified"
    assert rows[1]["created_at"] == "2026-11-28T10:00:00+02:00"


def test_csv_cells() -> None:
    text = leads_csv([{"phone": "+972501234567", "name": "דנה, \"הגדולה\"\nלוי", "rooms": 3.0, "budget_ils": 2000000,
                       "area": "-1", "timeframe": "@once", "status": "new"}])
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[1][:8] == ["+972501234567", "דנה, \"הגדולה\"\nלוי", "'-1", "", "3", "", "2000000", "'@once"]


def test_phone_search_digits() -> None:
    assert lead_filter.phone_digits("050-123-4567") == "972501234567"
    assert lead_filter.phone_digits("+972 50 123") == "97250123"
    assert lead_filter.phone_digits("4567") == "4567"
    assert lead_filter.phone_digits("דנה") is None
    with pytest.raises(InvalidField):
        lead_filter.parse({"since": "2026-13-01"})
    f = lead_filter.parse({"since": "2026-03-27", "until": "2026-03-27"})  # the day DST starts in Israel
    assert (f.since.isoformat(), f.until.isoformat()) == ("2026-03-26T22:00:00+00:00", "2026-03-27T21:00:00+00:00")


async def test_lead_timeline(store: Store) -> None:
    await seed(store)
    client = make_app(store).test_client()
    status, page = await get(client, "/api/leads/0501234567/timeline")  # any form of the number
    assert status == 200
    assert page["lead"]["name"] == "דנה לוי" and page["lead"]["status"] == "meeting_booked"
    kinds = [(i["kind"], i.get("call_sid"), i.get("direction")) for i in page["timeline"]]
    assert kinds == [("intake", None, None), ("call", sid(1), "inbound"), ("message", sid(1), "out"),
                     ("meeting", None, None), ("call", sid(4), "outbound"), ("message", sid(4), "out")]
    first = page["timeline"][1]
    assert [t["text"] for t in first["transcript"]] == ["Hi, this is Noa from AgentLocator?", "כן, המספר שלי 050-123-4567"]
    assert first["figures"]["turn_latency_ms"] == 650.0 and first["metrics"]["asr_latency_ms"] == [300.0]
    message = page["timeline"][2]
    assert message["channel"] == "whatsapp" and message["body"] == "סיכום: דנה לוי" and message["state"]
    assert page["timeline"][3]["at"] == "2026-11-30T10:00:00+02:00"
    assert (await client.get("/api/leads/+972500000000/timeline")).status_code == 404
    status, body = await get(client, "/api/leads/not-a-phone/timeline")
    assert (status, body["field"]) == (400, "phone")
    # the page itself
    resp = await client.get("/dashboard/leads/+972501234567")
    assert resp.status_code == 200
    html = (await resp.get_data()).decode()
    assert 'data-page="lead"' in html and 'data-phone="+972501234567"' in html


async def test_series_over_a_range(store: Store) -> None:
    rec = SqlRecorder(store, lead_webhook=False)
    now = dt.datetime.now(dt.timezone.utc)
    for n, days in ((1, 0), (2, 3), (3, 20), (4, 40)):
        await a_call(rec, n, f"+97250000000{n}", now - dt.timedelta(days=days, minutes=2), LeadState(Slots()))
    client = make_app(store).test_client()
    counts = {}
    for name in ("today", "7d", "30d"):
        status, body = await get(client, "/api/series?range=" + name)
        assert status == 200 and body["range"] == name
        assert body["since"] == range_start(name, now).timestamp() or body["since"] <= now.timestamp()
        assert all(p["t"] >= body["since"] for p in body["points"])
        counts[name] = len(body["points"])
    # "today" depends on the hour (a call 2 minutes ago may be yesterday just after midnight)
    assert counts["today"] in (0, 1) and (counts["7d"], counts["30d"]) == (2, 3)
    status, body = await get(client, "/api/series?range=1y")
    assert (status, body["field"]) == (400, "range")
    _, everything = await get(client, "/api/series")
    assert len(everything["points"]) == 4


def test_range_start_is_midnight_in_israel() -> None:
    now = dt.datetime(2026, 11, 26, 23, 30, tzinfo=dt.timezone.utc)  # 01:30 on the 27th in Israel
    assert range_start("today", now) == dt.datetime(2026, 11, 26, 22, 0, tzinfo=dt.timezone.utc)
    assert range_start("7d", now) == dt.datetime(2026, 11, 20, 22, 0, tzinfo=dt.timezone.utc)


# -- with the inflow's and WhatsApp's data: intake, dial jobs and attempts, the thread, opt-out --

def seed_inflow(store: Store, hours: Any) -> tuple[str, int, dt.datetime]:
    """A web-form lead (Thursday 10:00 in Israel: inside calling hours) called at once: no
    answer; the retry is placed 11 minutes later. Returns (phone, job id, the retry's time)."""
    from leads import dialjobs, intake
    from leads.hours import parse_retries

    got = intake.record(store, intake.parse({"phone": "054-765-4321", "name": "רונית", "area": "גבעתיים",
                                             "source": "web_form", "notes": "מעדיפה אחרי 17:00"}), hours, now=T0)
    phone, job = got.phone, got.job_id
    [claimed] = dialjobs.claim_due(store, T0, 5, hours)
    assert claimed.id == job
    dialjobs.placed(store, job, sid(11), now=T0 + dt.timedelta(seconds=1))
    assert dialjobs.apply_status(store, job, sid(11), "no-answer", parse_retries(), hours,
                                 now=T0 + dt.timedelta(seconds=30)) == "pending"
    later = T0 + dt.timedelta(minutes=11)
    [again] = dialjobs.claim_due(store, later, 5, hours)
    dialjobs.placed(store, job, sid(12), now=later)
    return phone, job, later


async def test_lead_timeline_with_intake_dials_whatsapp_and_opt_out(store: Store) -> None:
    from leads import dialjobs, optout, whatsapp

    from leads.hours import CallingHours, parse_retries

    hours = CallingHours.parse()
    phone, job, later = await store.run(seed_inflow, store, hours)
    rec = SqlRecorder(store, lead_webhook=False)
    await a_call(rec, 12, phone, later, LeadState(Slots(name="רונית"), status="qualified"),
                 [("agent", "היי רונית, מדברת נועה מ-AgentLocator"), ("caller", "כן, זה זמן טוב")], outbound=True)
    await store.run(lambda: dialjobs.apply_status(store, job, sid(12), "completed", parse_retries(), hours,
                                                  now=later + dt.timedelta(seconds=61)))
    inbound = whatsapp.Inbound(message_sid=sid(13, "SM"), phone=phone, body="אפשר להזיז למחר?")
    await store.run(lambda: whatsapp.record_inbound(store, inbound, now=later + dt.timedelta(minutes=5)))
    await store.run(lambda: optout.opt_out(store, phone, "operator"))
    client = make_app(store).test_client()
    status, page = await get(client, f"/api/leads/{phone}/timeline")
    assert status == 200
    kinds = [(i["kind"], i.get("direction"), i.get("outcome")) for i in page["timeline"]]
    assert kinds[:3] == [("intake", None, None), ("dial_job", None, "completed"), ("dial", None, "no-answer")]
    # the answered attempt's status came after its call began
    assert kinds[3:5] == [("call", "outbound", "qualified"), ("dial", None, "completed")]
    assert kinds[5] == ("message", "in", None)  # five minutes later
    assert ("message", "out", None) in kinds  # the call's follow-up (queued at the real now)
    assert ("message", "in", None) in kinds and kinds[-1][0] == "opt_out"
    intake_item = page["timeline"][0]
    assert intake_item["source"] == "web_form" and intake_item["created_lead"] is True
    attempts = [i for i in page["timeline"] if i["kind"] == "dial"]
    assert [(a["attempt"], a["call_sid"]) for a in attempts] == [(1, sid(11)), (2, sid(12))]
    inbound_item = next(i for i in page["timeline"] if i.get("direction") == "in")
    assert inbound_item["body"] == "אפשר להזיז למחר?"
    assert page["lead"]["source"] == "web_form" and page["lead"]["notes"] == "מעדיפה אחרי 17:00"
    assert page["lead"]["opted_out"]["source"] == "operator"
    # the leads list by source
    _, by_source = await get(client, "/api/leads?source=web_form")
    assert [lead["phone"] for lead in by_source] == [phone]
    _, sources = await get(client, "/api/lead_sources")
    assert sources == ["web_form"]


async def test_dialer_view(store: Store) -> None:
    from leads import dialjobs
    from leads.hours import CallingHours, parse_retries

    hours, retries = CallingHours.parse(), parse_retries()
    now = dt.datetime.now(dt.timezone.utc)

    def jobs() -> None:
        a, _ = dialjobs.queue_call(store, "+972501111111", "operator", now - dt.timedelta(minutes=1))
        b, _ = dialjobs.queue_call(store, "+972502222222", "intake", now + dt.timedelta(hours=1))
        with store.engine.begin() as conn:  # a's call went out and was busy: a retry is due
            conn.execute(schema.dial_jobs.update().where(schema.dial_jobs.c.id == a).values(state="calling", attempts=1))
        dialjobs.placed(store, a, sid(21), now=now)
        dialjobs.apply_status(store, a, sid(21), "busy", retries, hours, now=now)

    await store.run(jobs)
    client = make_app(store).test_client()
    status, view = await get(client, "/api/dialer")
    assert status == 200 and view["available"] is True
    assert [j["phone"] for j in view["queue"]] == sorted([j["phone"] for j in view["queue"]],
                                                           key=lambda p: [q["due_at"] for q in view["queue"] if q["phone"] == p][0])
    assert {j["phone"] for j in view["queue"]} == {"+972501111111", "+972502222222"}
    assert [(a["phone"], a["outcome"], a["call_sid"]) for a in view["recent"]] == [("+972501111111", "busy", sid(21))]
    assert view["outcomes"] == {"busy": 1}
    resp = await client.get("/dashboard/dialer")
    assert resp.status_code == 200 and 'data-page="dialer"' in (await resp.get_data()).decode()


async def test_new_pages_and_reads_are_behind_the_dashboard_guard(store: Store) -> None:
    await seed(store)
    app = make_app(store)
    app.config["DASHBOARD_TOKEN"] = "s3cret"
    client = app.test_client()
    for path in ("/api/leads.csv", "/api/leads?q=050", "/api/lead_sources", "/api/leads/+972501234567/timeline",
                 "/api/dialer", "/api/series?range=7d"):
        assert (await client.get(path)).status_code == 401, path
        assert (await client.get(path, headers={"Authorization": "Bearer s3cret"})).status_code == 200, path
    for path in ("/dashboard/leads/+972501234567", "/dashboard/dialer"):
        page = await client.get(path)
        assert page.status_code == 401 and 'action="/dashboard/login"' in await page.get_data(as_text=True), path
    # the pages carry no inline script (the CSP forbids it) and render in English on request
    client.set_cookie("localhost", "al_lang", "en")
    resp = await client.get("/dashboard/leads/+972501234567", headers={"Authorization": "Bearer s3cret"})
    html = await resp.get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in html and "Timeline" in html
    assert "<script>" not in html and " on" + "click=" not in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
