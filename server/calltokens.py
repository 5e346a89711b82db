"""Per-call websocket tokens: /twiml mints one, the stream's `start` must bring it back.

Twilio signs the websocket upgrade over the stream URL only, which is the same for every
call, so one captured signature would open any number of calls. The token closes that: the
TwiML answer (to a signature-checked /twiml) carries ``<Parameter name="token">``, an
HMAC-SHA256 over the CallSid, an expiry and the call's other parameters (From, To, ...);
Twilio hands it back in `start`'s customParameters. A token is good for one connection
(:class:`CallTokens.consume`), for ``TOKEN_TTL_S``, for that CallSid and those parameters.

The secret: AGENTLOCATOR_SECRET, else derived from TWILIO_AUTH_TOKEN under a fixed label,
else random per server (local mode: under ``serve --workers N`` the parent makes one and
hands it to every worker, so a token minted by one worker opens a call on another).

Single use across workers: with ``shared_dir`` (the server's run directory, made by the
parent, 0700) a CallSid is taken by hard-linking a file already dated with its expiry to
``shared_dir/<CallSid>`` (link(2), like O_EXCL, fails if the name exists), which is atomic
between processes: a token replayed to another worker finds the file and is
refused. A file's mtime is its token's expiry; expired ones are pruned (under an flock, so a
prune never removes an entry another process has just made).
"""
from __future__ import annotations

import base64
import errno
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Callable, Mapping

TOKEN_PARAM = "token"
TOKEN_TTL_S = 120.0
USED_CAPACITY = 100_000  # CallSids remembered as used; each only until its token expires
PRUNE_EVERY = 256  # shared record: prune expired entries after this many new ones...
PRUNE_INTERVAL_S = 30.0  # ... or this long after the last prune
PRUNE_SLACK_S = 5.0  # an entry's expiry must be this far past before it is pruned
_LABEL_FROM_TWILIO = b"agentlocator/server-secret/v1"


def server_secret(agentlocator_secret: str | None, twilio_auth_token: str | None) -> tuple[bytes, str]:
    """(master secret, where it came from) — the source is logged, never the secret."""
    if agentlocator_secret:
        return hashlib.sha256(agentlocator_secret.encode()).digest(), "AGENTLOCATOR_SECRET"
    if twilio_auth_token:
        return hmac.new(twilio_auth_token.encode(), _LABEL_FROM_TWILIO, hashlib.sha256).digest(), \
            "derived from TWILIO_AUTH_TOKEN"
    return secrets.token_bytes(32), "random per process (local mode)"


def shared_secret() -> str:
    """For `serve --workers N` without AGENTLOCATOR_SECRET / TWILIO_AUTH_TOKEN: the parent's
    random secret, handed to its workers as AGENTLOCATOR_SECRET (64 hex characters)."""
    return secrets.token_hex(32)


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
                 clock: Callable[[], float] = time.time, shared_dir: "str | os.PathLike[str] | None" = None) -> None:
        self._key = subkey(master, "ws-token")
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._clock = clock
        self._used: dict[str, float] = {}  # CallSid -> when its token expires (insertion ordered)
        self._shared = _SharedUsed(Path(shared_dir), capacity, clock) if shared_dir is not None else None

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
        if self._shared is not None:
            return self._shared.take(call_sid, expires_at if expires_at is not None else now + self.ttl_s)
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

    def minted_at(self, token: str) -> float:
        """When a (checked) token was minted, to the second, rounded down."""
        return self.expiry_of(token) - self.ttl_s

    def __len__(self) -> int:
        return self._shared.count() if self._shared is not None else len(self._used)


class _SharedUsed:
    """The used CallSids of every worker of one server: one file per CallSid (see the module
    doc). Local file operations only, microseconds each: no database round trip at the door,
    and a database outage cannot refuse calls or let replays in."""

    def __init__(self, directory: Path, capacity: int, clock: Callable[[], float]) -> None:
        self.dir = directory
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.capacity = capacity
        self._clock = clock
        self._lock_path = self.dir / ".lock"
        self._since_prune = 0
        # Entries counted at the last prune (every worker's) plus this worker's own since;
        # near the capacity every take counts exactly (it prunes first).
        self._live = self.count()
        self._pruned_at = clock()

    def count(self) -> int:
        with os.scandir(self.dir) as entries:
            return sum(1 for e in entries if not e.name.startswith("."))

    def _create(self, path: Path, expires_at: float) -> bool:
        # The entry must appear with its expiry already on it: created empty and dated after, a
        # sibling racing for the same CallSid could stat it in between, read the creation time
        # as an expired entry and replace it (two winners). So: a private file dated first,
        # then hard-linked into place (link(2) fails if the name exists, like O_EXCL).
        tmp = self.dir / f".new-{os.getpid()}-{path.name}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.utime(fd, (expires_at, expires_at))
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        self._live += 1
        self._since_prune += 1
        return True

    def _locked(self, blocking: bool = True) -> "_Flock":
        return _Flock(self._lock_path, blocking)

    def take(self, call_sid: str, expires_at: float) -> bool:
        """True for the first connection of ``call_sid`` in any worker; False after (until its
        token expired), and False when the record is full of live entries (fail closed)."""
        now = self._clock()
        if self._since_prune >= PRUNE_EVERY or now - self._pruned_at > PRUNE_INTERVAL_S:
            self.prune(now, blocking=False)
        if self._live + PRUNE_EVERY >= self.capacity:  # near full: count exactly
            self.prune(now)
            if self._live >= self.capacity:
                return False
        path = self.dir / call_sid  # a checked CallSid (CA + 32 hex): a plain file name
        if self._create(path, expires_at):
            return True
        # Taken: refused while its expiry is ahead; an expired entry is replaced, under the lock.
        try:
            if os.stat(path).st_mtime >= now:
                return False
        except FileNotFoundError:
            pass
        with self._locked():
            try:
                if os.stat(path).st_mtime >= now:
                    return False
                os.unlink(path)
            except FileNotFoundError:
                pass
            return self._create(path, expires_at)

    def prune(self, now: float, blocking: bool = True) -> None:
        """Remove expired entries; skipped (not blocking=False) if another worker is at it."""
        with self._locked(blocking) as held:
            if not held:
                return
            live = 0
            with os.scandir(self.dir) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    try:
                        if entry.stat().st_mtime < now - PRUNE_SLACK_S:
                            os.unlink(entry.path)
                        else:
                            live += 1
                    except FileNotFoundError:
                        pass
            self._live = live
            self._since_prune = 0
            self._pruned_at = now


class _Flock:
    def __init__(self, path: Path, blocking: bool) -> None:
        self.path = path
        self.blocking = blocking
        self.fd = -1

    def __enter__(self) -> bool:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if self.blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            os.close(self.fd)
            self.fd = -1
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = -1
