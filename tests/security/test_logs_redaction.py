"""telemetry/logs.py: no secret reaches a log line, and phone numbers are masked unless LOG_PII=1.

Every line of the process goes through telemetry.logs (log_event, CallLog, and anything logged
on the "agentlocator" logger), so these checks run at that one place.
"""
from __future__ import annotations

import io
import json
import logging

import pytest

from telemetry import logs
from telemetry.logs import CallLog, log_event

PHONE = "+972501234567"
MASKED = "+97250•••4567"
ENV = {
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "OPENAI_API_KEY": "sk-test-Zq8v3LmN5pQ2rT7wX9yB4cD6",
    "DASHBOARD_TOKEN": "dash-token-for-tests-4f1e9a",
    "AGENTLOCATOR_SECRET": "server-hmac-secret-77c1d2e3",
    "DATABASE_URL": "postgresql+psycopg://agent:Pg-Passw0rd-91x@db.internal:5432/agentlocator",
}
SECRETS = [v for k, v in ENV.items() if k != "DATABASE_URL"] + ["Pg-Passw0rd-91x"]


@pytest.fixture
def lines():
    """configure() with a fake production environment; yields a reader of the lines so far."""
    stream = io.StringIO()

    def read() -> list[str]:
        return stream.getvalue().splitlines()

    def setup(**env: str) -> None:
        stream.seek(0)
        stream.truncate()
        logs.configure("DEBUG", stream, env={**ENV, **env})

    setup()
    read.setup = setup  # type: ignore[attr-defined]
    yield read
    logs.configure("INFO", io.StringIO(), env={})


def one(read) -> dict:
    [line] = read()
    return json.loads(line)


def test_database_url_password_is_redacted_in_any_field(lines) -> None:
    url = ENV["DATABASE_URL"]
    log_event("STARTUP", notes=[f"store: {url}"], public_base_url="https://u:other-pass@h.example/x",
              database=url, nested={"deeper": [{"url": url}]})
    text = "\n".join(lines())
    assert "Pg-Passw0rd-91x" not in text and "other-pass" not in text
    entry = json.loads(text)
    # what the operator needs to read is still there: the backend, user, host and database
    assert "postgresql+psycopg://agent:" in entry["database"] and "@db.internal:5432/agentlocator" in entry["database"]
    assert entry["notes"][0].startswith("store: postgresql+psycopg://agent:")


def test_url_password_redacted_even_when_not_from_the_environment(lines) -> None:
    log_event("ERROR", error="could not connect to postgresql://bob:hunter2hunter@10.0.0.5/leads")
    entry = one(lines)
    assert "hunter2hunter" not in entry["error"] and "bob:" in entry["error"] and "10.0.0.5/leads" in entry["error"]


@pytest.mark.parametrize("name", [
    "token", "auth_token", "dashboard_token", "api_key", "apiKey", "openai_key", "secret", "client_secret",
    "password", "db_password", "authorization", "Authorization", "cookie", "x_twilio_signature", "key",
])
def test_secret_looking_fields_are_redacted_by_name(lines, name: str) -> None:
    log_event("WEBHOOK", **{name: "some-value-that-must-not-show-1234"}, path="/twiml")
    entry = one(lines)
    assert "some-value-that-must-not-show-1234" not in json.dumps(entry)
    assert entry[name] != "" and entry["path"] == "/twiml"


def test_secret_names_inside_nested_values_and_headers(lines) -> None:
    log_event("WEBHOOK", headers={"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Host": "h.example",
                                  "X-Twilio-Signature": "c2lnbmF0dXJlLXRoYXQtcmVwbGF5cw=="})
    entry = one(lines)
    assert entry["headers"]["Host"] == "h.example"
    assert "YWxhZGRpbjpvcGVuc2VzYW1l" not in json.dumps(entry)
    assert "c2lnbmF0dXJlLXRoYXQtcmVwbGF5cw==" not in json.dumps(entry)


def test_flags_about_secrets_stay_readable(lines) -> None:
    log_event("STARTUP", signatures=True, token_set=False, api_key=None)
    entry = one(lines)
    assert entry["signatures"] is True and entry["token_set"] is False and entry["api_key"] is None


def test_secret_values_of_the_environment_are_redacted_in_free_text(lines) -> None:
    log_event("ERROR", where="brain", error=f"AuthenticationError: Incorrect API key provided: {ENV['OPENAI_API_KEY']}")
    log_event("ERROR", where="x", error=f"signed with {ENV['TWILIO_AUTH_TOKEN']} / {ENV['AGENTLOCATOR_SECRET']}")
    log_event("WEBHOOK", path=f"/dashboard?token={ENV['DASHBOARD_TOKEN']}")
    text = "\n".join(lines())
    for secret in SECRETS:
        assert secret not in text, secret


def test_secret_shapes_in_free_text(lines) -> None:
    log_event("ERROR", error="headers {'authorization': 'Bearer abcdefghijklmnop0123'} "
                             "url=https://h.example/api?x=1&access_token=qwertyuiopasdf&y=2 "
                             "config api_key=zxcvbnmasdfghjkl password: 'letmeinplease' key sk-proj-AAAABBBBCCCCDDDDEEEE")
    text = "\n".join(lines())
    for leaked in ("abcdefghijklmnop0123", "qwertyuiopasdf", "zxcvbnmasdfghjkl", "letmeinplease", "AAAABBBBCCCCDDDDEEEE"):
        assert leaked not in text, leaked
    assert "x=1" in text and "y=2" in text  # only the secret part goes


@pytest.mark.parametrize("field,value,want", [
    ("from_number", PHONE, MASKED),
    ("to_number", "+97233001122", "+97233•••1122"),
    ("phone", "050-123-4567", MASKED),
    ("to", f"whatsapp:{PHONE}", f"whatsapp:{MASKED}"),
    ("from", "+14155238886", "+141•••8886"),
])
def test_phone_fields_are_masked(lines, field: str, value: str, want: str) -> None:
    log_event("WEBHOOK", **{field: value})
    assert one(lines)[field] == want


def test_provider_names_in_from_and_to_are_not_phones(lines) -> None:
    log_event("PROVIDER_SWITCH", **{"from": "google", "to": "openai-whisper"})
    entry = one(lines)
    assert (entry["from"], entry["to"]) == ("google", "openai-whisper")


def test_phone_numbers_in_free_text_are_masked(lines) -> None:
    sid = "CA0501234567" + "0" * 22
    log_event("ASR_TEXT", call_sid=sid, t=1234.5, text="המספר שלי 050-123-4567, או +972 52 765 4321",
              note=f"lead {PHONE} booked", error=f"sent to whatsapp:{PHONE} failed")
    entry = one(lines)
    raw = json.dumps({k: v for k, v in entry.items() if k != "call_sid"}, ensure_ascii=False)
    for full in ("050-123-4567", "1234567", "765 4321", PHONE):
        assert full not in raw, full
    assert MASKED in entry["text"] and "+97252•••4321" in entry["text"]
    assert entry["call_sid"] == sid and entry["t"] == 1234.5  # SIDs and numbers are not phones


def test_call_log_lines_are_cleaned_too(lines) -> None:
    log = CallLog("CA" + "a" * 32, lambda: 10.0)
    log("CALL_START", from_number=PHONE, to_number="+97231234567", token=ENV["DASHBOARD_TOKEN"])
    raw = "\n".join(lines())
    assert PHONE not in raw and "+97231234567" not in raw and ENV["DASHBOARD_TOKEN"] not in raw
    assert MASKED in raw


def test_plain_records_on_the_logger_are_cleaned(lines) -> None:
    logging.getLogger("agentlocator").warning("retrying %s for %s", ENV["DATABASE_URL"], PHONE)
    raw = "\n".join(lines())
    assert "Pg-Passw0rd-91x" not in raw and PHONE not in raw


def test_log_pii_shows_full_numbers_but_never_secrets(lines) -> None:
    lines.setup(LOG_PII="1")
    log_event("CALL_START", from_number=PHONE, error=f"x {ENV['OPENAI_API_KEY']}", text="050-123-4567")
    entry = one(lines)
    assert entry["from_number"] == PHONE and entry["text"] == "050-123-4567"
    assert ENV["OPENAI_API_KEY"] not in json.dumps(entry)


def test_log_pii_is_read_once_at_configure_time(lines, monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setenv("LOG_PII", "1")
    logs.configure("INFO", stream)  # env defaults to the process environment
    monkeypatch.setenv("LOG_PII", "0")
    log_event("CALL_START", from_number=PHONE)
    assert json.loads(stream.getvalue())["from_number"] == PHONE
    monkeypatch.delenv("LOG_PII")
    logs.configure("INFO", stream := io.StringIO())
    monkeypatch.setenv("LOG_PII", "1")
    log_event("CALL_START", from_number=PHONE)
    assert json.loads(stream.getvalue())["from_number"] == MASKED


def test_a_huge_field_makes_a_small_line(lines) -> None:
    log_event("WEBHOOK", from_number="+972" + "5" * 10_000_000, text="x" * 10_000_000, items=list(range(100_000)))
    [line] = lines()
    assert len(line.encode()) < 64 * 1024


def test_repeated_short_values_are_cleaned_the_same_every_time(lines) -> None:
    """Short strings' cleaned forms are remembered (speed): the same text must still come out
    as each field's rules say — a number-like value is masked harder in a phone field than in
    free text — and a secret seen first stays redacted on every later line."""
    digits = "1234567"  # no phone in free text; in a phone field only its last 4 digits stay
    for _ in range(3):
        log_event("WEBHOOK", note=digits, phone=digits, error=ENV["DASHBOARD_TOKEN"], to=PHONE, text=PHONE)
    entries = [json.loads(line) for line in lines()]
    assert len(entries) == 3
    for entry in entries:
        assert entry["note"] == digits and entry["phone"] == "•••4567"
        assert entry["error"] == "[redacted]" and entry["to"] == entry["text"] == MASKED
