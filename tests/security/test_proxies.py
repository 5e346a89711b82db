"""Finding 2: forwarded headers were believed from anyone. Without PUBLIC_BASE_URL the signed
URL was rebuilt from the client's own X-Forwarded-Host / -Proto, so a signature captured
for another host (or another deployment) was accepted. Now, like hypercorn / uvicorn: only a
peer in FORWARDED_ALLOW_IPS (loopback by default) may say where the client came from, and
with PUBLIC_BASE_URL set, signatures are checked against it alone."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from server.caller.call import CallIds
from server.security import SignatureChecker
from tests.integration.harness import ahttp

from .support import world_server

AUTH = "auth-token-for-tests"
FORM = {"CallSid": "CA" + "5" * 32, "CallStatus": "completed"}


def signed(url: str, form: dict[str, str] = FORM) -> str:
    return SignatureChecker(AUTH).sign(url, form)


async def test_forwarded_host_spoof_from_an_untrusted_peer_is_refused() -> None:
    """The signature was made for another host; the attacker says (in headers) that this
    request went there. Our loopback test client is not a trusted proxy here."""
    sig = signed("https://victim-deployment.example/call_status")
    spoof = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "victim-deployment.example", "X-Twilio-Signature": sig}
    async with world_server({"TWILIO_AUTH_TOKEN": AUTH, "FORWARDED_ALLOW_IPS": "10.1.2.3"}) as (_, port, _w):
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=spoof))[0] == 403
        rfc = {"Forwarded": 'for=198.51.100.7;proto=https;host="victim-deployment.example"', "X-Twilio-Signature": sig}
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=rfc))[0] == 403
        # the same request straight from the peer's own point of view is accepted
        direct = signed(f"http://127.0.0.1:{port}/call_status")
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers={"X-Twilio-Signature": direct}))[0] == 204
    # From a trusted proxy (loopback, the default) the forwarded URL is the signed one.
    async with world_server({"TWILIO_AUTH_TOKEN": AUTH}) as (_, port, _w):
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=spoof))[0] == 204
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=rfc))[0] == 204


async def test_with_public_base_url_forwarded_hosts_are_ignored() -> None:
    env = {"TWILIO_AUTH_TOKEN": AUTH, "PUBLIC_BASE_URL": "https://agent.example.com", "FORWARDED_ALLOW_IPS": "*"}
    async with world_server(env) as (_, port, _w):
        other = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "other.example",
                 "X-Twilio-Signature": signed("https://other.example/call_status")}
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=other))[0] == 403
        ours = {"X-Forwarded-Host": "other.example", "X-Twilio-Signature": signed("https://agent.example.com/call_status")}
        assert (await ahttp("POST", port, "/call_status", form=FORM, headers=ours))[0] == 204
        # and the TwiML never links Twilio to a host a header named
        ids = CallIds()
        twiml_sig = SignatureChecker(AUTH).sign("https://agent.example.com/twiml", ids.webhook_params())
        status, _, body = await ahttp("POST", port, "/twiml", form=ids.webhook_params(),
                                      headers={"X-Forwarded-Host": "other.example", "X-Twilio-Signature": twiml_sig})
        assert status == 200
        assert ET.fromstring(body).find("Connect/Stream").get("url") == "wss://agent.example.com/ws/twilio-media"


async def test_twiml_links_follow_only_a_trusted_proxy() -> None:
    ids = CallIds()
    fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    env = {"AGENTLOCATOR_INSECURE": "1", "FORWARDED_ALLOW_IPS": "none"}  # unsigned, nobody trusted
    async with world_server(env) as (_, port, _w):
        _, _, body = await ahttp("POST", port, "/twiml", form=ids.webhook_params(), headers=fwd)
        assert ET.fromstring(body).find("Connect/Stream").get("url") == f"ws://127.0.0.1:{port}/ws/twilio-media"


def test_trusted_proxies_parsing() -> None:
    from server.security import TrustedProxies

    default = TrustedProxies()
    assert default.trusts("127.0.0.1") and default.trusts("::1") and not default.trusts("10.0.0.1")
    assert not default.trusts(None) and not default.trusts("not-an-ip")
    nets = TrustedProxies("10.0.0.0/8, 192.168.1.5,fd00::/8")
    assert nets.trusts("10.200.3.4") and nets.trusts("192.168.1.5") and nets.trusts("fd00::1")
    assert not nets.trusts("192.168.1.6") and not nets.trusts("127.0.0.1")
    assert nets.trusts("::ffff:10.0.0.9")  # IPv4-mapped IPv6 peer
    assert TrustedProxies("*").trusts("203.0.113.1") and not TrustedProxies("none").trusts("127.0.0.1")
    with pytest.raises(ValueError):
        TrustedProxies("10.0.0.0/33")


def test_client_view() -> None:
    from server.security import TrustedProxies, client_view, request_base

    loop = TrustedProxies()
    headers = {"X-Forwarded-For": "203.0.113.9, 127.0.0.1", "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "agent.example.com"}
    view = client_view("127.0.0.1", "http", "127.0.0.1:8080", headers, loop)
    assert (view.scheme, view.host, view.client, view.proxied) == ("https", "agent.example.com", "203.0.113.9", True)
    # a client that is not a trusted proxy: its headers are ignored entirely
    view = client_view("198.51.100.4", "http", "agent.example.com", headers, loop)
    assert (view.scheme, view.host, view.client, view.proxied) == ("http", "agent.example.com", "198.51.100.4", False)
    # the left end of X-Forwarded-For is whatever the client wrote: the first untrusted hop from the right counts
    spoofed = {"X-Forwarded-For": "127.0.0.1, 198.51.100.4"}
    assert client_view("127.0.0.1", "http", "h", spoofed, loop).client == "198.51.100.4"
    assert request_base(None, "http", "127.0.0.1:8080", headers) == "http://127.0.0.1:8080"
    assert request_base(None, "http", "127.0.0.1:8080", headers, trusted=True) == "https://agent.example.com"
