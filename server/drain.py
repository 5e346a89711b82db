"""Graceful drain: SIGTERM stops taking calls, lets the live ones finish, then exits.

One :class:`Drain` per app (``app.drain``). From :meth:`Drain.begin` (SIGTERM, see
:func:`stop_on_signals`):

- no new calls: /twiml answers with the polite busy line, /version says ``draining``, and a
  media websocket whose token was minted after the drain began is refused (1013, try later).
  A websocket for a call answered *before* the drain (its TwiML went out just before SIGTERM;
  Twilio connects a moment later) is still let in: refusing it would drop a call already
  promised, without a word;
- live calls go on, up to DRAIN_SECONDS; a call that ends on its own before then is not
  touched;
- at the deadline ``closing`` is set: every call still live ends as at MAX_CALL_MINUTES
  (server.session: the agent's goodbye line, then hang up; close reason ``drain``), and the
  call's end is written as always (lead, transcript, follow-up queued in the outbox);
- when the last call is written (and no socket is left at the door), the server stops and
  the process exits 0.

SIGINT stops at once, as before (live calls end with close reason ``shutdown``; their data is
written, the caller is cut off). Under ``serve --workers N`` the parent forwards both signals
to every worker (server.workers).
"""
from __future__ import annotations

import logging
import signal
import time
from typing import Any

import trio

from telemetry.logs import log_event

POLL_S = 0.1
# After `closing`, calls need the goodbye (server.session.CALL_LIMIT_GOODBYE_S) and their
# end-of-call writes; past this the server stops anyway (the calls end as `shutdown`).
CLOSING_GRACE_S = 60.0


class Drain:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.closing = trio.Event()  # "end politely now", shared by every call (CallDeps.closing)
        self.since: float | None = None  # wall clock (time.time) of begin(); tokens minted later are refused
        self.done = trio.Event()

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self) -> bool:
        """Stop taking calls (False if already draining)."""
        if self.since is not None:
            return False
        self.since = time.time()
        return True

    def refuses_token_minted_at(self, minted_at: float) -> bool:
        return self.since is not None and minted_at > self.since

    async def run(self, gate: Any) -> None:
        """From begin() until every call of this process is over and written."""
        deadline = trio.current_time() + self.seconds
        log_event("SHUTDOWN", phase="draining", drain_seconds=self.seconds, live_calls=len(gate.active),
                  pending=gate.pending)
        with trio.move_on_at(deadline):
            await _until_idle(gate)
        if gate.active or gate.pending:
            log_event("SHUTDOWN", phase="drain deadline", live_calls=len(gate.active), pending=gate.pending,
                      note="the live calls hear the closing line and end (close reason drain)")
            self.closing.set()
            with trio.move_on_after(CLOSING_GRACE_S):
                await _until_idle(gate)
            if gate.active:
                log_event("ERROR", logging.ERROR, where="drain", live_calls=len(gate.active),
                          error=f"calls still up {CLOSING_GRACE_S:g} s after the closing line; stopping anyway")
        log_event("SHUTDOWN", phase="drained", live_calls=len(gate.active))
        self.done.set()


async def _until_idle(gate: Any) -> None:
    while gate.active or gate.pending:
        await trio.sleep(POLL_S)


async def stop_on_signals(signals: Any, app: Any, stop: trio.Event) -> None:
    """The server's signal handling (``agentlocator serve``): SIGTERM drains (once; repeats
    are ignored), SIGINT stops now; ``stop`` is hypercorn's shutdown trigger."""
    async with trio.open_nursery() as nursery:
        async for signum in signals:
            if signum == signal.SIGTERM and getattr(app, "gate", None) is not None:
                drain: Drain = app.drain
                if drain.begin():
                    async def drain_then_stop() -> None:
                        await drain.run(app.gate)
                        stop.set()

                    nursery.start_soon(drain_then_stop)
                continue
            # SIGINT, or SIGTERM before the app has started (nothing to drain)
            log_event("SHUTDOWN", phase="stopping", signal=signal.Signals(signum).name,
                      live_calls=len(getattr(getattr(app, "gate", None), "active", ())))
            stop.set()
            nursery.cancel_scope.cancel()
            return
