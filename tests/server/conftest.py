import pytest
from trio.testing import MockClock


@pytest.fixture
def autojump_clock() -> MockClock:
    # Virtual time: the scheduler jumps the clock whenever every task is waiting, so a
    # 15-minute call runs in the time its frames take to process.
    return MockClock(autojump_threshold=0)
