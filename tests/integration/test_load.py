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
