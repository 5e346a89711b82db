"""The sans-IO decisions of the streaming recognizer: when to restart, who owns a word."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from speech.stt_ledger import RestartPolicy, StreamSpan, Word, WordLedger, restart_due, rotation_cut

P = RestartPolicy(restart_after_ms=240_000, hard_limit_ms=285_000, replay_ms=500)


def test_restart_waits_for_a_quiet_moment_until_the_hard_limit():
    assert restart_due(P, 0, 239_980, in_utterance=False) is None
    assert restart_due(P, 0, 240_000, in_utterance=False) == "quiet"
    assert restart_due(P, 0, 250_000, in_utterance=True) is None
    assert restart_due(P, 0, 285_000, in_utterance=True) == "hard"
    assert restart_due(P, 100_000, 340_000, in_utterance=False) == "quiet"
    with pytest.raises(ValueError):
        RestartPolicy(restart_after_ms=10, hard_limit_ms=5)


def test_cuts():
    assert rotation_cut(P, 10_000, "quiet") == (9_500, 9_750)
    assert rotation_cut(P, 10_020, "eou", eou_ms=10_000) == (9_520, 10_020)
    assert rotation_cut(P, 200, "hard") == (0, 0)


def test_ledger_keeps_one_copy_across_an_overlap_and_sorts():
    old, new = StreamSpan(0, 0, owns_until=9_750), StreamSpan(9_500, 9_750)
    ledger = WordLedger()
    # the new stream reports first (threads race): its replayed copy of "b" is dropped
    ledger.add(new, [Word("b", 9_600, 9_700, 1), Word("c", 9_800, 10_100, 1)])
    ledger.add(old, [Word("a", 9_000, 9_300, 1), Word("b", 9_600, 9_700, 1), Word("c-fragment", 9_800, 10_000, 1)])
    assert [w.text for w in ledger.words] == ["a", "b", "c"] and ledger.dropped == 2


def test_take_hands_out_an_utterance_and_forgets_older_murmurs():
    ledger = WordLedger()
    span = StreamSpan(0, 0)
    ledger.add(span, [Word("murmur", 100, 300, 1), Word("x", 2_000, 2_200, 1), Word("later", 5_000, 5_200, 1)])
    assert [w.text for w in ledger.take(1_700, 3_000)] == ["x"]
    assert [w.text for w in ledger.words] == ["later"]


@given(st.lists(st.integers(0, 600_000), min_size=1, max_size=40, unique=True),
       st.lists(st.integers(1_000, 600_000), max_size=6, unique=True))
def test_every_word_owned_by_exactly_one_stream(starts, cuts):
    """Whatever the cut points, consecutive spans partition stream time: a word reported by
    every stream that heard it is kept exactly once."""
    bounds = [0, *sorted(cuts)]
    spans = [StreamSpan(max(0, b - 500), b) for b in bounds]
    for a, b in zip(spans, spans[1:]):
        a.owns_until = b.owns_from
    ledger = WordLedger()
    for span in spans:
        ledger.add(span, [Word(str(s), s, s + 100, 1) for s in starts if s + 100 > span.start_ms])
    assert [w.start_ms for w in ledger.words] == sorted(starts)


def test_a_reopened_utterance_is_taken_again_whole():
    # "four rooms in Haifa" ... EOU ... "up to two million": the caller was not done, the
    # utterance is reopened and its merged span taken again: the first part must be there.
    span = StreamSpan(start_ms=0, owns_from=0)
    ledger = WordLedger()
    ledger.add(span, [Word("four", 1_000, 1_200, 0.9), Word("rooms", 1_200, 1_500, 0.9)])
    assert [w.text for w in ledger.take(700, 2_000)] == ["four", "rooms"]
    ledger.add(span, [Word("two", 2_400, 2_600, 0.9), Word("million", 2_600, 3_000, 0.9)])
    assert [w.text for w in ledger.take(700, 3_200)] == ["four", "rooms", "two", "million"]
    # the next utterance does not get them again
    ledger.add(span, [Word("yes", 5_000, 5_300, 0.9)])
    assert [w.text for w in ledger.take(4_700, 5_600)] == ["yes"]


def test_shipped_restart_defaults_stay_inside_googles_stream_limit():
    """What a deployment really runs (the provider selection, not a hand-built policy): a quiet
    restart at 240 s, a hard one at 285 s, both before Google ends a stream at ~305 s; the gRPC
    deadline only backs them up (it must never cut a stream before the hard restart)."""
    from speech.google_stt import GoogleStreamingRecognizer
    from speech.providers import select_speech

    env = {"ASR_PROVIDER": "google", "GOOGLE_SPEECH_ENDPOINT": "127.0.0.1:9", "OPENAI_API_KEY": "sk-test",
           "AGENT_LANGUAGE": "he-IL", "TTS_PROVIDER": "espeak"}
    recognizer = select_speech(env).new_recognizer("he-IL")
    google = getattr(recognizer, "primary", recognizer)
    assert isinstance(google, GoogleStreamingRecognizer)
    policy = google.settings.policy
    assert (policy.restart_after_ms, policy.hard_limit_ms) == (240_000, 285_000)
    assert policy.hard_limit_ms < 300_000
    assert google.settings.stream_deadline_s * 1000 > policy.hard_limit_ms
    assert RestartPolicy() == policy
