"""Radicale (the CalDAV server from PyPI, in the test extras) as a child process on a free
loopback port, with one user. Used by tests/meetings and tests/integration."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import caldav

USER, PASSWORD = "realtor", "s3cret-pass"


@dataclass(frozen=True)
class Radicale:
    base: str

    def new_calendar(self) -> tuple[Any, Any]:
        """A fresh calendar: (leads.realtors.CalendarAccess, the caldav Calendar to inspect it)."""
        from leads.realtors import CalendarAccess

        client = caldav.DAVClient(url=self.base, username=USER, password=PASSWORD)
        calendar = client.principal().make_calendar(cal_id=uuid.uuid4().hex)
        return CalendarAccess(str(calendar.url), USER, PASSWORD), calendar


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def radicale_server() -> Iterator[Radicale]:
    root = Path(tempfile.mkdtemp(prefix="agentlocator-radicale-"))
    (root / "users").write_text(f"{USER}:{PASSWORD}\n")
    port = _free_port()
    with open(root / "radicale.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", f"--storage-filesystem-folder={root / 'store'}",
             f"--server-hosts=127.0.0.1:{port}", "--auth-type=htpasswd",
             f"--auth-htpasswd-filename={root / 'users'}", "--auth-htpasswd-encryption=plain",
             "--logging-level=warning"],
            stdout=subprocess.DEVNULL, stderr=log,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("radicale did not start: " + (root / "radicale.log").read_text()[-2000:])
                time.sleep(0.05)
        yield Radicale(f"http://127.0.0.1:{port}/")
    finally:
        proc.terminate()
        proc.wait(10)
