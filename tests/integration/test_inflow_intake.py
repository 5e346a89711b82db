"""Leads flowing in through the real server: POST /api/leads/intake (JSON and form, Bearer
and signature, Idempotency-Key, 422s), Facebook Lead Ads (verify handshake, signed POST,
the lead read from a local fake Graph API), and the lead API (detail, call now, opt out)."""
from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest
import trio

from leads.facebook import sign as fb_sign
from leads.outbox import sign_webhook
from server.settings import Settings
from server.wiring import Wiring

from .harness import ahttp, running_server

LEAD = "+972501234567"
TOKEN = "intake-token-0123456789"
SECRET = "intake-hmac-secret-0123456789"


def wiring(settings: Settings) -> Wiring:
    """The production store, dialer (off: no Twilio settings) and blueprints; no calls here."""
    from leads.base import NullRecorder
    from server.wiring import build_recorder

    recorder, background, blueprints = build_recorder(settings, [])

    async def no_calls(transport: Any, deps: Any) -> None:
        return None

    return Wiring(run_call=no_calls, call_deps=None, providers={}, recorder=recorder or NullRecorder(),
                  background=background, blueprints=blueprints)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'leads.db'}", "STORE_JOURNAL_DIR": str(tmp_path / "j"),
            "INTAKE_TOKEN": TOKEN, "INTAKE_SECRET": SECRET, "DIAL_HOURS": "sun-sat 00:00-24:00",
            "DIAL_HOLIDAYS": "none", **extra}


async def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    import http.client

    def go() -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw or b"{}")
        except ValueError:
            return resp.status, {"text": raw.decode(errors="replace")}

    return await trio.to_thread.run_sync(go)


def as_json(data: dict[str, Any], key: str | None = None, token: str | None = TOKEN) -> tuple[bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    return json.dumps(data, ensure_ascii=False).encode(), headers


async def detail(port: int, phone: str = LEAD) -> tuple[int, dict[str, Any]]:
    status, _, body = await ahttp("GET", port, f"/api/leads/{phone}")
    return status, json.loads(body) if body.startswith(b"{") else {}


async def test_json_and_form_same_phone_one_lead(tmp_path: Path) -> None:
    async with running_server(wiring, env(tmp_path)) as (_, port):
        status, first = await post(port, "/api/leads/intake", *as_json(
            {"phone": "050-123-4567", "name": "דנה", "area": "רמת גן", "rooms": 4, "budget_ils": 2500000,
             "source": "web_form", "utm_campaign": "spring"}))
        assert status == 201 and first["created"] and first["dial"]["status"] == "queued", first
        form = urllib.parse.urlencode({"phone": "+972 50 123 4567", "area": "גבעתיים", "deal": "קנייה",
                                       "source": "facebook", "notes": "מעדיפה בערב"}).encode()
        status, second = await post(port, "/api/leads/intake", form, {
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and not second["created"], second
        assert second["dial"] == {**first["dial"], "status": "already_queued"}  # one call, not two
        status, lead = await detail(port)
    assert status == 200
    assert lead["lead"]["phone"] == LEAD and lead["lead"]["name"] == "דנה" and lead["lead"]["area"] == "גבעתיים"
    assert (lead["lead"]["rooms"], lead["lead"]["budget_ils"], lead["lead"]["deal"]) == (4.0, 2500000, "buy")
    assert lead["lead"]["source"] == "web_form" and lead["lead"]["notes"] == "מעדיפה בערב"
    assert [i["source"] for i in lead["intake"]] == ["facebook", "web_form"]
    assert lead["intake"][1]["fields"]["extra"] == {"utm_campaign": "spring"}
    assert len(lead["dial_jobs"]) == 1 and lead["dial_jobs"][0]["state"] == "pending"


async def test_idempotency_key(tmp_path: Path) -> None:
    data = {"phone": "0501234567", "name": "רון", "source": "web_form"}
    async with running_server(wiring, env(tmp_path)) as (_, port):
        s1, r1 = await post(port, "/api/leads/intake", *as_json(data, key="abc-1"))
        s2, r2 = await post(port, "/api/leads/intake", *as_json(data, key="abc-1"))
        s3, r3 = await post(port, "/api/leads/intake", *as_json({**data, "name": "רונה"}, key="abc-1"))
        _, lead = await detail(port)
    assert (s1, s2, s3) == (201, 200, 409)
    assert r2 == {**r1, "replayed": True}
    assert r3["field"] == "Idempotency-Key"
    assert len(lead["intake"]) == 1 and lead["lead"]["name"] == "רון"


@pytest.mark.parametrize("data, field", [
    ({"source": "web_form"}, "phone"),
    ({"phone": "12345", "source": "web_form"}, "phone"),
    ({"phone": "050-123", "source": "web_form"}, "phone"),
    ({"phone": "hello there", "source": "web_form"}, "phone"),
    ({"phone": "+1 555", "source": "web_form"}, "phone"),
    ({"phone": "0501234567"}, "source"),
    ({"phone": "0501234567", "source": "x", "rooms": "many"}, "rooms"),
    ({"phone": "0501234567", "source": "x", "budget_ils": "-5"}, "budget_ils"),
    ({"phone": "0501234567", "source": "x", "deal": "swap"}, "deal"),
    ({"phone": "0501234567", "source": "x", "name": "א" * 101}, "name"),
])
async def test_bad_input_is_422_naming_the_field_and_nothing_stored(tmp_path: Path, data: dict, field: str) -> None:
    async with running_server(wiring, env(tmp_path)) as (_, port):
        status, body = await post(port, "/api/leads/intake", *as_json(data))
        list_status, _, leads = await ahttp("GET", port, "/api/leads")
    assert status == 422 and body["field"] == field, body
    assert list_status == 200 and json.loads(leads) == []


async def test_intake_auth(tmp_path: Path) -> None:
    data = {"phone": LEAD, "source": "zapier"}
    body = json.dumps(data).encode()
    plain = {"Content-Type": "application/json"}
    async with running_server(wiring, env(tmp_path)) as (_, port):
        no_auth = (await post(port, "/api/leads/intake", body, plain))[0]
        wrong = (await post(port, "/api/leads/intake", body, {**plain, "Authorization": "Bearer nope"}))[0]
        ts = int(time.time())
        forged = (await post(port, "/api/leads/intake", body, {
            **plain, "X-AgentLocator-Timestamp": str(ts),
            "X-AgentLocator-Signature": sign_webhook("another-secret-0123456789", ts, body)}))[0]
        stale = (await post(port, "/api/leads/intake", body, {
            **plain, "X-AgentLocator-Timestamp": str(ts - 3600),
            "X-AgentLocator-Signature": sign_webhook(SECRET, ts - 3600, body)}))[0]
        tampered = (await post(port, "/api/leads/intake", body.replace(b"zapier", b"zapiez"), {
            **plain, "X-AgentLocator-Timestamp": str(ts), "X-AgentLocator-Signature": sign_webhook(SECRET, ts, body)}))[0]
        _, leads_before, _ = await ahttp("GET", port, "/api/leads")
        signed = (await post(port, "/api/leads/intake", body, {
            **plain, "X-AgentLocator-Timestamp": str(ts), "X-AgentLocator-Signature": sign_webhook(SECRET, ts, body)}))[0]
    assert (no_auth, wrong, forged, stale, tampered, signed) == (403, 403, 403, 403, 403, 201)


async def test_opted_out_lead_gets_no_call(tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer dash-token-0123456789"}  # a script: no CSRF token needed
    async with running_server(wiring, env(tmp_path, DASHBOARD_TOKEN="dash-token-0123456789")) as (_, port):
        s1, r1 = await post(port, "/api/leads/intake", *as_json({"phone": LEAD, "source": "web_form"}))
        status, _, body = await ahttp("POST", port, f"/api/leads/{LEAD}/opt_out", headers=auth)
        assert status == 200 and json.loads(body)["opted_out"], body
        s2, r2 = await post(port, "/api/leads/intake", *as_json({"phone": "0501234567", "source": "facebook"}))
        call_status, _, call_body = await ahttp("POST", port, "/api/leads/0501234567/call", headers=auth)
        _, _, raw = await ahttp("GET", port, f"/api/leads/{LEAD}", headers=auth)
    lead = json.loads(raw)
    assert r1["dial"]["status"] == "queued" and r2["dial"]["status"] == "opted_out"
    assert call_status == 409 and json.loads(call_body)["field"] == "phone"
    assert [j["state"] for j in lead["dial_jobs"]] == ["cancelled"]
    assert lead["opted_out"]["source"] == "operator"


async def test_lead_api_is_guarded_like_the_dashboard(tmp_path: Path) -> None:
    async with running_server(wiring, env(tmp_path, DASHBOARD_TOKEN="dash-token-0123456789")) as (_, port):
        await post(port, "/api/leads/intake", *as_json({"phone": LEAD, "source": "web_form"}))
        anon = (await ahttp("GET", port, f"/api/leads/{LEAD}"))[0]
        anon_call = (await ahttp("POST", port, f"/api/leads/{LEAD}/call"))[0]
        anon_out = (await ahttp("POST", port, f"/api/leads/{LEAD}/opt_out"))[0]
        auth = {"Authorization": "Bearer dash-token-0123456789"}
        ok = await ahttp("GET", port, f"/api/leads/{LEAD}", headers=auth)
        call = await ahttp("POST", port, "/api/leads/0521234567/call", headers=auth)
        bad = await ahttp("GET", port, "/api/leads/not-a-phone", headers=auth)
        missing = (await ahttp("GET", port, "/api/leads/0529999999", headers=auth))[0]
        anon_queue = (await ahttp("GET", port, "/api/dial_jobs"))[0]
        queue = await ahttp("GET", port, "/api/dial_jobs?state=pending", headers=auth)
        bad_state = (await ahttp("GET", port, "/api/dial_jobs?state=nope", headers=auth))[0]
    assert (anon, anon_call, anon_out, anon_queue) == (401, 401, 401, 401)
    assert queue[0] == 200 and [j["phone"] for j in json.loads(queue[2])] == [LEAD, "+972521234567"]
    assert bad_state == 422
    assert ok[0] == 200 and json.loads(ok[2])["lead"]["phone"] == LEAD
    assert call[0] == 200 and json.loads(call[2])["status"] == "queued"
    assert bad[0] == 422 and json.loads(bad[2])["field"] == "phone"
    assert missing == 404


# -- Facebook Lead Ads -------------------------------------------------------------------------------

class FakeGraph:
    """The Graph API's lead endpoint on a real local HTTP server."""

    def __init__(self, leads: dict[str, dict[str, Any]], fail: bool = False) -> None:
        self.leads, self.fail, self.requests = leads, fail, []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake.requests.append(self.path)
                lead_id = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
                query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                if fake.fail or query.get("access_token") != "page-token":
                    status, body = 500 if fake.fail else 401, {"error": {"message": "nope"}}
                else:
                    status, body = (200, fake.leads[lead_id]) if lead_id in fake.leads else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v19.0"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    fake = FakeGraph({"1234567890": {"id": "1234567890", "form_id": "555", "field_data": [
        {"name": "full_name", "values": ["מיכל לוי"]}, {"name": "phone_number", "values": ["054-765-4321"]},
        {"name": "city", "values": ["חיפה"]}, {"name": "rooms", "values": ["3.5"]}]}})
    try:
        yield fake
    finally:
        fake.close()


def fb_env(tmp_path: Path, graph: FakeGraph) -> dict[str, str]:
    return env(tmp_path, FACEBOOK_APP_SECRET="fb-app-secret", FACEBOOK_VERIFY_TOKEN="verify-me",
               FACEBOOK_PAGE_ACCESS_TOKEN="page-token", FACEBOOK_GRAPH_URL=graph.url)


DELIVERY = json.dumps({"object": "page", "entry": [{"id": "42", "time": 1, "changes": [
    {"field": "leadgen", "value": {"leadgen_id": "1234567890", "page_id": "42", "form_id": "555"}}]}]}).encode()


async def test_facebook_verify_and_lead(tmp_path: Path, graph: FakeGraph) -> None:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": fb_sign("fb-app-secret", DELIVERY)}
    async with running_server(wiring, fb_env(tmp_path, graph)) as (_, port):
        ok = await ahttp("GET", port, "/webhooks/facebook/leads?hub.mode=subscribe&hub.verify_token=verify-me"
                                      "&hub.challenge=31337")
        bad = await ahttp("GET", port, "/webhooks/facebook/leads?hub.mode=subscribe&hub.verify_token=guess"
                                       "&hub.challenge=31337")
        forged = await post(port, "/webhooks/facebook/leads", DELIVERY,
                            {**headers, "X-Hub-Signature-256": fb_sign("not-the-secret", DELIVERY)})
        unsigned = await post(port, "/webhooks/facebook/leads", DELIVERY, {"Content-Type": "application/json"})
        first = await post(port, "/webhooks/facebook/leads", DELIVERY, headers)
        again = await post(port, "/webhooks/facebook/leads", DELIVERY, headers)  # Facebook retries
        status, lead = await detail(port, "+972547654321")
    assert (ok[0], ok[2]) == (200, b"31337") and bad[0] == 403
    assert forged[0] == 403 and unsigned[0] == 403
    assert first == (200, {"leads": [{"leadgen_id": "1234567890", "status": 201}]})
    assert again == (200, {"leads": [{"leadgen_id": "1234567890", "status": 200}]})
    assert status == 200
    assert (lead["lead"]["name"], lead["lead"]["area"], lead["lead"]["rooms"]) == ("מיכל לוי", "חיפה", 3.5)
    assert lead["lead"]["source"] == "facebook" and len(lead["intake"]) == 1 and len(lead["dial_jobs"]) == 1
    assert lead["intake"][0]["fields"]["extra"]["facebook_form_id"] == "555"
    assert all("access_token=page-token" in r for r in graph.requests)


async def test_facebook_graph_down_is_a_502_so_facebook_retries(tmp_path: Path) -> None:
    graph = FakeGraph({}, fail=True)
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": fb_sign("fb-app-secret", DELIVERY)}
    try:
        async with running_server(wiring, fb_env(tmp_path, graph)) as (_, port):
            status, _ = await post(port, "/webhooks/facebook/leads", DELIVERY, headers)
            _, _, leads = await ahttp("GET", port, "/api/leads")
    finally:
        graph.close()
    assert status == 502 and json.loads(leads) == []
