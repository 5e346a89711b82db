"""The Quart-Trio app: webhooks, TwiML, /version, /metrics and the Twilio media websocket.

Run with ``hypercorn --worker-class trio server.app:app`` or ``agentlocator serve``.
Settings and providers are chosen at startup (lifespan), not at import, so importing this
module never reads the environment; a bad setup fails startup with a clear message.
"""
from __future__ import annotations

import hmac
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import trio
from prometheus_client import CONTENT_TYPE_LATEST
from quart import Response, request, websocket
from quart_trio import QuartTrio
from quart_trio.asgi import TrioASGIWebsocketConnection

from telemetry import metrics
from server import __version__, twiml
from telemetry import logs
from server.calltokens import CallTokens, server_secret
from server import media_socket
from server.drain import Drain
from server.edge import call_params as checked_call_params
from server.edge import valid_sid
from server.gate import Admitted, CallGate, ReplayTransport
from telemetry.logs import log_event
from server.security import ClientView, SignatureChecker, TrustedProxies, client_view, signed_urls, view_base
from server.settings import Settings
from server.transport import TransportClosed
from server.webauth import WebSecurity, bearer, is_local, security_headers
from server.wiring import Wiring, build_wiring

WEBHOOKS = ("stream_status", "stream_ended", "call_status")
# Twilio's frames are ~200 bytes (a 20 ms media frame) to a few KiB (`start`); anything near
# this is not Twilio. Hypercorn is configured with the same limit (server_config); the check
# here holds when the app runs under another server config.
MAX_WS_MESSAGE = 64 * 1024
MAX_HTTP_BODY = 64 * 1024  # webhooks are a few KiB of form fields
# After the peer disconnects, the call gets this long to wind down (log WS_CLOSE, store the
# call's end) before the request's scope is cancelled.
CLOSE_GRACE_S = 5.0


class _Disconnected:
    """Put on the websocket's receive channel when the peer goes away (instead of an abrupt cancel)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class _WebsocketConnection(TrioASGIWebsocketConnection):
    """quart-trio cancels the handler the instant the peer disconnects, so the call could not
    log why it ended. Here the disconnect is delivered as a message and the call gets a
    bounded grace period to finish. A message over MAX_WS_MESSAGE closes the socket (1009)."""

    async def __call__(self, receive: Any, send: Any) -> None:  # type: ignore[override]
        self._asgi_send = send
        self._queueing: trio.CancelScope | None = None
        self.scope["agentlocator.stop_queueing"] = self._stop_queueing  # type: ignore[typeddict-unknown-key]
        await super().__call__(receive, send)

    def _stop_queueing(self) -> None:
        """We closed: nobody reads any more. The peer's last frames are dropped from now on
        (the one waiting for room too): queued, they would fill the channels and stall
        hypercorn's reader before the peer's close reply, and the connection would never be
        shut."""
        self.scope["agentlocator.closing"] = True  # type: ignore[typeddict-unknown-key]
        if self._queueing is not None:
            self._queueing.cancel()

    async def handle_messages(self, nursery: trio.Nursery, receive: Any) -> None:  # type: ignore[override]
        while True:
            event = await receive()
            if event["type"] == "websocket.receive":
                message = event.get("bytes") or event.get("text") or ""
                if len(message) > MAX_WS_MESSAGE:
                    try:
                        await self._asgi_send({"type": "websocket.close", "code": 1009, "reason": "message too big"})
                    except Exception:  # noqa: BLE001 - already closing
                        pass
                    self.scope["agentlocator.disconnected"] = True  # type: ignore[typeddict-unknown-key]
                    await self.send_channel.send(_Disconnected(1009, "message too big"))  # type: ignore[arg-type]
                    break
                if self.scope.get("agentlocator.closing"):
                    continue  # see _stop_queueing
                with trio.CancelScope() as self._queueing:
                    await self.send_channel.send(message)
                self._queueing = None
            elif event["type"] == "websocket.disconnect":
                code = int(event.get("code", 1006))
                reason = event.get("reason") or ("closed" if code == 1000 else "dropped")
                self.scope["agentlocator.disconnected"] = True  # type: ignore[typeddict-unknown-key]
                if not self.scope.get("agentlocator.closing"):  # (after our close nobody reads it)
                    await self.send_channel.send(_Disconnected(code, reason))  # type: ignore[arg-type]
                break
        await trio.sleep(CLOSE_GRACE_S)
        nursery.cancel_scope.cancel()


class QuartTransport:
    """server.transport.Transport over the current Quart websocket."""

    def __init__(self, ws: Any, scope: dict) -> None:
        self._ws = ws
        self._scope = scope
        self._closed = False

    def _peer_gone(self) -> bool:
        return bool(self._scope.get("agentlocator.disconnected"))

    async def receive(self) -> str:
        if self._closed:
            raise TransportClosed(1000, "closed by us")
        message = await self._ws.receive()
        if isinstance(message, _Disconnected):
            self._closed = True
            raise TransportClosed(message.code, message.reason)
        if isinstance(message, bytes):
            return message.decode("utf-8", errors="replace")
        return message

    async def send(self, text: str) -> None:
        # hypercorn silently drops sends after the peer left; make that visible to the session,
        # but only once its receive side has read the disconnect. Before that, what the peer
        # said last (Twilio's `stop`) is still queued: a send failing first would end the call
        # as "dropped" when the caller simply hung up. The frame is dropped, as hypercorn would.
        if self._closed:
            raise TransportClosed(1006, "peer gone")
        if self._peer_gone():
            return
        try:
            await self._ws.send(text)
        except trio.Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - any send failure means the link is gone
            raise TransportClosed(1006, f"send failed: {exc}") from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed or self._peer_gone():
            self._closed = True
            return
        self._closed = True
        stop_queueing = self._scope.get("agentlocator.stop_queueing")
        if stop_queueing is not None:
            stop_queueing()
        try:
            await self._ws.close(code, reason)
        except Exception:  # noqa: BLE001 - already closing
            pass


BACKGROUND_RESTART_S = 5.0
# Startup waits this long for the synthesizer to cache the fixed lines (espeak takes a few
# hundred ms); a slower TTS goes on warming in the background while the app already serves.
TTS_WARM_WAIT_S = 3.0
TTS_WARM_TIMEOUT_S = 60.0


async def _warm_tts(synthesizer: Any, lines: list[str], done: trio.Event) -> None:
    """Cache the brain's fixed lines (greeting, clarify, goodbye) so they start instantly."""
    started = time.perf_counter()
    try:
        with trio.move_on_after(TTS_WARM_TIMEOUT_S) as scope:
            await synthesizer.warm(lines)
        log_event("STARTUP", tts_warm_ms=round((time.perf_counter() - started) * 1000, 1),
                  tts_warm_lines=len(lines), tts_warm_done=not scope.cancelled_caught,
                  synthesizer=getattr(synthesizer, "name", type(synthesizer).__name__))
    except Exception as exc:  # noqa: BLE001 - uncached lines are only slower to start
        log_event("ERROR", logging.WARNING, where="tts warm", error=repr(exc)[:300],
                  after_ms=round((time.perf_counter() - started) * 1000, 1))
    finally:
        done.set()


async def _supervised(task: Callable[[], Any]) -> None:
    """Run a background task (e.g. the WhatsApp outbox) for the app's lifetime: a crash is
    logged and the task restarted, never taking the server (and its calls) down with it."""
    name = getattr(task, "__qualname__", repr(task))
    while True:
        try:
            await task()
            return
        except Exception as exc:  # noqa: BLE001 - logged; the app keeps serving calls
            log_event("ERROR", logging.ERROR, where=f"background {name}", error=repr(exc)[:300],
                      restart_in_s=BACKGROUND_RESTART_S)
        await trio.sleep(BACKGROUND_RESTART_S)


def git_commit() -> str:
    """Baked value (AGENTLOCATOR_COMMIT, set by an image build) or the checkout's HEAD."""
    baked = os.environ.get("AGENTLOCATOR_COMMIT")
    if baked:
        return baked
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class AgentApp(QuartTrio):
    asgi_websocket_class = _WebsocketConnection
    settings: Settings
    wiring: Wiring
    checker: SignatureChecker | None
    commit: str
    gate: CallGate
    proxies: TrustedProxies
    local_only: bool  # no TWILIO_AUTH_TOKEN and not AGENTLOCATOR_INSECURE: Twilio routes answer this machine only
    drain: Drain  # SIGTERM: no new calls, live ones finish (server.drain)


def _harden_hypercorn() -> None:
    """Two holes in hypercorn's websocket stream (0.18), closed when this module is imported,
    so however the app is served (``agentlocator serve``, ``hypercorn server.app:app``) they
    are closed before the first connection:

    - a message over the size limit gets a 1009 close, but the half-filled buffer stays and
      the events after it in the same read are dropped (the peer's own close among them, so
      the call only ended at its inbound timeout); the peer's next frame of the other type
      (binary after text) then raised TypeError in the connection task, which took the whole
      server (every live call) down. Here: once over the limit, the buffer is emptied and
      every later message of that connection ignored; control frames still count.
    - permessage-deflate is accepted when a client offers it, and a compressed frame is
      inflated before any size check: a few KiB on the wire can become hundreds of MiB.
      Twilio does not compress; the extension is not offered back.
    """
    from hypercorn.protocol import ws_stream
    from wsproto.extensions import Extension

    stream = ws_stream.WSStream
    if getattr(stream, "agentlocator_hardened", False):
        return

    async def _handle_events(self: Any) -> None:
        for event in self.connection.events():
            if isinstance(event, ws_stream.Message):
                if getattr(self, "_agentlocator_over", False):
                    continue
                try:
                    self.buffer.extend(event)
                except ws_stream.FrameTooLargeError:
                    self._agentlocator_over = True
                    self.buffer.clear()
                    await self._send_wsproto_event(ws_stream.CloseConnection(code=ws_stream.CloseReason.MESSAGE_TOO_BIG))
                    continue
                if event.message_finished:
                    await self.app_put(self.buffer.to_message())
                    self.buffer.clear()
            elif isinstance(event, ws_stream.Ping):
                await self._send_wsproto_event(event.response())
            elif isinstance(event, ws_stream.CloseConnection):
                if self.connection.state == ws_stream.ConnectionState.REMOTE_CLOSING:
                    await self._send_wsproto_event(event.response())
                await self.send(ws_stream.StreamClosed(stream_id=self.stream_id))

    class _NoDeflate(Extension):
        name = "permessage-deflate"

        def enabled(self) -> bool:
            return False

        def offer(self) -> bool:
            return False

        def accept(self, offer: str) -> None:  # type: ignore[override]
            return None

    stream._handle_events = _handle_events  # type: ignore[method-assign]
    stream.agentlocator_hardened = True  # type: ignore[attr-defined]
    ws_stream.PerMessageDeflate = _NoDeflate  # type: ignore[misc]


_harden_hypercorn()
media_socket.install(MAX_WS_MESSAGE)  # hypercorn's websocket streams offer the raw media path


def server_config(host: str, port: int) -> Any:
    """The hypercorn config every way of serving the app shares (cli serve, tests, benches)."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None  # our JSON lines say what matters; no per-request noise
    config.websocket_max_message_size = MAX_WS_MESSAGE  # hypercorn closes with 1009 past it
    return config


def create_app(
    settings: Settings | None = None,
    wiring_factory: Callable[[Settings], Wiring] = build_wiring,
    configure_logs: bool = True,
) -> AgentApp:
    app = AgentApp(__name__)
    app.config["BACKGROUND_TASK_SHUTDOWN_TIMEOUT"] = 5
    app.config["MAX_CONTENT_LENGTH"] = MAX_HTTP_BODY
    app.config["MAX_FORM_MEMORY_SIZE"] = MAX_HTTP_BODY
    app.config["MAX_FORM_PARTS"] = 100
    app.drain = Drain(settings.drain_seconds if settings is not None else 900.0)

    @app.before_serving
    async def startup() -> None:
        s = settings if settings is not None else Settings.from_env()
        if configure_logs:
            logs.configure(s.log_level)
        app.settings = s
        app.wiring = wiring_factory(s)
        app.commit = git_commit()
        app.checker = SignatureChecker(s.twilio_auth_token) if s.twilio_auth_token else None
        master, secret_source = server_secret(s.agentlocator_secret, s.twilio_auth_token)
        from server.workers import SECRET_SOURCE_ENV, used_calls_dir

        secret_source = s.env.get(SECRET_SOURCE_ENV) or secret_source  # the parent's, under --workers
        app.drain.seconds = s.drain_seconds
        app.gate = CallGate(CallTokens(master, shared_dir=used_calls_dir(s.env)), s.max_calls,
                            s.twilio_account_sid, drain=app.drain)
        if hasattr(app.wiring.call_deps, "closing"):  # the drain's "end politely now" reaches every call
            app.wiring.call_deps.closing = app.drain.closing
        app.proxies = TrustedProxies(s.forwarded_allow_ips)
        app.local_only = app.checker is None and not s.insecure
        app.extensions["agentlocator.web"] = WebSecurity.build(
            s.dashboard_token, s.forwarded_allow_ips, s.allowed_hosts, s.public_base_url, master)
        for bp in app.wiring.blueprints:
            if bp.name not in app.blueprints:
                app.register_blueprint(bp)
        log_event(
            "STARTUP", version=__version__, commit=app.commit, language=s.agent_language,
            providers=app.wiring.providers, speech=app.wiring.speech, public_base_url=s.public_base_url,
            signatures=app.checker is not None, notes=app.wiring.notes,
            ws_hmac_from=secret_source, max_calls=s.max_calls, max_call_minutes=s.max_call_minutes,
            forwarded_allow_ips=s.forwarded_allow_ips, metrics_token=s.metrics_token is not None,
            drain_seconds=s.drain_seconds,
        )
        if app.checker is None and s.insecure:
            log_event(
                "STARTUP", logging.WARNING, warning="INSECURE: TWILIO_AUTH_TOKEN is not set and "
                "AGENTLOCATOR_INSECURE=1: webhooks, TwiML and the media websocket are open to ANYONE who "
                "can reach this server (anyone can place calls on your providers' bills)",
            )
        elif app.checker is None:
            log_event(
                "STARTUP", logging.WARNING, warning="TWILIO_AUTH_TOKEN is not set: webhook and "
                "websocket signatures are NOT checked, so Twilio routes answer local requests only "
                "(this machine, no proxy); fine for local runs, not for production",
            )
        for task in app.wiring.background:
            app.nursery.start_soon(_supervised, task)
        synthesizer = getattr(app.wiring.call_deps, "synthesizer", None)
        if synthesizer is not None and app.wiring.warm_lines:
            warmed = trio.Event()
            app.nursery.start_soon(_warm_tts, synthesizer, list(app.wiring.warm_lines), warmed)
            with trio.move_on_after(TTS_WARM_WAIT_S):
                await warmed.wait()

    def _peer(conn: Any) -> str | None:
        client = conn.scope.get("client")
        return client[0] if client else None

    def _view(conn: Any) -> ClientView:
        return client_view(_peer(conn), conn.scheme, conn.host, conn.headers, app.proxies)

    def _base(conn: Any = request) -> str:
        # PUBLIC_BASE_URL when set (forwarded host headers are then ignored), else what a
        # trusted proxy said, else the request's own scheme and Host.
        return view_base(app.settings.public_base_url, _view(conn))

    def _refused_locally(conn: Any) -> bool:
        """Local mode (no TWILIO_AUTH_TOKEN, not AGENTLOCATOR_INSECURE): nothing is signed, so
        only this machine, talking to us directly, may use the Twilio routes."""
        if not app.local_only or is_local(_peer(conn), conn.headers):
            return False
        log_event("WEBHOOK", logging.WARNING, path=conn.path[:200], status=403,
                  error="not a local request and TWILIO_AUTH_TOKEN is not set (AGENTLOCATOR_INSECURE=1 allows it)")
        return True

    async def _signature_ok(params: dict[str, str]) -> bool:
        if _refused_locally(request):
            return False
        if app.checker is None:
            return True
        urls = signed_urls(_base(), request.path, request.query_string.decode("latin1"))
        if app.checker.valid(urls, params, request.headers.get("X-Twilio-Signature")):
            return True
        log_event("WEBHOOK", logging.WARNING, path=request.path, status=403,
                  error="invalid or missing X-Twilio-Signature", url=urls[0][:300])
        return False

    def _metrics_token_ok() -> bool:
        token = app.settings.metrics_token
        if not token:
            return True
        given = bearer(request.headers)
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def _metrics_refused() -> Response:
        return Response("METRICS_TOKEN required (Authorization: Bearer)", 401,
                        {"WWW-Authenticate": 'Bearer realm="AgentLocator metrics"'})

    @app.after_request
    async def _headers(response: Response) -> Response:
        security_headers(response.headers)
        return response

    @app.get("/version")
    async def version() -> Any:
        if not _metrics_token_ok():
            return _metrics_refused()
        # providers {asr, tts, brain} is the contract; speech adds the fallbacks and why each was chosen
        return {"version": __version__, "commit": app.commit, "providers": app.wiring.providers,
                "speech": app.wiring.speech, "draining": app.drain.draining}

    @app.get("/health")
    async def health() -> Any:
        # For load balancers' health checks (no token: it says nothing else): 503 while the
        # server drains (SIGTERM), so new calls go to the other instances.
        if app.drain.draining:
            return Response('{"status":"draining"}', 503, content_type="application/json")
        return {"status": "ok"}

    @app.get("/metrics")
    async def prometheus() -> Response:
        if not _metrics_token_ok():
            return _metrics_refused()
        return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)

    @app.route("/twiml", methods=["GET", "POST"])
    async def twiml_route() -> Any:
        params = dict((await request.form).items()) if request.method == "POST" else {}
        if not await _signature_ok(params):
            return "forbidden", 403
        raw = {**dict(request.args.items()), **params}
        call_sid = raw.get("CallSid", "")
        if not valid_sid("CallSid", call_sid):
            log_event("WEBHOOK", logging.WARNING, path="/twiml", status=400, error="CallSid missing or malformed")
            return Response("CallSid missing or malformed", 400)
        call_params = checked_call_params(raw)
        if app.drain.draining:  # stopping: the polite busy line; the caller calls again (another instance)
            log_event("WEBHOOK", logging.WARNING, path="/twiml", call_sid=call_sid, busy=True, draining=True)
            return Response(twiml.busy(app.settings.agent_language), content_type="application/xml")
        if app.gate.full:
            log_event("WEBHOOK", logging.WARNING, path="/twiml", call_sid=call_sid, busy=True,
                      active_calls=len(app.gate.active), max_calls=app.gate.max_calls)
            return Response(twiml.busy(app.settings.agent_language), content_type="application/xml")
        bound = {k: v for k, v in call_params.items() if k != "CallSid"}
        token = app.gate.tokens.mint(call_sid, bound)
        xml = twiml.connect_stream(_base(), call_params, token)
        log_event("WEBHOOK", path="/twiml", call_sid=call_sid, from_number=call_params.get("From", ""))
        return Response(xml, content_type="application/xml")

    async def _after_webhook(name: str, params: dict[str, str], received: float) -> None:
        # Deferred work of a webhook: runs in the app's nursery after the 204 went out.
        log_event("WEBHOOK", path=f"/{name}", call_sid=params.get("CallSid", ""),
                  status=params.get("StreamEvent") or params.get("CallStatus") or "",
                  error=params.get("StreamError") or params.get("ErrorCode") or None,
                  handled_ms=round((time.perf_counter() - received) * 1000, 2))
        for handler in app.wiring.webhook_handlers:
            try:
                await handler(name, params)
            except Exception as exc:  # noqa: BLE001 - a follow-up must not take the app down
                log_event("ERROR", where=f"webhook {name}", error=repr(exc))

    def _webhook(name: str) -> Callable[[], Any]:
        async def handle() -> Any:
            received = time.perf_counter()
            params = dict((await request.form).items())
            if not await _signature_ok(params):
                return "forbidden", 403
            app.nursery.start_soon(_after_webhook, name, params, received)
            return "", 204

        handle.__name__ = f"webhook_{name}"
        return handle

    for name in WEBHOOKS:
        app.add_url_rule(f"/{name}", view_func=_webhook(name), methods=["POST"])

    @app.websocket(twiml.STREAM_PATH)
    async def media_stream() -> Any:
        if _refused_locally(websocket):
            return "forbidden", 403
        if app.checker is not None:
            base = _base(websocket)
            urls = signed_urls(base, websocket.path, websocket.query_string.decode("latin1"), websocket=True)
            if not app.checker.valid(urls, {}, websocket.headers.get("X-Twilio-Signature")):
                log_event("WEBHOOK", logging.WARNING, path=twiml.STREAM_PATH, status=403,
                          error="invalid or missing X-Twilio-Signature on websocket upgrade", url=urls[0][:300])
                return "forbidden", 403
        if not app.gate.can_upgrade():
            log_event("WEBHOOK", logging.WARNING, path=twiml.STREAM_PATH, status=503, error="busy",
                      active_calls=len(app.gate.active), pending=app.gate.pending)
            return "busy", 503
        requested = websocket.requested_subprotocols
        subprotocol = requested[0][:100] if requested else None
        # The checks above ran on the handshake either way; after the 101 the call reads and
        # writes its socket itself (server.media_socket) where hypercorn offers it.
        offer = websocket.scope.get("extensions", {}).get(media_socket.EXTENSION)
        transport: Any
        if offer is not None and app.settings.media_fast_path:
            transport = await offer.accept(subprotocol)
        else:
            await websocket.accept(subprotocol=subprotocol)
            ws = websocket._get_current_object()
            transport = QuartTransport(ws, ws.scope)
        if subprotocol is not None:
            log_event("PROTOCOL", msg="Twilio subprotocol added to handshake", subprotocol=subprotocol)
        metrics.ws_connections_total.inc()
        # Nothing of a call (session, lead, recorder row, provider stream) exists before this.
        admitted = await app.gate.admit(transport)
        if not isinstance(admitted, Admitted):
            return None
        try:
            await app.wiring.run_call(ReplayTransport(transport, [admitted.start_text]), app.wiring.call_deps)
        finally:
            app.gate.release(admitted.call_sid)
        await transport.close(1000, "call ended")
        return None

    return app


app = create_app()
