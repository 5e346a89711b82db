from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from server.twilio_codec import (
    Connected, Dtmf, Mark, Media, ProtocolError, Start, Stop, TwilioFrames, TwilioParser, UnknownEvent,
)

START = {
    "event": "start", "sequenceNumber": "1", "streamSid": "MZ1",
    "start": {
        "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "customParameters": {"from": "+972501234567", "to": "+97231234567", "lead": "42"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


def media(payload: bytes, seq: int = 2) -> str:
    return json.dumps({
        "event": "media", "sequenceNumber": str(seq), "streamSid": "MZ1",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "20", "payload": base64.b64encode(payload).decode()},
    })


def test_parses_every_twilio_event() -> None:
    p = TwilioParser()
    assert p.parse(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})) == Connected("Call", "1.0.0")
    start = p.parse(json.dumps(START))
    assert isinstance(start, Start)
    assert (start.call_sid, start.stream_sid, start.account_sid) == ("CA1", "MZ1", "AC1")
    assert (start.from_number, start.to_number) == ("+972501234567", "+97231234567")
    assert start.custom_parameters["lead"] == "42"
    assert (start.encoding, start.sample_rate, start.channels) == ("audio/x-mulaw", 8000, 1)
    assert p.parse(media(b"\x01\xff" * 80)) == Media(b"\x01\xff" * 80, 20, 1)
    assert p.parse(json.dumps({"event": "dtmf", "streamSid": "MZ1", "dtmf": {"track": "inbound_track", "digit": "7"}})) == Dtmf("7")
    assert p.parse(json.dumps({"event": "mark", "streamSid": "MZ1", "mark": {"name": "t1.end"}})) == Mark("t1.end")
    assert p.parse(json.dumps({"event": "stop", "streamSid": "MZ1", "stop": {"accountSid": "AC1", "callSid": "CA1"}})) == Stop("CA1")
    assert p.errors == {}


def test_numbers_as_numbers_and_bytes_input() -> None:
    p = TwilioParser()
    text = json.dumps({"event": "media", "sequenceNumber": 5, "media": {"timestamp": 40, "chunk": 2, "payload": "//8="}})
    assert p.parse(text.encode()) == Media(b"\xff\xff", 40, 2)


def test_malformed_frames_are_counted_by_kind() -> None:
    p = TwilioParser()
    bad = {
        "{oops": "json",
        "": "json",
        "[1, 2]": "shape",
        '{"event": 3}': "shape",
        '{"event": "media", "media": {"payload": "not base64!"}}': "base64",
        '{"event": "media", "media": {"payload": 5}}': "shape",
        '{"event": "mark", "mark": {}}': "shape",
        '{"event": "start", "start": {}}': "shape",
    }
    for text, kind in bad.items():
        event = p.parse(text)
        assert isinstance(event, ProtocolError) and event.kind == kind, (text, event)
    assert sum(p.errors.values()) == len(bad)


def test_unknown_events_are_reported_once_per_name() -> None:
    p = TwilioParser()
    assert p.parse('{"event": "flush"}') == UnknownEvent("flush", True)
    assert p.parse('{"event": "flush", "x": 1}') == UnknownEvent("flush", False)
    assert p.parse('{"event": "other"}') == UnknownEvent("other", True)
    assert p.errors == {}


def test_wrong_media_format_is_reported_but_parsed() -> None:
    p = TwilioParser()
    start = dict(START, start=dict(START["start"], mediaFormat={"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}))
    event = p.parse(json.dumps(start))
    assert isinstance(event, Start) and event.sample_rate == 16000
    assert p.errors == {"format": 1}


def test_built_frames_are_the_json_twilio_expects() -> None:
    f = TwilioFrames('MZ"1')
    frame = bytes(range(160))
    assert json.loads(f.media(frame)) == {
        "event": "media", "streamSid": 'MZ"1', "media": {"payload": base64.b64encode(frame).decode()},
    }
    assert json.loads(f.media(bytearray(frame))) == json.loads(f.media(memoryview(frame)))
    assert json.loads(f.mark("שלום \"x\"")) == {"event": "mark", "streamSid": 'MZ"1', "mark": {"name": "שלום \"x\""}}
    assert json.loads(f.clear()) == {"event": "clear", "streamSid": 'MZ"1'}


# -- fuzzing ------------------------------------------------------------------------------------

EVENTS = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "clear", "x"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["media", "mark", "start", "stop", "dtmf", "payload", "name", "callSid", "event",
                        "streamSid", "customParameters", "mediaFormat", "timestamp"])
shaped = st.recursive(
    json_values, lambda inner: st.dictionaries(KEYS, inner, max_size=5), max_leaves=16,
)
frames = st.builds(lambda ev, body: json.dumps({"event": ev, **body}), EVENTS, st.dictionaries(KEYS, shaped, max_size=4))
EVENT_TYPES = (Connected, Start, Media, Dtmf, Mark, Stop, UnknownEvent, ProtocolError)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200), frames, json_values.map(json.dumps)))
def test_parse_never_raises(data: str | bytes) -> None:
    p = TwilioParser()
    event = p.parse(data)
    assert isinstance(event, EVENT_TYPES)
    if isinstance(event, ProtocolError):
        assert sum(p.errors.values()) == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400), st.text(min_size=1, max_size=30))
def test_media_and_mark_round_trip(payload: bytes, sid: str) -> None:
    f = TwilioFrames(sid)
    p = TwilioParser()
    echoed = json.loads(f.media(payload))
    echoed["media"].update(timestamp="0", chunk="0")
    assert p.parse(json.dumps(echoed)) == Media(payload, 0, 0)
    assert p.parse(f.mark(sid)) == Mark(sid)
