"""Twilio Media Streams messages, sans-IO: text frames in -> typed events out, and the
three frames we send (media / mark / clear) built without a JSON encoder.

Nothing here raises on what Twilio (or anyone on the socket) sends: a malformed frame is
counted in ``agentlocator_protocol_errors_total{kind}`` and returned as a
:class:`ProtocolError` the session may log; an unknown event name is reported once per
name (:class:`UnknownEvent` with ``first=True``) and then ignored quietly. What the peer
controls never grows memory: unknown names are counted, and only the first
``UNKNOWN_NAMES_KEPT`` (cut to 64 characters) are remembered for that "once".
"""
from __future__ import annotations

import binascii
import json
from typing import Union

import msgspec

from telemetry import metrics

# ---------------------------------------------------------------------------------------------
# Wire shapes (only the fields we use; extra fields are ignored by msgspec).
# Twilio sends numbers as strings ("sequenceNumber": "3"); tolerate either.

_Num = Union[str, int]


class _MediaBody(msgspec.Struct):
    payload: bytes  # msgspec decodes base64 straight into bytes and rejects bad base64
    timestamp: _Num = "0"
    chunk: _Num = "0"
    track: str = "inbound"


class _MediaFormat(msgspec.Struct):
    encoding: str = "audio/x-mulaw"
    sampleRate: int = 8000
    channels: int = 1


class _StartBody(msgspec.Struct):
    callSid: str
    streamSid: str = ""
    accountSid: str = ""
    tracks: list[str] = []
    customParameters: dict[str, str] = {}
    mediaFormat: _MediaFormat = msgspec.field(default_factory=_MediaFormat)


class _DtmfBody(msgspec.Struct):
    digit: str
    track: str = "inbound_track"


class _MarkBody(msgspec.Struct):
    name: str


class _StopBody(msgspec.Struct):
    callSid: str = ""
    accountSid: str = ""


class _WConnected(msgspec.Struct, tag_field="event", tag="connected"):
    protocol: str = "Call"
    version: str = ""


class _WStart(msgspec.Struct, tag_field="event", tag="start"):
    start: _StartBody
    streamSid: str = ""
    sequenceNumber: _Num = "0"


class _WMedia(msgspec.Struct, tag_field="event", tag="media"):
    media: _MediaBody
    streamSid: str = ""
    sequenceNumber: _Num = "0"


class _WDtmf(msgspec.Struct, tag_field="event", tag="dtmf"):
    dtmf: _DtmfBody
    streamSid: str = ""
    sequenceNumber: _Num = "0"


class _WMark(msgspec.Struct, tag_field="event", tag="mark"):
    mark: _MarkBody
    streamSid: str = ""
    sequenceNumber: _Num = "0"


class _WStop(msgspec.Struct, tag_field="event", tag="stop"):
    streamSid: str = ""
    sequenceNumber: _Num = "0"
    stop: _StopBody = msgspec.field(default_factory=_StopBody)


class _EventName(msgspec.Struct):
    event: str


_decoder = msgspec.json.Decoder(Union[_WConnected, _WStart, _WMedia, _WDtmf, _WMark, _WStop])
_name_decoder = msgspec.json.Decoder(_EventName)
KNOWN_EVENTS = frozenset({"connected", "start", "media", "dtmf", "mark", "stop"})
UNKNOWN_NAMES_KEPT = 20
UNKNOWN_NAME_CHARS = 64

# ---------------------------------------------------------------------------------------------
# Events the session sees.


class Connected(msgspec.Struct, frozen=True):
    protocol: str
    version: str


class Start(msgspec.Struct, frozen=True):
    stream_sid: str
    call_sid: str
    account_sid: str
    from_number: str
    to_number: str
    custom_parameters: dict[str, str]
    encoding: str
    sample_rate: int
    channels: int

    @property
    def lead_number(self) -> str:
        """The lead's phone: the caller on an inbound call, the called party on a call we
        placed (Twilio's Direction outbound-api / outbound-dial: From is our own number)."""
        direction = _param(self.custom_parameters, "Direction", "direction").lower()
        return self.to_number if direction.startswith("outbound") else self.from_number


class Media(msgspec.Struct, frozen=True):
    payload: bytes  # μ-law, normally 160 bytes = 20 ms
    timestamp: int  # ms since stream start, as Twilio stamped it
    chunk: int


class Dtmf(msgspec.Struct, frozen=True):
    digit: str


class Mark(msgspec.Struct, frozen=True):
    name: str


class Stop(msgspec.Struct, frozen=True):
    call_sid: str


class UnknownEvent(msgspec.Struct, frozen=True):
    name: str
    first: bool  # True the first time this parser sees the name: log it then, not after


class ProtocolError(msgspec.Struct, frozen=True):
    kind: str  # json | shape | base64 | format
    detail: str


Event = Union[Connected, Start, Media, Dtmf, Mark, Stop, UnknownEvent, ProtocolError]


def _int(value: _Num) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _param(params: dict[str, str], *names: str) -> str:
    for name in names:
        if params.get(name):
            return params[name]
    return ""


class TwilioParser:
    """One per websocket. ``parse(text)`` never raises.

    Once ``stream_sid`` is set (from `start`), a frame that names another stream is a
    ProtocolError("stream_sid"): it is not this call's."""

    __slots__ = ("errors", "_unknown_seen", "unknown_events", "stream_sid")

    def __init__(self) -> None:
        self.errors: dict[str, int] = {}
        self._unknown_seen: set[str] = set()  # at most UNKNOWN_NAMES_KEPT names
        self.unknown_events = 0
        self.stream_sid = ""

    def _error(self, kind: str, detail: str) -> ProtocolError:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        metrics.protocol_errors_total.labels(kind=kind).inc()
        return ProtocolError(kind, detail[:200])

    def parse(self, text: str | bytes) -> Event:
        try:
            wire = _decoder.decode(text)
        except msgspec.DecodeError as exc:  # ValidationError is a subclass: shapes and base64 too
            return self._classify(text, exc)
        except Exception as exc:  # defensive: never let a frame take the call down
            return self._error("json", repr(exc))
        if isinstance(wire, _WMedia):
            if self.stream_sid and wire.streamSid != self.stream_sid and wire.streamSid:
                return self._error("stream_sid", "media for another stream")
            body = wire.media
            return Media(body.payload, _int(body.timestamp), _int(body.chunk))
        if self.stream_sid and not isinstance(wire, (_WStart, _WConnected)) and wire.streamSid \
                and wire.streamSid != self.stream_sid:
            return self._error("stream_sid", f"{type(wire).__name__[2:].lower()} for another stream")
        if isinstance(wire, _WMark):
            return Mark(wire.mark.name)
        if isinstance(wire, _WStart):
            s = wire.start
            fmt = s.mediaFormat
            if fmt.encoding != "audio/x-mulaw" or fmt.sampleRate != 8000 or fmt.channels != 1:
                # We only speak μ-law 8 kHz mono; report it but still run the call as such.
                self._error("format", f"{fmt.encoding}/{fmt.sampleRate}/{fmt.channels}")
            params = s.customParameters
            return Start(
                stream_sid=s.streamSid or wire.streamSid,
                call_sid=s.callSid,
                account_sid=s.accountSid,
                from_number=_param(params, "from", "From", "caller", "Caller"),
                to_number=_param(params, "to", "To", "called", "Called"),
                custom_parameters=dict(params),
                encoding=fmt.encoding,
                sample_rate=fmt.sampleRate,
                channels=fmt.channels,
            )
        if isinstance(wire, _WDtmf):
            return Dtmf(wire.dtmf.digit)
        if isinstance(wire, _WStop):
            return Stop(wire.stop.callSid)
        return Connected(wire.protocol, wire.version)

    def _classify(self, text: str | bytes, exc: Exception) -> Event:
        if not isinstance(exc, msgspec.ValidationError):
            return self._error("json", str(exc))
        try:
            name = _name_decoder.decode(text).event
        except msgspec.DecodeError:
            return self._error("shape", str(exc))
        if name not in KNOWN_EVENTS:
            self.unknown_events += 1
            name = name[:UNKNOWN_NAME_CHARS]
            first = name not in self._unknown_seen and len(self._unknown_seen) < UNKNOWN_NAMES_KEPT
            if first:
                self._unknown_seen.add(name)
                metrics.protocol_errors_total.labels(kind="unknown_event").inc()
            return UnknownEvent(name, first)
        if "base64" in str(exc):
            return self._error("base64", str(exc))
        return self._error("shape", str(exc))


# ---------------------------------------------------------------------------------------------
# Outbound frames. Media is the 20 ms hot path: a prefix preformatted per stream, then base64
# of the frame straight into the string, no dict and no encoder.


class TwilioFrames:
    """Builds our frames for one stream."""

    __slots__ = ("_media_prefix", "_mark_prefix", "_clear")

    def __init__(self, stream_sid: str) -> None:
        sid = json.dumps(stream_sid)
        self._media_prefix = '{"event":"media","streamSid":' + sid + ',"media":{"payload":"'
        self._mark_prefix = '{"event":"mark","streamSid":' + sid + ',"mark":{"name":'
        self._clear = '{"event":"clear","streamSid":' + sid + "}"

    def media(self, ulaw: bytes | bytearray | memoryview) -> str:
        return self._media_prefix + binascii.b2a_base64(ulaw, newline=False).decode("ascii") + '"}}'

    def mark(self, name: str) -> str:
        return self._mark_prefix + json.dumps(name) + "}}"

    def clear(self) -> str:
        return self._clear
