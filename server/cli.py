"""`agentlocator` command line: serve, call (simulated Twilio caller), demo."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from server import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentlocator", description=__doc__)
    parser.add_argument("--version", action="version", version=f"agentlocator {__version__}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the server (hypercorn, trio worker)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=None, help="default: $PORT, else 8080")
    serve.add_argument("--insecure", action="store_true",
                       help="without TWILIO_AUTH_TOKEN, listen on a non-loopback address anyway "
                            "(same as AGENTLOCATOR_INSECURE=1): anyone who reaches it can place calls")
    serve.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the port, each its own Trio loop (default: $WORKERS, "
                            "else the number of cores; 1 with an in-memory database). SIGTERM drains every "
                            "worker (DRAIN_SECONDS), SIGINT stops at once")

    call = sub.add_parser("call", help="place a simulated Twilio call against a running server")
    call.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/ws/twilio-media")
    call.add_argument("--script", required=True, type=Path, help="caller script (see server/caller/script.py)")
    call.add_argument("--out", type=Path, default=Path("artifacts"), help="directory for JSON / WAV / PNG")
    call.add_argument("--name", default="call", help="file name stem of the outputs")
    call.add_argument("--from", dest="from_number", default="+972501234567")
    call.add_argument("--to", dest="to_number", default="+97231234567")
    call.add_argument("--account-sid", default=os.environ.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32,
                      help="the AccountSid in `start` (default: $TWILIO_ACCOUNT_SID; the server refuses another)")
    call.add_argument("--subprotocol", default=None, help="websocket subprotocol to ask for")
    call.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"),
                      help="sign the upgrade like Twilio (default: $TWILIO_AUTH_TOKEN)")
    call.add_argument("--signed-url", default=None,
                      help="URL to sign when it differs from --url (behind a proxy)")
    call.add_argument("--twiml-url", default=None,
                      help="where to fetch the call's TwiML (its stream token) first, like Twilio "
                           "(default: /twiml on --url's host)")
    call.add_argument("--quiet", action="store_true", help="no live event lines")

    demo = sub.add_parser("demo", help="offline end-to-end demo: server + scripted caller")
    demo.add_argument("--out", type=Path, default=Path("artifacts"))
    demo.add_argument("--script", type=Path, default=None, help="another caller script")
    demo.add_argument("--keep-server-log", action="store_true", help="also echo the server's non-JSON lines")
    demo.add_argument("--show-script", action="store_true",
                      help="print the demo caller's script (a starting point for `agentlocator call`) and exit")
    add_load_parser(sub)
    return parser


def add_load_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    load = sub.add_parser("load", help="N simulated callers (separate processes) against one server, measured")
    load.add_argument("--calls", type=int, default=10, help="simultaneous calls (with --ramp: the largest step)")
    load.add_argument("--seconds", type=float, default=30.0, help="length of every call")
    load.add_argument("--url", default=None,
                      help="a running server's ws://127.0.0.1:PORT/ws/twilio-media (loopback only); default: "
                           "start one with instant fake providers")
    load.add_argument("--server-pid", type=int, default=None, help="with --url: the server's pid, for its CPU")
    load.add_argument("--ramp", action="store_true",
                      help="steps of 1, 2, 5, 10, 20, 50... calls up to --calls; report the highest N per core "
                           "at which jitter p99 <= 10 ms and halt p99 <= 220 ms hold")
    load.add_argument("--per-process", type=int, default=10, help="calls per caller process")
    load.add_argument("--client", choices=("lean", "trio"), default="lean",
                      help="caller shell: one selector loop per process (lean, cheap) or trio-websocket per call")
    load.add_argument("--auth-token", default=os.environ.get("TWILIO_AUTH_TOKEN"),
                      help="with --url: sign like Twilio (default: $TWILIO_AUTH_TOKEN)")
    load.add_argument("--json", type=Path, default=None, help="also write every figure to this JSON file")
    load.add_argument("--server-log", type=Path, default=None, help="where the started server logs")
    load.add_argument("--pipecat", default=None, metavar="PYTHON",
                      help="an interpreter with pipecat-ai (make pipecat-venv: artifacts/pipecat-venv/bin/python): "
                           "run the same callers against Pipecat's pass-through Twilio pipeline too and compare")
    load.add_argument("--floor", action="store_true",
                      help="run the same callers against bench/floor_twilio.py too (trio on raw sockets, one 20 ms "
                           "tick, no agent: the least CPU a Python/trio server spends) and compare")
    load.add_argument("--serve-args", default="",
                      help='more arguments for the server it starts, e.g. --serve-args="--workers 2" (its CPU is summed over its processes)')
    load.add_argument("--profile", type=Path, default=None,
                      help="sample the server with py-spy during each step (raw stacks to PATH-<calls>.txt) and "
                           "print where its CPU goes")


def _load(args: argparse.Namespace) -> int:
    import shlex

    from server.caller.load import run_load

    steps = run_load(args.calls, args.seconds, url=args.url, server_pid=args.server_pid, ramp=args.ramp,
                     per_process=max(1, args.per_process), auth_token=args.auth_token if args.url else None,
                     client=args.client, profile=args.profile, serve_args=shlex.split(args.serve_args),
                     log_path=args.server_log, json_path=args.json, pipecat=args.pipecat,
                     floor=args.floor)
    return 0 if args.ramp or all(s.holds for s in steps) else 1


def _serve(args: argparse.Namespace) -> int:
    import trio
    import dataclasses

    from hypercorn.trio import serve
    from hypercorn.utils import LifespanFailureError

    from native.config import ConfigError
    from server.app import create_app, server_config
    from server.drain import stop_on_signals
    from server.security import is_loopback_host
    from server.settings import Settings
    from server.wiring import build_wiring
    from server import workers as W

    # Settings and providers are checked before the socket opens: a bad setup is one clear
    # line and exit code 2, not a traceback from inside the ASGI lifespan.
    listen_fd = W.worker_listen_fd(os.environ)  # set: this is a worker of `serve --workers N`
    if listen_fd is not None:
        W.die_with_parent(os.environ)
        W.stop_quietly_until_serving()
    try:
        settings = Settings.from_env()
        if args.insecure and not settings.insecure:
            settings = dataclasses.replace(settings, insecure=True)
        refusal = bind_refusal(args.host, settings.twilio_auth_token, settings.insecure)
        if refusal:
            print(f"agentlocator: {refusal}", file=sys.stderr)
            return 2
        workers = worker_count(args.workers, settings.workers, settings.database_url)
        port = args.port if args.port is not None else settings.port
        if not settings.twilio_auth_token and not is_loopback_host(args.host) and listen_fd is None:
            print("agentlocator: WARNING: INSECURE mode: TWILIO_AUTH_TOKEN is not set and the server listens on "
                  f"{args.host}; anyone who can reach it can place calls", file=sys.stderr)
        if workers > 1 and listen_fd is None:
            return W.run_workers(workers, args.host, port, ["--insecure"] if args.insecure else [],
                                 settings.log_level)
        wiring = build_wiring(settings)
    except ConfigError as exc:
        print(f"agentlocator: configuration error: {exc}", file=sys.stderr)
        return 2
    config = server_config(args.host, port)
    if listen_fd is not None:
        config.bind = [f"fd://{listen_fd}"]  # the parent's listening socket, shared by every worker
    config.errorlog = "-"

    async def main() -> None:
        app = create_app(settings, lambda _: wiring)
        stop = trio.Event()  # hypercorn's shutdown trigger: SIGINT at once, SIGTERM after the drain
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                async def serving(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
                    await serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(stop_on_signals, signals, app, stop)
                await nursery.start(serving)
                W.say_ready(os.environ)

    try:
        trio.run(main)
    except (LifespanFailureError, BaseExceptionGroup) as exc:
        failure = _lifespan_failure(exc, LifespanFailureError)
        if failure is None:
            raise
        print(f"agentlocator: startup failed: {failure}", file=sys.stderr)
        return 2
    return 0


def _lifespan_failure(exc: BaseException, kind: type) -> BaseException | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _lifespan_failure(inner, kind)
            if found is not None:
                return found
    return None


def worker_count(flag: int | None, env_workers: int | None, database_url: str) -> int:
    """--workers, else WORKERS, else the cores; an in-memory database cannot be shared, so
    it means one process (asked for more explicitly: a configuration error)."""
    from native.config import ConfigError
    from server.workers import default_workers, in_memory_database

    asked = flag if flag is not None else env_workers
    if asked is not None and asked < 1:
        raise ConfigError(f"--workers {asked}: must be 1 or more")
    if in_memory_database(database_url):
        if asked is not None and asked > 1:
            raise ConfigError(f"--workers {asked} with DATABASE_URL={database_url}: workers share the database, "
                              "and an in-memory one lives in one process (use a file or PostgreSQL)")
        return 1
    return asked if asked is not None else default_workers()


def bind_refusal(host: str, twilio_auth_token: str | None, insecure: bool) -> str | None:
    """Why `serve` will not listen on ``host`` (None: it will). Without TWILIO_AUTH_TOKEN
    nothing Twilio sends can be verified, so only loopback, unless the operator insists."""
    from server.security import is_loopback_host

    if twilio_auth_token or insecure or is_loopback_host(host):
        return None
    return (f"refusing to listen on {host} without TWILIO_AUTH_TOKEN: webhooks and the media websocket "
            "could not be verified, so anyone reaching this address could place calls. Set "
            "TWILIO_AUTH_TOKEN, or listen on 127.0.0.1, or pass --insecure (AGENTLOCATOR_INSECURE=1) "
            "if you really mean it.")


def _call(args: argparse.Namespace) -> int:
    import trio

    from server.caller.call import CallIds
    from server.caller.client import place_call, prepare
    from server.caller.report import summary, write_json, write_stereo_wav, write_timeline_png
    from server.caller.script import load_script

    from server.caller.client import twiml_url_for

    steps = prepare(load_script(args.script))
    headers: list[tuple[str, str]] = []
    signed_twiml = None
    if args.auth_token:
        from server.security import SignatureChecker

        signed = args.signed_url or args.url
        headers.append(("X-Twilio-Signature", SignatureChecker(args.auth_token).sign(signed, {})))
        signed_twiml = twiml_url_for(signed) if args.signed_url else None

    def show(ev: dict) -> None:
        if not args.quiet:
            print(json.dumps(ev, ensure_ascii=False), flush=True)

    ids = CallIds(from_number=args.from_number, to_number=args.to_number, account_sid=args.account_sid)
    subprotocols = [args.subprotocol] if args.subprotocol else None
    outcome = trio.run(lambda: place_call(args.url, steps, ids=ids, subprotocols=subprotocols,
                                          headers=headers, on_event=show, twiml_url=args.twiml_url,
                                          auth_token=args.auth_token, signed_twiml_url=signed_twiml))
    args.out.mkdir(parents=True, exist_ok=True)
    data = summary(outcome.call, outcome.figures)
    paths = {ext: args.out / f"{args.name}.{ext}" for ext in ("json", "wav", "png")}
    write_json(paths["json"], data)
    write_stereo_wav(paths["wav"], outcome.call)
    write_timeline_png(paths["png"], outcome.call, outcome.figures)
    print(json.dumps({"summary": str(paths["json"]), "wav": str(paths["wav"]), "png": str(paths["png"]),
                      "turn_latency_ms": data["turn_latency_ms"], "halt_ms": data["halt_ms"],
                      "protocol_errors": len(data["protocol_errors"])}, ensure_ascii=False))
    return 1 if data["protocol_errors"] or data["script_problems"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "serve":
        return _serve(args)
    if args.command == "call":
        return _call(args)
    if args.command == "load":
        return _load(args)
    if args.command == "demo":
        from server.demo import DEMO_SCRIPT, run_demo

        if args.show_script:
            print(DEMO_SCRIPT, end="")
            return 0
        return run_demo(out=args.out, script=args.script, keep_server_log=args.keep_server_log)
    return 2


if __name__ == "__main__":
    sys.exit(main())
