from __future__ import annotations

import pytest

from dialog_corpus import CALLER, NOW
from dialog.base import Brain
from dialog.brains import select_brain
from native.config import ConfigError


def test_auto_without_a_key_is_the_offline_brain():
    choice = select_brain({})
    brain = choice.new_brain("he-IL", CALLER, NOW)
    assert choice.name == "rules" and isinstance(brain, Brain) and brain.lead.slots.phone == CALLER


def test_auto_with_a_key_is_openai_with_base_url_and_model():
    choice = select_brain({"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1", "OPENAI_MODEL": "m1"})
    brain = choice.new_brain("en-US", CALLER, NOW)
    assert choice.name == "openai" and choice.model == "m1"
    assert brain.config.base_url == "http://127.0.0.1:1/v1" and brain.config.model == "m1"


def test_explicit_choices():
    assert select_brain({"BRAIN": "rules", "OPENAI_API_KEY": "sk-x"}).name == "rules"
    assert select_brain({"BRAIN": "OpenAI", "OPENAI_API_KEY": "sk-x"}).name == "openai"
    with pytest.raises(ConfigError):
        select_brain({"BRAIN": "openai"})
    with pytest.raises(ConfigError):
        select_brain({"BRAIN": "gpt"})
