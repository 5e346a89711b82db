"""The local journal: store writes the database did not take, kept on disk until it does.

When a write of a call fails past its retries (the database is down, unreachable, full), the
recorder appends it here instead — one JSON line, written and ``fsync``-ed before the call goes
on — and the store keeper (leads.outbox) replays it in order when the database answers again,
at startup and every few seconds. Once a call has a write waiting here, its later writes queue
behind it (here too) until the replay caught up, so a call's writes land in the order made.

One file per process and database: ``journal-<database id>-<instance id>.jsonl`` in
``STORE_JOURNAL_DIR`` (default: next to the SQLite file; for PostgreSQL
``$XDG_STATE_HOME/agentlocator``, i.e. ``~/.local/state/agentlocator``). The process holds an
exclusive ``flock`` on its file for its life. A file whose lock can be taken belongs to a dead
process: the next instance on this host to look adopts it, replays what is left, deletes it.
The database id in the name keeps a journal from ever being replayed into another database.
The directory must be local (``flock`` on a network filesystem is not to be trusted).

Lines: a record ``{"id", "op", "call_sid", "owner", "args"}``, or ``{"done": [ids]}`` after
a replay. Replays are idempotent: the database keeps the ids it applied (``journal_applied``),
in the same transaction as the write, so a crash between the commit and the ``done`` mark
applies nothing twice. A torn last line (a crash mid-append) is skipped. Once everything was
applied the file is truncated. If the journal itself cannot be written (the disk is full), the
records stay in this process's memory and are still replayed: lost only if the process dies
before the database is back — and that is logged as an ERROR when it happens.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import errno
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

import trio

from dialog.base import LeadState, Slots
from leads.base import CallInfo, CallMetrics

MAX_PENDING = 200_000  # records held in memory when even the journal cannot take them


def default_dir(database_url: Any, env: Any) -> Path | None:
    """STORE_JOURNAL_DIR, else next to the SQLite file, else the user's state dir; None for
    an in-memory SQLite database (it dies with the process: the journal lives in memory too)."""
    configured = (env.get("STORE_JOURNAL_DIR") or "").strip()
    if configured:
        return Path(configured)
    if database_url.get_backend_name() == "sqlite":
        if not database_url.database or database_url.database == ":memory:":
            return None
        return Path(os.path.abspath(database_url.database)).parent
    state = (env.get("XDG_STATE_HOME") or "").strip() or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "agentlocator"


# -- the records' values as JSON -------------------------------------------------------------

def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, LeadState):
        return {"$lead": {"slots": dataclasses.asdict(value.slots), "status": value.status,
                          "meeting_at": _encode(value.meeting_at), "callback_at": _encode(value.callback_at), "do_not_call": value.do_not_call}}
    if isinstance(value, CallMetrics):
        return {"$metrics": dataclasses.asdict(value)}
    if isinstance(value, CallInfo):
        return {"$info": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "$dt" in value:
        return dt.datetime.fromisoformat(value["$dt"])
    if "$lead" in value:
        d = value["$lead"]
        return LeadState(Slots(**d["slots"]), d["status"], _decode(d["meeting_at"]), _decode(d.get("callback_at")),
                         bool(d.get("do_not_call")))
    if "$metrics" in value:
        return CallMetrics(**value["$metrics"])
    if "$info" in value:
        return CallInfo(**{k: _decode(v) for k, v in value["$info"].items()})
    return {k: _decode(v) for k, v in value.items()}


def encode_record(record: dict[str, Any]) -> bytes:
    return (json.dumps(_encode(record), ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def decode_lines(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """(records not marked done, in order; lines skipped as torn or unreadable)."""
    records: dict[str, dict[str, Any]] = {}
    bad = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if "done" in item:
            for rid in item["done"]:
                records.pop(rid, None)
        elif "id" in item:
            records[item["id"]] = _decode(item)
    return list(records.values()), bad


# -- the file ----------------------------------------------------------------------------------

class Journal:
    """This process's journal for one database. Async methods are called from the trio
    thread; the file is written in a worker thread of its own (one at a time, in order)."""

    def __init__(self, directory: Path | None, database_id: str, instance_id: str) -> None:
        self.dir = directory
        self.prefix = f"journal-{database_id[:12]}-"
        self.path = directory / f"{self.prefix}{instance_id}.jsonl" if directory is not None else None
        self.pending: collections.deque[dict[str, Any]] = collections.deque()  # own, not yet applied, in order
        self._per_call: collections.Counter[str] = collections.Counter()
        self._done: list[str] = []
        self._fd: int | None = None
        self._size = 0  # bytes of whole lines in the file
        self._lock = trio.Lock()
        self._io = trio.CapacityLimiter(1)
        self.durable_failures = 0  # records held in memory only (the file could not take them)

    # -- own records --
    def has_pending(self, call_sid: str) -> bool:
        return self._per_call.get(call_sid, 0) > 0

    def reserve(self, call_sid: str) -> None:
        """Mark the call as queued here *before* its record is written: a replay finishing the
        call's earlier records meanwhile must not let the next write overtake this one."""
        self._per_call[call_sid] += 1

    async def append(self, record: dict[str, Any]) -> OSError | None:
        """Queue one record (reserve() first) and make it durable; the OSError if the file
        could not take it (the record is then held in memory only)."""
        async with self._lock:
            if len(self.pending) >= MAX_PENDING:
                self._per_call[record["call_sid"]] -= 1
                return OSError(errno.ENOSPC, f"journal holds {MAX_PENDING} records already; dropped")
            self.pending.append(record)
            if self.path is None:
                return None
            data = encode_record(record)
            try:
                await trio.to_thread.run_sync(self._write, data, True, limiter=self._io)
            except OSError as exc:
                self.durable_failures += 1
                return exc
            return None

    def applied(self, record: dict[str, Any]) -> None:
        """The head record is in the database (or dropped for good)."""
        if self.pending and self.pending[0] is record:
            self.pending.popleft()
        else:
            self.pending.remove(record)
        self._per_call[record["call_sid"]] -= 1
        if self._per_call[record["call_sid"]] <= 0:
            del self._per_call[record["call_sid"]]
        self._done.append(record["id"])

    async def mark_done(self) -> None:
        """Write the done marks of applied records (no fsync: a lost mark only means an
        idempotent re-apply); truncate the file once nothing is pending."""
        async with self._lock:
            done, self._done = self._done, []
            if self.path is None or self._fd is None or not done:
                return
            try:
                if not self.pending:
                    await trio.to_thread.run_sync(self._truncate, limiter=self._io)
                else:
                    data = (json.dumps({"done": done}) + "\n").encode()
                    await trio.to_thread.run_sync(self._write, data, False, limiter=self._io)
            except OSError:
                pass  # the records are applied; their marks only save a re-check

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise
            self._size = os.fstat(fd).st_size
            _fsync_dir(self.path.parent)
            self._fd = fd
        return self._fd

    def _write(self, data: bytes, sync: bool) -> None:
        fd = self._open()
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if sync:
                os.fsync(fd)
        except OSError:
            try:  # no torn line for the next record to be glued to
                os.ftruncate(fd, self._size)
            except OSError:
                pass
            raise
        self._size += len(data)

    def _truncate(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            self._size = 0

    def close(self) -> None:
        """Release the file (its lock). What is still in it is adopted by the next instance."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                if not self.pending and self.path is not None and self._size == 0:
                    os.unlink(self.path)
            except OSError:
                pass
            os.close(fd)

    # -- other processes' journals (blocking: worker thread) --
    def orphans(self) -> list[Path]:
        """Journals of this database left by processes that are gone (their lock is free)."""
        if self.dir is None or not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob(f"{self.prefix}*.jsonl") if p != self.path)


class Orphan:
    """A dead process's journal, locked by us while we replay it (blocking methods)."""

    def __init__(self, path: Path, fd: int, records: list[dict[str, Any]], bad: int) -> None:
        self.path, self.fd, self.records, self.bad = path, fd, records, bad

    @classmethod
    def adopt(cls, path: Path) -> "Orphan | None":
        """Lock and read it; None if its process still runs (holds the lock) or it is gone."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if not os.path.exists(path):  # another adopter finished and deleted it meanwhile
            os.close(fd)
            return None
        chunks = []
        while chunk := os.pread(fd, 1 << 20, sum(len(c) for c in chunks)):
            chunks.append(chunk)
        records, bad = decode_lines(b"".join(chunks))
        return cls(path, fd, records, bad)

    def finish(self, applied: list[str]) -> None:
        """All applied: delete it. Else mark what was and leave the rest for a later pass."""
        try:
            if len(applied) == len(self.records):
                os.unlink(self.path)
            elif applied:
                os.write(self.fd, (json.dumps({"done": applied}) + "\n").encode())
        finally:
            os.close(self.fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """For tests and operators: the records of a journal file not yet marked done."""
    records, _ = decode_lines(path.read_bytes())
    yield from records
