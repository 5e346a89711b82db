from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fake_openai, corpus helpers

from dialog.schedule import TZ  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

# A Wednesday afternoon in Jerusalem: tomorrow is a weekday, the day after is Friday.
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=TZ)
CALLER = "+972501234567"


@pytest.fixture
async def fake_openai(nursery) -> FakeOpenAI:
    fake = FakeOpenAI()
    await nursery.start(fake.serve)
    return fake
