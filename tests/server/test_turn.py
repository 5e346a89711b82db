from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server import turn as T
from server.turn import State

L, P, S, E = State.LISTENING, State.PROCESSING, State.SPEAKING, State.ENDED


def kinds(actions: list[T.Action]) -> list[type]:
    return [type(a) for a in actions]


def speak_reply(m: T.TurnMachine, sentences: list[str]) -> None:
    for i, text in enumerate(sentences):
        m.handle(T.Sentence(i, text))
    m.handle(T.SpeechStarted(0.0))


def test_greeting_then_a_full_cycle() -> None:
    m = T.TurnMachine()
    acts = m.handle(T.CallStarted())
    assert m.state is P and kinds(acts) == [T.StateChanged, T.SpeakGreeting]
    m.handle(T.Sentence(0, "Hello?"))
    acts = m.handle(T.SpeechStarted(5.0))
    assert m.state is S and kinds(acts) == [T.StateChanged, T.ArmBargeIn]
    acts = m.handle(m.mark_event(T.final_mark(1)))
    assert m.state is L
    assert acts[0] == T.StateChanged(S, L, "PlaybackDone")
    assert T.TellHeard("Hello?", True, "Hello?") in acts and T.Listen(cycle_done=False) in acts

    assert m.handle(T.VoiceOnset(1000)) == [T.BeginUtterance(1000)]
    acts = m.handle(T.EndOfUtterance(1000, 2400))
    assert m.state is P and T.FinishUtterance(1000, 2400, False) in acts
    assert m.handle(T.AsrFinal("hi", 0.8)) == [T.Respond("hi", 0.8, False, False)]
    speak_reply(m, ["One.", "Two?"])
    assert m.mark_event(T.sentence_mark(2, 0)) == T.MarkAck(0)
    m.handle(T.MarkAck(0))
    acts = m.handle(T.PlaybackDone())
    assert T.TellHeard("One. Two?", True, "One. Two?") in acts and T.Listen(cycle_done=True) in acts


def test_barge_in_tells_what_was_heard_and_starts_the_utterance_at_its_onset() -> None:
    m = T.TurnMachine()
    m.handle(T.CallStarted())
    speak_reply(m, ["First.", "Second.", "Third?"])
    m.handle(T.MarkAck(0))
    acts = m.handle(T.BargeIn(onset_ms=3000, trigger_ms=3200))
    assert m.state is L
    assert kinds(acts) == [T.StateChanged, T.Halt, T.BeginUtterance, T.TellHeard, T.Listen]
    assert T.TellHeard("First.", False, "First. Second. Third?") in acts
    # the detector's own onset comes later (it was reset): the utterance keeps the barge-in's
    assert m.handle(T.VoiceOnset(3060)) == []
    acts = m.handle(T.EndOfUtterance(3060, 4500))
    assert T.FinishUtterance(3000, 4500, True) in acts
    assert m.handle(T.AsrFinal("stop", 0.9)) == [T.Respond("stop", 0.9, True, False)]
    # marks of the cut turn are stale now
    speak_reply(m, ["OK?"])
    assert m.mark_event(T.sentence_mark(1, 1)) is None and m.mark_event(T.final_mark(1)) is None
    assert m.mark_event("hb3") is None and m.mark_event("t2.sX") is None


def test_partial_sentence_is_cut_by_words_and_never_claimed_whole() -> None:
    m = T.TurnMachine()
    m.handle(T.CallStarted())
    speak_reply(m, ["One two three four.", "Five six?"])
    acts = m.handle(T.BargeIn(100, 300, partial_words=2))
    assert T.TellHeard("One two", False, "One two three four. Five six?") in acts
    m2 = T.TurnMachine()
    m2.handle(T.CallStarted())
    speak_reply(m2, ["One two."])
    acts = m2.handle(T.BargeIn(100, 300, partial_words=9))
    assert T.TellHeard("One", False, "One two.") in acts  # no mark: at most all words but the last


def test_mark_timeout_goes_back_to_listening() -> None:
    m = T.TurnMachine()
    m.handle(T.CallStarted())
    speak_reply(m, ["Hi?"])
    acts = m.handle(T.MarkTimeout())
    assert m.state is L and T.TellHeard("", False, "Hi?") in acts


def test_events_the_table_does_not_allow_are_rejected_not_swallowed() -> None:
    m = T.TurnMachine()
    assert m.handle(T.BargeIn(0, 200)) == [T.Rejected(L, "BargeIn")]
    assert m.handle(T.SpeechStarted(0.0)) == [T.Rejected(L, "SpeechStarted")]
    m.handle(T.EndOfUtterance(0, 1000))
    assert m.handle(T.EndOfUtterance(0, 1000)) == [T.Rejected(P, "EndOfUtterance")]
    assert m.handle(T.PlaybackDone()) == [T.Rejected(P, "PlaybackDone")]
    assert m.state is P and m.rejected == 4
    m.handle(T.Hangup("stop"))
    assert m.state is E and m.handle(T.CallStarted()) == [T.Rejected(E, "CallStarted")]
    assert m.mark_event(T.final_mark(m.turn_no)) is None


def test_diagram_is_generated_from_the_table() -> None:
    text = T.diagram()
    for state, edges in T.TRANSITIONS.items():
        for event, target in edges.items():
            if target is not state:
                assert f"{state.value} --> {target.value}: {event.__name__}" in text
    assert "SPEAKING --> LISTENING: BargeIn" in text
    assert "LISTENING --> SPEAKING" not in text  # never skips PROCESSING


ALL_EVENTS = st.sampled_from([
    T.CallStarted(), T.VoiceOnset(100), T.EndOfUtterance(100, 1200), T.AsrFinal("x", 0.5), T.Sentence(0, "a"),
    T.Sentence(1, "b"), T.SpeechStarted(0.0), T.MarkAck(0), T.PlaybackDone(), T.MarkTimeout(), T.BargeIn(100, 300),
    T.Hangup("x"),
])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALL_EVENTS, max_size=40))
def test_any_event_sequence_only_follows_the_table(events: list[T.TurnEvent]) -> None:
    m = T.TurnMachine()
    for event in events:
        before = m.state
        acts = m.handle(event)
        allowed = T.TRANSITIONS[before].get(type(event))
        if allowed is None:
            assert acts == [T.Rejected(before, type(event).__name__)] and m.state is before
        else:
            assert m.state is allowed
            changes = [a for a in acts if isinstance(a, T.StateChanged)]
            assert changes == ([] if allowed is before else [T.StateChanged(before, allowed, type(event).__name__)])
            # every return to LISTENING tells the brain what was heard and resets the detectors
            if allowed is L and before is not L:
                assert any(isinstance(a, T.TellHeard) for a in acts) and isinstance(acts[-1], T.Listen)
