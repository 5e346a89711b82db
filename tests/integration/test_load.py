"""`agentlocator load`: a real run, tiny (2 calls x 5 s, callers in their own process)."""
from __future__ import annotations

import pytest

from server.caller.load import ramp_steps, run_load
from server.cli import build_parser


def test_ramp_steps_grow_by_1_2_5_up_to_the_limit() -> None:
    assert ramp_steps(1) == [1]
    assert ramp_steps(30) == [1, 2, 5, 10, 20, 30]
    assert ramp_steps(50) == [1, 2, 5, 10, 20, 50]


def test_load_stays_on_loopback_and_in_bounds() -> None:
    with pytest.raises(SystemExit, match="loopback"):
        run_load(1, 5.0, url="ws://10.1.2.3:8080/ws/twilio-media", out=lambda *_: None)
    with pytest.raises(SystemExit, match="--calls"):
        run_load(0, 5.0, out=lambda *_: None)
    with pytest.raises(SystemExit, match="--seconds"):
        run_load(1, 10_000.0, out=lambda *_: None)
    args = build_parser().parse_args(["load", "--calls", "3", "--seconds", "7", "--ramp"])
    assert (args.command, args.calls, args.seconds, args.ramp) == ("load", 3, 7.0, True)


def test_two_calls_for_five_seconds(tmp_path) -> None:
    lines: list[str] = []
    (step,) = run_load(2, 5.0, log_path=tmp_path / "server.log", json_path=tmp_path / "load.json", out=lines.append)
    report = "\n".join(lines)
    assert step.failed_calls == [] and step.errors == [], report
    assert step.processes == 1 and step.client == "lean" and 9.0 <= step.call_seconds <= 11.0, report
    assert step.server_cpu_ms_per_call_s is not None and step.server_cpu_ms_per_call_s > 0, report
    assert step.steady_frames > 0 and step.jitter_p99_ms is not None, report  # the greeting was heard, paced
    assert step.missing_frames == 0, report
    for what in ("server CPU per call-second", "outbound jitter", "late / gaps / missing", "turn latency",
                 "halt (caller-heard)", "verdict"):
        assert what in report
    assert (tmp_path / "load.json").read_text().startswith("{")


def test_lean_client_frames_round_trip() -> None:
    from server.caller.lean import client_frame, parse_frames

    for n in (0, 5, 125, 126, 300, 65535, 65536):
        payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
        frame = client_frame(0x1, payload)
        assert frame[1] & 0x80 and frame[0] == 0x81  # masked, FIN + text
        buf = bytearray(frame + frame[:3])  # a whole frame, then the start of the next
        assert parse_frames(buf) == [(True, 0x1, payload)]
        assert bytes(buf) == frame[:3]
    # a server frame (unmasked), fragmented: text + continuation
    buf = bytearray(b"\x01\x02ab" + b"\x80\x01c")
    assert parse_frames(buf) == [(False, 0x1, b"ab"), (True, 0x0, b"c")] and not buf


def test_the_floor_server_speaks_twiml_and_the_media_websocket(tmp_path) -> None:
    """bench/floor_twilio.py: /version, the TwiML our callers read, the upgrade (RFC 6455's own
    example key), then per 20 ms one `media` frame for the stream `start` named, and a close
    after `stop`."""
    import base64
    import json
    import socket
    import time
    import urllib.error
    import urllib.request

    from server.caller.call import CallIds
    from server.caller.client import fetch_stream, twiml_url_for
    from server.caller.lean import client_frame, parse_frames
    from server.caller.load import FloorServer

    with FloorServer(tmp_path / "floor.log") as server:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/version", timeout=5) as resp:
            assert resp.status == 200
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/nope", timeout=5)
        ids = CallIds(call_sid="CA" + "1" * 32, stream_sid="MZ" + "2" * 32)
        url, params = fetch_stream(twiml_url_for(server.url), ids)
        assert url == server.url and params["CallSid"] == ids.call_sid

        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET /ws/twilio-media HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101 ") and b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        start = {"event": "start", "streamSid": ids.stream_sid, "start": {
            "accountSid": "AC" + "3" * 32, "callSid": ids.call_sid, "streamSid": ids.stream_sid, "tracks": ["inbound"],
            "customParameters": {}, "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}
        media = {"event": "media", "streamSid": ids.stream_sid,
                 "media": {"payload": base64.b64encode(bytes(160)).decode(), "timestamp": "20", "chunk": "1", "track": "inbound"}}
        sock.sendall(client_frame(0x1, json.dumps(start).encode()) + client_frame(0x1, json.dumps(media).encode()))
        buf, frames = bytearray(), []
        t0 = time.monotonic()
        while len(frames) < 3:
            buf += sock.recv(65536)
            frames += parse_frames(buf)
        assert time.monotonic() - t0 >= 0.02  # one per tick, not a burst
        out = json.loads(frames[0][2])
        assert out["event"] == "media" and out["streamSid"] == ids.stream_sid and len(out["media"]["payload"]) == 216
        sock.sendall(client_frame(0x1, json.dumps({"event": "stop", "streamSid": ids.stream_sid,
                                                   "stop": {"callSid": ids.call_sid}}).encode()))
        while not frames or frames[-1][1] != 0x8:
            chunk = sock.recv(65536)
            assert chunk, "closed without a close frame"
            buf += chunk
            frames += parse_frames(buf)
        assert frames[-1][2][:2] == b"\x03\xe8"  # 1000
        sock.close()
        for _ in range(50):
            if '"CALL_END"' in server.log_path.read_text():
                break
            time.sleep(0.05)
        (end,) = [json.loads(line) for line in server.log_path.read_text().splitlines() if '"CALL_END"' in line]
        assert end["call_sid"] == ids.call_sid and end["reason"] == "stop" and end["media_in"] == 1
        assert end["frames_out"] >= 3 and server.frames_out() == {ids.call_sid: end["frames_out"]}


def test_load_against_the_floor(tmp_path) -> None:
    """`agentlocator load --floor`: the same callers (2 calls x 3 s) against bench/floor_twilio.py
    after our server; its CPU per call-second is printed next to ours."""
    import json

    lines: list[str] = []
    assert build_parser().parse_args(["load", "--floor"]).floor
    (ours,) = run_load(2, 3.0, floor=True, log_path=tmp_path / "server.log", json_path=tmp_path / "load.json",
                       out=lines.append)
    report = "\n".join(lines)
    (floor,) = json.loads((tmp_path / "load.json").read_text())["floor_steps"]
    assert floor["failed_calls"] == [] and floor["errors"] == [], report
    assert floor["server_cpu_ms_per_call_s"] is not None and floor["server_cpu_ms_per_call_s"] > 0, report
    assert floor["steady_frames"] > 100 and floor["missing_frames"] == 0, report  # the callers heard its frames
    ends = [json.loads(line) for line in (tmp_path / "load-floor.log").read_text().splitlines() if '"CALL_END"' in line]
    assert len(ends) == 2 and all(e["media_in"] >= 100 and e["reason"] == "stop" for e in ends), ends  # it heard theirs
    assert "vs the floor at 2 calls: server CPU per call-second ours" in report and "x the floor" in report, report
    assert ours.server_cpu_ms_per_call_s is not None
