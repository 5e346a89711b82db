"""Finding 1, second half: with TWILIO_AUTH_TOKEN unset nothing Twilio sends can be verified,
and `serve` listened on 0.0.0.0, so anyone could open calls. Now `serve` refuses a
non-loopback address without the token unless told `--insecure` / AGENTLOCATOR_INSECURE=1
(and says so loudly), and the app itself (however it is served) answers the Twilio routes
only for local requests in that mode."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from quart_trio import QuartTrio

from telemetry import logs
from server.dashboard import dashboard_bp
from server.app import create_app
from server.caller.call import CallIds
from server.settings import Settings
from tests.integration.harness import ahttp

from .support import world_server

ROOT = Path(__file__).resolve().parents[2]


def test_bind_rule() -> None:
    from server.cli import bind_refusal

    assert bind_refusal("0.0.0.0", None, False)
    assert bind_refusal("::", None, False)
    assert bind_refusal("192.168.1.10", None, False)
    assert "TWILIO_AUTH_TOKEN" in bind_refusal("0.0.0.0", None, False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert bind_refusal(host, None, False) is None, host
    assert bind_refusal("0.0.0.0", "auth-token", False) is None
    assert bind_refusal("0.0.0.0", None, True) is None


def test_serve_refuses_a_public_address_without_the_auth_token() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "AGENTLOCATOR_"))}
    proc = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", "9"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without TWILIO_AUTH_TOKEN" in proc.stderr and "--insecure" in proc.stderr
    bad = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", "9"],
                         cwd=ROOT, env={**env, "AGENTLOCATOR_INSECURE": "maybe"}, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "AGENTLOCATOR_INSECURE" in bad.stderr


async def test_insecure_mode_is_logged_loudly() -> None:
    stream = io.StringIO()
    logs.configure("INFO", stream)
    try:
        async with world_server({"AGENTLOCATOR_INSECURE": "1"}):
            pass
    finally:
        logs.configure("INFO")
    lines = [json.loads(x) for x in stream.getvalue().splitlines() if x.startswith("{")]
    warnings = [ln.get("warning", "") for ln in lines if ln.get("event") == "STARTUP"]
    assert any(w.startswith("INSECURE") and "ANYONE" in w for w in warnings), warnings


@pytest.mark.parametrize("insecure", [False, True])
async def test_without_the_auth_token_twilio_routes_answer_this_machine_only(insecure: bool, monkeypatch) -> None:
    """However the app is served (hypercorn directly, too): a peer that is not loopback, or a
    request a proxy forwarded, cannot mint a stream token or post webhooks unsigned."""
    settings = Settings.from_env({"AGENTLOCATOR_INSECURE": "1" if insecure else "", "AGENT_LANGUAGE": "en-US"})
    from tests.integration.fakes import FakeWorld

    app = create_app(settings, FakeWorld(["x"]).wiring, configure_logs=False)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        form = CallIds().webhook_params()
        remote = {"client": ("203.0.113.9", 4444)}
        for path in ("/twiml", "/call_status", "/stream_status", "/stream_ended"):
            status = (await client.post(path, form=form, scope_base=remote)).status_code
            assert status == (403 if not insecure else (200 if path == "/twiml" else 204)), (path, status)
    from leads.store import Store

    monkeypatch.delenv("AGENTLOCATOR_INSECURE", raising=False)
    store = Store.open("sqlite:///:memory:")
    try:
        bare = QuartTrio(__name__)
        bare.config["STORE"] = store
        bare.register_blueprint(dashboard_bp)
        client = bare.test_client()
        resp = await client.post("/whatsapp_status", form={"MessageSid": "SM1", "MessageStatus": "sent"},
                                 scope_base={"client": ("203.0.113.9", 4444)})
        assert resp.status_code == 403  # the bare blueprint: its own env (no AGENTLOCATOR_INSECURE here)
    finally:
        store.close()
    async with world_server({"AGENTLOCATOR_INSECURE": "1" if insecure else ""}) as (_, port, _w):
        forwarded = {"X-Forwarded-For": "203.0.113.9"}
        status = (await ahttp("POST", port, "/twiml", form=CallIds().webhook_params(), headers=forwarded))[0]
        assert status == (200 if insecure else 403)
        assert (await ahttp("POST", port, "/twiml", form=CallIds().webhook_params()))[0] == 200  # local: fine
