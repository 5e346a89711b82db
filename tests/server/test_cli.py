"""The `agentlocator` command line, as a user runs it: real processes, real sockets."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import pytest

from server import __version__
from server.demo import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_version_flag() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"agentlocator {__version__}"


def _offline_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "GOOGLE_", "OPENAI_", "AL_")) and k not in ("BRAIN", "ASR_PROVIDER", "TTS_PROVIDER", "PUBLIC_BASE_URL")}
    env.update({"AGENT_LANGUAGE": "en-US", "BRAIN": "rules", "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"})
    env.update(extra)
    return env


def _wait_version(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/version", timeout=2) as resp:
                return json.loads(resp.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("server did not stop on SIGINT")
    return out


def test_serve_refuses_a_bad_config_clearly(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "1"],
        env=_offline_env(tmp_path, AL_BARGE_IN_MIN_VOICE_MS="500"), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2
    assert "barge_in_min_voice_ms=500 is outside its allowed range" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"], env=_offline_env(tmp_path, PORT="http"),
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 2 and "PORT='http'" in out.stderr


@pytest.mark.slow
def test_serve_and_call_with_the_real_offline_providers(tmp_path: Path) -> None:
    """`agentlocator serve` (PORT from the env) + `agentlocator call`: espeak-ng voice,
    local Whisper tiny.en, the rule brain, SQLite; one real caller turn."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1"], cwd=ROOT,
        env=_offline_env(tmp_path, PORT=str(port)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        version = _wait_version(port, proc)
        assert version["providers"]["brain"] == "rules"
        # speech's own description: offline choices, no fallback, and why
        speech = version["speech"]
        assert (speech["asr"], speech["tts"], speech["language"]) == ("whisper", "espeak", "en-US")
        assert speech["asr_fallback"] is None and speech["tts_fallback"] is None
        assert any(reason.startswith("asr=whisper") for reason in speech["why"])
        script = tmp_path / "caller.txt"
        script.write_text("wait_agent 700 30\nsay en-US I am looking for a flat in Tel Aviv.\nwait_agent 700 30\nhangup\n")
        call = subprocess.run(
            [sys.executable, "-m", "server.cli", "call", "--url", f"ws://127.0.0.1:{port}/ws/twilio-media",
             "--script", str(script), "--out", str(tmp_path), "--name", "c1", "--quiet",
             "--subprotocol", "audio.twilio.com"],
            cwd=ROOT, env=_offline_env(tmp_path), capture_output=True, text=True, timeout=120,
        )
        assert call.returncode == 0, call.stdout + call.stderr
    finally:
        log = _stop(proc)
    assert proc.returncode == 0
    summary = json.loads((tmp_path / "c1.json").read_text())
    assert summary["protocol_errors"] == []
    assert summary["turn_latency_ms"]["n"] == 1 and summary["unanswered_turns"] == 0
    assert summary["received"]["media"] > 100 and summary["marks_echoed"] >= 2
    with wave.open(str(tmp_path / "c1.wav")) as wav:
        assert wav.getnchannels() == 2 and wav.getframerate() == 8000
    assert (tmp_path / "c1.png").stat().st_size > 10_000
    lines = [json.loads(ln) for ln in log.splitlines() if ln.startswith("{")]
    events = [ln["event"] for ln in lines]
    startup = next(ln for ln in lines if ln["event"] == "STARTUP" and "providers" in ln)
    assert startup["providers"] == version["providers"] and startup["speech"] == version["speech"]
    from dialog.phrases import fixed_lines

    warm = next(ln for ln in lines if ln["event"] == "STARTUP" and "tts_warm_ms" in ln)
    assert warm["tts_warm_done"] and warm["tts_warm_lines"] == len(fixed_lines("en-US"))
    assert lines.index(warm) < lines.index(next(ln for ln in lines if ln["event"] == "CALL_START"))
    assert any("TWILIO_AUTH_TOKEN is not set" in ln.get("warning", "") for ln in lines)
    assert any(ln.get("msg") == "Twilio subprotocol added to handshake" for ln in lines)
    asr = [ln for ln in lines if ln["event"] == "ASR_TEXT"]
    assert asr and "looking for a flat" in asr[0]["text"].lower()
    assert "WS_CLOSE" in events and "CALL_END" in events


def test_hypercorn_command_serves_the_app(tmp_path: Path) -> None:
    port = free_port()
    hypercorn = Path(sys.executable).with_name("hypercorn")
    proc = subprocess.Popen(
        [str(hypercorn), "--worker-class", "trio", "--bind", f"127.0.0.1:{port}", "server.app:app"], cwd=ROOT,
        env=_offline_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        version = _wait_version(port, proc)
    finally:
        _stop(proc)
    assert version["version"] == __version__ and set(version["providers"]) == {"asr", "tts", "brain"}


def test_demo_script_parses_and_covers_the_flow() -> None:
    from server.caller import script as sc

    out = subprocess.run([sys.executable, "-m", "server.cli", "demo", "--show-script"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    steps = sc.parse_script(out.stdout)
    kinds = [type(s) for s in steps]
    assert kinds.count(sc.Barge) == 1 and kinds[-1] is sc.Hangup
    assert any(isinstance(s, sc.Silence) and s.ms >= 17000 for s in steps)  # room for a heartbeat
    assert sum(1 for s in steps if isinstance(s, sc.Say)) >= 6
