"""`agentlocator serve` as a real process (or a parent and its workers) for the scale tests:
its JSON log, its workers' pids, signals, and steering a connection to one worker.

Steering: the workers accept from one shared listening socket, so which worker takes a
connection is the kernel's choice. A stopped process (SIGSTOP) accepts nothing, so while every
other worker is stopped the connection goes to the one left running: the tests use that to
put a TwiML request on one worker and the websocket of the same call on another, without
any test-only code in the server.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import trio

from server.caller.call import PreparedAudio, PreparedHangup, PreparedWait
from server.demo import free_port

from .harness import ROOT, ahttp


def tone(ms: int, freq: float = 300.0, amp: int = 6000) -> np.ndarray:
    t = np.arange(int(ms * 8)) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def short_call(turns: int = 1) -> list[Any]:
    """The caller waits for the greeting, says something `turns` times, hangs up."""
    steps: list[Any] = [PreparedWait(quiet_ms=500, timeout_s=15.0)]
    for _ in range(turns):
        steps += [PreparedAudio("say", tone(900), "hello"), PreparedWait(quiet_ms=500, timeout_s=15.0)]
    return steps + [PreparedHangup()]


def long_call(seconds: float) -> list[Any]:
    """The caller waits for the greeting, then listens (silence) for ``seconds``, then hangs up."""
    return [PreparedWait(quiet_ms=500, timeout_s=15.0),
            PreparedAudio("silence", np.zeros(int(8000 * seconds), np.int16)), PreparedHangup()]


class ServerProc:
    def __init__(self, tmp_path: Path, env: dict[str, str], args: list[str], name: str = "server") -> None:
        self.port = free_port()
        self.log_path = tmp_path / f"{name}.log"
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TWILIO_", "GOOGLE_", "OPENAI_", "AGENTLOCATOR_", "DASHBOARD_", "METRICS_",
                                         "PROMETHEUS_"))}
        full_env.update({"AGENT_LANGUAGE": "en-US", "LOG_LEVEL": "INFO",
                         "AGENTLOCATOR_TEST_WIRING": "tests.integration.fakes:dashboard_wiring", **env})
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def find(self, **match: Any) -> list[dict[str, Any]]:
        return [ln for ln in self.lines() if all(ln.get(k) == v for k, v in match.items())]

    async def line(self, timeout_s: float = 15.0, **match: Any) -> dict[str, Any]:
        """The first log line with these fields, once it is written."""
        with trio.fail_after(timeout_s):
            while True:
                found = self.find(**match)
                if found:
                    return found[0]
                await trio.sleep(0.05)

    async def ready(self, workers: int | None = None, timeout_s: float = 90.0) -> None:
        with trio.fail_after(timeout_s):
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
                try:
                    status, _, _ = await ahttp("GET", self.port, "/version")
                except OSError:
                    status = 0
                if status == 200 and (workers is None or self.worker_pids()):
                    return
                await trio.sleep(0.1)

    def worker_pids(self) -> list[int]:
        """[pid of worker 0, worker 1, ...] once every worker serves (the parent says so)."""
        pids: list[int] = []
        for ln in self.lines():
            if ln.get("supervisor") and ln.get("note") == "every worker is serving":
                pids = list(ln["pids"])
            elif pids and ln.get("supervisor") and ln.get("note") == "worker serving again":
                pids[ln["worker"]] = ln["pid"]  # a replacement
        return pids

    @contextmanager
    def only(self, index: int) -> Iterator[None]:
        """Every other worker stopped (SIGSTOP) for the block: new connections go to ``index``."""
        others = [pid for i, pid in enumerate(self.worker_pids()) if i != index]
        for pid in others:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in others:
                os.kill(pid, signal.SIGCONT)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    async def exit_code(self, timeout_s: float) -> int:
        with trio.fail_after(timeout_s):
            while self.proc.poll() is None:
                await trio.sleep(0.1)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def metric(text: str, name: str) -> float | None:
    """A sample's value in a Prometheus exposition (no labels)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
