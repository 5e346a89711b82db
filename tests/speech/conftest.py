import sys
from pathlib import Path

import pytest
import trio.testing

# the fakes and the tone-word language are plain modules next to the tests
sys.path.append(str(Path(__file__).parent))  # appended: other dirs import their own `conftest` by name


@pytest.fixture
def fake_google():
    from fake_google import FakeGoogle

    with FakeGoogle() as fake:
        yield fake


@pytest.fixture
def fake_openai():
    from fake_openai_audio import FakeOpenAI

    with FakeOpenAI() as fake:
        yield fake
