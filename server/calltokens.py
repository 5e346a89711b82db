"""Per-call websocket tokens: /twiml mints one, the stream's `start` must bring it back.

Twilio signs the websocket upgrade over the stream URL only, which is the same for every
call, so one captured signature would open any number of calls. The token closes that: the
TwiML answer (to a signature-checked /twiml) carries ``<Parameter name="token">``, an
HMAC-SHA256 over the CallSid, an expiry and the call's other parameters (From, To, ...);
Twilio hands it back in `start`'s customParameters. A token is good for one connection
(:class:`CallTokens.consume`), for ``TOKEN_TTL_S``, for that CallSid and those parameters.

The secret: AGENTLOCATOR_SECRET, else derived from TWILIO_AUTH_TOKEN under a fixed label,
else random per process (local mode: tokens still work, within this one process).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Callable, Mapping

TOKEN_PARAM = "token"
TOKEN_TTL_S = 120.0
USED_CAPACITY = 100_000  # CallSids remembered as used; each only until its token expires
_LABEL_FROM_TWILIO = b"agentlocator/server-secret/v1"


def server_secret(agentlocator_secret: str | None, twilio_auth_token: str | None) -> tuple[bytes, str]:
    """(master secret, where it came from) — the source is logged, never the secret."""
    if agentlocator_secret:
        return hashlib.sha256(agentlocator_secret.encode()).digest(), "AGENTLOCATOR_SECRET"
    if twilio_auth_token:
        return hmac.new(twilio_auth_token.encode(), _LABEL_FROM_TWILIO, hashlib.sha256).digest(), \
            "derived from TWILIO_AUTH_TOKEN"
    return secrets.token_bytes(32), "random per process (local mode)"


def subkey(master: bytes, label: str) -> bytes:
    """One key per purpose (websocket tokens, dashboard sessions, CSRF), all from one secret."""
    return hmac.new(master, b"agentlocator/" + label.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _canonical(call_sid: str, expires: int, nonce: str, bound: Mapping[str, str]) -> bytes:
    return json.dumps(["v1", call_sid, expires, nonce, sorted(bound.items())], ensure_ascii=True,
                      separators=(",", ":")).encode()


class CallTokens:
    """Mint and check per-call tokens; remember which CallSids have connected (bounded)."""

    def __init__(self, master: bytes, ttl_s: float = TOKEN_TTL_S, capacity: int = USED_CAPACITY,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = subkey(master, "ws-token")
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._clock = clock
        self._used: dict[str, float] = {}  # CallSid -> when its token expires (insertion ordered)

    def mint(self, call_sid: str, bound: Mapping[str, str]) -> str:
        expires = int(self._clock() + self.ttl_s)
        nonce = _b64(secrets.token_bytes(9))
        mac = hmac.new(self._key, _canonical(call_sid, expires, nonce, bound), hashlib.sha256).digest()
        return f"{expires}.{nonce}.{_b64(mac)}"

    def check(self, token: str | None, call_sid: str, bound: Mapping[str, str]) -> str | None:
        """None if ``token`` was minted for this CallSid and these parameters and is still
        fresh; else why not (missing | malformed | forged | expired)."""
        if not token:
            return "missing"
        parts = token.split(".")
        if len(token) > 200 or len(parts) != 3 or not parts[0].isdigit() or len(parts[0]) > 12:
            return "malformed"
        expires, nonce, mac = int(parts[0]), parts[1], parts[2]
        want = _b64(hmac.new(self._key, _canonical(call_sid, expires, nonce, bound), hashlib.sha256).digest())
        if not hmac.compare_digest(want.encode(), mac.encode()):
            return "forged"
        if self._clock() > expires:
            return "expired"
        return None

    def consume(self, call_sid: str, expires_at: float | None = None) -> bool:
        """Single use: True the first time a CallSid connects, False after. Memory is bounded:
        an entry is kept only while a token for it could still be valid, and when the table is
        full of live entries new connections are refused (fail closed), not remembered."""
        now = self._clock()
        if call_sid in self._used:
            if self._used[call_sid] >= now:
                return False
            del self._used[call_sid]
        if len(self._used) >= self.capacity:
            self._prune(now)
            if len(self._used) >= self.capacity:
                return False
        self._used[call_sid] = expires_at if expires_at is not None else now + self.ttl_s
        return True

    def _prune(self, now: float) -> None:
        for sid in [sid for sid, until in self._used.items() if until < now]:
            del self._used[sid]

    @staticmethod
    def expiry_of(token: str) -> float:
        head = token.split(".", 1)[0]
        return float(head) if head.isdigit() else 0.0

    def __len__(self) -> int:
        return len(self._used)
