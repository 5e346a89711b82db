"""A call's audio in headless Debian Chromium against a real server process
(tests/leads/agent_server.py: the real app, session, rule brain, store and dashboard; scripted
recognizer, tone synthesizer):

- the recording of a finished call plays on its page, the highlighted transcript line follows
  ``currentTime``, a click on a line seeks there; the file is stereo FLAC as long as the call;
- listen-in receives a live call's frames while the simulated caller talks;
- "talk to the agent": Chromium's fake microphone plays an espeak-ng WAV into the page, which
  streams it as Twilio media to the same session code; the agent answers, its audio reaches
  the page, the caller's turn comes back as a live transcript line.
"""
from __future__ import annotations

import functools
import io
import json
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile
import trio

from server.caller.call import CallIds, new_sid
from server.caller.client import place_call

from .test_dashboard_browser import ARTIFACTS, CHROMIUM, FLAGS, agent_server_module, get_json

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed "
                       "(scripts/install-system-deps.sh installs it)"),
]
MEDIA_FLAGS = FLAGS + ["--autoplay-policy=no-user-gesture-required"]


def wait_js(page, expression: str, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``expression`` with page.evaluate (wait_for_function compiles its predicate with
    eval, which the page's CSP forbids, rightly)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"not true within {timeout} s: {expression}"
        time.sleep(0.1)


def line_at(lines: list[dict], ms: float) -> int:
    idx = -1
    for i, line in enumerate(lines):
        if line["t_start_ms"] <= ms:
            idx = i
    return idx


def wait_json(url: str, ok, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = get_json(url)
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"{url}: condition not met: {str(value)[:300]}"
        time.sleep(0.1)


def test_recording_player_and_listen_in(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    mod = agent_server_module()
    rec_dir = tmp_path / "recordings"
    server = mod.AgentServer(f"sqlite:///{tmp_path / 'agentlocator.db'}", tmp_path / "server.log",
                             env={"RECORDINGS_DIR": str(rec_dir)})
    ws_url = f"ws://127.0.0.1:{server.port}/ws/twilio-media"
    live_thread = None
    try:
        ids = CallIds()
        outcome = trio.run(functools.partial(place_call, ws_url, mod.caller_steps(mod.MEETING_CALL), ids=ids,
                                             max_duration_s=90))
        assert outcome.call.errors == []
        call = wait_json(server.url + f"/api/calls/{ids.call_sid}", lambda c: c.get("recording_url"))
        # the file: FLAC, stereo, as long as the call
        with urllib.request.urlopen(server.url + call["recording_url"], timeout=5) as resp:
            assert resp.headers["Content-Type"] == "audio/flac"
            data = resp.read()
        info = soundfile.info(io.BytesIO(data))
        assert (info.channels, info.samplerate) == (2, 8000)
        started = np.datetime64(call["started_at"][:26])
        ended = np.datetime64(call["ended_at"][:26])
        call_s = (ended - started) / np.timedelta64(1, "s")
        assert abs(info.duration - call_s) < 0.5, (info.duration, call_s)
        audio, _ = soundfile.read(io.BytesIO(data), dtype="int16")
        assert np.abs(audio[:, 0]).max() > 1000 and np.abs(audio[:, 1]).max() > 1000  # both sides there
        # a range request (the player seeks with them)
        req = urllib.request.Request(server.url + call["recording_url"], headers={"Range": "bytes=0-99"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 206 and len(resp.read()) == 100
        lines = call["transcript"]
        assert len(lines) >= 8

        # a second caller still on the line, for listen-in
        live_ids = CallIds(call_sid=new_sid("CA"), stream_sid=new_sid("MZ"), from_number="+972529876543")
        live_steps = mod.caller_steps(["אני מחפשת פנטהאוז בחיפה"], tail_ms=12000)
        live_thread = threading.Thread(target=trio.run, args=(functools.partial(
            place_call, ws_url, live_steps, ids=live_ids, max_duration_s=40),), daemon=True)
        live_thread.start()
        wait_json(server.url + "/api/calls", lambda cs: any(c["call_sid"] == live_ids.call_sid for c in cs))

        ARTIFACTS.mkdir(exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=MEDIA_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="he-IL")
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # listen-in: frames arrive while the simulated call runs
            # from the calls list: "האזנה" on the live call, then the page's listen button
            page.goto(server.url + "/dashboard")
            page.locator(f"#calls tr.live[data-sid='{live_ids.call_sid}'] a.listen-link").click()
            page.wait_for_url(f"**/dashboard/calls/{live_ids.call_sid}#listen")
            expect(page.locator("#listen")).to_be_focused()
            page.locator("#listen").click()
            wait_js(page, "Number(document.getElementById('listen-status').dataset.records || 0) > 100", timeout=15)
            # the live transcript: the agent's answer to the caller's line comes while we listen
            expect(page.locator("#live-lines li.agent")).not_to_have_count(0, timeout=15000)
            assert page.locator("#player").is_hidden()

            # the finished call's recording
            page.goto(server.url + f"/dashboard/calls/{ids.call_sid}")
            page.wait_for_selector("body[data-player='ready']", timeout=15000)
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            seconds = float(page.evaluate("() => document.body.dataset.recordingSeconds"))
            assert abs(seconds - info.duration) < 0.05
            expect(page.locator("#wave-marks .mk.state").first).to_be_attached()
            page.screenshot(path=str(ARTIFACTS / "call-player.png"), full_page=True)
            # play: the highlighted line follows currentTime
            page.evaluate("(t) => { const a = document.getElementById('audio'); a.muted = true;"
                          " a.currentTime = t; return a.play(); }", lines[1]["t_start_ms"] / 1000 - 0.3)
            target = lines[2]["t_start_ms"] / 1000 + 0.2
            wait_js(page, f"document.getElementById('audio').currentTime > {target}", timeout=15)
            now = page.evaluate("() => { const a = document.getElementById('audio'); a.pause(); return a.currentTime; }")
            page.wait_for_timeout(100)
            idx = line_at(lines, now * 1000)
            assert idx >= 2
            assert page.evaluate("() => document.getElementById('transcript').dataset.playing") == str(idx)
            playing = page.locator("#transcript li.playing")
            expect(playing).to_have_count(1)
            expect(playing).to_contain_text(lines[idx]["text"][:20])
            # a click on a line seeks to it (and the highlight moves there)
            k = len(lines) - 2
            page.locator("#transcript li").nth(k).click()
            page.wait_for_timeout(300)
            at = page.evaluate("() => { const a = document.getElementById('audio'); a.pause(); return a.currentTime; }")
            assert lines[k]["t_start_ms"] / 1000 - 0.05 <= at <= lines[k]["t_start_ms"] / 1000 + 1.0
            expect(page.locator("#transcript li").nth(k)).to_have_class("turn " + lines[k]["speaker"] + " playing")
            # the dashboard's periodic redraw keeps the highlight
            page.wait_for_timeout(2500)
            expect(page.locator("#transcript li.playing")).to_have_count(1)
            browser.close()
        assert errors == []
    finally:
        if live_thread is not None:
            live_thread.join(timeout=45)
        server.stop()


def espeak_wav(path: Path, text: str) -> None:
    """espeak-ng's voice, 0.8 s of silence before and 4 s after (the fake mic loops the file)."""
    raw = subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "--stdout", text], capture_output=True, check=True).stdout
    voice, rate = soundfile.read(io.BytesIO(raw), dtype="int16")
    pad = lambda s: np.zeros(int(rate * s), np.int16)  # noqa: E731
    soundfile.write(str(path), np.concatenate([pad(0.8), voice, pad(4.0)]), rate, subtype="PCM_16")


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_browser_test_call_is_answered(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    mod = agent_server_module()
    wav = tmp_path / "caller.wav"
    espeak_wav(wav, "I am looking for a three room apartment in Tel Aviv")
    server = mod.AgentServer(f"sqlite:///{tmp_path / 'agentlocator.db'}", tmp_path / "server.log",
                             env={"RECORDINGS_DIR": str(tmp_path / "recordings")})
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=MEDIA_FLAGS + [
                "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}"])
            context = browser.new_context(locale="he-IL")
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/dashboard")
            page.locator("header a.talk-link").click()
            page.wait_for_url("**/dashboard/talk")
            page.locator("#talk-start").click()
            page.wait_for_selector("body[data-talk='open']", timeout=10000)
            # the greeting: the agent's frames reach the page and are loud (tone per word)
            wait_js(page, "Number(document.getElementById('talk-status').dataset.agentLoud || 0) > 20", timeout=15)
            # the espeak voice became a caller turn (the scripted recognizer's first line) and
            # the agent answered it
            lines = page.locator("#talk-lines")
            expect(lines).to_contain_text(mod.MEETING_CALL[0], timeout=20000)
            expect(page.locator("#talk-lines li.agent")).not_to_have_count(0, timeout=20000)
            wait_js(page, "Number(document.getElementById('talk-status').dataset.marks || 0) > 0", timeout=15)
            sid = page.evaluate("() => document.body.dataset.callSid")
            page.screenshot(path=str(ARTIFACTS / "talk.png"), full_page=True)
            page.locator("#talk-stop").click()
            page.wait_for_selector("body[data-talk='closed']", timeout=10000)
            browser.close()
        assert errors == []
        call = wait_json(server.url + f"/api/calls/{sid}", lambda c: c.get("ended_at") and c.get("recording_url"))
        assert call["close_reason"] == "twilio_stop"
        assert any(t["speaker"] == "caller" and t["text"] == mod.MEETING_CALL[0] for t in call["transcript"])
        log = (tmp_path / "server.log").read_text()
        assert "browser_test_call" in log
        assert not [json.loads(x) for x in log.splitlines() if '"ERROR"' in x]
    finally:
        server.stop()
