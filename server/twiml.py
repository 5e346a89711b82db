"""TwiML for an answered call: connect it to our media websocket (built with the `twilio` package)."""
from __future__ import annotations

from typing import Mapping

from twilio.twiml.voice_response import Connect, VoiceResponse

from server.calltokens import TOKEN_PARAM
from server.edge import CALL_PARAMS

STREAM_PATH = "/ws/twilio-media"
# The call's webhook parameters handed to the stream as <Parameter>s: the session learns
# who is calling from the `start` message's customParameters, not from a second lookup.
FORWARDED_PARAMS = CALL_PARAMS

# Said when MAX_CALLS calls are already up, before hanging up (Twilio's own TTS).
BUSY_LINES = {
    "he": ("מצטערים, כל הנציגות שלנו עסוקות כרגע. נשמח אם תתקשרו שוב בעוד כמה דקות. תודה.",
           "he-IL", "Google.he-IL-Standard-A"),
    "en": ("Sorry, all our agents are busy right now. Please call again in a few minutes. Thank you.",
           "en-US", None),
}


def websocket_base(http_base: str) -> str:
    """https://host -> wss://host (http -> ws for a plain local server)."""
    scheme, sep, rest = http_base.partition("://")
    return ("wss" if scheme == "https" else "ws") + sep + rest


def connect_stream(http_base: str, call_params: Mapping[str, str], token: str | None = None) -> str:
    """`<Connect action=.../stream_ended><Stream url=wss://.../ws/twilio-media statusCallback=...>`,
    the call's parameters and its websocket token as `<Parameter>`s."""
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
    if token:
        stream.parameter(name=TOKEN_PARAM, value=token)
    response.append(connect)
    return response.to_xml()


def busy(language: str) -> str:
    """A polite "all lines are busy" in the agent's language, then hang up."""
    text, lang, voice = BUSY_LINES["he" if language.startswith(("he", "iw")) else "en"]
    response = VoiceResponse()
    if voice:
        response.say(text, language=lang, voice=voice)
    else:
        response.say(text, language=lang)
    response.hangup()
    return response.to_xml()


def reject() -> str:
    """For a request that is not a call we can take (e.g. no valid CallSid): hang up."""
    response = VoiceResponse()
    response.hangup()
    return response.to_xml()
