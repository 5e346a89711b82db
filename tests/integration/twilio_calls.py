"""A fake Twilio for outbound calls: the REST API the dialer talks to (``calls.create``,
``calls(sid).update``) on a real HTTP server, and behind it the telephone network as each
scenario has it — the lead answers (a simulated call, server.caller, placed into our /twiml
as ``outbound-api`` with Twilio's signatures), nobody answers, the line is busy, or an
answering machine picks up (the asynchronous AMD callback, then the voicemail TwiML the
dialer sends, then the hang-up).

The server is told PUBLIC_BASE_URL=https://agent.example.com (what Twilio would sign); the
fake signs every request over those URLs and delivers it to the loopback port.
"""
from __future__ import annotations

import functools
import http.server
import json
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import trio

from server.caller.call import CallIds, PreparedAudio, PreparedHangup, PreparedWait, new_sid
from server.caller.client import place_call
from server.security import SignatureChecker

PUBLIC = "https://agent.example.com"
TOKEN = "t" * 32
ACCOUNT = "AC" + "1" * 32
CALLER_ID = "+97233334444"


def tone(ms: int, freq: float = 220.0, amp: int = 4000) -> np.ndarray:
    t = np.arange(int(ms * 8)) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def say(ms: int, label: str) -> PreparedAudio:
    return PreparedAudio("say", np.concatenate([np.zeros(400, np.int16), tone(ms)]), label)


WAIT = PreparedWait(quiet_ms=700, timeout_s=15.0)


@dataclass
class Placed:
    """One calls.create as the fake received it, and what became of the call."""

    sid: str
    params: dict[str, str]
    received: float  # time.monotonic()
    scenario: str
    updates: list[dict[str, str]] = field(default_factory=list)
    outcome: Any = None  # the simulated call's CallOutcome (answered scenarios)
    statuses: list[int] = field(default_factory=list)  # our server's answers to the callbacks
    ended: float | None = None  # time.monotonic() when the far end hung up (before the final status)


class FakeTwilioCalls:
    def __init__(self, scenarios: dict[str, str] | None = None, create_status: int = 201) -> None:
        self.scenarios = dict(scenarios or {})  # To -> answer | no-answer | busy | failed | machine
        self.create_status = create_status  # e.g. 500 to make calls.create fail
        self.placed: list[Placed] = []
        self.new: list[Placed] = []
        self.lock = threading.Lock()
        self.by_sid: dict[str, Placed] = {}
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
                status, payload = fake.handle(self.path, params)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def handle(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path.endswith("/Calls.json"):
            if self.create_status >= 300:
                return self.create_status, {"code": 20500, "message": "fake failure", "status": self.create_status}
            placed = Placed(new_sid("CA"), params, time.monotonic(), self.scenarios.get(params.get("To", ""), "answer"))
            with self.lock:
                self.placed.append(placed)
                self.new.append(placed)
                self.by_sid[placed.sid] = placed
            return 201, {"sid": placed.sid, "status": "queued", "to": params.get("To"), "from": params.get("From"),
                         "account_sid": ACCOUNT}
        sid = path.rsplit("/", 1)[-1].removesuffix(".json")
        with self.lock:
            placed = self.by_sid.get(sid)
            if placed is not None:
                placed.updates.append(params)
        return (200, {"sid": sid, "status": "in-progress"}) if placed else (404, {"code": 20404, "message": "no call"})

    def take_new(self) -> list[Placed]:
        with self.lock:
            new, self.new = self.new, []
        return new

    def env(self) -> dict[str, str]:
        return {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_CALLER_ID": CALLER_ID,
                "TWILIO_API_BASE_URL": self.url, "PUBLIC_BASE_URL": PUBLIC,
                "DIAL_HOURS": "sun-sat 00:00-24:00", "DIAL_HOLIDAYS": "none"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def local(url: str, port: int) -> str:
    """https://agent.example.com/x?y -> http://127.0.0.1:port/x?y"""
    return url.replace(PUBLIC, f"http://127.0.0.1:{port}", 1)


def post_signed(port: int, url: str, form: dict[str, str], signature: str | None = None) -> int:
    """What Twilio does with a callback URL: POST the form, signed over the public URL."""
    sig = signature if signature is not None else SignatureChecker(TOKEN).sign(url, form)
    request = urllib.request.Request(local(url, port), data=urllib.parse.urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded",
                                              "X-Twilio-Signature": sig})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - our own server
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def callback(port: int, url: str, form: dict[str, str]) -> int:
    return await trio.to_thread.run_sync(functools.partial(post_signed, port, url, form))


def final_form(placed: Placed, status: str, duration: int = 0) -> dict[str, str]:
    return {"CallSid": placed.sid, "AccountSid": ACCOUNT, "From": CALLER_ID, "To": placed.params["To"],
            "Direction": "outbound-api", "CallStatus": status, "CallDuration": str(duration)}


async def answer(port: int, placed: Placed, steps: list[Any], end_when: Callable[[], bool] | None = None) -> None:
    """The lead picks up: the simulated call, through our /twiml, as Twilio connects it."""
    ids = CallIds(call_sid=placed.sid, account_sid=ACCOUNT, from_number=CALLER_ID, to_number=placed.params["To"],
                  direction="outbound-api")
    ws_sig = SignatureChecker(TOKEN).sign(PUBLIC.replace("https", "wss") + "/ws/twilio-media", {})
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        if end_when is not None:
            async def watch() -> None:
                while not end_when():
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()  # the far end hung up: the websocket just drops

            nursery.start_soon(watch)

        async def talk() -> None:
            placed.outcome = await place_call(
                f"ws://127.0.0.1:{port}/ws/twilio-media", steps, ids=ids, subprotocols=["audio.twilio.com"],
                headers=[("X-Twilio-Signature", ws_sig)], twiml_url=local(placed.params["Url"], port),
                auth_token=TOKEN, signed_twiml_url=placed.params["Url"], max_duration_s=120)
            nursery.cancel_scope.cancel()

        nursery.start_soon(talk)
    duration = max(1, round(trio.current_time() - started))
    placed.statuses.append(await callback(port, placed.params["StatusCallback"], final_form(placed, "completed", duration)))


async def play(fake: FakeTwilioCalls, port: int, lead_steps: Callable[[Placed], list[Any]]) -> None:
    """The telephone network: every call placed goes its scenario's way (run it in a nursery)."""
    async with trio.open_nursery() as nursery:
        while True:
            for placed in fake.take_new():
                nursery.start_soon(_one, fake, port, placed, lead_steps)
            await trio.sleep(0.01)


async def _one(fake: FakeTwilioCalls, port: int, placed: Placed, lead_steps: Callable[[Placed], list[Any]]) -> None:
    if placed.scenario in ("no-answer", "busy", "failed"):
        await trio.sleep(0.2)  # it rang
        placed.ended = time.monotonic()
        placed.statuses.append(await callback(port, placed.params["StatusCallback"], final_form(placed, placed.scenario)))
        return
    if placed.scenario == "machine":
        amd = {"CallSid": placed.sid, "AccountSid": ACCOUNT, "AnsweredBy": "machine_end_beep",
               "MachineDetectionDuration": "2400"}

        async def verdict() -> None:
            await trio.sleep(0.8)  # the greeting and the beep
            placed.statuses.append(await callback(port, placed.params["AsyncAmdStatusCallback"], amd))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(verdict)
            # The machine "listens" until the dialer's voicemail TwiML replaces the stream.
            steps = [PreparedAudio("silence", np.zeros(8000 * 20, np.int16)), PreparedHangup()]
            nursery.start_soon(functools.partial(answer, port, placed, steps, end_when=lambda: bool(placed.updates)))
        return
    await answer(port, placed, lead_steps(placed))
