"""`agentlocator serve --workers N`: N server processes on one port, one supervisor.

The parent binds and listens on the port once, then starts N workers — each the ordinary
single-process server (``serve --workers 1``: its own Trio loop, app, providers and store
connection) — that inherit the listening socket (hypercorn ``bind = fd://N``) and accept
from its one queue; the kernel hands each connection to one of them. Why one inherited
socket rather than SO_REUSEPORT: the port is bound once (a port in use is one clear error, a
second server started by mistake on the same port fails instead of silently taking half the
calls), ``--port 0`` works, and connections that arrive while a worker starts or restarts
wait in the queue instead of being reset.

What the parent sets up for its workers, in their environment:

- ``AGENTLOCATOR_RUN_DIR``: a fresh private directory (0700) it removes at exit. Inside,
  ``metrics/`` is PROMETHEUS_MULTIPROC_DIR (so /metrics, answered by any worker, adds up
  every worker's: telemetry.metrics) and ``used-calls/`` the single-use record of the call
  websocket tokens (server.calltokens: a token replayed to another worker is refused);
- the token secret: with neither AGENTLOCATOR_SECRET nor TWILIO_AUTH_TOKEN set it makes a
  random one and hands it to every worker as AGENTLOCATOR_SECRET (tokens minted by one worker
  are checked by another; so are dashboard sessions);
- ``AGENTLOCATOR_WORKER`` (0..N-1, on every log line), the socket's descriptor, a pipe to say
  "ready" on, the parent's pid (a worker dies with its parent: PR_SET_PDEATHSIG), and the
  server's start time (the store's crash recovery takes only calls older than that:
  :func:`instance_started_at`).

The first worker starts alone (a bad configuration fails once, with one message; the
database is migrated once), the others when it is ready. Signals: SIGTERM is forwarded to
every worker, which drains (server.drain); SIGINT too (they stop at once). The parent exits
when every worker has, with 0 if they all did. A worker that dies on its own is restarted
(at most MAX_RESTARTS within RESTART_WINDOW_S, else the server stops); one that fails to
start stops the server with its exit code.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

RUN_DIR_ENV = "AGENTLOCATOR_RUN_DIR"
LISTEN_FD_ENV = "AGENTLOCATOR_LISTEN_FD"
READY_FD_ENV = "AGENTLOCATOR_READY_FD"
PARENT_PID_ENV = "AGENTLOCATOR_PARENT_PID"
SECRET_SOURCE_ENV = "AGENTLOCATOR_HMAC_FROM"  # not a secret: where it came from (no secret-like name: logs would redact it)
STARTED_AT_ENV = "AGENTLOCATOR_STARTED_AT"  # the server's start (epoch seconds), the same for every worker
WORKER_ENV = "AGENTLOCATOR_WORKER"  # = telemetry.logs.WORKER_ENV
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0
RESTART_DELAY_S = 1.0
STARTUP_TIMEOUT_S = 300.0  # a worker not ready by then (e.g. a model download hung) stops the server
POLL_S = 0.2


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def used_calls_dir(env: Mapping[str, str]) -> Path | None:
    """The workers' shared single-use token record (None: a lone server keeps it in memory)."""
    run = (env.get(RUN_DIR_ENV) or "").strip()
    return Path(run) / "used-calls" if run else None


def instance_started_at(env: Mapping[str, str]) -> dt.datetime | None:
    """When this server (all its workers) started; None for a lone process. The store's crash
    recovery closes open calls older than its own start: a worker started (or restarted) after
    the others must not take their live calls for a crash's, so every worker uses this."""
    raw = (env.get(STARTED_AT_ENV) or "").strip()
    try:
        return dt.datetime.fromtimestamp(float(raw), dt.timezone.utc) if raw else None
    except (ValueError, OverflowError, OSError):
        return None


def in_memory_database(url: str) -> bool:
    u = url.strip().lower()
    return u.startswith("sqlite") and (":memory:" in u or "mode=memory" in u or u in ("sqlite:", "sqlite://"))


# -- in a worker ------------------------------------------------------------------------------


def worker_listen_fd(env: Mapping[str, str]) -> int | None:
    fd = (env.get(LISTEN_FD_ENV) or "").strip()
    return int(fd) if fd.isdigit() else None


def die_with_parent(env: Mapping[str, str]) -> None:
    """A worker must not outlive its supervisor (killed, or crashed): it would go on holding
    the port and its calls with nobody to stop it. Linux: PR_SET_PDEATHSIG = SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: the parent's own cleanup still stops us
        pass
    parent = (env.get(PARENT_PID_ENV) or "").strip()
    if parent.isdigit() and os.getppid() != int(parent):  # it died before the prctl
        os._exit(1)


def stop_quietly_until_serving() -> None:
    """Until the server's own signal handling takes over (server.drain.stop_on_signals), a
    SIGTERM / SIGINT forwarded by the parent ends a starting worker at once and quietly: it
    has no calls yet (instead of a KeyboardInterrupt traceback from the middle of an import)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _s, _f: os._exit(0))


def say_ready(env: Mapping[str, str]) -> None:
    fd = (env.get(READY_FD_ENV) or "").strip()
    if not fd.isdigit():
        return
    try:
        os.write(int(fd), f"{env.get(WORKER_ENV, '?')}\n".encode())
        os.close(int(fd))
    except OSError:
        pass


# -- the parent -------------------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, proc: subprocess.Popen) -> None:
        self.index = index
        self.proc = proc
        self.ready = False
        self.started = time.monotonic()


def _log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    from telemetry.logs import log_event

    log_event(event, level, supervisor=True, **fields)


class Supervisor:
    def __init__(self, n: int, worker_argv: list[str], sock: Any, env: Mapping[str, str]) -> None:
        self.n = n
        self.argv = worker_argv
        self.sock = sock
        self.run_dir = Path(tempfile.mkdtemp(prefix="agentlocator-"))  # 0700
        self.metrics_dir = self.run_dir / "metrics"
        self.metrics_dir.mkdir(mode=0o700)
        (self.run_dir / "used-calls").mkdir(mode=0o700)
        self.ready_r, self.ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)
        self.env = self._worker_env(env)
        self.workers: dict[int, _Worker] = {}
        self.stopping: int | None = None  # the signal being forwarded
        self.exit_code = 0
        self.restarts: list[float] = []
        self._pending_signals: list[int] = []

    def _worker_env(self, env: Mapping[str, str]) -> dict[str, str]:
        from server.calltokens import shared_secret

        out = dict(env)
        root = str(Path(__file__).resolve().parents[1])  # the workers run this very checkout
        out["PYTHONPATH"] = os.pathsep.join([root, *[p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]])
        out[RUN_DIR_ENV] = str(self.run_dir)
        out[METRICS_ENV] = str(self.metrics_dir)
        out[LISTEN_FD_ENV] = str(self.sock.fileno())
        out[READY_FD_ENV] = str(self.ready_w)
        out[PARENT_PID_ENV] = str(os.getpid())
        out[STARTED_AT_ENV] = repr(time.time())
        if not (out.get("AGENTLOCATOR_SECRET") or "").strip() and not (out.get("TWILIO_AUTH_TOKEN") or "").strip():
            out["AGENTLOCATOR_SECRET"] = shared_secret()
            out[SECRET_SOURCE_ENV] = f"random per server, shared by its {self.n} workers (local mode)"
        return out

    def _spawn(self, index: int) -> None:
        env = {**self.env, WORKER_ENV: str(index)}
        proc = subprocess.Popen(self.argv, env=env, pass_fds=(self.sock.fileno(), self.ready_w))
        self.workers[index] = _Worker(index, proc)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._pending_signals.append(signum)

    def _forward(self, signum: int) -> None:
        first = self.stopping is None
        if self.stopping != signal.SIGINT:  # SIGINT (stop now) outranks SIGTERM (drain)
            self.stopping = signum
        _log("SHUTDOWN", phase="forwarding" if first else "forwarding again", signal=signal.Signals(signum).name,
             workers=sorted(self.workers))
        for worker in self.workers.values():
            if worker.proc.poll() is None:
                try:
                    worker.proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def _read_ready(self, announced: bool) -> None:
        try:
            data = os.read(self.ready_r, 4096)
        except BlockingIOError:
            return
        for line in data.decode(errors="replace").split():
            if line.isdigit() and int(line) in self.workers:
                worker = self.workers[int(line)]
                worker.ready = True
                if announced:
                    _log("STARTUP", worker=worker.index, pid=worker.proc.pid, note="worker serving again")

    def _reap(self) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        for index, worker in list(self.workers.items()):
            code = worker.proc.poll()
            if code is None:
                continue
            del self.workers[index]
            mark_process_dead(worker.proc.pid, str(self.metrics_dir))  # its live gauges no longer count
            if self.stopping is not None:
                # a worker still starting has no signal handler yet: ended by the very signal
                # forwarded to it, it simply stopped (it had no calls)
                stopped = code == -self.stopping and not worker.ready
                if code != 0 and not stopped:
                    self.exit_code = self.exit_code or (code if code > 0 else 1)
                _log("SHUTDOWN", phase="worker exited", worker=index, pid=worker.proc.pid, code=code)
                continue
            if not worker.ready:  # it never started: a configuration or startup failure
                _log("ERROR", logging.ERROR, where="workers", worker=index, code=code,
                     error="a worker failed to start: stopping the server")
                self.exit_code = code if code > 0 else 1
                self._forward(signal.SIGINT)
                continue
            now = time.monotonic()
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(self.restarts) > MAX_RESTARTS:
                _log("ERROR", logging.ERROR, where="workers", worker=index, code=code,
                     error=f"workers died {len(self.restarts)} times within {RESTART_WINDOW_S:g} s: stopping the server")
                self.exit_code = 1
                self._forward(signal.SIGINT)
                continue
            _log("ERROR", logging.ERROR, where="workers", worker=index, pid=worker.proc.pid, code=code,
                 error="a worker died; its live calls are lost (the store recovers them); restarting it")
            time.sleep(RESTART_DELAY_S)
            self._spawn(index)

    def run(self) -> int:
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._spawn(0)
            started_rest = False
            announced = False
            while self.workers:
                readable, _, _ = select.select([self.ready_r], [], [], POLL_S)
                if readable:
                    self._read_ready(announced)
                while self._pending_signals:
                    self._forward(self._pending_signals.pop(0))
                self._reap()
                if self.stopping is None and not started_rest and self.workers.get(0) and self.workers[0].ready:
                    started_rest = True
                    for index in range(1, self.n):
                        self._spawn(index)
                if not announced and self.stopping is None and len(self.workers) == self.n \
                        and all(w.ready for w in self.workers.values()):
                    announced = True
                    _log("STARTUP", workers=self.n, pids=[self.workers[i].proc.pid for i in sorted(self.workers)],
                         run_dir=str(self.run_dir), note="every worker is serving")
                slow = [w.index for w in self.workers.values()
                        if not w.ready and time.monotonic() - w.started > STARTUP_TIMEOUT_S]
                if slow and self.stopping is None:
                    _log("ERROR", logging.ERROR, where="workers", workers=slow,
                         error=f"not ready within {STARTUP_TIMEOUT_S:g} s: stopping the server")
                    self.exit_code = 1
                    self._forward(signal.SIGINT)
            return self.exit_code
        finally:
            for worker in self.workers.values():  # only on an error in this loop
                worker.proc.kill()
            for s, handler in old.items():
                signal.signal(s, handler)
            os.close(self.ready_r)
            os.close(self.ready_w)
            shutil.rmtree(self.run_dir, ignore_errors=True)


def run_workers(n: int, host: str, port: int, extra_args: list[str], log_level: str) -> int:
    """The parent of ``serve --workers N``: bind, start the workers, supervise; returns the
    exit code."""
    from server.app import server_config
    from telemetry import logs

    logs.configure(log_level)
    config = server_config(host, port)
    try:
        sockets = config.create_sockets()
    except OSError as exc:
        print(f"agentlocator: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    sock = sockets.insecure_sockets[0]
    sock.listen(config.backlog)
    bound = sock.getsockname()
    argv = [sys.executable, "-m", "server.cli", "serve", "--host", host, "--port", str(bound[1]),
            "--workers", "1", *extra_args]
    supervisor = Supervisor(n, argv, sock, os.environ)
    _log("STARTUP", workers=n, listen=f"{host}:{bound[1]}", pid=os.getpid())
    try:
        return supervisor.run()
    finally:
        sock.close()
