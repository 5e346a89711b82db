"""`agentlocator load`: many simulated Twilio callers against one server, measured.

N callers, each a real-time Twilio Media Stream (TwiML fetch, websocket, 20 ms μ-law frames,
playback model, marks, clears; see call.py), talk, listen and barge in for S seconds. They run
in separate caller processes (a few calls each), so the callers do not share the server's
event loop or its core, and none of them carries so many calls that its own timing slips (its
20 ms tick lateness is measured and reported: if the caller side is the bottleneck, the run
says so instead of blaming the server).

The server is one we start (`agentlocator serve` on a free loopback port with the test wiring
AGENTLOCATOR_TEST_WIRING=tests.integration.fakes:env_wiring: instant fake ASR, tone TTS, a
brain that always answers at length), or a given loopback URL. Measured per step:

- server CPU per call-second (its process tree's utime+stime from /proc; a given URL needs
  --server-pid for this), and its idle CPU;
- outbound jitter |arrival interval - 20 ms| at the callers, steady state, p50 / p99;
- late frames (jitter over 10 ms), audible gaps (a reply's audio arrived after the caller's
  playback ran dry: the pacer's lead used up) and missing frames (frames the server logged as
  sent but the caller never got; only for a server we started);
- turn latency (end of caller speech -> first agent audio heard) and caller-heard halt
  (barge-in onset -> agent audio stops), p50 / p95 / p99;
- protocol errors, script problems, abnormal closes.

A step holds when jitter p99 <= 10 ms, halt p99 <= 220 ms, and every call ran clean. `--ramp`
runs steps of growing N (up to --calls) and reports the highest N that held, per server core.
Bounded (calls, seconds, a deadline per step), loopback only, and it stops by itself.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

JITTER_P99_MS = 10.0
HALT_P99_MS = 220.0
LATE_MS = 10.0  # a steady-state arrival more than this off the 20 ms grid is a late frame
CALLER_LATE_P99_MS = 10.0  # a caller process whose ticks run later than this is overloaded
MAX_CALLS = 2000
MAX_SECONDS = 3600.0
WS_PATH = "/ws/twilio-media"
FAKE_WIRING = "tests.integration.fakes:env_wiring"


# -- the caller's script ---------------------------------------------------------------------------

def _tone(ms: int, freq: float, amp: int = 4000) -> np.ndarray:
    t = np.arange(int(ms * 8)) / 8000
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def caller_steps(i: int, seconds: float) -> list:
    """Caller ``i``'s script: wait for the greeting, then turns of ~1.2 s of 'voice' (a tone:
    the fake ASR hears a request whatever the audio), every third one followed by talking over
    the reply. Long enough for ``seconds``; the call itself ends at ``seconds`` (end_at_s)."""
    from server.caller.call import PreparedAudio, PreparedBarge, PreparedWait

    def voice(ms: int) -> PreparedAudio:
        lead = np.zeros(300 + 37 * (i % 17), np.int16)
        return PreparedAudio("say", np.concatenate([lead, _tone(ms, 200.0 + 20 * (i % 11))]), "v")

    steps: list = [PreparedWait(500, 10.0)]
    for k in range(int(seconds / 2.5) + 2):
        steps.append(voice(1200))
        if k % 3 == 2:  # talk over the reply
            steps.append(PreparedBarge(400 + 60 * (i % 7), voice(900), 10.0))
        steps.append(PreparedWait(400, 10.0))
    return steps


# -- one caller process ------------------------------------------------------------------------------

@dataclass
class WorkerSpec:
    url: str
    indices: list[int]
    seconds: float
    start_at: float  # time.monotonic() (system-wide on Linux) when the first call starts
    stagger_s: float  # call i starts at start_at + offsets[i]
    offsets: list[float]
    auth_token: str | None = None
    tag: str = "load"
    client: str = "lean"  # lean: one selector loop per process (lean.py); trio: place_call per call


def _pct(values: list[float], p: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), p)) if values else None


def _row(i: int, call_sid: str, outcome: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"index": i, "call_sid": call_sid}
    if isinstance(outcome, Exception):
        row.update(failed=f"{type(outcome).__name__}: {outcome}"[:300])
        return row
    call, fig = outcome.call, outcome.figures
    row.update(
        duration=call.duration, close_code=call.close_code, errors=call.errors[:5],
        problems=call.problems[:5], media_received=call.media_received,
        jitter_ms=[round(v, 3) for v in fig.media_jitter_ms], halt_ms=[round(v, 1) for v in fig.halt_ms],
        turn_ms=[round(v, 1) for v in fig.turn_latency_ms], unanswered=fig.unanswered_turns,
        barge_ins=fig.barge_ins, not_halted=fig.barge_ins_not_halted,
        gaps=len(call.gaps), gap_ms=round(sum(g for _, g in call.gaps), 1),
        tick_late_p99_ms=_pct(call.tick_late_ms, 99), tick_late_max_ms=max(call.tick_late_ms, default=0.0),
    )
    return row


def _ids(spec: WorkerSpec, i: int) -> Any:
    from leads.fields import sid_for
    from server.caller.call import CallIds

    tag = f"{spec.tag}-{i}-{os.getpid()}"
    return CallIds(call_sid=sid_for("CA", tag), stream_sid=sid_for("MZ", tag))


def _worker_lean(spec: WorkerSpec) -> dict[str, Any]:
    """Every call of this process in one selector loop (lean.py): the cheap caller."""
    from server.caller.lean import LeanSpec, run_calls

    late_start = max(0.0, time.monotonic() - spec.start_at)
    time.sleep(max(0.0, spec.start_at - time.monotonic()))
    cpu0 = time.process_time()
    ids = [_ids(spec, i) for i in spec.indices]
    specs = [LeanSpec(caller_steps(i, spec.seconds), cid, start_offset_s=off, end_at_s=spec.seconds,
                      max_duration_s=spec.seconds + 30)
             for i, cid, off in zip(spec.indices, ids, spec.offsets)]
    outcomes = run_calls(spec.url, specs, auth_token=spec.auth_token, deadline_s=spec.stagger_s + spec.seconds + 60)
    cpu = time.process_time() - cpu0
    rows = [_row(i, cid.call_sid, o) for i, cid, o in zip(spec.indices, ids, outcomes)]
    return {"pid": os.getpid(), "calls": rows, "cpu_s": cpu, "late_start_s": late_start}


async def _worker_trio(spec: WorkerSpec) -> dict[str, Any]:
    """One trio task group per call (client.place_call, trio-websocket): the reference shell."""
    import trio

    from server.caller.client import place_call

    rows: list[dict[str, Any]] = []
    late_start = max(0.0, time.monotonic() - spec.start_at)

    async def one(i: int, offset: float) -> None:
        await trio.sleep(max(0.0, spec.start_at + offset - time.monotonic()))
        ids = _ids(spec, i)
        try:
            with trio.fail_after(spec.seconds + 60):
                outcome: Any = await place_call(spec.url, caller_steps(i, spec.seconds), ids=ids,
                                                max_duration_s=spec.seconds + 30, end_at_s=spec.seconds,
                                                auth_token=spec.auth_token)
        except Exception as exc:  # noqa: BLE001 - one failed call is a result, not a crash
            outcome = exc
        rows.append(_row(i, ids.call_sid, outcome))

    await trio.sleep(max(0.0, spec.start_at - time.monotonic()))
    cpu0 = time.process_time()
    async with trio.open_nursery() as nursery:
        for i, off in zip(spec.indices, spec.offsets):
            nursery.start_soon(one, i, off)
    return {"pid": os.getpid(), "calls": rows, "cpu_s": time.process_time() - cpu0, "late_start_s": late_start}


def worker_entry(argv: list[str]) -> int:
    """`python -m server.caller.load WORKER_SPEC_JSON`: one caller process; JSON on stdout."""
    import trio

    spec = WorkerSpec(**json.loads(argv[0]))
    out = trio.run(_worker_trio, spec) if spec.client == "trio" else _worker_lean(spec)
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# -- the server side -----------------------------------------------------------------------------------

def _proc_cpu_s(pid: int, which: str = "both") -> float:
    """utime + stime (``which``: "user" or "system" for one of them), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    user, system = int(fields[11]), int(fields[12])
    ticks = user if which == "user" else system if which == "system" else user + system
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (workers of a multi-process server), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def run_queue_wait_s(pid: int) -> tuple[float, int]:
    """(seconds the process tree spent runnable but waiting for a CPU, timeslices), from
    /proc/PID/task/*/schedstat: how much a busy machine, not the server, delayed it."""
    wait, slices = 0.0, 0
    for p in process_tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                _, waited, n = (task / "schedstat").read_text().split()
            except (OSError, ValueError):
                continue
            wait += int(waited) / 1e9
            slices += int(n)
    return wait, slices


def tree_cpu(pid: int, which: str = "both") -> dict[int, float]:
    return {p: _proc_cpu_s(p, which) for p in process_tree(pid)}


def source_root() -> Path:
    return Path(__file__).resolve().parents[2]


class OwnServer:
    """`agentlocator serve` with the fake wiring, on a free loopback port (a context manager)."""

    def __init__(self, log_path: Path, max_calls: int, extra_env: dict[str, str] | None = None,
                 serve_args: list[str] | None = None) -> None:
        self.log_path = log_path
        self.max_calls = max_calls
        self.extra_env = extra_env or {}
        self.serve_args = list(serve_args or [])
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._db_dir: str | None = None

    def __enter__(self) -> "OwnServer":
        from server.demo import free_port

        root = source_root()
        if not (root / "tests" / "integration" / "fakes.py").exists():
            raise SystemExit("agentlocator load: the fake providers live in the source tree's tests/ "
                             "(run from a checkout), or pass --url of a server you started")
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "GOOGLE_", "OPENAI_"))}
        # A file, not :memory: — workers (--serve-args="--workers N") share it across processes.
        self._db_dir = tempfile.mkdtemp(prefix="agentlocator-load-")
        env.update({"AGENTLOCATOR_TEST_WIRING": FAKE_WIRING, "AGENT_LANGUAGE": "en-US",
                    "DATABASE_URL": f"sqlite:///{self._db_dir}/load.db", "MAX_CALLS": str(self.max_calls),
                    "PYTHONPATH": str(root) + os.pathsep + env.get("PYTHONPATH", ""), **self.extra_env})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(self.command(), cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"agentlocator load: the server exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/version", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise SystemExit("agentlocator load: the server did not come up in 60 s")
            time.sleep(0.1)
        # Several workers: the first one answers while the others still start (their imports
        # would count as the calls' CPU); the supervisor says when every one serves.
        several = (self._workers() or 1) > 1
        while several and "every worker is serving" not in self._log_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.__exit__(None, None, None)
                raise SystemExit(f"agentlocator load: not every worker started in 60 s; see {self.log_path}")
            time.sleep(0.1)
        return self

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _workers(self) -> int | None:
        """``--workers`` as ``serve`` itself parses it out of the extra arguments (None: not given)."""
        from server.cli import build_parser

        return build_parser().parse_known_args(["serve", *self.serve_args])[0].workers

    def command(self) -> list[str]:
        one = [] if self._workers() is not None else ["--workers", "1"]
        return [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                *one, *self.serve_args]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def __exit__(self, *exc: object) -> None:
        try:
            if self.proc is None or self.proc.poll() is not None:
                return
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        finally:
            if self._db_dir is not None:
                shutil.rmtree(self._db_dir, ignore_errors=True)

    def frames_out(self) -> dict[str, int]:
        """call_sid -> frames the server logged as sent (its CALL_END lines)."""
        out: dict[str, int] = {}
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return out
        for raw in text.splitlines():
            if raw.startswith("{") and '"CALL_END"' in raw:
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if "frames_out" in line:
                    out[line.get("call_sid", "")] = int(line["frames_out"])
        return out


# -- one step: N calls -----------------------------------------------------------------------------------

@dataclass
class StepResult:
    calls: int
    seconds: float
    processes: int
    call_seconds: float = 0.0
    server_cpu_ms_per_call_s: float | None = None
    server_cores: int = 1
    server_kernel_share: float | None = None  # of the server's CPU, the part in the kernel (stime)
    # time the server was runnable but another process had the CPU (a shared box), per second
    # of the step and per timeslice
    server_run_queue_ms_per_s: float | None = None
    server_run_queue_ms_per_slice: float | None = None
    server_idle_cpu_ms_per_s: float | None = None
    caller_cpu_ms_per_call_s: float | None = None
    jitter_p50_ms: float | None = None
    jitter_p99_ms: float | None = None
    steady_frames: int = 0
    late_frames: int = 0
    gaps: int = 0
    gap_ms: float = 0.0
    missing_frames: int | None = None
    turn_ms: dict[str, float | None] = field(default_factory=dict)
    halt_ms: dict[str, float | None] = field(default_factory=dict)
    barge_ins: int = 0
    not_halted: int = 0
    unanswered: int = 0
    failed_calls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    caller_tick_late_p99_ms: float | None = None
    client: str = "lean"
    cpu_layers: list[tuple[str, float]] = field(default_factory=list)
    caller_bound: bool = False
    holds: bool = False
    why_not: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _pcts(values: list[float]) -> dict[str, float | None]:
    return {"n": len(values), "p50": _pct(values, 50), "p95": _pct(values, 95), "p99": _pct(values, 99)}


class PipecatServer(OwnServer):
    """Pipecat's pass-through Twilio pipeline (bench/pipecat_twilio.py), run by ``python``:
    an interpreter of the bench's own environment with pipecat-ai (``make pipecat-venv``)."""

    def __init__(self, python: str, log_path: Path) -> None:
        super().__init__(log_path, max_calls=0)
        self.python = python

    def command(self) -> list[str]:
        return [self.python, str(source_root() / "bench" / "pipecat_twilio.py"), str(self.port)]


class FloorServer(OwnServer):
    """The floor (bench/floor_twilio.py, run by this interpreter: the project's venv): trio on
    plain sockets, one 20 ms tick that reads every call and sends each a prebuilt frame, no
    agent at all — the least CPU a Python server on trio spends on the same callers. Its log
    has a ``CALL_END`` line with ``frames_out`` per call, so missing frames are counted too."""

    def __init__(self, log_path: Path) -> None:
        super().__init__(log_path, max_calls=0)

    def command(self) -> list[str]:
        return [sys.executable, str(source_root() / "bench" / "floor_twilio.py"), str(self.port)]


def pipecat_missing(python: str) -> str | None:
    """Why ``python`` cannot run the Pipecat baseline (None: it can)."""
    try:
        out = subprocess.run([python, "-c", "import pipecat, fastapi, uvicorn; print(pipecat.__version__)"],
                             capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"{python}: {exc} (make pipecat-venv creates it)"
    if out.returncode != 0:
        return f"{python} has no pipecat-ai / fastapi / uvicorn (make pipecat-venv): {out.stderr.strip()[-200:]}"
    return None


def run_step(url: str, calls: int, seconds: float, *, per_process: int = 10, server_pid: int | None = None,
             server: OwnServer | None = None, auth_token: str | None = None, stagger_s: float | None = None,
             tag: str = "load", client: str = "lean", profile: Path | None = None) -> StepResult:
    """N calls from ceil(N / per_process) caller processes; blocks until all have ended."""
    nproc = max(1, math.ceil(calls / per_process))
    stagger = min(2.0, 0.05 * calls) if stagger_s is None else stagger_s
    rng = np.random.default_rng(calls)
    offsets = sorted(float(x) for x in rng.uniform(0.0, stagger, calls)) if calls > 1 else [0.0]
    groups = [list(range(calls))[p::nproc] for p in range(nproc)]
    step = StepResult(calls=calls, seconds=seconds, processes=nproc, client=client)

    if server_pid is not None:
        c0 = sum(tree_cpu(server_pid).values())
        time.sleep(1.0)
        idle = sum(tree_cpu(server_pid).values()) - c0
        step.server_idle_cpu_ms_per_s = idle * 1000
    procs = []
    env = dict(os.environ)
    env["PYTHONPATH"] = str(source_root()) + os.pathsep + env.get("PYTHONPATH", "")
    start_at = time.monotonic() + 1.5 + 0.15 * nproc  # every caller process imported and waiting
    for g in groups:
        spec = WorkerSpec(url=url, indices=g, seconds=seconds, start_at=start_at, stagger_s=stagger,
                          offsets=[offsets[i] for i in g], auth_token=auth_token, tag=tag, client=client)
        procs.append(subprocess.Popen([sys.executable, "-m", "server.caller.load", json.dumps(dataclasses.asdict(spec))],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=source_root()))
    before: dict[int, float] = {}
    spy = None
    if server_pid is not None:
        time.sleep(max(0.0, start_at - time.monotonic()))
        before = tree_cpu(server_pid)
        before_sys = sum(tree_cpu(server_pid, "system").values())
        wait0, slices0, wall0 = *run_queue_wait_s(server_pid), time.monotonic()
        exe = _py_spy() if profile is not None else None
        if profile is not None and exe is None:
            step.errors.append("--profile: py-spy is not installed (pip install py-spy)")
        elif exe is not None and profile is not None:
            # every call up (the stagger), then sample the server without pausing it
            profile.parent.mkdir(parents=True, exist_ok=True)
            spy = subprocess.Popen([exe, "record", *PY_SPY_MODE, "--subprocesses", "-r", "200", "-f", "raw",
                                    "-o", str(profile), "-d", str(max(1, int(seconds - 4))), "-p", str(server_pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    outs = []
    deadline = time.monotonic() + (start_at - time.monotonic()) + stagger + seconds + 90
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        if p.returncode != 0 or not stdout.strip():
            step.errors.append(f"caller process {p.pid} exited {p.returncode}: {stderr.decode(errors='replace')[-300:]}")
            continue
        outs.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    if spy is not None:
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
        if profile is not None and profile.exists():
            step.cpu_layers = cpu_layers(profile)
        else:
            step.errors.append(f"py-spy failed: {err.decode(errors='replace')[-200:]}")
    if server_pid is not None:
        after = tree_cpu(server_pid)
        system_cpu = sum(tree_cpu(server_pid, "system").values()) - before_sys
        wait1, slices1 = run_queue_wait_s(server_pid)
        step.server_run_queue_ms_per_s = (wait1 - wait0) / max(1e-9, time.monotonic() - wall0) * 1000
        step.server_run_queue_ms_per_slice = (wait1 - wait0) / max(1, slices1 - slices0) * 1000
        used = {pid: after.get(pid, 0.0) - before.get(pid, 0.0) for pid in after}
        top = max(used.values(), default=0.0)
        step.server_cores = max(1, sum(1 for v in used.values() if top and v >= 0.1 * top))
        server_cpu = sum(used.values())
    rows = [r for o in outs for r in o["calls"]]
    ok = [r for r in rows if "failed" not in r]
    step.failed_calls = [f"{r['index']}: {r['failed']}" for r in rows if "failed" in r]
    step.call_seconds = sum(r["duration"] for r in ok)
    if server_pid is not None and step.call_seconds > 0:
        step.server_cpu_ms_per_call_s = server_cpu / step.call_seconds * 1000
        step.server_kernel_share = system_cpu / server_cpu if server_cpu > 0 else None
    if step.call_seconds > 0:
        step.caller_cpu_ms_per_call_s = sum(o["cpu_s"] for o in outs) / step.call_seconds * 1000
    jitter = [v for r in ok for v in r["jitter_ms"]]
    step.jitter_p50_ms, step.jitter_p99_ms = _pct(jitter, 50), _pct(jitter, 99)
    step.steady_frames = len(jitter)
    step.late_frames = sum(1 for v in jitter if v > LATE_MS)
    step.gaps = sum(r["gaps"] for r in ok)
    step.gap_ms = round(sum(r["gap_ms"] for r in ok), 1)
    step.turn_ms = _pcts([v for r in ok for v in r["turn_ms"]])
    step.halt_ms = _pcts([v for r in ok for v in r["halt_ms"]])
    step.barge_ins = sum(r["barge_ins"] for r in ok)
    step.not_halted = sum(r["not_halted"] for r in ok)
    step.unanswered = sum(r["unanswered"] for r in ok)
    for r in ok:
        step.errors += [f"{r['index']}: {e}" for e in r["errors"] + r["problems"]]
        if r["close_code"] not in (1000, None):
            step.errors.append(f"{r['index']}: closed with {r['close_code']}")
    lates = [r["tick_late_p99_ms"] for r in ok if r["tick_late_p99_ms"] is not None]
    step.caller_tick_late_p99_ms = max(lates, default=None)
    step.caller_bound = step.caller_tick_late_p99_ms is not None and step.caller_tick_late_p99_ms > CALLER_LATE_P99_MS
    if server is not None:
        sent = server.frames_out()
        known = [r for r in ok if r["call_sid"] in sent]
        step.missing_frames = sum(max(0, sent[r["call_sid"]] - r["media_received"]) for r in known)
    step.why_not = _verdict(step)
    step.holds = not step.why_not
    return step


# -- where the server's CPU goes (py-spy) ------------------------------------------------------------

_LAYERS = (
    ("trio/_socket.py", "_nonblocking_helper", "trio: socket calls (Python side)"),
    ("trio/_core/_io_epoll.py", "", "trio: epoll bookkeeping"),
    ("trio/", "", "trio: scheduler, channels, cancel scopes"),
    ("outcome/", "", "trio: scheduler, channels, cancel scopes"),
    ("wsproto/", "", "wsproto (websocket framing)"),
    ("h11/", "", "hypercorn + h11"),
    ("hypercorn/", "", "hypercorn + h11"),
    ("quart_trio/", "", "quart / quart-trio"),
    ("quart/", "", "quart / quart-trio"),
    ("werkzeug/", "", "quart / quart-trio"),
    ("msgspec/", "", "ours (incl. msgspec, native)"),
    ("native/", "", "ours (incl. msgspec, native)"),
    ("server/", "", "ours (incl. msgspec, native)"),
    ("telemetry/", "", "ours (incl. msgspec, native)"),
    ("prometheus_client/", "", "ours (incl. msgspec, native)"),
    ("tests/", "", "the fake providers (test wiring)"),
)


def cpu_layers(raw_path: Path) -> list[tuple[str, float]]:
    """Share of py-spy samples (raw/collapsed format) by the layer of the innermost frame."""
    import re

    counts: dict[str, int] = {}
    total = 0
    for line in raw_path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        leaf = stack.split(";")[-1]
        m = re.search(r"\((.*?):\d+\)", leaf)
        path = "/" + (m.group(1) if m else leaf)
        name = "other (stdlib, contextlib, logging...)"
        for part, fn, layer in _LAYERS:
            if "/" + part in path and fn in leaf:
                name = layer
                break
        counts[name] = counts.get(name, 0) + int(n)
        total += int(n)
    return sorted(((k, v / total) for k, v in counts.items()), key=lambda kv: -kv[1]) if total else []


PY_SPY_MODE = ["--gil", "--nonblocking"]  # on-CPU Python only (syscalls release the GIL); never pauses the server


def _py_spy() -> str | None:
    import shutil

    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def _verdict(step: StepResult) -> list[str]:
    why = []
    if step.failed_calls:
        why.append(f"{len(step.failed_calls)} calls failed")
    if step.errors:
        why.append(f"{len(step.errors)} errors")
    if step.jitter_p99_ms is None:
        why.append("no agent audio measured")
    elif step.jitter_p99_ms > JITTER_P99_MS:
        why.append(f"jitter p99 {step.jitter_p99_ms:.1f} ms > {JITTER_P99_MS:g}")
    halt99 = step.halt_ms.get("p99")
    if halt99 is not None and halt99 > HALT_P99_MS:
        why.append(f"halt p99 {halt99:.0f} ms > {HALT_P99_MS:g}")
    if step.not_halted:
        why.append(f"{step.not_halted} barge-ins not halted")
    if step.missing_frames:
        why.append(f"{step.missing_frames} frames missing")
    return why


def _f(v: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def comparison(ours: StepResult, pipecat: StepResult) -> str:
    """One line: server CPU per call-second, ours against Pipecat's, same callers, same run."""
    a, b = ours.server_cpu_ms_per_call_s, pipecat.server_cpu_ms_per_call_s
    ratio = f"{b / a:.1f}x less CPU than Pipecat" if a and b else "no ratio (a CPU figure is missing)"
    return (f"vs Pipecat at {ours.calls} calls: server CPU per call-second ours {_f(a, '{:.2f}')} ms, "
            f"Pipecat pass-through {_f(b, '{:.2f}')} ms: {ratio}")


def floor_comparison(ours: StepResult, floor: StepResult) -> str:
    """One line: server CPU per call-second, ours against the floor's, same callers, same run."""
    a, b = ours.server_cpu_ms_per_call_s, floor.server_cpu_ms_per_call_s
    ratio = f"ours is {a / b:.1f}x the floor" if a and b else "no ratio (a CPU figure is missing)"
    return (f"vs the floor at {ours.calls} calls: server CPU per call-second ours {_f(a, '{:.2f}')} ms, "
            f"floor (trio, raw sockets, one tick, no agent) {_f(b, '{:.2f}')} ms: {ratio}")


def describe(step: StepResult) -> list[str]:
    t, h = step.turn_ms, step.halt_ms
    lines = [
        f"{step.calls} calls x {step.seconds:g} s from {step.processes} caller processes: {step.call_seconds:.0f} call-seconds",
        f"  server CPU per call-second   {_f(step.server_cpu_ms_per_call_s, '{:.2f}')} ms"
        + (f"  ({step.server_cpu_ms_per_call_s / 10:.2f}% of a core per call; {step.server_cores} server process(es) busy;"
           f" {_f(None if step.server_kernel_share is None else step.server_kernel_share * 100, '{:.0f}')}% of it in the kernel;"
           f" idle {_f(step.server_idle_cpu_ms_per_s)} ms/s)" if step.server_cpu_ms_per_call_s is not None else
           "  (pass --server-pid to measure a server we did not start)"),
        f"  server waiting for a CPU     {_f(step.server_run_queue_ms_per_s)} ms per second, "
        f"{_f(step.server_run_queue_ms_per_slice, '{:.2f}')} ms per wake-up on average (run queue: other processes on the box)",
        f"  caller CPU per call-second   {_f(step.caller_cpu_ms_per_call_s, '{:.2f}')} ms (the callers' own, for scale;"
        f" {step.client} client)",
        f"  outbound jitter              p50 {_f(step.jitter_p50_ms, '{:.2f}')}  p99 {_f(step.jitter_p99_ms, '{:.2f}')} ms"
        f"  (target p99 <= {JITTER_P99_MS:g}; {step.steady_frames} steady-state frames)",
        f"  late / gaps / missing        {step.late_frames} late (> {LATE_MS:g} ms off the grid), {step.gaps} audible gaps"
        f" ({step.gap_ms:.0f} ms), " + ("-" if step.missing_frames is None else str(step.missing_frames)) + " missing",
        f"  turn latency (caller-heard)  p50 {_f(t.get('p50'), '{:.0f}')}  p95 {_f(t.get('p95'), '{:.0f}')}"
        f"  p99 {_f(t.get('p99'), '{:.0f}')} ms (n={t.get('n', 0)}; {step.unanswered} unanswered)",
        f"  halt (caller-heard)          p50 {_f(h.get('p50'), '{:.0f}')}  p99 {_f(h.get('p99'), '{:.0f}')} ms"
        f" (target p99 <= {HALT_P99_MS:g}; {step.barge_ins} barge-ins, {step.not_halted} not halted)",
        f"  caller tick lateness p99     {_f(step.caller_tick_late_p99_ms, '{:.2f}')} ms (worst caller process)"
        + ("  CALLER-BOUND: the callers fell behind; this step measures them, not the server" if step.caller_bound else ""),
        f"  errors                       {len(step.errors) + len(step.failed_calls)}"
        + (f": {(step.failed_calls + step.errors)[:3]}" if step.errors or step.failed_calls else ""),
        f"  verdict                      {'HOLDS' if step.holds else 'does not hold: ' + '; '.join(step.why_not)}",
    ]
    if step.cpu_layers:
        lines.append("  server Python CPU by layer (py-spy --gil, innermost frame; the kernel's share is above):")
        lines += [f"    {share * 100:5.1f}%  {name}" for name, share in step.cpu_layers]
    return lines


def ramp_steps(max_calls: int, start: int = 1) -> list[int]:
    """1, 2, 5, 10, 20, 50, ... up to and including ``max_calls``."""
    out, base = [], 1
    while True:
        for m in (1, 2, 5):
            n = m * base
            if n >= start and n < max_calls:
                out.append(n)
            if n >= max_calls:
                return out + [max_calls]
        base *= 10


def run_load(calls: int, seconds: float, *, url: str | None = None, server_pid: int | None = None,
             ramp: bool = False, per_process: int = 10, auth_token: str | None = None, client: str = "lean",
             refine: int = 2, profile: Path | None = None, serve_args: list[str] | None = None,
             log_path: Path | None = None, json_path: Path | None = None, out: Any = print,
             pipecat: str | None = None, floor: bool = False) -> list[StepResult]:
    """The whole run: (start the server,) one step or a ramp, a printed report; returns the steps.
    ``pipecat``: an interpreter with pipecat-ai; the same step(s) then run against Pipecat's
    pass-through Twilio pipeline too, and the server CPU of both is compared. ``floor``: the
    same against bench/floor_twilio.py, the least a Python/trio server can spend (FloorServer)."""
    from server.security import is_loopback_host

    if not 1 <= calls <= MAX_CALLS:
        raise SystemExit(f"agentlocator load: --calls must be 1..{MAX_CALLS}")
    if not 1.0 <= seconds <= MAX_SECONDS:
        raise SystemExit(f"agentlocator load: --seconds must be 1..{MAX_SECONDS:g}")
    steps_n = ramp_steps(calls) if ramp else [calls]
    results: list[StepResult] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()

    def one_step(u: str, pid: int | None, server: OwnServer | None) -> None:
        def run(n: int) -> StepResult:
            step = run_step(u, n, seconds, per_process=per_process, server_pid=pid, server=server,
                            auth_token=auth_token, tag=f"load{len(results)}", client=client,
                            profile=None if profile is None else profile.with_name(f"{profile.stem}-{n}{profile.suffix}"))
            results.append(step)
            for line in describe(step):
                out(line)
            return step

        passed = 0
        for n in steps_n:
            step = run(n)
            if ramp and (not step.holds or step.caller_bound):
                # bisect between the last step that held and this one, a few more steps
                failed = n
                for _ in range(refine if not step.caller_bound else 0):
                    mid = (passed + failed) // 2
                    mid = mid - mid % 5 if mid > 20 else mid
                    if mid <= passed or mid >= failed:
                        break
                    step = run(mid)
                    if step.caller_bound:
                        break
                    passed, failed = (mid, failed) if step.holds else (passed, mid)
                break
            passed = n

    out(f"agentlocator load: {started}; {os.cpu_count()} cores; load average before {load_before[0]:.2f}")
    if url is not None:
        import urllib.parse

        host = urllib.parse.urlsplit(url).hostname or ""
        if not is_loopback_host(host):
            raise SystemExit(f"agentlocator load: {host!r} is not a loopback address: load runs stay on this machine")
        one_step(url, server_pid, None)
    else:
        log_path = log_path or source_root() / "artifacts" / "load-server.log"
        with OwnServer(log_path, max_calls=calls + 10, serve_args=serve_args) as server:
            out(f"server: pid {server.proc.pid} on {server.url} (fake providers; log {log_path})")
            one_step(server.url, server.proc.pid, server)
    baseline: list[StepResult] = []
    if pipecat is not None:
        why = pipecat_missing(pipecat)
        if why is not None:
            raise SystemExit(f"agentlocator load --pipecat: {why}")
        ours = list(results)
        results.clear()
        pc_log = (log_path or source_root() / "artifacts" / "load-server.log").with_name("load-pipecat.log")
        with PipecatServer(pipecat, pc_log) as server:
            out(f"Pipecat pass-through Twilio pipeline: pid {server.proc.pid} on {server.url} (log {pc_log})")
            one_step(server.url, server.proc.pid, None)
        baseline, results[:] = list(results), ours
        for mine, theirs in zip(results, baseline):
            out(comparison(mine, theirs))
    floor_steps: list[StepResult] = []
    if floor:
        ours = list(results)
        results.clear()
        fl_log = (log_path or source_root() / "artifacts" / "load-server.log").with_name("load-floor.log")
        with FloorServer(fl_log) as server:
            out(f"the floor (bench/floor_twilio.py): pid {server.proc.pid} on {server.url} (log {fl_log})")
            one_step(server.url, server.proc.pid, server)
        floor_steps, results[:] = list(results), ours
        for mine, theirs in zip(results, floor_steps):
            out(floor_comparison(mine, theirs))
    if ramp:
        held = [s for s in results if s.holds and not s.caller_bound]
        if held:
            best = max(held, key=lambda s: s.calls)
            failed = [s for s in results if s.calls > best.calls]
            out(f"ramp: highest N that held (jitter p99 <= {JITTER_P99_MS:g} ms, halt p99 <= {HALT_P99_MS:g} ms, clean): "
                f"{best.calls} calls on {best.server_cores} server core(s) = {best.calls / best.server_cores:.0f} per core"
                + (" (the largest step: raise --calls to find the limit)" if not failed else
                   f"; {min(s.calls for s in failed)} calls did not"
                   + (" (caller-bound)" if any(s.caller_bound for s in failed) else "")))
        else:
            out("ramp: no step held")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"started": started, "cores": os.cpu_count(), "load_before": load_before,
                                         "steps": [s.as_dict() for s in results],
                                         "pipecat_steps": [s.as_dict() for s in baseline],
                                         "floor_steps": [s.as_dict() for s in floor_steps]}, indent=1))
    return results


if __name__ == "__main__":
    sys.exit(worker_entry(sys.argv[1:]))
