"""The caller's side of a call, frame by frame: :class:`Inbound`.

Each 20 ms `media` payload is decoded (μ-law -> PCM16 with its energy, one native call),
handed to the recognizer, and classified by the native detectors: the frame classifier
(voice / silence, with the echo guard's expected level of the agent's own voice), the
end-of-utterance detector (fed while the agent is silent) and the barge-in detector (armed
while the agent's audio plays). What they find becomes turn events for the
:class:`~server.turn.TurnMachine`; this module decides nothing itself.

Hot path: no allocation beyond the PCM copy the recognizer keeps, no log lines, a handful of
native calls per frame. Stream time advances 20 ms per frame; :class:`StreamClock` ties it to
the call's clock from the frames' arrival times, so bursts after a network hiccup are seen as
late, not as speech that happened late.
"""
from __future__ import annotations

from typing import Callable

from native.codec import decode_with_energy
from native.config import FRAME_MS, FRAME_PCM_BYTES, FRAME_ULAW_BYTES, TimingConfig
from native.framer import Framer
from native.vad import EOU_END, EOU_FORCED, EOU_ONSET, BargeInDetector, EchoGuard, EouDetector, FrameClassifier
from server import turn as T
from server.playback_clock import StreamClock

Dispatch = Callable[[T.TurnEvent], None]

# Voice runs closer than this belong to one stretch of speech; a barge-in's words are heard
# from the stretch's start (at most SPEECH_LOOKBACK_MS before the triggering run).
SPEECH_GAP_MS = 300
SPEECH_LOOKBACK_MS = 1000
# How many frames ahead a barge-in or an end of utterance counts as near (frames from then on
# are read as they arrive): one frame read late in the tick's pass, one more that may come in
# the same read, and one to spare.
NEAR_FRAMES = 3
# How many frames a call's reads may wait for, at most, while no decision is near (they are then
# read together, in one later pass): the recognizer, a live listener and the marks' echoes hear
# the caller up to this much later; nothing the caller hears moves.
MAX_WAIT_FRAMES = 3
# The first second of caller audio comes with exact arrival times (read frame by frame unless
# the transport stamps each read): they set the stream clock before the agent's first words need it.
CLOCK_SETTLE_MS = 1000


class Inbound:
    def __init__(
        self, cfg: TimingConfig, machine: T.TurnMachine, dispatch: Dispatch,
        push: Callable[[bytes], None], partial_words: Callable[[], int],
    ) -> None:
        self.cfg = cfg
        self.machine = machine
        self._dispatch = dispatch
        self._push = push
        self._partial_words = partial_words
        self.classifier = FrameClassifier(cfg)
        self.eou = EouDetector(cfg)
        self.barge = BargeInDetector(cfg)
        self.echo = EchoGuard(cfg)
        self.clock = StreamClock()
        self._pcm = bytearray(FRAME_PCM_BYTES)
        self._ulaw = bytearray(FRAME_ULAW_BYTES)
        self._framer = Framer(50)  # only for payloads that are not exactly 20 ms
        self.t = 0  # stream time of the next frame
        self.frame_t = -1  # stream time of the frame being processed
        self._opened_at = -1  # the EOU detector was opened on this frame: don't feed it twice
        self.voice = False
        self.voice_ended_ms = 0  # real end of the caller's last voice run (stream time)
        self.speech_from_ms = 0  # start of the caller's current stretch of speech
        self.talk_over_ms = 0  # caller voice while the agent is audible, this agent segment
        self.push_errors = 0
        # The call's tape (server.recording): each caller frame, μ-law, with its stream time
        self.tap: Callable[[int, bytes | bytearray, float], None] | None = None

    # -- input ---------------------------------------------------------------------------------

    def media(self, payload: bytes, now_s: float, timed: bool = True) -> bool:
        """One `media` payload that arrived at ``now_s`` (``timed`` False: by then — it waited
        for the shared tick, and its time says nothing for the stream clock); False if it had
        to be dropped (not a whole number of samples the framer can take)."""
        if len(payload) == FRAME_ULAW_BYTES:
            if self.tap is not None:
                self.tap(self.t, payload, now_s)
            self.frame(decode_with_energy(payload, self._pcm), now_s, timed)
            return True
        try:  # Twilio sends 20 ms; anything else is re-cut into 20 ms frames
            self._framer.write_ulaw(payload)
        except BufferError:
            return False
        while self._framer.read_frame(self._ulaw):
            if self.tap is not None:
                self.tap(self.t, self._ulaw, now_s)
            self.frame(decode_with_energy(self._ulaw, self._pcm), now_s, timed)
        return True

    @property
    def settling(self) -> bool:
        """The first second: frames should come with their exact arrival times (read as they
        arrive, unless the transport stamps them), for the stream clock to settle on."""
        return self.frame_t < CLOCK_SETTLE_MS

    @property
    def decision_near(self) -> bool:
        """A barge-in or an end of utterance may be a few frames away: the shell should look
        at every frame as it arrives rather than batch them. Near means the detector could
        decide within NEAR_FRAMES frames (their own lower bounds): a barge-in once the caller's
        voice over the agent, counted from the grace window's end, could reach min_voice; an end
        of utterance once silence could reach EOU_SILENCE, or the sharp drop's 200 ms, after
        MIN_UTT, or MAX_UTT comes, voice or not — not for the whole time the caller talks over
        the agent, nor for the whole silence after speech."""
        if self.machine.state is T.State.SPEAKING:
            return self.barge.frames_to_fire() <= NEAR_FRAMES
        eou = self.eou
        if not eou.in_utterance:
            return False
        if eou.frames_to_forced() <= NEAR_FRAMES:
            return True
        return not self.voice and eou.frames_to_end_in_silence() <= NEAR_FRAMES

    def frames_to_wait(self) -> int:
        """How many of the next frames may be read together later, in one pass, instead of each
        in the pass after it arrived: as many as leave NEAR_FRAMES + 1 before any decision the
        caller could hear (so the read after them still sees it coming, as a read in every pass
        would), at most MAX_WAIT_FRAMES; 0 when that is not known.

        Only while the agent speaks (a barge-in: its detector's own lower bound, once the
        window in which the caller's first voice makes the agent yield has passed) and while
        the agent listens (an end of utterance: the bound for any input, whatever the caller's
        voice does), and short of the turn machine's next deadline; never while a reply is
        prepared or an interruption judged, where the caller's first voice holds or resumes
        the agent's audio. Another task that changes the state (the reply starting to play,
        a mark's echo timing out) cannot bring a decision within MAX_WAIT_FRAMES: the
        barge-in's grace window, MIN_UTT."""
        if self.settling or self.clock.offset_ms is None:
            return 0
        machine = self.machine
        state = machine.state
        t = self.t
        if state is T.State.SPEAKING:
            audible = machine.audible_ms
            if audible is None or t < audible + self.cfg.yield_window_ms + self.cfg.hysteresis_ms:
                return 0  # voice now would be a collision: the agent yields at once
            k = self.barge.frames_to_fire()
        elif state is T.State.LISTENING:
            k = self.eou.frames_to_end()
        else:
            return 0
        deadline = machine.deadline_ms
        if deadline - t < k * FRAME_MS:
            k = (deadline - t) // FRAME_MS
        k -= NEAR_FRAMES + 1
        return 0 if k <= 0 else k if k < MAX_WAIT_FRAMES else MAX_WAIT_FRAMES

    def open_utterance(self, onset_ms: int, voiced_ms: int, min_utt_ms: int) -> None:
        self.eou.open(onset_ms, self.frame_t + FRAME_MS, voiced_ms, min_utt_ms)  # from the next frame
        self._opened_at = self.frame_t

    def agent_frame(self, rms: float, stream_ms: float) -> None:
        """An agent frame starts playing at ``stream_ms``: its echo may come back. It goes to the
        nearest inbound frame: flooring put a frame that starts a hair before a frame boundary
        (the clock's offset creeps by 0.02 ms) in the slot before, where the next frame then
        replaced it — one agent frame in a few lost, the rest a frame early."""
        self.echo.played(rms, round(stream_ms / FRAME_MS) * FRAME_MS)

    # -- one frame -----------------------------------------------------------------------------

    def frame(self, rms: float, now_s: float, timed: bool = True) -> None:
        """One decoded 20 ms frame (its RMS; its PCM is in the decode buffer) that arrived at
        ``now_s`` (``timed``: exactly then): the detectors, then the turn events they call for."""
        t = self.t
        self.t = t + FRAME_MS
        self.frame_t = t
        if timed:
            self.clock.arrived(t + FRAME_MS, now_s)
        try:
            self._push(bytes(self._pcm))
        except Exception:  # a broken recognizer costs the transcript, not the call
            self.push_errors += 1
        classifier = self.classifier
        voice = classifier.update(rms, t, self.echo.level(t))
        self.echo.learn(rms, t, voice, classifier.threshold)
        fired = self.barge.update(voice, t, classifier)
        machine = self.machine
        if not machine.calibrated and classifier.calibrated:
            self._dispatch(T.Calibrated())
        state = machine.state  # before this frame's events: they may change it
        if voice is not self.voice:
            self.voice = voice
            if voice:
                if classifier.run_start_ms - self.voice_ended_ms > SPEECH_GAP_MS:
                    self.speech_from_ms = classifier.run_start_ms
                self._dispatch(T.VoiceStart(classifier.run_start_ms))
            else:
                self.voice_ended_ms = classifier.run_start_ms
                self._dispatch(T.VoiceStop(classifier.run_start_ms))
        if state is T.State.SPEAKING:
            audible = machine.audible_ms
            if voice and audible is not None and t >= audible:
                self.talk_over_ms += FRAME_MS
            if fired and machine.state is T.State.SPEAKING:
                onset = self.barge.onset_ms
                speech_from = max(self.speech_from_ms, onset - SPEECH_LOOKBACK_MS)
                self._dispatch(T.BargeIn(onset, t + FRAME_MS, self._partial_words(), speech_from))
        elif state is not T.State.ENDED and self._opened_at != t:
            r = self.eou.update(voice, rms, t, classifier)
            if r == EOU_ONSET:
                self._dispatch(T.VoiceOnset(self.eou.onset_ms))
            elif r == EOU_END or r == EOU_FORCED:
                eou = self.eou
                self._dispatch(T.EndOfUtterance(eou.onset_ms, t + FRAME_MS, r == EOU_FORCED, eou.voiced_ms))
        if t >= machine.deadline_ms:
            self._dispatch(T.Tick(t + FRAME_MS))
