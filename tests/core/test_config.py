import pytest

from native.config import ConfigError, TimingConfig


def test_defaults_are_the_users_numbers() -> None:
    c = TimingConfig()
    assert (c.barge_in_min_voice_ms, c.barge_in_grace_ms) == (200, 200)
    assert c.barge_in_gap_ms == 120  # a refinement of the barge-in rule, not a user number (vad.pyx)
    assert (c.calibration_ms, c.hysteresis_ms, c.eou_silence_ms) == (400, 60, 400)
    assert (c.min_utt_ms, c.max_utt_ms) == (1000, 4500)


@pytest.mark.parametrize(
    "field,value",
    [("barge_in_min_voice_ms", 250), ("barge_in_grace_ms", 100), ("barge_in_gap_ms", 220), ("barge_in_gap_ms", -20),
     ("max_utt_ms", 6000), ("hysteresis_ms", 20)],
)
def test_out_of_range_is_a_clear_error(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        TimingConfig(**{field: value})


def test_env_override_and_bad_number() -> None:
    assert TimingConfig.from_env({"AL_BARGE_IN_MIN_VOICE_MS": "190"}).barge_in_min_voice_ms == 190
    assert TimingConfig.from_env({"AL_BARGE_IN_GAP_MS": "0"}).barge_in_gap_ms == 0  # the continuous rule
    with pytest.raises(ConfigError, match="AL_EOU_SILENCE_MS"):
        TimingConfig.from_env({"AL_EOU_SILENCE_MS": "soon"})
