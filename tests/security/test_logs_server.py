"""No secret in any log line or in /version, and no full phone number at INFO, from a real
`agentlocator serve` process running a real call.

The server runs as deployed, with fake credentials set: TWILIO_AUTH_TOKEN (signatures are
checked), OPENAI_API_KEY (the OpenAI brain, pointed at a loopback fake that sees the key),
DASHBOARD_TOKEN, AGENTLOCATOR_SECRET, a password in DATABASE_URL (the test PostgreSQL, which
trusts loopback and ignores it; or SQLite, with the password in another URL of the
environment), Twilio's WhatsApp sender (a loopback fake), Google speech (loopback fakes).
The simulated caller (`agentlocator call`) calls from a known number and says another one.
Then every line the process wrote, JSON or not, and the /version body are searched.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import trio

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path, name: str):  # type: ignore[no-untyped-def]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


_harness = _load(ROOT / "tests/integration/harness.py", "agentlocator_sec_integration_harness")
_leads = _load(ROOT / "tests/leads/conftest.py", "agentlocator_sec_leads_fixtures")
for _dir in ("speech", "dialog"):  # the fakes import their neighbours by plain name, as their own tests do
    if str(ROOT / "tests" / _dir) not in sys.path:
        sys.path.append(str(ROOT / "tests" / _dir))
import fake_google as _google  # noqa: E402
import fake_openai as _openai  # noqa: E402

postgres_server, postgres_db, postgres_url = _leads.postgres_server, _leads.postgres_db, _leads.postgres_url

CALLER = "+972541239876"
CALLER_DIGITS = "541239876"  # the number without its country code / trunk 0, in any format
SPOKEN = "054-123-9876"
CALLER_LINES = [f"המספר שלי {SPOKEN}", "לא, תודה"]
SECRETS = {
    "TWILIO_AUTH_TOKEN": "7e1f0c2b9a8d4e6f1a2b3c4d5e6f7a8b",
    "OPENAI_API_KEY": "sk-test-LogSecretsOpenAIKey0123456789",
    "DASHBOARD_TOKEN": "dashboard-token-LogSecrets-5566",
    "AGENTLOCATOR_SECRET": "agentlocator-hmac-LogSecrets-7788",
    "LEAD_WEBHOOK_SECRET": "webhook-hmac-LogSecrets-9900",
}
DB_PASSWORD = "Pg-LogSecrets-Passw0rd"


def _script() -> str:
    lines = ["wait_agent 500 20"]
    for text in CALLER_LINES:
        lines += [f"say he-IL {text}", "wait_agent 500 20"]
    return "\n".join(lines + ["silence 1000", "hangup"]) + "\n"


async def _run(tmp_path: Path, database_url: str, extra_env: dict[str, str]) -> tuple[str, str, list[dict]]:
    from server.security import SignatureChecker

    speech = _google.FakeSpeech(script=CALLER_LINES)
    fake_openai = _openai.FakeOpenAI()
    fake_openai.default = _openai.Script("הבנתי, תודה רבה. ומה התקציב שלכם לדירה החדשה?")
    fake_twilio = _leads.FakeTwilio()
    script = tmp_path / "caller.txt"
    script.write_text(_script(), encoding="utf-8")
    log_path = tmp_path / "server.log"
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(fake_openai.serve)
            with _google.FakeGoogle(speech, _google.FakeTts(ms_per_char=12)) as google:
                env = {
                    **SECRETS, "AGENT_LANGUAGE": "he-IL", "BRAIN": "openai",
                    "OPENAI_BASE_URL": fake_openai.base_url,
                    "GOOGLE_SPEECH_ENDPOINT": google.endpoint, "GOOGLE_TTS_ENDPOINT": google.endpoint,
                    "DATABASE_URL": database_url,
                    "TWILIO_ACCOUNT_SID": "AC" + "3" * 32, "TWILIO_WHATSAPP_FROM": "whatsapp:+14155238886",
                    "TWILIO_API_BASE_URL": fake_twilio.url,
                    # another URL with a password, for the SQLite run (never contacted)
                    "REDIS_URL": f"redis://cache:{DB_PASSWORD}@127.0.0.1:1/0",
                    "AGENTLOCATOR_TEST_WIRING": "", "ASR_PROVIDER": "", "TTS_PROVIDER": "", "WHISPER_MODEL": "",
                    "LOG_LEVEL": "INFO", **extra_env,
                }
                async with _harness.server_process(log_path, env) as (port, _):
                    base = f"http://127.0.0.1:{port}"
                    form = {"CallSid": "CA" + "4" * 32, "From": CALLER, "To": "+97231234567", "AccountSid": "AC" + "3" * 32}
                    signature = SignatureChecker(SECRETS["TWILIO_AUTH_TOKEN"]).sign(f"{base}/twiml", form)
                    status, _, _ = await _harness.ahttp("POST", port, "/twiml", form=form,
                                                        headers={"X-Twilio-Signature": signature})
                    assert status == 200
                    status, _, _ = await _harness.ahttp("POST", port, "/call_status", form={"CallSid": "CA1"},
                                                        headers={"X-Twilio-Signature": "forged"})
                    assert status == 403
                    cmd = [sys.executable, "-m", "server.cli", "call", "--url", f"ws://127.0.0.1:{port}/ws/twilio-media",
                           "--script", str(script), "--from", CALLER, "--to", "+97231234567",
                           "--auth-token", SECRETS["TWILIO_AUTH_TOKEN"], "--account-sid", "AC" + "3" * 32,
                           "--subprotocol", "audio.twilio.com",
                           "--out", str(tmp_path / "out"), "--quiet"]
                    call = await trio.run_process(cmd, cwd=ROOT, capture_stdout=True, capture_stderr=True, check=False)
                    assert call.returncode == 0, call.stderr.decode()[-2000:] + call.stdout.decode()[-2000:]
                    with trio.fail_after(20):  # the follow-up goes out after the call's end
                        while not fake_twilio.messages():
                            await trio.sleep(0.1)
                    _, _, version = await _harness.ahttp("GET", port, "/version")
            nursery.cancel_scope.cancel()
    finally:
        fake_twilio.close()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    # the call really ran, with the credentials really in use
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    names = [e.get("event") for e in events]
    assert "CALL_START" in names and "CALL_END" in names and "WHATSAPP_SENT" in names, names
    assert any(r.get("_auth") == f"Bearer {SECRETS['OPENAI_API_KEY']}" for r in fake_openai.requests)
    assert fake_twilio.messages()[0]["To"] == f"whatsapp:{CALLER}"
    return text, version.decode(), events


def _assert_no_secrets(text: str, version: str) -> None:
    for name, value in {**SECRETS, "DATABASE_URL password": DB_PASSWORD}.items():
        assert value not in text, f"{name} in the server log"
        assert value not in version, f"{name} in /version"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_no_secret_and_no_full_phone_in_any_log_line(tmp_path: Path, db: str, request: pytest.FixtureRequest) -> None:
    if db == "postgres":
        url = request.getfixturevalue("postgres_url").replace("://postgres@", f"://postgres:{DB_PASSWORD}@", 1)
    else:
        url = f"sqlite:///{tmp_path / 'agent.db'}"
    text, version, events = await _run(tmp_path, url, {})
    _assert_no_secrets(text, version)
    assert CALLER_DIGITS not in text and SPOKEN not in text and "1239876" not in text
    start = next(e for e in events if e["event"] == "CALL_START")
    assert start["from_number"] == "+97254•••9876"
    if db == "postgres":  # the STARTUP line still says which database (without its password)
        assert any("postgresql+psycopg://postgres:" in line and "@127.0.0.1:" in line
                   for line in text.splitlines() if '"STARTUP"' in line)


async def test_log_pii_shows_full_numbers_and_still_no_secrets(tmp_path: Path) -> None:
    text, version, events = await _run(tmp_path, f"sqlite:///{tmp_path / 'agent.db'}", {"LOG_PII": "1"})
    _assert_no_secrets(text, version)
    start = next(e for e in events if e["event"] == "CALL_START")
    assert start["from_number"] == CALLER
    assert SPOKEN in text  # the caller's words, as recognized
