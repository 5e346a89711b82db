"""A real AgentLocator server process for the leads tests (crash safety, the browser test).

The app, the call session, the Hebrew rule brain, the store (SqlRecorder), the outbox sender
and the dashboard are the real ones; only speech is stood in for: the recognizer returns the
caller's lines in order (the simulated caller speaks voice-like tones, one per line) and the
synthesizer speaks a tone per word. Run as a script:

    python tests/leads/agent_server.py --db sqlite:///x.db --port 8123 --lines "line 1|line 2"
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import AsyncIterator

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import trio  # noqa: E402

import subprocess  # noqa: E402

from speech.base import Recognizer, Synthesizer, Transcript  # noqa: E402

# The caller's side of a call that books a meeting with the rule brain (he-IL).
MEETING_CALL = [
    "מחפש דירת שלושה חדרים בתל אביב עד שני מיליון שקל, בעוד חודשיים",
    "קוראים לי דני כהן",
    "כן, המספר נכון",
    "הראשון מתאים לי",
    "כן",
    "לא, תודה",
]


class LinesRecognizer(Recognizer):
    name = "scripted"

    def __init__(self, lines: list[str]) -> None:
        self._lines = list(lines)

    def push(self, pcm16: bytes) -> None:
        pass

    async def end_utterance(self, onset_ms: int, eou_ms: int) -> Transcript:
        await trio.sleep(0.05)
        text = self._lines.pop(0) if self._lines else ""
        return Transcript(text, 0.95 if text else 0.0, provider=self.name, start_ms=onset_ms, end_ms=eou_ms)


class ToneSynthesizer(Synthesizer):
    name = "tone"

    def __init__(self, ms_per_word: int = 45) -> None:
        self.ms_per_word = ms_per_word

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        n = 8 * self.ms_per_word * max(1, len(text.split()))
        t = np.arange(n) / 8000.0
        yield (3000 * np.sin(2 * np.pi * 330 * t)).astype("<i2").tobytes()


def build_wiring_factory(lines: list[str]):  # type: ignore[no-untyped-def]
    from dialog.brains import select_brain
    from leads.outbox import outbox_task
    from leads.store import open_store
    from server.dashboard import dashboard_bp
    from server.session import CallDeps, run_call
    from server.settings import Settings
    from server.whatsapp import whatsapp_bp
    from server.wiring import Wiring

    def factory(settings: Settings) -> Wiring:
        recorder = open_store(settings.database_url, settings.env)
        brain = select_brain({"BRAIN": "rules"})
        deps = CallDeps(
            config=settings.timing, new_recognizer=lambda language: LinesRecognizer(lines),
            synthesizer=ToneSynthesizer(), new_brain=brain.new_brain, recorder=recorder,
            language=settings.agent_language,
        )
        return Wiring(
            run_call=run_call, call_deps=deps, providers={"asr": "scripted", "tts": "tone", "brain": brain.name},
            recorder=recorder, background=[outbox_task(recorder, settings.env)], blueprints=[dashboard_bp, whatsapp_bp],
        )

    return factory


async def serve(db: str, port: int, lines: list[str], env: dict[str, str]) -> None:
    from hypercorn.trio import serve as hypercorn_serve

    from server.app import create_app, server_config
    from server.settings import Settings

    settings = Settings.from_env({"DATABASE_URL": db, "AGENT_LANGUAGE": "he-IL", **env})
    app = create_app(settings, build_wiring_factory(lines))
    await hypercorn_serve(app, server_config("127.0.0.1", port))


# -- the harness side: run the script as a child process, call it ----------------------------

from server.demo import free_port  # noqa: E402  (re-exported for conftest)


class AgentServer:
    """tests/leads/agent_server.py as a child process on a free loopback port."""

    def __init__(self, db_url: str, log_path: Path, lines: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--db", db_url, "--port", str(self.port)]
        if lines is not None:
            cmd += ["--lines", "|".join(lines)]
        for k, v in (env or {}).items():
            cmd += ["--env", f"{k}={v}"]
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"agent server not ready in {timeout}s; see {self.log.name}")

    def kill(self) -> None:
        import signal

        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def caller_steps(lines: list[str], hang_up: bool = True, tail_ms: int = 3000) -> list:  # type: ignore[type-arg]
    """The simulated caller's script: wait for the agent, then one voice-like burst per line."""
    from server.caller.call import PreparedAudio, PreparedHangup, PreparedWait

    wait = PreparedWait(quiet_ms=600, timeout_s=15.0)
    steps: list = [wait]  # the greeting
    t = np.arange(8 * 1100) / 8000.0
    burst = np.concatenate([np.zeros(400, np.int16), (4000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)])
    for line in lines:
        steps += [PreparedAudio("say", burst, line), wait]
    if hang_up:
        steps += [PreparedAudio("silence", np.zeros(8 * tail_ms, np.int16)), PreparedHangup()]
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lines", default="|".join(MEETING_CALL))
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server's settings")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    trio.run(serve, args.db, args.port, args.lines.split("|"), env)


if __name__ == "__main__":
    main()
