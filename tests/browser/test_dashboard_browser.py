"""The dashboard in headless Debian Chromium (Playwright, no browser download) against a real
server process, showing calls made by the simulated Twilio caller; screenshots go to
artifacts/ for a human look (Hebrew, right-to-left)."""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import trio

from leads.base import CallMetrics
from server.caller.call import CallIds, new_sid
from server.caller.client import place_call

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed "
                       "(scripts/install-system-deps.sh installs it)"),
]


def agent_server_module():  # type: ignore[no-untyped-def]
    name = "agentlocator_tests_agent_server"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "leads" / "agent_server.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def get_json(url: str):  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def test_dashboard_shows_calls_from_the_simulated_caller(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    mod = agent_server_module()
    db = f"sqlite:///{tmp_path / 'agentlocator.db'}"
    server = mod.AgentServer(db, tmp_path / "server.log")
    ws_url = f"ws://127.0.0.1:{server.port}/ws/twilio-media"
    live_thread = None
    try:
        # A whole call that books a meeting, then a second caller who is still on the line.
        first_ids = CallIds()
        outcome = trio.run(functools.partial(place_call, ws_url, mod.caller_steps(mod.MEETING_CALL), ids=first_ids,
                                             max_duration_s=90))
        assert outcome.call.errors == []
        deadline = time.monotonic() + 15
        while get_json(server.url + "/api/calls")[0]["ended_at"] is None:
            assert time.monotonic() < deadline, "the finished call was never recorded as ended"
            time.sleep(0.1)
        live_ids = CallIds(call_sid=new_sid("CA"), stream_sid=new_sid("MZ"), from_number="+972529876543")
        # on the line ~15 s: long enough to be seen live, then hangs up while we watch
        live_steps = mod.caller_steps(["אני מחפשת פנטהאוז בחיפה"], tail_ms=10000)
        live_thread = threading.Thread(target=trio.run, args=(functools.partial(
            place_call, ws_url, live_steps, ids=live_ids, max_duration_s=40),), daemon=True)
        live_thread.start()
        deadline = time.monotonic() + 15
        while not any(c["call_sid"] == live_ids.call_sid for c in get_json(server.url + "/api/calls")):
            assert time.monotonic() < deadline
            time.sleep(0.1)

        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="he-IL",
                                    timezone_id="Asia/Jerusalem")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/dashboard")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            finished = page.locator(f"#calls tbody tr[data-sid='{first_ids.call_sid}']")
            expect(finished).to_contain_text("הסתיימה")
            expect(finished).to_contain_text("agent_hangup")
            live = page.locator(f"#calls tbody tr.live[data-sid='{live_ids.call_sid}']")
            expect(live).to_contain_text("חי")
            lead = page.locator("#leads tbody tr[data-phone='+972501234567']")
            for text in ("דני כהן", "תל אביב", "דירה", "נקבעה פגישה", "הדמיה"):
                expect(lead).to_contain_text(text)
            assert page.eval_on_selector("#leads", "el => getComputedStyle(el).direction") == "rtl"
            expect(page.locator("#charts canvas")).to_have_count(9)
            expect(page.locator("#kpis .kpi")).to_have_count(9)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
            # Live refresh: the second caller hangs up and the row changes without a reload.
            ended = page.locator(f"#calls tbody tr[data-sid='{live_ids.call_sid}']:not(.live)")
            expect(ended).to_contain_text("twilio_stop", timeout=30000)

            finished.locator("a").click()
            page.wait_for_url("**/dashboard/calls/**")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            transcript = page.locator("#transcript")
            expect(transcript).to_contain_text(mod.MEETING_CALL[0])
            expect(transcript).to_contain_text("AgentLocator")  # the agent's greeting
            expect(page.locator("#metrics .kpi").first).to_contain_text("ms")
            # the turn-taking cards show this call's stored figures
            m = get_json(server.url + f"/api/calls/{first_ids.call_sid}")["metrics"]
            card = lambda key: page.locator(f"#metrics .kpi[data-kpi='{key}'] .kpi-value")  # noqa: E731
            expect(card("false_interruptions")).to_have_text(str(m["false_interruptions"]))
            expect(card("talk_over")).to_have_text(ms(max(m["talk_over_ms"], default=0)))
            expect(card("dead_air")).to_have_text(ms(max(m["dead_air_ms"])) if m["dead_air_ms"] else "—")
            # the session's states, marks and EOUs, from its log events
            for kind in ("STATE_CHANGE", "EOU", "MARK_ACK", "TTS_START", "WS_CLOSE"):
                expect(page.locator(f"#timeline li.ev-{kind}").first).to_be_visible()
            expect(page.locator("#strip-legend")).to_contain_text("מאזינה")
            page.screenshot(path=str(ARTIFACTS / "dashboard-call.png"), full_page=True)
            browser.close()
        assert errors == []
    finally:
        if live_thread is not None:
            live_thread.join(timeout=45)
        server.stop()


def ms(value: float | None) -> str:
    """The page's fmtMs: Math.round (half up) and " ms"."""
    return "—" if value is None else f"{math.floor(value + 0.5)} ms"


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


# Finished calls with known turn-taking figures, and one stored before the figures existed.
TURN_TAKING = {
    "CA000000000000000000000000000e0001": CallMetrics(turns=4, false_interruptions=2, resumed=2, ignored=1, continuations=1,
                           talk_over_ms=[40.0, 260.0, 80.0], dead_air_ms=[900.0, 1500.0, 2600.0, 700.0]),
    "CA000000000000000000000000000e0002": CallMetrics(turns=3, resumed=1, talk_over_ms=[], dead_air_ms=[1100.0, 850.0]),
    "CA000000000000000000000000000e0003": CallMetrics(turns=25, false_interruptions=1, continuations=2,
                           talk_over_ms=[float(20 * i) for i in range(25, 0, -1)], dead_air_ms=[]),
}
OLD_METRICS = {"turn_latency_ms": [700.0], "asr_latency_ms": [350.0], "halt_ms": [], "barge_ins": 0,
               "barge_ins_clean": 0, "heartbeats": 3, "turns": 2}


def seed_turn_taking(db: str) -> None:
    import datetime as dt

    import sqlalchemy as sa

    from dialog.base import LeadState, Slots
    from leads import schema
    from leads.base import CallInfo
    from leads.store import SqlRecorder, Store

    t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    store = Store.open(db)
    rec = SqlRecorder(store, lead_webhook=False)

    async def run() -> None:
        for i, (sid, m) in enumerate([("CA0000000000000000000000000000001d", CallMetrics(turns=2)), *TURN_TAKING.items()]):
            start = t0 + dt.timedelta(minutes=5 * i)
            phone = f"+97250000000{i}"
            await rec.call_started(CallInfo(sid, "MZ" + sid[2:], phone, "+97233001122", start))
            await rec.call_ended(sid, start + dt.timedelta(seconds=60), "twilio_stop", "qualified", m, phone,
                                 LeadState(Slots()), "סיכום")

    try:
        trio.run(run)
        with store.engine.begin() as conn:
            conn.execute(sa.update(schema.calls).where(schema.calls.c.call_sid == "CA0000000000000000000000000000001d").values(metrics=OLD_METRICS))
    finally:
        store.close()


def test_dashboard_shows_the_turn_taking_figures(tmp_path: Path) -> None:
    """Cards on the dashboard and on a call's page against figures computed here from the
    stored calls (the call stored before the figures existed is left out, not counted as 0)."""
    from playwright.sync_api import expect, sync_playwright

    mod = agent_server_module()
    db = f"sqlite:///{tmp_path / 'agentlocator.db'}"
    seed_turn_taking(db)
    calls = list(TURN_TAKING.values())
    talk_max = [max(m.talk_over_ms, default=0.0) for m in calls]
    talk_p95 = [sorted(m.talk_over_ms or [0.0])[math.ceil(0.95 * max(1, len(m.talk_over_ms))) - 1] for m in calls]
    dead_max = [max(m.dead_air_ms) for m in calls if m.dead_air_ms]
    dead_mean = [round(mean(m.dead_air_ms), 1) for m in calls if m.dead_air_ms]
    share = lambda xs, limit: f"{math.floor(100 * sum(x <= limit for x in xs) / len(xs) + 0.5)}% עומדות ביעד"  # noqa: E731
    server = mod.AgentServer(db, tmp_path / "server.log")
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000}, locale="he-IL",
                                    timezone_id="Asia/Jerusalem")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/dashboard")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            kpi = lambda key: page.locator(f"#kpis .kpi[data-kpi='{key}']")  # noqa: E731
            expect(kpi("false_interruptions").locator(".kpi-value")).to_have_text(
                str(sum(m.false_interruptions for m in calls)))
            expect(kpi("false_interruptions").locator(".kpi-detail")).to_have_text(
                f"חזרה לדבר: {sum(m.resumed for m in calls)} · רעש שלא נענה: {sum(m.ignored for m in calls)}"
                f" · המשכים: {sum(m.continuations for m in calls)}")
            expect(kpi("talk_over").locator(".kpi-value")).to_have_text(ms(mean(talk_max)))
            expect(kpi("talk_over").locator(".kpi-detail")).to_have_text(
                f"יעד ≤ 100 ms · {share(talk_max, 100)} · p95: {ms(mean(talk_p95))}")
            expect(kpi("talk_over")).to_have_class("kpi bad")  # 253 ms on average > 100 ms
            expect(kpi("dead_air").locator(".kpi-value")).to_have_text(ms(mean(dead_max)))
            expect(kpi("dead_air").locator(".kpi-detail")).to_have_text(
                f"יעד ≤ 2000 ms · {share(dead_max, 2000)} · ממוצע: {ms(mean(dead_mean))}")
            expect(kpi("dead_air")).to_have_class("kpi good")  # 1850 ms on average <= 2000 ms
            for chart in ("false", "talkover", "deadair"):
                expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
            expect(page.locator("#chart-talkover figcaption")).to_contain_text("יעד ≤ 100 ms")
            expect(page.locator("#chart-deadair figcaption")).to_contain_text("יעד ≤ 2000 ms")
            page.screenshot(path=str(ARTIFACTS / "dashboard-turn-taking.png"), full_page=True)

            m = TURN_TAKING["CA000000000000000000000000000e0001"]
            page.goto(server.url + "/dashboard/calls/CA000000000000000000000000000e0001")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            card = lambda key: page.locator(f"#metrics .kpi[data-kpi='{key}']")  # noqa: E731
            expect(card("false_interruptions").locator(".kpi-value")).to_have_text(str(m.false_interruptions))
            expect(card("false_interruptions").locator(".kpi-detail")).to_have_text(
                f"חזרה לדבר: {m.resumed} · רעש שלא נענה: {m.ignored} · המשכים: {m.continuations}")
            expect(card("talk_over").locator(".kpi-value")).to_have_text(ms(max(m.talk_over_ms)))
            expect(card("talk_over").locator(".kpi-detail")).to_have_text(
                "מקסימום · " + " · ".join(str(math.floor(v + 0.5)) for v in m.talk_over_ms))
            expect(card("dead_air").locator(".kpi-value")).to_have_text(ms(max(m.dead_air_ms)))
            expect(card("dead_air")).to_have_class("kpi bad")  # 2600 ms > 2000 ms
            expect(card("dead_air").locator(".kpi-detail")).to_contain_text(f"ממוצע {ms(mean(m.dead_air_ms))}")
            # a call without any talk-over: 0 ms, within the target
            page.goto(server.url + "/dashboard/calls/CA000000000000000000000000000e0002")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            expect(card("talk_over").locator(".kpi-value")).to_have_text("0 ms")
            expect(card("talk_over")).to_have_class("kpi good")
            browser.close()
        assert errors == []
    finally:
        server.stop()


def test_dashboard_with_a_token_in_the_link(tmp_path: Path) -> None:
    """DASHBOARD_TOKEN set: a first visit with ?token= is exchanged for an HttpOnly,
    SameSite=Strict session cookie and redirected to the same page without the token; the
    page's API calls then go by the cookie (no token in any URL, header or script)."""
    from playwright.sync_api import expect, sync_playwright

    mod = agent_server_module()
    server = mod.AgentServer(f"sqlite:///{tmp_path / 'agentlocator.db'}", tmp_path / "server.log",
                             env={"DASHBOARD_TOKEN": "let-me-in"})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            page = browser.new_page()
            # (a navigation answered by a Basic challenge is an error page in headless mode)
            assert page.request.get(server.url + "/dashboard").status == 401
            assert page.request.get(server.url + "/api/leads?token=wrong").status == 401
            api_urls: list[str] = []
            page.on("request", lambda req: api_urls.append(req.url) if "/api/" in req.url else None)
            page.goto(server.url + "/dashboard?token=let-me-in")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            assert page.url == server.url + "/dashboard"  # the token left the address bar
            expect(page.locator("#calls tbody")).to_contain_text("אין עדיין שיחות")
            expect(page.locator("#refreshed")).not_to_have_class("refreshed error")
            [cookie] = page.context.cookies()
            assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("al_session", True, "Strict")
            assert "let-me-in" not in cookie["value"]
            assert api_urls and not any("token" in u for u in api_urls)
            assert page.evaluate("document.cookie") == ""  # HttpOnly: not readable by scripts
            # signing out ends it
            page.click("header .logout button")
            page.wait_for_url("**/dashboard/login")
            assert page.request.get(server.url + "/api/leads").status == 401
            browser.close()
    finally:
        server.stop()
