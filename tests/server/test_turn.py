"""The turn machine alone: events in, actions out, no I/O (server/turn.py)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from native.config import TimingConfig
from server import turn as T
from server.turn import State

L, P, S, Z, E = State.LISTENING, State.PROCESSING, State.SPEAKING, State.PAUSED, State.ENDED
CFG = TimingConfig()


def kinds(actions: list[T.Action]) -> list[type]:
    return [type(a) for a in actions]


def of(actions: list[T.Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def speak(m: T.TurnMachine, sentences: list[str], audible_ms: int = 0) -> list[T.Action]:
    for i, text in enumerate(sentences):
        m.handle(T.Sentence(m.turn_no, i, text))
    return m.handle(T.SpeechStarted(m.turn_no, audible_ms))


def greeted(language: str = "en-US") -> T.TurnMachine:
    """A machine whose greeting played in full: LISTENING, turn 1 done."""
    m = T.TurnMachine(CFG, language)
    m.handle(T.CallStarted())
    m.handle(T.Calibrated())
    speak(m, ["Hello, which area?"])
    m.handle(T.PlaybackDone(1000))
    assert m.state is L
    return m


def answer(m: T.TurnMachine, text: str, onset: int = 2000, eou: int = 3400, voiced: int = 900) -> list[T.Action]:
    """A caller turn from LISTENING through the ASR final."""
    m.handle(T.VoiceOnset(onset))
    acts = m.handle(T.EndOfUtterance(onset, eou, voiced_ms=voiced))
    fin = of(acts, T.FinishUtterance)[0]
    return m.handle(T.AsrFinal(fin.seq, text, 0.9, now_ms=eou + 10))


def test_greeting_then_a_full_cycle() -> None:
    m = T.TurnMachine(CFG, "en-US")
    acts = m.handle(T.CallStarted())
    # the greeting is made at once but waits for the line's calibration: a caller's "hello?"
    # as the call connects could not be told from noise before it
    assert m.state is P and acts[1:] == [T.SpeakGreeting(), T.HoldPlayback(True)]
    assert m.handle(T.Calibrated()) == [T.HoldPlayback(False)]
    acts = speak(m, ["Hello?"], audible_ms=5)
    assert m.state is S and T.ArmBargeIn(5) in acts
    acts = m.handle(m.mark_event(T.final_mark(1)))
    assert m.state is L
    assert acts[0] == T.StateChanged(S, L, "PlaybackDone")
    assert T.TellHeard("Hello?", True, "Hello?") in acts and T.Listen(cycle_done=False) in acts

    assert m.handle(T.VoiceOnset(1000)) == [T.BeginUtterance(1000)]
    acts = m.handle(T.EndOfUtterance(1000, 2400, voiced_ms=1200))
    assert m.state is P and T.FinishUtterance(1, 1000, 2400, False) in acts
    acts = m.handle(T.AsrFinal(1, "hi there", 0.8))
    assert T.Respond(2, "hi there", 0.8, False, False) in acts and m.state is P
    speak(m, ["One.", "Two?"])
    assert m.mark_event(T.sentence_mark(2, 0)) == T.MarkAck(0)
    m.handle(T.MarkAck(0))
    acts = m.handle(T.PlaybackDone())
    assert T.TellHeard("One. Two?", True, "One. Two?") in acts and T.Listen(cycle_done=True) in acts


def test_a_backchannel_over_the_agent_resumes_the_cut_sentence_without_the_brain() -> None:
    m = greeted()
    answer(m, "Haifa")
    speak(m, ["Great, Haifa it is.", "What kind of place are you after?"], audible_ms=4000)
    m.handle(T.MarkAck(0))
    acts = m.handle(T.BargeIn(onset_ms=5000, trigger_ms=5200, partial_words=3))
    assert m.state is Z
    assert kinds(acts) == [T.StateChanged, T.Halt, T.OpenUtterance, T.BeginUtterance]
    assert T.Halt(5000, 5200, True) in acts
    # a 250 ms "yes": judged with MIN_UTT off, a quick end
    assert T.OpenUtterance(5000, 200, 0) in acts
    acts = m.handle(T.EndOfUtterance(5000, 5450, voiced_ms=250))
    fin = of(acts, T.FinishUtterance)[0]
    assert fin.interrupted_agent and m.state is Z
    acts = m.handle(T.AsrFinal(fin.seq, "yeah", 0.9))
    assert m.state is P and not of(acts, T.Respond) and not of(acts, T.TellHeard)
    assert T.Resume(2, 1, 1, 3) in acts  # sentence 1, from its 4th word (the one playing at the cut)
    assert of(acts, T.Ignored)[0].kind == "resumed"
    # the resumed rest plays: new mark names, the cut segment's are stale
    m.handle(T.SpeechStarted(2, 5700))
    assert m.state is S
    assert m.mark_event(T.sentence_mark(2, 1)) is None
    assert m.mark_event(T.sentence_mark(2, 1, segment=1)) == T.MarkAck(1)
    acts = m.handle(T.PlaybackDone())
    heard = of(acts, T.TellHeard)[0]
    assert heard.heard_fully and heard.said == "Great, Haifa it is. What kind of place are you after?"


def test_a_backchannel_partial_resumes_at_the_end_of_voice_without_waiting_for_the_final() -> None:
    m = greeted("he-IL")
    speak_first = answer(m, "חיפה")
    assert of(speak_first, T.Respond)
    speak(m, ["מעולה, חיפה.", "איזה סוג נכס מחפשים?"], audible_ms=4000)
    m.handle(T.BargeIn(5000, 5200, partial_words=1))
    m.handle(T.PartialText("כן"))
    acts = m.handle(T.EndOfUtterance(5000, 5450, voiced_ms=240))
    assert T.CancelRecognition() in acts and of(acts, T.Resume) and not of(acts, T.FinishUtterance)
    assert m.state is P


def test_a_real_interruption_is_answered_with_what_was_heard_told_first() -> None:
    m = greeted()
    answer(m, "Haifa")
    speak(m, ["One two three four.", "Five six?"], audible_ms=4000)
    m.handle(T.BargeIn(5000, 5200, partial_words=2))
    fin = of(m.handle(T.EndOfUtterance(5000, 6400, voiced_ms=1100)), T.FinishUtterance)[0]
    acts = m.handle(T.AsrFinal(fin.seq, "wait, I want a house", 0.9))
    assert m.state is P
    assert kinds(acts)[1:4] == [T.DropReply, T.TellHeard, T.Respond]
    assert T.DropReply(retract=False) in acts
    assert T.TellHeard("One two", False, "One two three four. Five six?") in acts
    assert of(acts, T.Respond)[0].interrupted_agent
    # a long interruption with no words is a turn too (clarify), not a resume
    m2 = greeted()
    speak_again = answer(m2, "Haifa")
    assert speak_again
    speak(m2, ["One two three four."], audible_ms=4000)
    m2.handle(T.BargeIn(5000, 5200))
    fin = of(m2.handle(T.EndOfUtterance(5000, 7000, voiced_ms=CFG.resume_max_voiced_ms + 20)), T.FinishUtterance)[0]
    assert of(m2.handle(T.AsrFinal(fin.seq, "", 0.0)), T.Respond)


def test_noise_gets_no_reply_and_short_confident_words_do() -> None:
    m = greeted()
    m.handle(T.VoiceOnset(2000))
    fin = of(m.handle(T.EndOfUtterance(2000, 3000, voiced_ms=150)), T.FinishUtterance)[0]
    acts = m.handle(T.AsrFinal(fin.seq, "", 0.0))
    assert m.state is L and T.Ignored("noise", 150, "") in acts and T.Listen(False) in acts
    # Whisper's hallucination on a knock
    fin = of(m.handle(T.EndOfUtterance(4000, 5000, voiced_ms=160)), T.FinishUtterance)[0]
    assert m.handle(T.AsrFinal(fin.seq, "Thank you.", 0.6))[-1] == T.Listen(False)
    # a lone "umm", however long: the caller is thinking, the floor stays theirs
    fin = of(m.handle(T.EndOfUtterance(5000, 6000, voiced_ms=450)), T.FinishUtterance)[0]
    assert m.handle(T.AsrFinal(fin.seq, "umm", 0.8))[-1] == T.Listen(False)
    # a short but confident "no" is a turn
    fin = of(m.handle(T.EndOfUtterance(6000, 7000, voiced_ms=CFG.noise_max_voiced_ms - 40)), T.FinishUtterance)[0]
    assert of(m.handle(T.AsrFinal(fin.seq, "no", 0.9)), T.Respond)
    # a long utterance with no words gets the clarify line rather than silence
    m2 = greeted()
    fin = of(m2.handle(T.EndOfUtterance(2000, 4000, voiced_ms=CFG.clarify_min_voiced_ms)), T.FinishUtterance)[0]
    assert of(m2.handle(T.AsrFinal(fin.seq, "", 0.0)), T.Respond)


def test_a_caller_who_goes_on_talking_while_the_reply_is_prepared_gets_one_merged_turn() -> None:
    m = greeted()
    m.handle(T.VoiceOnset(2000))
    fin = of(m.handle(T.EndOfUtterance(2000, 3400, voiced_ms=1000)), T.FinishUtterance)[0]
    # voice again before the ASR final: the final is dropped, the utterance reopened
    acts = m.handle(T.VoiceOnset(3500))
    assert m.state is L and acts[0] == T.StateChanged(P, L, "CallerContinues")
    assert T.CancelRecognition() in acts and T.OpenUtterance(3500, 1000, -1) in acts
    assert T.BeginUtterance(2000) in acts and not of(acts, T.DropReply)
    assert m.handle(T.AsrFinal(fin.seq, "four rooms in Haifa", 0.9)) == []  # stale
    fin2 = of(m.handle(T.EndOfUtterance(3500, 5000, voiced_ms=1800)), T.FinishUtterance)[0]
    assert (fin2.onset_ms, fin2.eou_ms) == (2000, 5000)
    acts = m.handle(T.AsrFinal(fin2.seq, "four rooms in Haifa up to two million", 0.9))
    assert of(acts, T.Respond)[0].text == "four rooms in Haifa up to two million"
    # after the brain was asked: the reply is dropped and the brain takes its turn back
    turn = m.turn_no
    m.handle(T.Sentence(turn, 0, "Great."))
    acts = m.handle(T.VoiceOnset(5300))
    assert T.DropReply(retract=True) in acts and m.state is L
    assert m.handle(T.Sentence(turn, 1, "What budget?")) == []  # the dropped reply is stale
    assert m.handle(T.SpeechStarted(turn, 5400)) == []


def test_the_reply_is_held_while_the_caller_s_voice_is_on() -> None:
    m = greeted()
    m.handle(T.VoiceOnset(2000))
    acts = m.handle(T.EndOfUtterance(2000, 3400, voiced_ms=1000))
    assert T.HoldPlayback(False) in acts
    assert m.handle(T.VoiceStart(3420)) == [T.HoldPlayback(True)]
    assert m.handle(T.VoiceStop()) == [T.HoldPlayback(False)]
    # a forced end (MAX_UTT) comes while the caller still talks: held from the start
    m2 = greeted()
    m2.handle(T.VoiceStart(2000))
    m2.handle(T.VoiceOnset(2000))
    acts = m2.handle(T.EndOfUtterance(2000, 6500, forced=True, voiced_ms=4500))
    assert T.HoldPlayback(True) in acts


def test_voice_at_the_agent_s_first_frame_is_a_collision_not_a_barge_in() -> None:
    m = greeted()
    answer(m, "Haifa")
    turn = m.turn_no
    speak(m, ["Great, what kind of place?"], audible_ms=4000)
    # voice that starts later than the yield window is the barge-in detector's business
    assert m.handle(T.VoiceStart(4000 + CFG.yield_window_ms)) == []
    m.handle(T.VoiceStop())
    acts = m.handle(T.VoiceStart(4040))
    assert m.state is L and acts[0].cause == "CallerContinues"
    assert T.Halt(4040, 4040, False) in acts and T.DropReply(retract=True) in acts
    assert T.BeginUtterance(2000) in acts  # the answered utterance goes on
    assert m.mark_event(T.final_mark(turn)) is None
    # the greeting has no caller turn to merge with: the agent yields and judges the voice
    g = T.TurnMachine(CFG, "en-US")
    g.handle(T.CallStarted())
    speak(g, ["Hello, which area?"], audible_ms=500)
    acts = g.handle(T.VoiceStart(480))
    assert g.state is Z and acts[0].cause == "Collision" and T.Halt(480, 480, False) in acts


def test_the_goodbye_can_be_interrupted_and_the_call_ends_after_a_quiet_linger() -> None:
    m = greeted()
    answer(m, "no thanks, bye")
    speak(m, ["Thanks, have a great day."], audible_ms=4000)
    acts = m.handle(T.PlaybackDone(6000, final=True))
    assert m.state is L and not of(acts, T.EndCall)
    assert m.deadline_ms == 6000 + CFG.goodbye_linger_ms
    # the caller speaks in the linger: no hang-up, a turn
    m.handle(T.VoiceOnset(6500))
    assert m.deadline_ms > 6000 + CFG.goodbye_linger_ms
    fin = of(m.handle(T.EndOfUtterance(6500, 7600, voiced_ms=900)), T.FinishUtterance)[0]
    assert of(m.handle(T.AsrFinal(fin.seq, "wait, one more thing", 0.9)), T.Respond)
    speak(m, ["Sure, what is it?"], audible_ms=8000)
    m.handle(T.PlaybackDone(9000, final=False))
    assert m.handle(T.Tick(20_000)) == []  # nothing due: not finished, no hang-up
    # a goodbye again, a knock in the linger (no reply) re-arms it, then quiet: hang up
    answer(m, "that's all, bye", onset=10_000, eou=11_000)
    speak(m, ["Bye now."], audible_ms=11_100)
    m.handle(T.PlaybackDone(12_000, final=True))
    m.handle(T.VoiceOnset(12_300))
    fin = of(m.handle(T.EndOfUtterance(12_300, 13_300, voiced_ms=120)), T.FinishUtterance)[0]
    m.handle(T.AsrFinal(fin.seq, "", 0.0, now_ms=13_310))
    assert m.state is L and m.deadline_ms == 13_310 + CFG.goodbye_linger_ms
    acts = m.handle(T.Tick(13_310 + CFG.goodbye_linger_ms))
    assert m.state is E and T.EndCall("agent_hangup") in acts
    # a barge-in on the goodbye is a turn like any other
    g = greeted()
    answer(g, "bye")
    speak(g, ["Thanks, have a great day."], audible_ms=4000)
    assert g.handle(T.BargeIn(4500, 4700)) and g.state is Z


def test_every_open_utterance_has_a_deadline() -> None:
    m = greeted()
    m.handle(T.VoiceOnset(2000))
    due = 2000 + CFG.max_utt_ms + CFG.turn_resolve_ms
    assert m.deadline_ms == due
    acts = m.handle(T.Tick(due))
    assert m.state is P and acts[0].cause == "UtteranceTimeout"
    assert of(acts, T.FinishUtterance)[0].eou_ms == due
    # the same for an interruption being judged
    z = greeted()
    answer(z, "Haifa")
    speak(z, ["One two three."], audible_ms=4000)
    z.handle(T.BargeIn(5000, 5200))
    assert z.deadline_ms == 5000 + CFG.max_utt_ms + CFG.turn_resolve_ms
    assert of(z.handle(T.Tick(z.deadline_ms)), T.FinishUtterance)


def test_a_partial_that_stops_mid_phrase_asks_for_the_long_silence() -> None:
    m = greeted()
    m.handle(T.VoiceOnset(2000))
    assert m.handle(T.PartialText("four rooms in Haifa and")) == [T.SetHold(True)]
    assert m.handle(T.PartialText("four rooms in Haifa and a garden")) == [T.SetHold(False)]


def test_stale_and_unknown_events() -> None:
    m = T.TurnMachine(CFG, "en-US")
    assert m.handle(T.BargeIn(0, 200)) == [T.Rejected(L, "BargeIn")]
    assert m.handle(T.MarkAck(0)) == [T.Rejected(L, "MarkAck")]
    m.handle(T.EndOfUtterance(0, 1000, voiced_ms=900))
    assert m.handle(T.PlaybackDone()) == [T.Rejected(P, "PlaybackDone")]
    assert m.handle(T.AsrFinal(99, "x", 0.9)) == [] and m.stale == 1
    assert m.state is P and m.rejected == 3
    m.handle(T.Hangup("stop"))
    assert m.state is E and m.handle(T.CallStarted()) == [T.Rejected(E, "CallStarted")]
    assert m.mark_event(T.final_mark(m.turn_no)) is None
    # the caller's audio after the end (a time-limit goodbye still playing) is no error
    assert m.handle(T.VoiceStart(5000)) == [] and m.handle(T.VoiceStop(5200)) == [] and m.rejected == 4


def test_diagram_is_generated_from_the_table() -> None:
    text = T.diagram()
    for state, edges in T.TRANSITIONS.items():
        for event, target in edges.items():
            if target is not state:
                assert f"{state.value} --> {target.value}: {event.__name__}" in text
    assert "SPEAKING --> PAUSED: BargeIn" in text and "PAUSED --> PROCESSING: FalseInterruption" in text
    assert "LISTENING --> SPEAKING" not in text  # never skips PROCESSING


def _events(m: T.TurnMachine) -> st.SearchStrategy:
    return st.sampled_from([
        T.CallStarted(), T.VoiceStart(100), T.VoiceStop(), T.VoiceOnset(100), T.PartialText("yes"),
        T.PartialText("in"), T.EndOfUtterance(100, 1200, voiced_ms=300), T.EndOfUtterance(100, 1400, voiced_ms=1500),
        T.Sentence(1, 0, "a"), T.Sentence(2, 0, "b"), T.Sentence(3, 1, "c?"), T.SpeechStarted(1, 0),
        T.SpeechStarted(2, 50), T.SpeechStarted(3, 900), T.MarkAck(0), T.PlaybackDone(500), T.PlaybackDone(500, True),
        T.MarkTimeout(500), T.BargeIn(100, 300, 1), T.Tick(10_000), T.Hangup("x"),
    ] + [T.AsrFinal(seq, text, 0.9) for seq in (1, 2, 3) for text in ("", "yeah", "I want a house")])


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_event_sequence_only_follows_the_table(data: st.DataObject) -> None:
    m = T.TurnMachine(CFG, "en-US")
    for _ in range(data.draw(st.integers(0, 60))):
        event = data.draw(_events(m))
        before = m.state
        acts = m.handle(event)
        changes = [a for a in acts if isinstance(a, T.StateChanged)]
        if acts and isinstance(acts[0], T.Rejected):
            assert acts == [T.Rejected(before, type(event).__name__)] and m.state is before
            continue
        # whatever the verdict, the table holds: one change at most, to the state it names
        assert len(changes) <= 1
        if changes:
            change = changes[0]
            assert change.old is before and change.new is m.state
            verdicts = {k.__name__: v for k, v in T.TRANSITIONS[before].items()}
            assert verdicts[change.cause] is m.state
        # every way back to LISTENING from the agent's turn tells the brain what was heard
        if m.state is L and before is S and changes and changes[0].cause in ("PlaybackDone", "MarkTimeout"):
            assert of(acts, T.TellHeard) and isinstance(acts[-1], T.Listen)
        # a reply never starts while the agent holds a cut turn without judging it
        if of(acts, T.Respond) and before is Z:
            assert of(acts, T.TellHeard) and of(acts, T.DropReply)
        # an open utterance always has a deadline
        if m.utt is not None and m.utt.open and m.state in (L, Z):
            assert m.deadline_ms < T.NEVER
