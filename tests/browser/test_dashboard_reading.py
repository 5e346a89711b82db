"""The dashboard read by a person, in headless Debian Chromium against a real server process:
mixed Hebrew/English lines laid out right (checked on the rendered glyphs' boxes, not the
markup), numbers and phone numbers left-to-right inside Hebrew, the English switch, a phone's
narrow screen, the leads list's filters and CSV, one lead's live timeline, the charts' ranges.
Screenshots go to artifacts/ (the call page in Hebrew and in English among them)."""
from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

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
    """tests/leads/agent_server.py (the real server with scripted speech), loaded once."""
    name = "agentlocator_tests_agent_server"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "leads" / "agent_server.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


CALL = "CA0000000000000000000000000000b1d1"
LATER_CALL = "CA0000000000000000000000000000b1d2"
PHONE = "+972501234567"
OTHER = "+972529876543"
# The lines that read wrong before: an English line in the Hebrew page ("?Hi, this is Noa…"),
# a Hebrew line with a phone number, a Hebrew line ending in an English word and a "?".
EN_LINE = "Hi, this is Noa from AgentLocator. Is this a good time?"
PHONE_LINE = "כן, המספר שלי +972 50-123-4567, תודה"
HE_LINE = "מעולה! אשלח לך סיכום ב-WhatsApp?"


def seed(db: str) -> None:
    from dialog.base import LeadState, Slots
    from leads.base import CallInfo, CallMetrics
    from leads.store import SqlRecorder, Store

    t0 = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    store = Store.open(db)
    rec = SqlRecorder(store, lead_webhook=False)

    async def run() -> None:
        await rec.call_started(CallInfo(CALL, "MZ" + CALL[2:], PHONE, "+97233001122", t0))
        rec.timeline_event(CALL, 3200, "ASR_TEXT", text="כמה זה עולה?", confidence=0.93)  # written with the next turn
        for i, (speaker, text) in enumerate([("agent", EN_LINE), ("caller", PHONE_LINE), ("agent", HE_LINE),
                                             ("caller", "OK, 10:00 works")]):
            await rec.transcript_turn(CALL, speaker, text, 3000 * i, 3000 * i + 2500, True)
        lead = LeadState(Slots(name="Dana לוי", area="רמת גן", rooms=3.5, budget_ils=2_100_000, deal="buy"),
                         status="meeting_booked", meeting_at=t0 + dt.timedelta(days=3))
        await rec.call_ended(CALL, t0 + dt.timedelta(seconds=75), "agent_hangup", "meeting_booked",
                             CallMetrics(turn_latency_ms=[640.0, 910.0], asr_latency_ms=[310.0], halt_ms=[120.0],
                                         barge_ins=1, barge_ins_clean=1, heartbeats=4, turns=2, turns_to_meeting=2,
                                         talk_over_ms=[40.0], dead_air_ms=[900.0, 1300.0]),
                             PHONE, lead, "תודה Dana! נפגשים ביום חמישי ב-10:00, טלפון המשרד 03-555-1234")
        other = LeadState(Slots(name="יוסי כהן", area="חיפה"), status="qualified")
        await rec.call_started(CallInfo("CA" + "c" * 32, "MZ" + "c" * 32, OTHER, "+97233001122", t0 + dt.timedelta(minutes=30)))
        await rec.call_ended("CA" + "c" * 32, t0 + dt.timedelta(minutes=31), "twilio_stop", "qualified", CallMetrics(turns=1),
                             OTHER, other, "סיכום")

    try:
        trio.run(run)
        seed_inflow(store)
    finally:
        store.close()


FORM_LEAD = "+972547654321"
# two days ago (inside the dialer view's 7 days), at any hour: the seed opens the calling hours
T_FORM = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2)).replace(microsecond=0)


def seed_inflow(store: Any) -> None:
    """A web-form lead the dialer called twice (no answer, busy: a retry waits), who then wrote
    on WhatsApp (Hebrew with a time and a phone number in it)."""
    from leads import dialjobs, intake, whatsapp
    from leads.hours import CallingHours, parse_retries

    hours = CallingHours.parse("sun-sat 00:00-23:59", holidays_country=None, eve="")
    retries = parse_retries()
    got = intake.record(store, intake.parse({"phone": "054-765-4321", "name": "רונית", "source": "web_form",
                                             "notes": "Prefers WhatsApp"}), hours, now=T_FORM)
    for n, (at, outcome) in enumerate(((T_FORM, "no-answer"), (T_FORM + dt.timedelta(minutes=11), "busy"))):
        dialjobs.claim_due(store, at, 5, hours)
        call_sid = f"CA{n + 0xd1:032x}"
        dialjobs.placed(store, got.job_id, call_sid, now=at)
        dialjobs.apply_status(store, got.job_id, call_sid, outcome, retries, hours, now=at + dt.timedelta(seconds=30))
    whatsapp.record_inbound(store, whatsapp.Inbound(message_sid=f"SM{0xa1:032x}", phone=FORM_LEAD,
                                                    body="אפשר מחר ב-17:30? המספר של בעלי 052-111-2233"),
                            now=T_FORM + dt.timedelta(hours=1))


def later_call(db: str) -> None:
    """The lead calls again while its page is open."""
    from leads.base import CallInfo
    from leads.store import SqlRecorder, Store

    store = Store.open(db)
    rec = SqlRecorder(store, lead_webhook=False)

    async def run() -> None:
        await rec.call_started(CallInfo(LATER_CALL, "MZ" + LATER_CALL[2:], PHONE, "+97233001122", dt.datetime.now(dt.timezone.utc)))
        await rec.transcript_turn(LATER_CALL, "caller", "אפשר להזיז למחר?", 0, 1500, True)

    try:
        trio.run(run)
    finally:
        # The call stays live, so its instance must too: Store.close() would give up the lease
        # and the server's keeper would rightly close the call as a crash's (server_restart).
        # This test process holds the lease (on SQLite: alive by its pid).
        store.journal.close()
        store.engine.dispose()


# Where a piece of text is drawn: the box of the `nth` occurrence of `needle` in the element's
# rendered text (a Range over the text nodes, so bidi reordering shows in the boxes).
RECT_JS = """([selector, needle, nth]) => {
  const root = document.querySelector(selector);
  if (!root) throw new Error("no element " + selector);
  const nodes = [], starts = [];
  let text = "";
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) { nodes.push(n); starts.push(text.length); text += n.data; }
  let at = -1;
  for (let i = 0; i <= nth; i++) { at = text.indexOf(needle, at + 1); if (at < 0) throw new Error(needle + " not in " + text); }
  const locate = (pos) => { let i = starts.length - 1; while (starts[i] > pos) i--; return [nodes[i], pos - starts[i]]; };
  const range = document.createRange();
  range.setStart(...locate(at));
  const [endNode, endOff] = locate(at + needle.length - 1);
  range.setEnd(endNode, endOff + 1);
  const r = range.getBoundingClientRect();
  return { left: r.left, right: r.right, top: r.top, width: r.width };
}"""


class Glyphs:
    def __init__(self, page: Any) -> None:
        self.page = page

    def box(self, selector: str, needle: str, nth: int = 0) -> dict[str, float]:
        return self.page.evaluate(RECT_JS, [selector, needle, nth])

    def left(self, selector: str, needle: str, nth: int = 0) -> float:
        return self.box(selector, needle, nth)["left"]

    def direction(self, selector: str) -> str:
        return self.page.eval_on_selector(selector, "el => getComputedStyle(el).direction")

    def control(self, text: str) -> str:
        """The same text in a plain element of the page (no isolation): where the bug shows."""
        self.page.evaluate("""(text) => { const d = document.createElement("div"); d.id = "control";
            d.textContent = text; d.style.display = "inline-block"; document.querySelector("main").append(d); }""", text)
        return "#control"

    def drop_control(self) -> None:
        self.page.evaluate("document.getElementById('control').remove()")


def check_call_page_bidi(g: Glyphs, lang: str) -> None:
    line = lambda i: f"#transcript li:nth-child({i}) .text"  # noqa: E731
    # each line takes the direction of its own first letter, whatever the page's
    assert [g.direction(line(i)) for i in (1, 2, 3, 4)] == ["ltr", "rtl", "rtl", "ltr"]
    # the English line: "?" after "time", at its right end; "Hi" at its left
    assert g.left(line(1), "?") > g.left(line(1), "time") > g.left(line(1), "Hi")
    # the Hebrew line with a phone number: the number reads left to right (+972 first) and
    # sits left of "המספר שלי" and right of "תודה" (Hebrew order around it)
    assert g.left(line(2), "+") < g.left(line(2), "972") < g.left(line(2), "50-123") < g.left(line(2), "4567")
    assert g.left(line(2), "תודה") < g.left(line(2), "+") < g.box(line(2), "4567")["right"] < g.left(line(2), "המספר")
    # the Hebrew line ending in an English word: its "?" at the far left, after WhatsApp
    assert g.box(line(3), "?")["right"] <= g.left(line(3), "WhatsApp") + 0.5
    assert g.left(line(3), "WhatsApp") < g.left(line(3), "מעולה")
    # time and number: "10:00" one run, left of "works" in the English line
    assert g.left(line(4), "10:00") < g.left(line(4), "works")
    # the timeline's event details: code keys left to right, the caller's Hebrew in its own order
    event = "#timeline li.ev-ASR_TEXT .detail"
    assert g.direction(event) == "ltr"
    assert g.left(event, "confidence=") < g.left(event, "text=")  # in the stored order, left to right
    assert g.left(event, "?") < g.left(event, "כמה")  # "?" ends the Hebrew question, on its left
    # the controls: the same lines without isolation in this page go wrong, so the checks above
    # would catch it
    if lang == "he":
        c = g.control(EN_LINE)
        assert g.left(c, "?") < g.left(c, "Hi")  # "?Hi, this is Noa…"
    else:
        c = g.control(HE_LINE)
        assert g.left(c, "?") > g.left(c, "WhatsApp")  # "…WhatsApp?" with "?" on the wrong side
    g.drop_control()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("reading")
    db = f"sqlite:///{tmp / 'agentlocator.db'}"
    seed(db)
    srv = agent_server_module().AgentServer(db, tmp / "server.log")
    srv.db = db
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def new_page(browser: Any, width: int = 1280, height: int = 900) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": width, "height": height}, locale="he-IL",
                            timezone_id="Asia/Jerusalem", accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # every request the page makes answers (the browser's own favicon.ico guess aside)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    return page, errors


def test_call_page_in_hebrew_and_english(server: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard/calls/{CALL}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    assert page.eval_on_selector("html", "el => [el.lang, getComputedStyle(el).direction]") == ["he", "rtl"]
    expect(page.locator("#transcript li")).to_have_count(4)
    g = Glyphs(page)
    check_call_page_bidi(g, "he")
    # a figure and its unit stay in that order inside the Hebrew page ("640 · 910", "900 ms")
    card = "#metrics .kpi[data-kpi='dead_air'] .kpi-detail"
    assert g.left(card, "1100 ms") < g.left(card, "ממוצע")  # the mean, after the word in RTL reading
    assert g.left(card, "1100") < g.left(card, "ms")
    expect(page.locator("#call-lead")).to_have_attribute("href", f"/dashboard/leads/%2B{PHONE[1:]}")
    page.screenshot(path=str(ARTIFACTS / "call-he.png"), full_page=True)

    # the English switch: the same page, left to right, in English
    page.click("#lang-switch")
    page.wait_for_function("document.documentElement.lang === 'en'")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    assert page.eval_on_selector("html", "el => getComputedStyle(el).direction") == "ltr"
    expect(page.locator("main h2").nth(0)).to_have_text("Call details")
    expect(page.locator("#transcript li").first.locator(".who")).to_contain_text("Agent")
    expect(page.locator("#metrics .kpi[data-kpi='talk_over'] .kpi-title")).to_have_text("Talk-over")
    check_call_page_bidi(g, "en")
    page.screenshot(path=str(ARTIFACTS / "call-en.png"), full_page=True)
    # and back
    page.click("#lang-switch")
    page.wait_for_function("document.documentElement.lang === 'he'")
    assert errors == []


def test_dashboard_reads_right_and_fits_a_phone(server: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    g = Glyphs(page)
    # "יעד < 1200 ms": the number before its unit, both left of the Hebrew word
    detail = "#kpis .kpi:first-child .kpi-detail"
    assert g.left(detail, "1200") < g.left(detail, "ms") < g.left(detail, "יעד")
    # a count with its word keeps the Hebrew order: "0" read first, on the right
    stability = "#kpis .kpi:nth-child(6) .kpi-value"
    assert g.left(stability, "ניתוקים") < g.left(stability, "0")
    # a number and its unit are never split over two lines (the chart captions wrap on a phone)
    assert page.eval_on_selector("#chart-turn figcaption bdi.num", "el => getComputedStyle(el).whiteSpace") == "nowrap"
    # an English name in the Hebrew table keeps its own order
    row = f"#leads tbody tr[data-phone='{PHONE}']"
    assert g.left(row + " td:nth-child(2)", "Dana") < g.left(row + " td:nth-child(2)", "לוי")
    # the phone number: "+972…" left to right
    assert g.left(row + " td:nth-child(1)", "+") < g.left(row + " td:nth-child(1)", "972") < g.left(row + " td:nth-child(1)", "4567")
    # the lead page's heading: the name, then its number, in Hebrew order; the number itself LTR
    page.goto(f"{server.url}/dashboard/leads/{PHONE}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    assert g.left("main h2", "+") < g.left("main h2", "4567") < g.left("main h2", "Dana") < g.left("main h2", "לוי")
    page.goto(f"{server.url}/dashboard")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)

    # the charts' ranges
    for name in ("today", "30d", "7d"):
        page.click(f"#range button[data-range='{name}']")
        page.wait_for_selector(f"body[data-range='{name}']", timeout=10000)
        expect(page.locator(f"#range button[data-range='{name}']")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#charts canvas")).to_have_count(9)
    page.screenshot(path=str(ARTIFACTS / "dashboard-he.png"), full_page=True)

    # a phone: no sideways scrolling of the page; wide tables scroll inside their own box
    for path, name in (("/dashboard", "dashboard"), (f"/dashboard/calls/{CALL}", "call"), (f"/dashboard/leads/{PHONE}", "lead"),
                       (f"/dashboard/leads/{FORM_LEAD}", "lead-form"), ("/dashboard/dialer", "dialer")):
        phone, phone_errors = new_page(browser, 390, 844)
        phone.goto(server.url + path)
        phone.wait_for_selector("body[data-loaded='1']", timeout=15000)
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path}: the page is {overflow}px wider than the phone"
        phone.screenshot(path=str(ARTIFACTS / f"narrow-{name}.png"), full_page=True)
        phone.close()
        errors += phone_errors
    assert errors == []


def test_leads_filters_search_and_csv(server: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    rows = page.locator("#leads tbody tr[data-phone]")
    expect(rows).to_have_count(3)
    page.fill("#lead-filters input[name=q]", "050-123")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-phone", PHONE)
    page.fill("#lead-filters input[name=q]", "יוסי")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-phone", OTHER)
    page.fill("#lead-filters input[name=q]", "")
    page.select_option("#lead-filters select[name=status]", "meeting_booked")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-phone", PHONE)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=2))).date()
    page.fill("#lead-filters input[name=since]", (today + dt.timedelta(days=2)).isoformat())
    expect(page.locator("#leads tbody td.empty")).to_be_visible()
    page.fill("#lead-filters input[name=since]", "")
    expect(rows).to_have_count(1)
    # the export follows the filters
    with page.expect_download() as info:
        page.click("#leads-csv")
    download = info.value
    assert download.suggested_filename.startswith("leads-") and download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert [(r["phone"], r["name"], r["status"], r["budget_ils"]) for r in exported] == [
        (PHONE, "Dana לוי", "meeting_booked", "2100000")]
    # a lead's row links to its page
    rows.first.locator("td:first-child a").click()
    page.wait_for_url("**/dashboard/leads/**")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    assert errors == []


def test_lead_page_timeline_updates_live(server: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard/leads/{PHONE}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    items = page.locator("#lead-timeline > li")
    expect(items).to_have_count(4)
    assert [items.nth(i).get_attribute("data-kind") for i in range(4)] == ["intake", "call", "message", "meeting"]
    expect(page.locator("#lead-name")).to_have_text("Dana לוי")
    expect(page.locator("#lead-status")).to_have_text("נקבעה פגישה")
    expect(page.locator("#lead")).to_contain_text("רמת גן")
    # the call: its transcript and figures behind a click, kept open across refreshes
    call = items.nth(1)
    expect(call.locator(".head a")).to_have_attribute("href", f"/dashboard/calls/{CALL}")
    call.locator("summary").click()
    expect(call.locator(".transcript li")).to_have_count(4)
    expect(call.locator(".figures")).to_contain_text("775 ms")  # the mean turn latency
    g = Glyphs(page)
    assert g.direction("#lead-timeline > li:nth-child(2) .transcript li:first-child .text") == "ltr"
    # the WhatsApp follow-up with its state; its phone number and time read left to right
    message = items.nth(2)
    expect(message.locator(".badge")).to_have_text("הדמיה (ללא Twilio)", timeout=15000)
    bubble = "#lead-timeline > li:nth-child(3) .bubble"
    assert g.direction(bubble) == "rtl"
    assert g.left(bubble, "03") < g.left(bubble, "555") < g.left(bubble, "1234") < g.left(bubble, "טלפון")
    assert g.left(bubble, "Dana") < g.left(bubble, "תודה")
    page.screenshot(path=str(ARTIFACTS / "lead-he.png"), full_page=True)
    # live: the lead calls again; the page shows it without a reload, the open transcript stays open
    later_call(server.db)
    expect(items).to_have_count(5, timeout=10000)
    # before the meeting (which is days ahead)
    assert [items.nth(i).get_attribute("data-kind") for i in range(5)] == ["intake", "call", "message", "call", "meeting"]
    expect(items.nth(3)).to_contain_text("● חי")
    expect(items.nth(3).locator(".head a")).to_have_attribute("href", f"/dashboard/calls/{LATER_CALL}")
    expect(call.locator("details")).to_have_attribute("open", "")
    assert errors == []


def test_lead_page_dial_attempts_whatsapp_and_actions(server: Any, browser: Any) -> None:
    """A form lead's page: the intake with its source, the dial job and both attempts with
    their outcomes, their WhatsApp message (its direction, time and phone number read right);
    then "opt out" from the page; and "call now" on another lead lands in the dialer's queue."""
    from playwright.sync_api import expect

    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard/leads/{FORM_LEAD}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    items = page.locator("#lead-timeline > li")
    kinds = lambda: [items.nth(i).get_attribute("data-kind") for i in range(items.count())]  # noqa: E731
    expect(items).to_have_count(5)
    assert kinds() == ["intake", "dial_job", "dial", "dial", "message"]
    expect(items.nth(0)).to_contain_text("web_form")
    expect(items.nth(0).locator(".figures")).to_contain_text("שם: רונית")
    expect(items.nth(1)).to_contain_text("ליד חדש")
    expect(items.nth(1)).to_contain_text("הניסיון הבא")
    expect(items.nth(2)).to_contain_text("לא נענתה")
    expect(items.nth(3)).to_contain_text("תפוס")
    expect(items.nth(4)).to_have_attribute("data-direction", "in")
    expect(page.locator("#lead")).to_contain_text("Prefers WhatsApp")
    g = Glyphs(page)
    bubble = "#lead-timeline > li:nth-child(5) .bubble"
    assert g.direction(bubble) == "rtl"
    assert g.left(bubble, "17:30") < g.left(bubble, "מחר")  # after "מחר" in Hebrew reading order
    assert g.left(bubble, "052") < g.left(bubble, "111") < g.left(bubble, "2233") < g.left(bubble, "בעלי")
    page.screenshot(path=str(ARTIFACTS / "lead-form-he.png"), full_page=True)

    # opt out from the page (a confirmation dialog first)
    page.once("dialog", lambda d: d.accept())
    page.click("#lead-actions button[data-action='opt_out']")
    expect(page.locator("#lead-timeline > li[data-kind='opt_out']")).to_have_count(1, timeout=10000)
    expect(page.locator("#lead-actions button[data-action='call']")).to_be_disabled()
    expect(page.locator("#lead")).to_contain_text("הוסר")

    # "call now" on the other lead: queued, and the dialer page shows it
    page.goto(f"{server.url}/dashboard/leads/{OTHER}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    page.click("#lead-actions button[data-action='call']")
    expect(page.locator("#lead-actions .action-note")).to_contain_text("בתור לחיוג", timeout=10000)
    expect(page.locator("#lead-timeline > li[data-kind='dial_job']")).to_contain_text("חיוג יזום", timeout=10000)
    page.goto(f"{server.url}/dashboard/dialer")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    queue = page.locator("#dial-queue tbody tr[data-phone]")
    expect(queue).to_have_count(1)  # the opted-out lead's retry was cancelled
    expect(queue.first).to_have_attribute("data-phone", OTHER)
    expect(queue.first).to_contain_text("יוסי כהן")
    # the form lead's two attempts, newest first, and the outcomes counted
    recent = page.locator("#dial-done tbody tr[data-phone]")
    expect(recent).to_have_count(2)
    expect(recent.nth(0)).to_contain_text("תפוס")
    expect(recent.nth(1)).to_contain_text("לא נענתה")
    expect(recent.nth(0).locator("td:last-child a")).to_have_attribute("href", f"/dashboard/calls/CA{0xd2:032x}")
    expect(page.locator("#dial-outcomes .kpi[data-kpi='busy'] .kpi-value")).to_have_text("1")
    expect(page.locator("#dial-outcomes .kpi[data-kpi='no-answer'] .kpi-value")).to_have_text("1")
    page.screenshot(path=str(ARTIFACTS / "dialer-he.png"), full_page=True)
    assert errors == []


def post(url: str, data: bytes, content_type: str) -> int:
    import urllib.request

    req = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status


def test_a_lead_flows_in_while_its_page_is_open(server: Any, browser: Any) -> None:
    """The page of a number nobody knows yet; a web form posts the lead (the real intake route)
    and then they write on WhatsApp (the real webhook): both appear without a reload, and the
    lead is in the list with its source."""
    import json
    from urllib.parse import urlencode

    from playwright.sync_api import expect

    phone = "+972531234567"
    page, errors = new_page(browser)
    page.goto(f"{server.url}/dashboard/leads/{phone}")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    expect(page.locator("#lead-timeline")).to_contain_text("אין עדיין נתונים")
    body = {"phone": "053-123-4567", "name": "Avi אבי", "area": "Holon", "rooms": "4", "source": "landing_page"}
    assert post(server.url + "/api/leads/intake", json.dumps(body).encode(), "application/json") in (200, 201)
    items = page.locator("#lead-timeline > li")
    expect(items.first).to_have_attribute("data-kind", "intake", timeout=10000)
    expect(items.first).to_contain_text("landing_page")
    expect(page.locator("#lead-timeline > li[data-kind='dial_job']")).to_have_count(1)
    expect(page.locator("#lead-name")).to_have_text("Avi אבי")
    form = {"From": f"whatsapp:{phone}", "To": "whatsapp:+97233001122", "Body": "מתי אתם מתקשרים? אני זמין אחרי 18:00",
            "MessageSid": f"SM{0xf1:032x}", "NumMedia": "0"}
    assert post(server.url + "/whatsapp_inbound", urlencode(form).encode(), "application/x-www-form-urlencoded") == 200
    inbound = page.locator("#lead-timeline > li[data-kind='message'][data-direction='in']")
    expect(inbound).to_have_count(1, timeout=10000)
    bubble = "#lead-timeline > li[data-kind='message'][data-direction='in'] .bubble"
    g = Glyphs(page)
    assert g.direction(bubble) == "rtl"
    assert g.left(bubble, "18:00") < g.left(bubble, "אחרי")
    page.screenshot(path=str(ARTIFACTS / "lead-flowing-in.png"), full_page=True)
    # the list: the new lead with its source
    page.goto(f"{server.url}/dashboard")
    page.wait_for_selector("body[data-loaded='1']", timeout=15000)
    page.select_option("#lead-filters select[name=source]", "landing_page")
    rows = page.locator("#leads tbody tr[data-phone]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-phone", phone)
    # (the lead page answered 404 until the lead existed: that is the page's "nothing yet")
    assert [e for e in errors if not (e.startswith("404 ") and e.endswith("/timeline"))] == []
