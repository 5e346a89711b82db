"""The dashboard in headless Debian Chromium (Playwright, no browser download) against a real
server process, showing calls made by the simulated Twilio caller; screenshots go to
artifacts/ for a human look (Hebrew, right-to-left)."""
from __future__ import annotations

import functools
import importlib.util
import json
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import trio

from server.caller.call import CallIds
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
        outcome = trio.run(functools.partial(place_call, ws_url, mod.caller_steps(mod.MEETING_CALL), max_duration_s=90))
        assert outcome.call.errors == []
        deadline = time.monotonic() + 15
        while get_json(server.url + "/api/calls")[0]["ended_at"] is None:
            assert time.monotonic() < deadline, "the finished call was never recorded as ended"
            time.sleep(0.1)
        live_ids = CallIds(call_sid="CAlive000000000000000000000000000", stream_sid="MZlive00000000000000000000000000",
                           from_number="+972529876543")
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
            finished = page.locator("#calls tbody tr[data-sid='CAsimulated0000000000000000000000']")
            expect(finished).to_contain_text("הסתיימה")
            expect(finished).to_contain_text("agent_hangup")
            live = page.locator(f"#calls tbody tr.live[data-sid='{live_ids.call_sid}']")
            expect(live).to_contain_text("חי")
            lead = page.locator("#leads tbody tr[data-phone='+972501234567']")
            for text in ("דני כהן", "תל אביב", "דירה", "נקבעה פגישה", "הדמיה"):
                expect(lead).to_contain_text(text)
            assert page.eval_on_selector("#leads", "el => getComputedStyle(el).direction") == "rtl"
            expect(page.locator("#charts canvas")).to_have_count(6)
            expect(page.locator("#kpis .kpi")).to_have_count(6)
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


def test_dashboard_with_a_token_in_the_link(tmp_path: Path) -> None:
    """DASHBOARD_TOKEN set: the page opened with ?token= passes it on to every API call."""
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
            page.goto(server.url + "/dashboard?token=let-me-in")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            expect(page.locator("#calls tbody")).to_contain_text("אין עדיין שיחות")
            expect(page.locator("#refreshed")).not_to_have_class("refreshed error")
            browser.close()
    finally:
        server.stop()
