"""A real CalDAV server for the calendar tests (radicale_server.py), once per session; each
test makes its own calendar in it. And an SQLite store per test."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

from leads.store import Store

sys.path.append(str(Path(__file__).resolve().parent))
from radicale_server import Radicale, radicale_server  # noqa: E402


@pytest.fixture(scope="session")
def radicale() -> Iterator[Radicale]:
    with radicale_server() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'meetings.db'}", env={}, journal_dir=None)
    try:
        yield s
    finally:
        s.close()
