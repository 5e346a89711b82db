"""TwiML for an answered call: connect it to our media websocket (built with the `twilio` package)."""
from __future__ import annotations

from typing import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse

STREAM_PATH = "/ws/twilio-media"
# The call's webhook parameters handed to the stream as <Parameter>s: the session learns
# who is calling from the `start` message's customParameters, not from a second lookup.
FORWARDED_PARAMS = ("From", "To", "CallSid", "AccountSid", "Direction", "CallerName", "ForwardedFrom")


def websocket_base(http_base: str) -> str:
    """https://host -> wss://host (http -> ws for a plain local server)."""
    scheme, sep, rest = http_base.partition("://")
    return ("wss" if scheme == "https" else "ws") + sep + rest


def connect_stream(http_base: str, call_params: Mapping[str, str]) -> str:
    """`<Connect action=.../stream_ended><Stream url=wss://.../ws/twilio-media statusCallback=...>`."""
    response = VoiceResponse()
    connect = Connect(action=f"{http_base}/stream_ended", method="POST")
    stream = connect.stream(
        url=websocket_base(http_base) + STREAM_PATH,
        status_callback=f"{http_base}/stream_status",
        status_callback_method="POST",
    )
    for name in FORWARDED_PARAMS:
        value = call_params.get(name)
        if value:
            stream.parameter(name=name, value=value)
    response.append(connect)
    return response.to_xml()
