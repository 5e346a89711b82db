"""Settings validation and the pure URL / signature helpers the app relies on."""
from __future__ import annotations

import pytest

from native.config import ConfigError
from server.security import SignatureChecker, request_base, signed_urls
from server.settings import Settings
from server.twiml import connect_stream, websocket_base


def test_defaults_and_env() -> None:
    s = Settings.from_env({})
    assert (s.agent_language, s.database_url, s.port, s.brain) == ("he-IL", "sqlite:///agentlocator.db", 8080, "auto")
    s = Settings.from_env({"PUBLIC_BASE_URL": "https://a.example/", "PORT": "9000", "AL_PACER_LEAD_MS": "60",
                           "GOOGLE_TTS_ENDPOINT": "127.0.0.1:50051", "BRAIN": "Rules"})
    assert s.public_base_url == "https://a.example" and s.port == 9000 and s.timing.pacer_lead_ms == 60
    assert s.google_tts_endpoint == "127.0.0.1:50051" and s.brain == "rules"
    assert Settings.from_env({"TWILIO_WHATSAPP_TEMPLATE_SID": "HX" + "ab" * 16}).twilio_whatsapp_template_sid == "HX" + "ab" * 16


@pytest.mark.parametrize("env, needle", [
    ({"PUBLIC_BASE_URL": "agent.example.com"}, "PUBLIC_BASE_URL"),
    ({"PUBLIC_BASE_URL": "ftp://agent.example.com"}, "PUBLIC_BASE_URL"),
    ({"GOOGLE_SPEECH_ENDPOINT": "localhost"}, "GOOGLE_SPEECH_ENDPOINT"),
    ({"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"}, "no such file"),
    ({"AGENT_LANGUAGE": "fr-FR"}, "AGENT_LANGUAGE"),
    ({"PORT": "70000"}, "PORT"),
    ({"AL_EOU_SILENCE_MS": "900"}, "eou_silence_ms"),
    ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ({"TWILIO_WHATSAPP_TEMPLATE_SID": "my-template"}, "TWILIO_WHATSAPP_TEMPLATE_SID"),
    ({"TWILIO_WHATSAPP_TEMPLATE_SID": "HX" + "z" * 32}, "Content SID"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_request_base_prefers_public_then_forwarded() -> None:
    assert request_base("https://pub.example", "http", "127.0.0.1:8080", {}) == "https://pub.example"
    fwd = {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "tunnel.example, proxy.local"}
    assert request_base(None, "http", "127.0.0.1:8080", fwd, trusted=True) == "https://tunnel.example"
    # from a peer that is not a trusted proxy, forwarded headers are not believed
    assert request_base(None, "http", "127.0.0.1:8080", fwd) == "http://127.0.0.1:8080"
    assert request_base(None, "ws", "127.0.0.1:8080", {}) == "http://127.0.0.1:8080"
    assert request_base(None, "wss", "h.example", {}) == "https://h.example"


def test_signed_urls_and_signature_round_trip() -> None:
    assert signed_urls("https://h.example", "/stream_status", "a=1") == ["https://h.example/stream_status?a=1"]
    assert signed_urls("https://h.example", "/ws/twilio-media", "", websocket=True) == [
        "wss://h.example/ws/twilio-media", "https://h.example/ws/twilio-media"]
    checker = SignatureChecker("tok")
    sig = checker.sign("https://h.example/call_status", {"CallSid": "CA1"})
    assert checker.valid(["https://h.example/call_status"], {"CallSid": "CA1"}, sig)
    assert not checker.valid(["https://h.example/call_status"], {"CallSid": "CA2"}, sig)
    assert not checker.valid(["https://h.example/call_status"], {"CallSid": "CA1"}, None)
    assert not SignatureChecker("other").valid(["https://h.example/call_status"], {"CallSid": "CA1"}, sig)


def test_twiml_escapes_parameters() -> None:
    xml = connect_stream("https://h.example", {"From": "+972<5>&\"", "Ignored": "x"})
    assert '<Parameter name="From" value="+972&lt;5&gt;&amp;&quot;" />' in xml and "Ignored" not in xml
    assert websocket_base("http://127.0.0.1:9") == "ws://127.0.0.1:9"


def test_a_public_host_is_reached_over_tls_even_without_forwarded_proto() -> None:
    """Twilio reaches public hosts only over https/wss (and signs those URLs): a proxy that
    terminates TLS without X-Forwarded-Proto must not make us link Twilio to ws:// or check
    signatures against http://. Loopback stays plain for local runs."""
    public = request_base(None, "http", "agent.example.com", {})
    assert public == "https://agent.example.com"
    xml = connect_stream(public, {})
    assert 'url="wss://agent.example.com/ws/twilio-media"' in xml
    assert 'action="https://agent.example.com/stream_ended"' in xml
    assert request_base(None, "http", "127.0.0.1:8080", {}) == "http://127.0.0.1:8080"
    assert request_base(None, "ws", "localhost:8080", {}) == "http://localhost:8080"
    assert request_base(None, "http", "[::1]:8080", {}) == "http://[::1]:8080"
