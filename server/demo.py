"""`make demo`: the whole product offline, on one machine, in about two minutes.

Starts the real server (`agentlocator serve`, a child process) with the offline providers
(English: espeak-ng voice, bundled Whisper tiny.en, the rule brain, SQLite under
artifacts/), places a simulated Twilio call with a scripted caller (several turns, one
barge-in, a quiet stretch long enough for a keepalive heartbeat, a booked meeting),
prints the conversation as it happens from both sides, then the measured figures against
the user's targets and the paths of the WAV and the PNG, and stops the server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import trio

DEMO_SCRIPT = """\
# The offline demo's caller. English, because the offline recognizer is Whisper tiny.en;
# the phrasings are ones tiny.en transcribes reliably from espeak-ng's voice.
# a little hiss on the line from the first frame, as on a real phone call
line_noise 30
wait_agent
say en-US I am looking for something in Tel Aviv.
wait_agent
say en-US Three rooms, an apartment.
# the agent confirms and asks about the budget: the caller answers over it
barge 700 en-US Two million shekels.
wait_agent
say en-US Within three months.
wait_agent
say en-US My name is David Cohen.
wait_agent
say en-US Yes, that is the right number.
wait_agent
# the agent offers two meeting times; the caller thinks it over long enough for a keepalive mark
silence 19000
say en-US The first one works for me.
wait_agent
say en-US Yes, go ahead.
wait_agent
say en-US No, thank you.
# the agent says goodbye and hangs up
wait_agent
silence 3000
hangup
"""

OFFLINE_ENV_DROP = (
    "OPENAI_API_KEY", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_SPEECH_ENDPOINT", "GOOGLE_TTS_ENDPOINT",
    "TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID", "PUBLIC_BASE_URL", "DASHBOARD_TOKEN", "LEAD_WEBHOOK_URL",
    "ASR_PROVIDER", "TTS_PROVIDER", "BRAIN", "WHISPER_MODEL",
    # the demo talks to its own loopback server: a deployment's access settings do not apply
    "METRICS_TOKEN", "ALLOWED_HOSTS", "FORWARDED_ALLOW_IPS", "MAX_CALLS", "MAX_CALL_MINUTES",
)

BOLD, DIM, GREEN, BLUE, RED, YELLOW, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[34m", "\033[31m", "\033[33m", "\033[0m"


def _c(color: str, text: str) -> str:
    return f"{color}{text}{RESET}" if sys.stdout.isatty() else text


@dataclass
class ServerLog:
    """What the demo keeps from the server's JSON lines."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    ended: trio.Event = field(default_factory=trio.Event)
    stored: trio.Event = field(default_factory=trio.Event)  # the recorder's final write
    whatsapp: trio.Event = field(default_factory=trio.Event)
    startup: dict[str, Any] | None = None

    def of(self, event: str) -> list[dict[str, Any]]:
        return [ln for ln in self.lines if ln.get("event") == event]


def _show_server(line: dict[str, Any]) -> None:
    ev = line.get("event")
    t = line.get("t")
    ts = f"{t / 1000:7.2f}s" if isinstance(t, (int, float)) else "        "
    if ev == "STATE_CHANGE":
        print(_c(DIM, f"{ts}  server  {line.get('from_state')} -> {line.get('to_state')}  ({line.get('cause', '')})"))
    elif ev == "ASR_TEXT":
        print(f"{ts}  {_c(GREEN, 'caller')}  \u201c{line.get('text')}\u201d  "
              + _c(DIM, f"(ASR {line.get('latency_ms')} ms after EOU)"))
    elif ev == "TTS_START":
        text = line.get("text")
        lat = line.get("latency_ms")
        said = f"\u201c{text}\u201d  " if text else ""
        print(f"{ts}  {_c(BLUE, 'agent ')}  {said}" + _c(DIM, "starts speaking" + (f" ({lat} ms after EOU)" if lat is not None else "")))
    elif ev == "MARK_SENT" and line.get("text") and not str(line.get("name", "")).endswith(".s0"):
        # the further sentences of a reply (the first one is on its TTS_START line)
        print(f"{ts}  {_c(BLUE, 'agent ')}  \u201c{line.get('text')}\u201d")
    elif ev == "BARGE_IN":
        print(_c(RED, f"{ts}  BARGE-IN  halt {line.get('halt_ms')} ms after voice onset, clear "
                      f"{line.get('clear_after_trigger_ms')} ms after the trigger"))
    elif ev == "WS_KEEPALIVE":
        print(_c(YELLOW, f"{ts}  keepalive mark {line.get('mark')}" + (" + silence" if line.get("idle_silence") else "")))
    elif ev == "EOU":
        print(_c(DIM, f"{ts}  server  end of utterance ({line.get('length_ms')} ms of speech)"))
    elif ev in ("WS_CLOSE", "CALL_END", "ERROR", "LEAD_SAVED"):
        fields = {k: v for k, v in line.items() if k not in ("event", "call_sid", "t")}
        print(_c(RED if ev == "ERROR" else BOLD, f"{ts}  {ev} {json.dumps(fields, ensure_ascii=False)}"))


def _show_caller(ev: dict[str, Any]) -> None:
    kind = ev["kind"]
    if kind == "caller_say":
        print(f"{ev['t']:7.2f}s  {_c(GREEN, 'caller')}  says: {ev['text']}")
    elif kind == "barge_onset":
        print(_c(RED, f"{ev['t']:7.2f}s  caller  talks over the agent: {ev['text']}"))
    elif kind == "clear":
        print(_c(RED, f"{ev['t']:7.2f}s  caller  hears the agent stop (clear; {ev['dropped_ms']} ms of queued audio dropped)"))
    elif kind == "silence":
        print(_c(DIM, f"{ev['t']:7.2f}s  caller  stays quiet for {ev['ms'] / 1000:g} s"))
    elif kind in ("error", "problem", "hangup", "server_closed"):
        print(_c(BOLD, f"{ev['t']:7.2f}s  caller  {kind} {json.dumps({k: v for k, v in ev.items() if k not in ('t', 'kind')})}"))


def free_port() -> int:
    """A free TCP port on loopback (the demo's server; the tests start theirs the same way)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, port: int, path: str, form: dict[str, str] | None = None, conn: Any = None) -> tuple[int, bytes]:
    import http.client
    import urllib.parse

    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        if own:
            conn.close()


def _transcript(port: int, call_sid: str) -> list[dict[str, Any]]:
    """The stored transcript (agent lines included) from the dashboard API, if it is there."""
    try:
        status, body = _http("GET", port, f"/api/calls/{call_sid}")
        return list(json.loads(body).get("transcript") or []) if status == 200 else []
    except (OSError, ValueError):
        return []


def _lead(port: int, phone: str) -> dict[str, Any] | None:
    try:
        status, body = _http("GET", port, "/api/leads")
        leads = json.loads(body) if status == 200 else []
    except (OSError, ValueError):
        return None
    return next((ld for ld in leads if ld.get("phone") == phone), None)


def measure_webhooks(port: int, n: int = 60) -> dict[str, float]:
    """Client-side round trip of the three status webhooks (keep-alive connection)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times: list[float] = []
    try:
        for i in range(n):
            path = ("/stream_status", "/call_status", "/stream_ended")[i % 3]
            t0 = time.perf_counter()
            status, _ = _http("POST", port, path, {"CallSid": "CAdemo-webhook", "CallStatus": "in-progress"}, conn)
            times.append((time.perf_counter() - t0) * 1000)
            if status != 204:
                raise RuntimeError(f"{path} answered {status}, not 204")
    finally:
        conn.close()
    arr = np.asarray(times)
    return {"n": n, "p50": float(np.percentile(arr, 50)), "p99": float(np.percentile(arr, 99)), "max": float(arr.max())}


def _fmt(v: Any, unit: str = "ms") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.0f} {unit}" if unit == "ms" else f"{v:.1f} {unit}"
    return f"{v} {unit}"


async def _run(out: Path, script_text: str, script_path: Path | None, keep_server_log: bool) -> int:
    from server.caller.client import place_call, prepare
    from server.caller.report import summary, write_json, write_stereo_wav, write_timeline_png
    from server.caller.script import parse_script

    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV_DROP}
    env.update({"AGENT_LANGUAGE": "en-US", "BRAIN": "rules", "DATABASE_URL": f"sqlite:///{db.resolve()}",
                "PORT": str(port), "PYTHONUNBUFFERED": "1"})

    print(_c(BOLD, "AgentLocator offline demo"))
    print("  preparing the caller's voice (espeak-ng) ...")
    steps = await trio.to_thread.run_sync(
        lambda: prepare(parse_script(script_text, script_path.parent if script_path else None))
    )
    log = ServerLog()
    server_log_path = out / "demo-server.log"
    print(f"  starting the server on 127.0.0.1:{port} (offline providers; log: {server_log_path}) ...")
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    outcome = None
    transcript: list[dict[str, Any]] = []
    lead: dict[str, Any] | None = None
    webhooks: dict[str, float] = {}
    try:
        async with trio.open_nursery() as nursery:

            async def read_server() -> None:
                assert proc.stdout is not None
                buf = b""
                with open(server_log_path, "wb") as raw_log:
                    async for chunk in proc.stdout:
                        raw_log.write(chunk)
                        buf += chunk
                        *lines, buf = buf.split(b"\n")
                        for raw in lines:
                            try:
                                line = json.loads(raw)
                            except ValueError:
                                if keep_server_log:
                                    print(_c(DIM, "  server| " + raw.decode(errors="replace")))
                                continue
                            log.lines.append(line)
                            if line.get("event") == "STARTUP" and "providers" in line:
                                log.startup = line
                            if line.get("event") == "CALL_END":
                                log.ended.set()
                            if line.get("event") == "LEAD_SAVED" and line.get("final"):
                                log.stored.set()
                            if line.get("event") == "WHATSAPP_SENT":
                                log.whatsapp.set()
                            if line.get("call_sid") and not line["call_sid"].startswith("CAdemo-webhook"):
                                _show_server(line)

            nursery.start_soon(read_server)
            with trio.fail_after(120):
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"the server exited with code {proc.returncode}; see {server_log_path}")
                    try:
                        status, body = await trio.to_thread.run_sync(lambda: _http("GET", port, "/version"))
                        if status == 200:
                            break
                    except OSError:
                        pass
                    await trio.sleep(0.2)
            version = json.loads(body)
            print(f"  server up: version {version['version']} ({version['commit'][:10]}), providers {version['providers']}")
            webhooks = await trio.to_thread.run_sync(lambda: measure_webhooks(port))
            print("\n" + _c(BOLD, "The call") + _c(DIM, "  (times: seconds since the stream started)"))
            outcome = await place_call(f"ws://127.0.0.1:{port}/ws/twilio-media", steps, on_event=_show_caller)
            with trio.move_on_after(15):
                await log.ended.wait()
            with trio.move_on_after(5):
                await log.stored.wait()
            with trio.move_on_after(3):
                await log.whatsapp.wait()
            transcript = await trio.to_thread.run_sync(lambda: _transcript(port, outcome.call.ids.call_sid))
            lead = await trio.to_thread.run_sync(lambda: _lead(port, outcome.call.ids.from_number))
            nursery.cancel_scope.cancel()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            with trio.move_on_after(10):
                await proc.wait()
            if proc.poll() is None:
                proc.kill()
                await proc.wait()
    assert outcome is not None
    call, figures = outcome.call, outcome.figures
    if transcript:
        print("\n" + _c(BOLD, "The conversation as the server stored it") + _c(DIM, "  (/api/calls/<sid>)"))
        for row in transcript:
            who = _c(BLUE, "agent ") if row.get("speaker") == "agent" else _c(GREEN, "caller")
            cut = "" if row.get("heard_fully", True) else _c(RED, "  [cut by the barge-in]")
            print(f"  {who}  {row.get('text')}{cut}")
    if lead:
        shown = {k: lead.get(k) for k in ("name", "area", "property_type", "rooms", "budget_ils", "timeframe",
                                          "status", "meeting_at")}
        print("\n" + _c(BOLD, "The lead") + f"  {json.dumps(shown, ensure_ascii=False)}")
    for ln in log.of("WHATSAPP_SENT"):
        how = "dry run: no Twilio credentials" if ln.get("dry_run") else f"message {ln.get('message_sid')}"
        print(f"  WhatsApp follow-up to {ln.get('to')}: {how}")
    states = [(ln["t"] / 1000, ln["to_state"]) for ln in log.of("STATE_CHANGE") if "to_state" in ln]
    data = summary(call, figures)
    server_fig = {
        "eou_to_tts_start_ms": [ln["latency_ms"] for ln in log.of("TTS_START") if ln.get("latency_ms") is not None],
        "asr_latency_ms": [ln["latency_ms"] for ln in log.of("ASR_TEXT")],
        "barge_in_halt_ms": [ln["halt_ms"] for ln in log.of("BARGE_IN")],
        "trigger_to_clear_ms": [ln["clear_after_trigger_ms"] for ln in log.of("BARGE_IN")],
        "heartbeats": len(log.of("WS_KEEPALIVE")),
        "ws_close": (log.of("WS_CLOSE") or [{}])[-1].get("reason"),
        "errors": [ln for ln in log.of("ERROR") if ln.get("call_sid") == call.ids.call_sid],
    }
    data["server"] = server_fig
    data["webhooks_ms"] = webhooks
    paths = {ext: out / f"demo.{ext}" for ext in ("json", "wav", "png")}
    write_json(paths["json"], data)
    write_stereo_wav(paths["wav"], call)
    write_timeline_png(paths["png"], call, figures, states)

    def worst(values: list[float]) -> float | None:
        return max(values) if values else None

    heart = figures.keepalive_intervals_s
    rows = [
        ("turn latency, EOU -> agent audio on the wire (server)", worst(server_fig["eou_to_tts_start_ms"]), "< 1200 ms",
         bool(server_fig["eou_to_tts_start_ms"]) and worst(server_fig["eou_to_tts_start_ms"]) < 1200),
        ("turn latency, caller stops -> hears the agent (caller)", worst(figures.turn_latency_ms), "(includes the EOU wait)", None),
        ("  of which after the transcript: brain + TTS + pacer (server)", worst(
            [t - a for t, a in zip(server_fig["eou_to_tts_start_ms"], server_fig["asr_latency_ms"])]), "(the rest is the ASR)", None),
        ("ASR latency, EOU -> transcript (server)", worst(server_fig["asr_latency_ms"]), "< 700 ms",
         bool(server_fig["asr_latency_ms"]) and worst(server_fig["asr_latency_ms"]) < 700),
        ("barge-in halt, voice onset -> agent silent at the caller", worst(figures.halt_ms), "<= 220 ms (min voice 200 + 20)",
         bool(figures.halt_ms) and worst(figures.halt_ms) <= 220),
        ("barge-in trigger -> clear on the wire (server)", worst(server_fig["trigger_to_clear_ms"]), "<= 5 ms",
         bool(server_fig["trigger_to_clear_ms"]) and worst(server_fig["trigger_to_clear_ms"]) <= 5),
        ("keepalive interval while idle (caller)", (f"{min(heart):.1f}-{max(heart):.1f} s" if heart else None), "15-20 s",
         bool(heart) and all(15 <= h <= 20 for h in heart)),
        ("longest server silence (caller)", f"{figures.longest_server_silence_s:.1f} s", "<= 20 s",
         figures.longest_server_silence_s <= 20.5),
        ("webhooks 204 round trip p99 (client)", webhooks.get("p99"), "< 100 ms", webhooks.get("p99", 1e9) < 100),
        ("protocol errors seen by the caller", len(call.errors), "0", not call.errors),
    ]
    print("\n" + _c(BOLD, "Measured against the user's targets") + _c(DIM, "  (the worst value of the call)"))
    for name, value, target, ok in rows:
        mark = "" if ok is None else (_c(GREEN, "ok  ") if ok else _c(RED, "MISS"))
        shown = value if isinstance(value, str) else _fmt(value, "" if isinstance(value, int) and "errors" in name else "ms")
        print(f"  {mark:4s}  {name:58s} {shown:>14s}   target {target}")
    print(f"\n  call closed: {call.close_reason or '-'} (code {call.close_code}); server: {server_fig['ws_close']}; "
          f"{figures.barge_ins} barge-in(s), {len(call.marks_echoed)} marks echoed, {call.frames_sent} caller frames")
    for path in (paths["wav"], paths["png"], paths["json"]):
        print(f"  {path.suffix[1:].upper():4s} {path.resolve()}")
    print(f"  DB   {db.resolve()}  - to browse it: AGENT_LANGUAGE=en-US DATABASE_URL=sqlite:///{db.resolve()} "
          "make serve HOST=127.0.0.1, then http://127.0.0.1:8080/dashboard")
    for problem in call.problems:
        print(_c(RED, f"  script problem: {problem}"))
    return 0 if not call.errors and not call.problems else 1


def run_demo(out: Path = Path("artifacts"), script: Path | None = None, keep_server_log: bool = False) -> int:
    script_text = script.read_text(encoding="utf-8") if script else DEMO_SCRIPT
    try:
        return trio.run(_run, out, script_text, script, keep_server_log)
    except KeyboardInterrupt:
        return 130
