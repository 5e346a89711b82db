# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Energy VAD, echo guard, end-of-utterance and barge-in detectors: one 20 ms frame in, one decision out.

Every detector is a small state machine fed ``t_ms``, the stream time of the START of the
frame (0, 20, 40, ...; a frame at ``t_ms`` covers [t_ms, t_ms + 20)). A decision taken on
the frame at ``t_ms`` is taken at ``t_ms + 20``, when the frame has been heard: all the
durations below are measured to the END of the current frame. No clocks, no I/O, no
allocation per frame: the Trio shell owns time, these own the decisions.

Frames are expected every 20 ms. A detector that was not fed for a while (``t_ms`` jumps,
e.g. the shell feeds the EouDetector only while LISTENING) forgets the voice and silence
runs it was counting: audio it never saw is counted as neither.

Energy is the RMS of the frame's int16 samples (``native.codec.decode_with_energy``), the
unit the user's thresholds are written in.

Per inbound frame the shell calls ``echo.level(t)``, ``classifier.update(rms, t, echo_level)``,
``echo.learn(rms, t, voice, classifier.threshold)``, then the detectors with the classifier; per
outbound frame ``echo.played(rms, t)``.

EchoGuard — the agent's own voice in the caller's audio (speakerphones)
  A speakerphone returns the agent's voice in the caller's audio, 15-30 dB down and 60-250 ms
  late. To an energy detector that is the caller talking: a barge-in on every sentence the
  agent says, an utterance started by its echo. An echo canceller (a sample-level model of the
  path) does not fit 1 µs per frame; the guard bounds the echo instead, per frame.
  * ``played(rms, t)``: the agent frame that plays during inbound time [t, t + 20) (the shell
    reports the inbound frame nearest its start), reported when it is sent — ahead of the
    inbound frames by the pacer's lead. A fixed ring of
    ECHO_RING (128) frames, 2.56 s: the longest delay allowed (500 ms) plus ~2 s of send-ahead.
    ``cut(t)``: a barge-in cleared the audio from t on; those frames never played and never
    echo. A frame played again at the same t (the next reply after a clear) replaces the old.
  * ``level(t)`` = ``far(t) * erl``. ``far(t)``: the loudest agent frame whose echo can overlap
    the inbound frame [t, t + 20) at some delay in [echo_min_delay_ms, echo_max_delay_ms] —
    played at p with t - 20 - max < p < t + 20 - min, 11 frames at 60..250 ms; 0.0 when none
    was played — until the line's delay is learned, then the loudest at that delay +- one frame
    (3 frames; ``delay_ms``, below). The loudest, not an estimate at one delay: until the path
    is known, the max over every delay allowed bounds the echo whatever it is. ``erl``: the
    line's echo return (an RMS ratio), learned per call (below); ``gain`` =
    10**(echo_return_db/20) is the worst case, where every call starts and above which ``erl``
    never goes.
  * ``learn(rms, t, voice, threshold)``, once the frame is classified: what the line's echo
    return really is (Geigel-style: a peak hold on the ratio of the inbound frame to the loudest
    agent frame in reach — at ANY delay allowed, learned delay or not — with a slow release), and
    its delay (below). Why: the worst case is right for a speakerphone and 15-30 dB too deaf
    for a handset, which returns no echo at all — under the worst case a caller over the agent
    counts only above its loudest frame in reach - 9 dB, and a "רגע רגע"
    at 1500-2300 RMS over a 4000-6000 agent is cut into runs too short to barge in. An echo
    canceller would model the path; this bounds it, per frame, from energies alone. On a frame
    with an agent frame in reach at some delay allowed (far_any > 0), r = rms / far_any:
    - the caller: over the threshold, over the gate (far(t) * erl * margin: the classifier's own
      "loud") and r over the worst echo + ECHO_NOISE_DB (1 dB) — louder than the loudest echo
      expected plus the most line noise a frame over the voice threshold can carry (threshold
      >= 2.2 x the noise: <= 1.0 dB). It teaches nothing, cancels a raise (and a forgetting of
      the delay) still waiting, and for CALLER_HOLD_MS (200 ms) after it no frame raises ``erl``
      nor makes the delay forgotten: its quieter frames — word ends, a syllable under a loud
      agent frame, the next word after a 60-160 ms gap — are the caller's, and taken for echo
      they would lift the gate against the caller's own voice.
      (With far_any = 0 any frame over the threshold is the caller: nothing is there to echo.)
    - echo seen louder than believed: over the threshold, erl < r <= the worst echo + 1 dB, no
      caller in the last 200 ms: ``erl`` = min(r, gain) — believed at once, applied on the next frame
      unless that one is the caller's (then this one was the caller's onset: a partial first
      frame sits 3-10 dB under the words that follow). So a speakerphone switched on mid-call
      (the echo appears at -15 dB while the estimate is at -40) is gated from its second or third
      frame on: it never makes a run as long as the hysteresis, let alone a barge-in; and a
      loud echo never stays "voice" — voice frames raise ``erl`` like any other (only the
      caller's, by the rule above, do not).
    - a frame that is not voice and quieter than believed (r < erl): ``erl`` falls toward r, by
      at most ERL_DECAY_DB_PER_S (6 dB per second of such frames), never under r nor under
      ERL_FLOOR_DB (-45 dB). Voice frames never lower it (the caller's voice says nothing about
      the echo); frames out of the agent's reach (far = 0) never move it; a frame under the
      threshold never raises it (an echo under the threshold cannot make a frame loud, and
      line noise over a faint agent frame would read as a large return).
    Why 6 dB/s: the estimate sits under the real return by what it loses between two echo
    peaks (the frame whose echo lands is the loudest in reach on every syllable): measured on
    the tests' speakerphones (-15/-20/-30 dB, 60-250 ms, noise 3-40 RMS) it settles within
    3.5 dB under the real return (up to 1.7 dB over it where the noise is as loud as the echo)
    and the echo stays >= 1.3 dB under the gate (>= 2.9 dB at -15/-20); at 10 dB/s the echo
    reaches the gate, at 3 dB/s a handset takes twice as long to learn.
    Why -45 dB: at the floor the gate over the loudest agent frames (4000-8000 RMS) is 45-90
    RMS, at or under the voice threshold of any line (35 + noise), so a lower estimate would
    change nothing the caller can hear; the floor still gates an echo at -40 dB (the quietest
    echo_return_db admits) by 1 dB, and bounds what a digitally silent stretch (r = 0: a muted
    phone) can claim. What the caller gets: on a handset the gate falls 6 dB per second of the
    agent's speech — after ~2 s it is 12 dB lower (a caller at -21 dB under the agent's
    loudest frame is heard), after ~5 s it is down to the line noise and only the voice
    threshold counts; on a speakerphone it stays at the real echo (-3.5..+1.7 dB) + the margin.
    The price: a caller quieter than the worst echo (r <= gain + 1 dB over the agent's loudest
    frame in reach) and not next to louder frames of their own is taken for an echo that got
    louder — the gate goes back up to them, as it was before the learning.
  * The delay (``delay_ms``: the learned delay the gate centres on, -1 while it uses every delay
    allowed), learned per call in ``learn``. Why: on a speakerphone the echo comes back at ONE
    delay, but the max over the whole window raises the gate 60 ms after a loud agent syllable
    plays and holds it up until 270 ms after it ends, while its echo lasts only as long as the
    syllable, at the real delay. Over the agent, a caller counts only above (the loudest agent
    frame of the last 60-260 ms) x erl x 2: the frames of their voice under it — a syllable's
    end, a quieter syllable, every frame once the agent gets louder as they start — break the
    run and the barge-in comes late. With the delay learned, the gate follows the echo where it
    really lands.
    - The evidence: per candidate lag L (the agent frame L frames before the inbound one; the
      window's 11 lags), forgetting sums of dx * da_L and da_L ** 2, and of dx ** 2, where d is a
      frame's RMS minus the previous frame's (x inbound, a the agent's), over PAIRS of consecutive
      frames the learning trusts as echo and noise: an agent frame in reach, not voice, not the
      caller's nor within CALLER_HOLD_MS of it, not a "moved" frame (below); only frames on the
      20 ms grid (the shell's) teach or use the delay. Time constant LAG_FORGET (128 pairs,
      ~2.6 s of such frames; nothing is forgotten while the agent is silent: the path does not
      change because nobody talks). The score is the correlation of the changes,
      c_L = S(dx da_L) / sqrt(S(dx^2) S(da_L^2)), compared as signed squares (no square root).
      Why changes, not the envelopes: speech envelopes correlate with themselves over 40-60 ms
      (syllables last 120-280 ms), so the envelopes correlate almost as well a frame or two off
      the real delay (measured on the corpus' echo lines: 0.8-0.85 against 0.93-1.0 at it);
      their changes — onsets and ends — line up only at the real delay (0.35-0.47 a frame off,
      <= 0 beyond), and the line's steady noise drops out. O(lags) per trusted frame, fixed
      arrays (LAG_MAX = ECHO_RING / 2 lags), no allocation.
    - The lock: after DELAY_MIN_FRAMES (100) trusted pairs, on every trusted pair, the lag with
      the best c is used, +- LAG_WIDTH (one frame), when it is clearly best: c >= DELAY_MIN_CORR
      (0.5), and every lag more than a frame from it correlates at most DELAY_SIDE_RATIO (0.5) x
      as well; else the whole window. Why these: measured c at the real delay 0.59-1.0 on the
      corpus' echo lines (-15..-25 dB, 20-30 dB SNR) and >= 0.68 on the tests' speakerphones
      (-15..-35 dB, noise 3-40 RMS); <= 0.19 on handsets (no echo: nothing lines up); lags two or
      more frames off <= 0.2 x the best (tests), <= 0.3 x (corpus); 0.5 and 0.5 sit between with
      room both ways. A -30 dB echo under 20 dB SNR noise (0.27), two paths of similar strength,
      a handset: no lock, the whole window — as before. Why 100 pairs: 2 s of the agent's speech
      (the greeting), where c has settled to +-0.1. Why +- one frame: a delay between two frame
      boundaries (173 ms) splits the echo over two lags, and a played frame's slot is right only
      to half a frame; gating at the centre lag alone, such an echo overflows the gate and the
      rule below throws the delay away again and again (measured).
    - What the lock changes: only which agent frames ``far`` and the gate count. ``erl`` is
      learned as before against the loudest frame at any delay, and so is the caller's test: an
      echo that got louder, at any lag, is still seen by the raise.
    - A path that changes (the phone moved, a different speaker, a second path): a frame over
      the threshold, loud only because the gate trusts the delay (over far(t) x erl x margin),
      no louder than the worst echo (+ ECHO_NOISE_DB) of the loudest agent frame OUTSIDE the
      learned delay +- 1, and not within CALLER_HOLD_MS of the caller's voice, may be the echo
      at another delay — or a caller: energy cannot tell. The delay is forgotten (the whole
      window again, the evidence cleared, learned afresh) on the next frame unless that one is
      the caller's (then it was the caller's onset) — so an echo at an unexpected delay is gated
      from its third frame on, as a speakerphone switched on is: a run shorter than the
      hysteresis, no voice. A frame louder than that is no echo from outside the learned delay:
      the caller's (over the worst echo at any delay) or an echo at it louder than believed
      (the raise takes it). ``reset()`` forgets the delay; ``cut()`` keeps it (same path).
    - What the caller gets: ~2 s into the agent's speech, on a speakerphone, while the agent
      talks the caller is heard over (the loudest agent frame at the echo's delay +- 20 ms) x erl
      x margin instead of over the loudest of the last 60-260 ms, and within CALLER_HOLD_MS of a
      frame of theirs louder than any echo, their quieter frames no longer break the run. Outside
      that hold, a frame the worst echo of an agent frame outside the delay could explain still
      counts as a possible echo that moved: the delay is forgotten and the whole window is back
      for 2 s of agent speech — the price of never taking an echo at an unexpected delay for
      voice. A caller under the echo at its own delay + the margin is not heard, as before. The
      cost: ~35 ns per frame on a line where every frame is evidence (bench).
  * The classifier takes it as ``update(rms, t, echo)`` (echo gate below). The BargeInDetector
    and the EouDetector take the classifier's decisions, so they inherit the guard, with their
    rules unchanged: a dip in the caller's voice that only the echo fills is a quiet frame like
    any other, bridged by the hysteresis when it is shorter than hysteresis_ms, and a caller
    who starts over the agent (loud enough, below) barges in barge_in_min_voice_ms after onset.

FrameClassifier — voice / silence for one frame
  * Calibration: the frames that START within the first ``calibration_ms`` of the stream
    (20 frames at the default 400 ms) are line noise by definition; ``update`` returns
    False for them and stores their RMS. The noise floor is their MEDIAN, so a word or a
    click inside the window (less than half of it) does not inflate it. The first frame
    after the window is classified with the calibrated threshold. Frames explained by echo
    (below) are left out of the median if at least CAL_MIN_CLEAN (5, 100 ms) frames are not;
    else all frames count: a greeting from the stream start leaves 3 clean frames (its echo
    can arrive 60 ms in), too few to measure noise on, and an echo-inflated median errs toward
    deafness (a higher threshold, walked down by the tracking once the agent pauses), never
    toward false voice — and on a handset, with no real echo, those frames are plain noise.
  * Threshold: ``max(threshold_floor, noise_floor * noise_gain + noise_offset)`` =
    max(35, noise*2.2 + 8); a frame is "loud" when RMS > threshold and RMS > echo * M, where
    echo is the EchoGuard's level for the frame (0: no echo possible, the plain rule) and
    M = 10**(echo_margin_db/20) (6 dB: x2). Why a margin on top of a bound that is already the
    loudest: an echo frame straddling two agent frames carries up to 3 dB more than either's
    RMS (a burst across the frame edge), the line noise adds its power, and the real return
    may be louder than echo_return_db says — 6 dB covers the first two with 3 dB to spare for
    the last. The price: while the agent's echo can be there, the caller counts only above the
    loudest agent frame in reach at the echo return + echo_margin_db — -9 dB at the start of
    every call (echo_return_db, the worst case: 1500 RMS is heard over agent syllables up to
    ~4200, a quieter voice only where the agent pauses or stops), then as low as the EchoGuard
    learns the line's real return to be (down to the noise on a handset), and on a speakerphone
    only over the agent frames at the echo's delay once the EchoGuard has learned it.
  * Hysteresis (time, symmetric — a debounce): the decision flips only once the loud/quiet
    reading has disagreed with it for ``hysteresis_ms`` in a row; it flips on the frame
    that completes that run. So a loud run shorter than hysteresis_ms is never voice, a dip
    shorter than hysteresis_ms never breaks voice, and every reported run has the length of
    the real one, only reported ``hysteresis_ms - 20`` later (40 ms at the default 60).
  * ``run_start_ms``: the stream time the currently reported state really began — on a flip,
    the start of the first frame of the agreeing run that completed the hysteresis (the
    first loud frame of a voice run; the first quiet frame after voice). ``pending``: the
    last frame disagreed with the reported state (a dip inside voice, a click inside
    silence: a flip may be coming). The detectors, handed the classifier (their
    ``classifier`` argument), measure every duration from ``run_start_ms`` in real time and
    let a run reach a threshold only on a frame that agrees with it: the hysteresis decides
    WHETHER a run is voice, never HOW LONG it has been. So a 160 ms click is voice for its
    real 160 ms only — its reported tail (the hysteresis spent confirming the silence) never
    counts — and a 40 ms dip inside speech is bridged, counted as part of the run. Why not an
    immediate onset with a hangover at the end: the hangover lengthens every voice run by
    the hysteresis, and then a 150 ms click reads as 190-210 ms of voice — the barge-in
    (180-220 ms) and the click rule (< 100 ms never starts an utterance) would be off by
    exactly that. After skipped frames it is the first frame after the gap (unseen audio
    is counted as neither); during calibration, the stream start.
  * Noise tracking: on a frame that is quiet and decided silence, the floor moves toward
    its RMS with time constant NOISE_TRACK_MS (2 s), and the threshold follows. Voice never
    moves it, so a long monologue cannot raise the floor.
  * Echo teaches the floor nothing: a frame whose echo level is within ECHO_LEARN_DB (12 dB)
    of the threshold (echo > threshold / 4) is explained by echo — the tracking skips it, the
    re-seat count below pauses on it (neither counts nor breaks the run), calibration leaves it
    out. Why: the agent's echo learned as line noise would raise the floor every time the
    agent talks, and the caller would then go unheard after it stops. Why 12 dB, tied to the
    threshold: an echo under threshold / 4 (~0.55 x the floor) raises a frame by at most ~14 %,
    and that allowance grows only 0.55x as fast as the floor it could push, so a learned floor
    cannot run away (at 6 dB it could: 2.2 / 2 > 1). A frame under the threshold still breaks
    the re-seat run, echo or not: echo only adds energy, so the line is not that noisy.
  * Noise re-seat: NOISE_RESEAT_MS (10 s) of frames with not one under the threshold is
    not speech — speech pauses between words, and the hysteresis only bridges 40-80 ms —
    but a line that got noisier (a fan, traffic, a worse codec path). The floor is then
    re-seated to the quietest frame of those 10 s (``reseats`` counts it). Without this, a
    noise step above the threshold would read as endless voice for the rest of the call: a
    forced EOU every MAX_UTT and a barge-in on every sentence the agent starts. 10 s is two
    of the longest MAX_UTT (5 s), so the user's own rule (MAX_UTT forces the EOU) always
    acts first, and a steady tone shorter than that (a test's "monologue") stays voice.
    The 10 s are counted over frames without echo, across the agent's turns: echo frames
    pause the count, so the agent's long sentence (or hold music) is never taken for a
    noisier line, and a real noise step is not missed because the agent talks every few
    seconds; the floor is re-seated to the quietest echo-free frame of the run.

EouDetector — utterance onset and end
  Fed ``(voice, rms, t_ms, classifier)``: the run durations below are measured from the
  classifier's ``run_start_ms`` (clamped to audio this detector saw, and to after its last
  EOU), and a threshold is reached only on a frame that agrees with the reported state;
  without a classifier (None: plain booleans), a run begins where it is first reported.
  * ONSET when the voice run reaches ``min_voice_onset_ms`` (100 ms; shorter runs — clicks —
    never start an utterance); ``onset_ms`` = the real start of that run (so the ONSET is
    reported on the frame ending onset + 100 ms, or on the classifier's flip if later).
  * END by silence: ``eou_silence_ms`` (400 ms) of continuous silence, counted from the real
    end of voice: the frame ending 400 ms after the last voiced frame ends (a loud blip
    still pending then — maybe a click, maybe the caller again — postpones it to the next
    quiet frame; one that becomes voice cancels it).
  * END by a sharp drop: a frame whose RMS is at least ``sharp_drop_db`` (12 dB) below the
    loudest of the ``sharp_drop_window_ms`` (60 ms) of frames before it, while the voice
    run is on. It ends the utterance ``eou_drop_silence_ms`` (200 ms) after the start of
    that frame if, until then, every frame stayed >= 12 dB below that peak and the
    current frame is decided silence (and quiet). A rise back within 12 dB of the peak cancels it
    (a syllable boundary, not a stop); so does a frame still decided voice at the 200 ms
    mark (quieter speech, not a stop). The drop is read from the RMS itself, so this path
    is not delayed by the hysteresis: 200 ms after the fall, on the line.
  * Never END before ``min_utt_ms`` after the (real) onset: a 300 ms "כן" followed by
    silence ends exactly at onset + min_utt_ms (1 s) — still a turn, just not a faster one.
  * FORCED at (real) onset + ``max_utt_ms`` (4.5 s) if no END came: a noisy line never hangs the
    call. An END due on the same frame wins. A voice run still going on after FORCED starts
    the next utterance from the next frame on.
  * ``voiced_ms``: the voice in the current utterance — the onset run in full, then each
    frame decided voice and settled, counted from its run's real start (a dip the hysteresis
    bridged counts once the voice is back; a run's reported tail never does), so it is the
    same real time the rules above measure. The shell judges an utterance by it (a cough or
    a "mm" has little voice, a real answer much); it keeps the last ended utterance's value
    until the next ONSET or ``open()``.
  * ``hold`` (set by the shell, cleared by END / FORCED and ``reset()``): the caller's partial
    transcript ends mid-phrase ("and...", "in...", a number being read out). A speaker who
    stops there is searching for the next word, not done: while ``hold`` is True the sharp
    drop does not end the utterance (it stays pending: lifting the hold lets it end on the next
    quiet frame) and silence needs ``eou_hold_silence_ms`` (500 ms) instead of
    ``eou_silence_ms``. MIN_UTT and MAX_UTT are unchanged: a held utterance still cannot hang.
  * ``open(onset_ms, t_ms, voiced_ms=0, min_utt_ms=-1)``: continue an utterance already in
    progress as if ONSET had fired at ``onset_ms`` — the caller began over the agent (the
    barge-in saw the onset; this detector was not being fed), or went on after an EOU the
    shell takes back. END / FORCED are measured from ``onset_ms``; silence from the frames
    fed from ``t_ms`` on (the next frame's start: audio this detector did not see counts as
    neither), and a voice run going on there simply continues the utterance. ``voiced_ms``
    seeds the count with the voice heard before ``t_ms``. ``min_utt_ms`` >= 0 replaces MIN_UTT
    for this utterance only: MIN_UTT keeps a short turn from ending too fast after a real
    onset, but an interruption is judged as soon as it ends — a 250 ms "yes" over the agent
    is resolved 200-400 ms after it, not at onset + 1 s, while the agent waits. The next
    utterance has the configured MIN_UTT again.

BargeInDetector — the caller talks over the agent
  * ``arm(t)`` when TTS audio starts playing, ``disarm()`` when it stops.
  * Fed ``(voice, t_ms, classifier)`` like the EouDetector. It counts the caller's VOICE over a
    STRETCH: voice runs (the classifier's decisions, each from its real start to its real end;
    a dip the hysteresis bridges is part of its run) separated by silences shorter than
    ``barge_in_gap_ms`` (120 ms) are one stretch; a silence of barge_in_gap_ms or more ends it,
    and the count starts again at the next run (0: every silence ends it — the continuous
    rule). Only voice counts, never the silences between the runs. Fires (True, once per arm)
    when the stretch's voice reaches ``barge_in_min_voice_ms`` (200 ms): a tone starting at
    1000 ms fires on the frame ending at 1200 ms; a 120 ms word at 1000, 100 ms of silence and
    the next word from 1220 fire on the frame ending at 1300 (120 + 80 ms of voice). Only voice
    at or after the end of the grace window ``armed_at + barge_in_grace_ms`` counts: voice that
    began inside the window (or before arming: the caller was still talking) counts from the
    window's end, so the earliest trigger is at armed_at + grace + min_voice (400 ms after TTS
    start by default) and never inside the window. The trigger frame is itself loud: a dip the
    hysteresis bridges counts as voice once the voice is back, so a dip at the 200 ms mark
    postpones the trigger to the next loud frame, and a 160 ms click never reads as 200 ms of
    voice. A run counts once the classifier has made it voice (hysteresis_ms after its start:
    a loud blip shorter than that is no voice, after a word or anywhere), so when the last
    piece is a new run the trigger comes at its start + hysteresis_ms at the earliest — "רגע"
    (180 ms), 100 ms, the next word: fired 60 ms into that word, with 240 ms of voice.
  * ``onset_ms`` = the real start of the stretch's first run (possibly inside the grace
    window, or before arming), so the shell can hand the ASR the audio from there.
  * Why a stretch: the user's rule — barge in only on caller voice above the threshold for
    180-220 ms — is there to ignore clicks and coughs, not to require one unbroken word. The
    commonest Hebrew interruption, "רגע, בעצם ...", is short words with silences between them
    (the corpus' rendering: "רגע" 190 ms, a 250 ms comma, "בְּ" 90 ms, 110 ms of silence, then
    "עצם ..."). Counted per run, nothing before "עצם" reaches 200 ms and the agent talks on
    until 200 ms into it (ie_he_20: heard for ~830 ms after the caller began, at 5 of 11
    positions in a frame). Counted per stretch, "בְּ" and "עצם" are one (the comma after "רגע"
    is a pause and stays a break): 100 ms sooner.
  * Why 120 ms: the silences inside a phrase are articulatory — stop closures and word
    junctures, mostly 50-120 ms ("בְּ | עצם": 110 ms) — while a pause between phrases is 200-250
    ms or more (the usual lower bound of a pause in speech studies; the comma after "רגע" is
    250 ms), and separate sounds (a second knock, a cough's second burst) come about as far
    apart. The hysteresis already bridges silences under hysteresis_ms (60 ms); this joins the
    next 60 ms. On the frame grid a silence reads up to 20-40 ms off its real length: LONGER
    between words (a word's fall and the next one's rise sit partly under the threshold, or
    under the echo gate over the agent), SHORTER between sharp-edged knocks (a frame holding
    1 ms of a knock is loud). Under 120 a silence that reads 100 ms or less joins. Measured
    through μ-law at each 1 ms position in a frame (tests/core/test_vad.py): between words,
    gaps up to 100 ms always join, 110 ms at 3 of 4 positions, 120 ms at 1 of 4, 130 ms never;
    between two sharp-edged knocks, 120 ms joins at 19 of 20 positions, 130 ms at 9, 140 ms and
    more never. At 140 two knocks 150 ms apart would join at 9 of 20 positions, for one more
    corpus position ("בְּ | עצם" joins at 10 of 11 positions under 120, at 11 under 140).
  * What it costs: two sounds closer than barge_in_gap_ms now add up. Two 100 ms knocks 80 ms
    apart are 200 ms of voice and barge in (a 160 ms click still never does, a 300 ms cough
    fires 200 ms after its onset as before, a rattle of clicks shorter than the hysteresis is
    never voice); so does a two-syllable "uh-huh" (2 x 100-120 ms, 60-80 ms apart), which the
    continuous rule let the agent talk over. Such a false interruption is resumed by the session
    (server/turn.py: PAUSED -> FalseInterruption).
  * Per frame: a few integer operations more than the continuous rule; no allocation.
  * During the classifier's calibration every decision is silence, so neither a barge-in
    nor an utterance can start in the first ``calibration_ms`` of the call.
"""
from libc.math cimport log10, pow

from native.config import ConfigError, TimingConfig

cdef enum:
    FRAME_MS = 20
    CAL_MAX = 64     # calibration frames kept (500 ms needs 25)
    DROP_MAX = 16    # frames of RMS history for the sharp-drop window (100 ms needs 5)
    ECHO_RING = 128  # agent frames the EchoGuard remembers: 2.56 s >= 500 ms delay + send-ahead
    CAL_MIN_CLEAN = 5  # echo-free calibration frames needed to calibrate on them alone (100 ms)

NOISE_TRACK_MS = 2000  # time constant of the noise-floor tracking during silence
cdef enum:
    RESEAT_MS = 10000
NOISE_RESEAT_MS = RESEAT_MS  # no frame under the threshold this long -> re-seat the floor
ECHO_LEARN_DB = 12.0  # expected echo within this of the threshold: the frame teaches the floor nothing
ERL_FLOOR_DB = -45.0  # the learned echo return never goes below this (EchoGuard)
ERL_DECAY_DB_PER_S = 6.0  # how fast the learned echo return falls, per second of agent audio in reach
CALLER_HOLD_MS = 200  # frames this close after the caller's voice never raise the echo return
ECHO_NOISE_DB = 1.0  # line noise adds at most this to a frame over the voice threshold (2.2 x the noise)
cdef enum:
    LAG_MAX = ECHO_RING // 2  # candidate echo delays (frames) the EchoGuard can weigh: the window's length bound
    LAG_WIDTH = 1        # the learned delay is used +- this many frames (+-20 ms)
    LAG_FORGET = 128     # the delay evidence forgets with this time constant (frame pairs: ~2.6 s of agent audio)
DELAY_MIN_FRAMES = 100   # frame pairs of echo / noise under the agent before the delay can be believed (2 s)
DELAY_MIN_CORR = 0.5     # the best delay's envelope correlation must reach this ...
DELAY_SIDE_RATIO = 0.5   # ... and every delay more than LAG_WIDTH frames from it correlate at most this x as well
DELAY_WIDTH_MS = LAG_WIDTH * 20

EOU_NONE = 0
EOU_ONSET = 1
EOU_END = 2
EOU_FORCED = 3


cdef inline double _dmax(double a, double b) noexcept nogil:
    return a if a > b else b


cdef class FrameClassifier:
    """Voice / silence for one 20 ms frame from its RMS (see the module docstring)."""

    cdef readonly double threshold
    cdef readonly double noise_floor
    cdef readonly bint calibrated
    cdef readonly bint voice
    cdef readonly int reseats
    cdef readonly long long run_start_ms
    cdef readonly bint pending
    cdef readonly object cfg
    cdef double floor, gain, offset, alpha, loud_min, echo_margin, echo_learn
    cdef long long cal_ms, hyst_ms, t0, pending_since, loud_ms, last_t
    cdef bint started
    cdef double cal[CAL_MAX]
    cdef double cal_clean[CAL_MAX]
    cdef int cal_n, cal_clean_n

    def __init__(self, cfg=None):
        if cfg is None:
            cfg = TimingConfig()
        self.cfg = cfg
        self.floor = cfg.threshold_floor
        self.gain = cfg.noise_gain
        self.offset = cfg.noise_offset
        self.cal_ms = cfg.calibration_ms
        self.hyst_ms = cfg.hysteresis_ms
        self.alpha = <double>FRAME_MS / NOISE_TRACK_MS
        self.echo_margin = pow(10.0, cfg.echo_margin_db / 20.0)
        self.echo_learn = pow(10.0, -ECHO_LEARN_DB / 20.0)
        self.reset()

    def reset(self) -> None:
        """Forget everything, including the calibration (a new stream)."""
        self.started = False
        self.calibrated = False
        self.voice = False
        self.cal_n = 0
        self.cal_clean_n = 0
        self.noise_floor = 0.0
        self.threshold = self.floor
        self.pending_since = -1
        self.t0 = 0
        self.loud_ms = 0
        self.loud_min = 0.0
        self.reseats = 0
        self.last_t = -1
        self.run_start_ms = -1
        self.pending = False

    cdef inline void _set_noise(self, double noise) noexcept:
        self.noise_floor = noise
        self.threshold = _dmax(self.floor, noise * self.gain + self.offset)

    cdef void _finish_calibration(self) noexcept:
        # median of the echo-free calibration frames if there are enough of them, else of all
        # (insertion sort: at most CAL_MAX values, once)
        cdef double* cal = self.cal_clean
        cdef int i, j, n = self.cal_clean_n
        cdef double v
        if n < CAL_MIN_CLEAN:
            cal = self.cal
            n = self.cal_n
        for i in range(1, n):
            v = cal[i]
            j = i - 1
            while j >= 0 and cal[j] > v:
                cal[j + 1] = cal[j]
                j -= 1
            cal[j + 1] = v
        if n == 0:
            self._set_noise(0.0)
        elif n & 1:
            self._set_noise(cal[n // 2])
        else:
            self._set_noise(0.5 * (cal[n // 2 - 1] + cal[n // 2]))
        self.calibrated = True

    cpdef bint update(self, double rms, long long t_ms, double echo=0.0):
        """Feed one frame's RMS; returns whether the line carries voice (False while calibrating).

        ``echo``: the loudest echo of the agent's own audio this frame may carry
        (``EchoGuard.level(t_ms)``; 0 when the agent is silent). The frame is loud only if its
        RMS also exceeds ``echo`` by ``echo_margin_db``, and a frame where that echo is
        significant (within ECHO_LEARN_DB of the threshold) teaches the noise floor nothing."""
        cdef bint loud
        cdef bint echoed
        if self.last_t >= 0 and t_ms != self.last_t + FRAME_MS:
            self.pending_since = -1  # frames were skipped: runs restart here
            self.loud_ms = 0
            self.run_start_ms = t_ms
        self.last_t = t_ms
        if not self.calibrated:
            if not self.started:
                self.started = True
                self.t0 = t_ms
                self.run_start_ms = t_ms
            if t_ms < self.t0 + self.cal_ms:
                if self.cal_n < CAL_MAX:
                    self.cal[self.cal_n] = rms
                    self.cal_n += 1
                    if echo <= self.threshold * self.echo_learn:
                        self.cal_clean[self.cal_clean_n] = rms
                        self.cal_clean_n += 1
                return False
            self._finish_calibration()
        echoed = echo > self.threshold * self.echo_learn
        loud = rms > self.threshold
        if loud:
            if not echoed:  # echo frames neither extend nor break the run: they pause it
                if self.loud_ms == 0 or rms < self.loud_min:
                    self.loud_min = rms
                self.loud_ms += FRAME_MS
                if self.loud_ms >= RESEAT_MS:
                    self._set_noise(self.loud_min)
                    self.reseats += 1
                    self.loud_ms = 0
                    loud = rms > self.threshold
            loud = loud and rms > echo * self.echo_margin
        else:
            self.loud_ms = 0  # under the threshold, echo or not: the line is not that noisy
        if loud != self.voice:
            if self.pending_since < 0:
                self.pending_since = t_ms
            if t_ms + FRAME_MS - self.pending_since >= self.hyst_ms:
                self.voice = loud
                self.run_start_ms = self.pending_since  # the run really began there
                self.pending_since = -1
        else:
            self.pending_since = -1
        if not loud and not self.voice and not echoed:
            self._set_noise(self.noise_floor + self.alpha * (rms - self.noise_floor))
        self.pending = self.pending_since >= 0
        return self.voice


NEVER_FRAMES = 1 << 40  # EouDetector.frames_to_*: no end to come (no utterance)


cdef inline long long _frames_until(long long ms) noexcept:
    """Frames (of FRAME_MS, the next one first) until ``ms`` more have passed: at least 1."""
    if ms <= FRAME_MS:
        return 1
    return (ms + FRAME_MS - 1) // FRAME_MS


cdef class EouDetector:
    """Utterance onset / end from per-frame voice decisions and RMS (see the module docstring)."""

    cdef readonly long long onset_ms
    cdef readonly bint in_utterance
    cdef readonly long long silence_ms
    cdef readonly long long utterance_ms   # length of the last ended utterance (onset -> EOU)
    cdef readonly long long drop_ms        # start of a pending sharp drop, -1 if none
    cdef readonly long long voiced_ms      # voice in the current (or last ended) utterance
    cdef public bint hold                  # the caller's words stop mid-phrase (set by the shell)
    cdef readonly object cfg
    cdef long long min_onset, eou_sil, hold_sil, drop_sil, min_utt, max_utt, min_utt_now
    cdef long long back_credit  # how far before its first frame a run the classifier reports may begin
    cdef double ratio, drop_peak
    cdef long long run_start, sil_start, last_t, seen_from, counted_to
    cdef bint prev_voice
    cdef double hist[DROP_MAX]
    cdef int hist_k, hist_pos, hist_n

    def __init__(self, cfg=None):
        if cfg is None:
            cfg = TimingConfig()
        self.cfg = cfg
        self.min_onset = cfg.min_voice_onset_ms
        self.eou_sil = cfg.eou_silence_ms
        self.hold_sil = cfg.eou_hold_silence_ms
        self.drop_sil = cfg.eou_drop_silence_ms
        self.min_utt = cfg.min_utt_ms
        self.max_utt = cfg.max_utt_ms
        self.back_credit = ((cfg.hysteresis_ms + FRAME_MS - 1) // FRAME_MS + 1) * FRAME_MS  # a frame to spare
        self.ratio = pow(10.0, cfg.sharp_drop_db / 20.0)
        self.hist_k = max(1, min(DROP_MAX, cfg.sharp_drop_window_ms // FRAME_MS))
        self.reset()

    def reset(self) -> None:
        """Back to idle: no utterance, no voice run, no energy history, no hold."""
        self.onset_ms = -1
        self.in_utterance = False
        self.silence_ms = 0
        self.utterance_ms = 0
        self.voiced_ms = 0
        self.hold = False
        self.min_utt_now = self.min_utt
        self.drop_ms = -1
        self.drop_peak = 0.0
        self.run_start = -1
        self.sil_start = -1
        self.counted_to = -1
        self.prev_voice = False
        self.hist_pos = 0
        self.hist_n = 0
        self.last_t = -1
        self.seen_from = -1

    def open(self, long long onset_ms, long long t_ms, long long voiced_ms=0, long long min_utt_ms=-1) -> None:
        """Continue an utterance that really began at ``onset_ms`` as if ONSET had fired there.

        For voice already in progress when this detector takes over (a barge-in over the
        agent, a caller who went on after an EOU that is taken back). ``t_ms``: the start of
        the next frame this detector will be fed; silence is counted from the frames fed
        from there (a voice run going on continues the utterance), END / FORCED from
        ``onset_ms``. ``voiced_ms`` seeds the voice count (the voice heard before ``t_ms``).
        ``min_utt_ms`` >= 0 replaces MIN_UTT for this utterance only (0: an interruption is
        judged as soon as it ends); -1 keeps the configured one."""
        if self.last_t != t_ms - FRAME_MS:
            self._forget_runs()  # the frames before t_ms were not fed here: no history
        self.last_t = t_ms - FRAME_MS
        self.seen_from = t_ms
        self.in_utterance = True
        self.onset_ms = onset_ms
        self.voiced_ms = voiced_ms
        self.counted_to = t_ms
        self.min_utt_now = min_utt_ms if min_utt_ms >= 0 else self.min_utt
        self.run_start = -1
        self.sil_start = -1
        self.silence_ms = 0
        self.drop_ms = -1

    cpdef long long frames_to_forced(self):
        """In an utterance: how many more frames until MAX_UTT forces its end (at least 1);
        NEVER_FRAMES outside one."""
        if not self.in_utterance:
            return NEVER_FRAMES
        return _frames_until(self.max_utt - (self.last_t + FRAME_MS - self.onset_ms))

    cpdef long long frames_to_end_in_silence(self):
        """In an utterance whose last frame was silent: the fewest more frames after which
        :meth:`update` could end it (END), were they all silent — a lower bound: the hold, a
        flip still pending, energy coming back only make it later. 1 when that is not known
        (the utterance was just opened); NEVER_FRAMES outside an utterance."""
        cdef long long end, k, k_drop
        if not self.in_utterance:
            return NEVER_FRAMES
        if self.sil_start < 0:
            return 1
        end = self.last_t + FRAME_MS
        k = _frames_until(self.eou_sil - self.silence_ms)
        if self.drop_ms >= 0:
            k_drop = _frames_until(self.drop_sil - (end - self.drop_ms))
            if k_drop < k:
                k = k_drop
        k_drop = _frames_until(self.min_utt_now - (end - self.onset_ms))  # END waits for MIN_UTT
        return k_drop if k_drop > k else k

    cpdef long long frames_to_end(self):
        """The fewest more frames after which :meth:`update` could end an utterance (END or
        FORCED) whatever they hold — voice, silence, energy — until the next :meth:`open`;
        outside an utterance, one that begins and ends. A lower bound, at least 1.

        Unlike :meth:`frames_to_end_in_silence` this holds for any input: a voice frame then a
        quiet one may start a sharp drop (END its 200 ms later), and a silence run the
        classifier reports may have begun up to its hysteresis before the frame it flips on."""
        cdef long long end, onset, k, k_sil
        if self.last_t < 0:
            return 1
        end = self.last_t + FRAME_MS
        if not self.in_utterance:
            # an onset no sooner than a run already going, or the classifier's back credit
            onset = end - self.back_credit
            if 0 <= self.run_start < onset:
                onset = self.run_start
            return _frames_until(onset + self.min_utt - end)
        # the sharp drop: a pending one, or one found on the next frame at the earliest
        k = _frames_until(self.drop_sil - (end - self.drop_ms)) if self.drop_ms >= 0 else _frames_until(self.drop_sil)
        if self.sil_start >= 0:  # EOU_SILENCE of the silence going on
            k_sil = _frames_until(self.eou_sil - (end - self.sil_start))
            if k_sil < k:
                k = k_sil
        # (a silence still to begin, even dated back by the classifier's hysteresis, needs
        # longer than the drop's wait in every allowed config: EOU_SILENCE >= 350 ms)
        k_sil = _frames_until(self.min_utt_now - (end - self.onset_ms))  # END waits for MIN_UTT
        if k_sil > k:
            k = k_sil
        k_sil = self.frames_to_forced()
        return k_sil if k_sil < k else k

    cdef void _forget_runs(self) noexcept:
        # frames were skipped: no run may span audio we did not see (an utterance in progress
        # stays open; its silence and drop are counted afresh, its MAX_UTT is not)
        self.run_start = -1
        self.sil_start = -1
        self.silence_ms = 0
        self.drop_ms = -1
        self.prev_voice = False
        self.hist_pos = 0
        self.hist_n = 0

    cdef inline double _recent_peak(self) noexcept:
        cdef int i
        cdef double m = 0.0
        for i in range(self.hist_n):
            if self.hist[i] > m:
                m = self.hist[i]
        return m

    cdef inline void _push(self, double rms, bint voice) noexcept:
        self.hist[self.hist_pos] = rms
        self.hist_pos += 1
        if self.hist_pos == self.hist_k:
            self.hist_pos = 0
        if self.hist_n < self.hist_k:
            self.hist_n += 1
        self.prev_voice = voice

    cdef inline int _end(self, int kind, long long end) noexcept:
        self.utterance_ms = end - self.onset_ms
        self.in_utterance = False
        self.hold = False
        self.min_utt_now = self.min_utt
        self.run_start = -1
        self.sil_start = -1
        self.drop_ms = -1
        self.seen_from = end  # the next utterance starts at the next frame at the earliest
        return kind

    cpdef int update(self, bint voice, double rms, long long t_ms, FrameClassifier classifier=None):
        """Feed one frame's decision and RMS; returns EOU_NONE / EOU_ONSET / EOU_END / EOU_FORCED.

        ``classifier``: the FrameClassifier that just decided ``voice`` for this frame; runs are
        then measured from its ``run_start_ms`` in real time (see the module docstring). Also
        counts ``voiced_ms``, and honours ``hold``."""
        cdef long long end = t_ms + FRAME_MS
        cdef long long start = t_ms
        cdef long long sil_needed
        cdef bint settled = True
        cdef double peak
        cdef bint ended
        if self.last_t >= 0 and t_ms != self.last_t + FRAME_MS:
            self._forget_runs()
            self.seen_from = t_ms
        self.last_t = t_ms
        if self.seen_from < 0:
            self.seen_from = t_ms
        if classifier is not None and classifier.last_t == t_ms and classifier.voice == voice:
            # a run new at this frame really began at run_start_ms, but never before audio
            # this detector saw (nor before its last EOU); a frame that disagrees with the
            # reported state (a flip pending) does not extend the run
            start = classifier.run_start_ms
            if start < self.seen_from:
                start = self.seen_from
            if start > t_ms:
                start = t_ms
            settled = not classifier.pending
        peak = self._recent_peak()
        if not self.in_utterance:
            if voice:
                if self.run_start < 0:
                    self.run_start = start
                if settled and end - self.run_start >= self.min_onset:
                    self.in_utterance = True
                    self.onset_ms = self.run_start
                    self.voiced_ms = end - self.run_start  # the onset run counts in full
                    self.counted_to = end
                    self.silence_ms = 0
                    self.sil_start = -1
                    self.drop_ms = -1
                    self._push(rms, voice)
                    return EOU_ONSET
            else:
                self.run_start = -1
            self._push(rms, voice)
            return EOU_NONE

        if voice:
            self.sil_start = -1
            self.silence_ms = 0
            if settled:
                # real time since the run began (a bridged dip included), counted once
                if start < self.counted_to:
                    start = self.counted_to
                if end > start:
                    self.voiced_ms += end - start
                self.counted_to = end
        else:
            if self.sil_start < 0:
                self.sil_start = start if start > self.onset_ms else self.onset_ms
            self.silence_ms = end - self.sil_start

        if self.drop_ms >= 0 and rms * self.ratio > self.drop_peak:
            self.drop_ms = -1  # energy came back: a syllable boundary, not a stop
        if self.drop_ms < 0 and self.prev_voice and peak > 0.0 and rms * self.ratio <= peak:
            self.drop_ms = t_ms
            self.drop_peak = peak
        self._push(rms, voice)

        sil_needed = self.hold_sil if self.hold else self.eou_sil
        ended = settled and self.silence_ms >= sil_needed
        if self.drop_ms >= 0 and end - self.drop_ms >= self.drop_sil:
            if voice:
                self.drop_ms = -1  # still voice 200 ms on: quieter speech, not a stop
            elif settled and not self.hold:
                ended = True  # (held: the drop stays pending, in case the hold is lifted)
        if ended and end - self.onset_ms >= self.min_utt_now:
            return self._end(EOU_END, end)
        if end - self.onset_ms >= self.max_utt:
            return self._end(EOU_FORCED, end)
        return EOU_NONE


cdef class BargeInDetector:
    """Caller voice over the agent's speech (see the module docstring)."""

    cdef readonly bint armed
    cdef readonly bint fired
    cdef readonly long long armed_at
    cdef readonly long long onset_ms
    cdef readonly object cfg
    cdef long long min_voice, grace, gap, run_start, last_t, seen_from
    cdef long long hyst_frames    # the classifier's hysteresis, in frames: how far back a run it reports can begin
    cdef long long stretch_start  # real start of the current stretch's first run, -1: none
    cdef long long stretch_voice  # voice of the stretch's ended runs, counted from the grace window's end
    cdef long long run_end        # real end of the stretch's last ended run, -1: none

    def __init__(self, cfg=None):
        if cfg is None:
            cfg = TimingConfig()
        self.cfg = cfg
        self.min_voice = cfg.barge_in_min_voice_ms
        self.grace = cfg.barge_in_grace_ms
        self.gap = cfg.barge_in_gap_ms
        self.hyst_frames = (cfg.hysteresis_ms + FRAME_MS - 1) // FRAME_MS
        self.armed = False
        self.fired = False
        self.armed_at = -1
        self.onset_ms = -1
        self.run_start = -1
        self.last_t = -1
        self.seen_from = -1
        self.stretch_start = -1
        self.stretch_voice = 0
        self.run_end = -1

    def arm(self, long long t_ms) -> None:
        """The agent's audio starts playing at ``t_ms`` (grace window starts here)."""
        self.armed = True
        self.fired = False
        self.armed_at = t_ms
        self.onset_ms = -1
        # the stretch's ended runs are all in audio already fed, before t_ms + grace (t_ms is
        # the agent's first audible frame, never in the past by more than the grace window):
        # none of their voice counts for this arm; the stretch itself (its onset) goes on
        self.stretch_voice = 0

    def disarm(self) -> None:
        """The agent stopped speaking: nothing to interrupt."""
        self.armed = False

    cpdef long long frames_to_fire(self):
        """Armed and not fired: the fewest more frames after which :meth:`update` could fire,
        whatever they hold — a lower bound. A voice run going on adds a frame's voice per frame;
        from a quiet frame, a run the classifier reports at its next flip is credited from where
        it really began (at most ``hysteresis_ms`` back), then a frame per frame; nothing counts
        before the grace window's end. NEVER_FRAMES when disarmed or already fired (re-arming
        restarts the grace window: still no sooner than that)."""
        cdef long long end, grace_end, voiced, k, k_grace
        if not self.armed or self.fired:
            return NEVER_FRAMES
        if self.last_t < 0:
            return 1  # nothing fed yet: not known
        end = self.last_t + FRAME_MS
        grace_end = self.armed_at + self.grace
        if self.run_start >= 0:  # in a run: counted up to the end of the last frame
            voiced = self.stretch_voice + end - (self.run_start if self.run_start > grace_end else grace_end)
            if voiced < self.stretch_voice:
                voiced = self.stretch_voice
        else:
            voiced = self.stretch_voice + self.hyst_frames * FRAME_MS - FRAME_MS  # the flip's back credit
        k = _frames_until(self.min_voice - voiced)
        k_grace = _frames_until(self.min_voice - self.stretch_voice - (end - grace_end))
        return k_grace if k_grace > k else k

    cpdef bint update(self, bint voice, long long t_ms, FrameClassifier classifier=None):
        """Feed one frame's decision; True exactly once per arm, at the trigger frame.

        ``classifier``: the FrameClassifier that just decided ``voice`` for this frame; the
        voice is then counted from its ``run_start_ms`` in real time (module docstring)."""
        cdef long long counted_from, voiced, end
        cdef long long grace_end = self.armed_at + self.grace
        cdef bint settled = True
        cdef bint consistent
        if self.last_t >= 0 and t_ms != self.last_t + FRAME_MS:
            self.run_start = -1  # frames were skipped: the run (and the stretch) restarts here
            self.stretch_start = -1
            self.stretch_voice = 0
            self.run_end = -1
            self.seen_from = t_ms
        self.last_t = t_ms
        if self.seen_from < 0:
            self.seen_from = t_ms
        consistent = classifier is not None and classifier.last_t == t_ms and classifier.voice == voice
        if not voice:
            if self.run_start >= 0:
                # the run ended: at the first quiet frame of the silence that ended it (its real
                # end), or here without a classifier; its voice after the grace window's end stays
                # counted for its stretch
                end = t_ms
                if consistent and self.run_start <= classifier.run_start_ms < t_ms:
                    end = classifier.run_start_ms
                counted_from = self.run_start if self.run_start > grace_end else grace_end
                if end > counted_from:
                    self.stretch_voice += end - counted_from
                self.run_end = end
                self.run_start = -1
            return False
        if self.run_start < 0:
            # tracked while disarmed too, so onset_ms is the real onset; never before audio
            # this detector saw, never after this frame
            self.run_start = t_ms
            if consistent:
                self.run_start = classifier.run_start_ms
                if self.run_start < self.seen_from:
                    self.run_start = self.seen_from
                if self.run_start > t_ms:
                    self.run_start = t_ms
            if self.stretch_start < 0 or self.run_start - self.run_end >= self.gap:
                # silence of barge_in_gap_ms or more (always, at 0) ended the stretch: a new one
                self.stretch_start = self.run_start
                self.stretch_voice = 0
        if consistent:
            settled = not classifier.pending  # a quiet frame (a dip) does not extend the run
        if not self.armed or self.fired or not settled:
            return False
        counted_from = self.run_start if self.run_start > grace_end else grace_end
        voiced = self.stretch_voice + t_ms + FRAME_MS - counted_from
        if voiced >= self.min_voice:
            self.fired = True
            self.onset_ms = self.stretch_start
            return True
        return False


cdef inline long long _floordiv(long long a, long long b) noexcept nogil:
    cdef long long q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef long long NEVER = -(1LL << 62)  # tag of an empty EchoGuard slot


cdef class EchoGuard:
    """The loudest echo of the agent's own audio to expect in each inbound frame, with the line's
    echo return learned per call (module docstring)."""

    cdef readonly object cfg
    cdef readonly double gain            # 10 ** (echo_return_db / 20): the worst case, where learning starts
    cdef readonly double erl             # the learned echo return (linear, RMS ratio), floor <= erl <= gain
    cdef double floor, decay, margin, within
    cdef double cand                     # a raise waiting for the next frame (0: none)
    cdef long long caller_until          # no raise before this: the caller's voice is next to it
    cdef long long hold                  # CALLER_HOLD_MS
    cdef long long far_t                 # the inbound frame far_val was computed for (NEVER: stale)
    cdef double far_val
    cdef long long lo_off, hi_off, min_delay, max_delay
    cdef long long tag[ECHO_RING]        # frame index (t_ms / 20) held by each slot, NEVER if empty
    cdef double rms[ECHO_RING]
    # the echo delay (module docstring): per candidate lag i (agent slot k + lo_off + i for the inbound
    # frame k), forgetting sums of d_a * d_x and d_a ** 2 over trusted frame pairs (d: this frame minus
    # the one before), and of d_x ** 2
    cdef int nlag                        # hi_off - lo_off + 1
    cdef int lag_c                       # the locked lag (its index), -1: the whole window
    cdef long long lag_n                 # trusted pairs since the evidence was last cleared
    cdef double lag_xx, forget, corr2, side2
    cdef double lag_xa[LAG_MAX]
    cdef double lag_aa[LAG_MAX]
    cdef long long prev_t                # the previous frame, if it was trusted (NEVER: none)
    cdef double prev_x
    cdef bint unlock                     # an echo the lock does not explain: the lock goes on the next frame
    cdef double far_in, far_out          # for far_t: the loudest frame at the locked lags / at the others

    def __init__(self, cfg=None):
        if cfg is None:
            cfg = TimingConfig()
        self.cfg = cfg
        self.gain = pow(10.0, cfg.echo_return_db / 20.0)
        self.floor = pow(10.0, ERL_FLOOR_DB / 20.0)
        self.decay = pow(10.0, -ERL_DECAY_DB_PER_S * FRAME_MS / 1000.0 / 20.0)
        self.margin = pow(10.0, cfg.echo_margin_db / 20.0)
        self.hold = CALLER_HOLD_MS
        self.within = self.gain * pow(10.0, ECHO_NOISE_DB / 20.0)  # the worst echo plus the line noise
        self.min_delay = cfg.echo_min_delay_ms
        self.max_delay = cfg.echo_max_delay_ms
        if self.max_delay < self.min_delay:
            raise ConfigError(
                f"echo_max_delay_ms={self.max_delay} is below echo_min_delay_ms={self.min_delay}")
        # an agent frame at p echoes into [p + d, p + d + 20) for d in [min, max]: it reaches the
        # inbound frame [t, t + 20) iff t - 20 - max < p < t + 20 - min; in frame indices, for
        # t on the 20 ms grid, p / 20 in [t / 20 + lo_off, t / 20 + hi_off]
        self.lo_off = _floordiv(-FRAME_MS - self.max_delay, FRAME_MS) + 1
        self.hi_off = -_floordiv(self.min_delay - FRAME_MS, FRAME_MS) - 1
        if self.hi_off - self.lo_off >= LAG_MAX:
            raise ConfigError("the echo delay window is longer than the EchoGuard ring")
        self.nlag = <int>(self.hi_off - self.lo_off + 1)
        self.forget = 1.0 - 1.0 / LAG_FORGET
        self.corr2 = DELAY_MIN_CORR * DELAY_MIN_CORR
        self.side2 = DELAY_SIDE_RATIO * DELAY_SIDE_RATIO
        self.reset()

    @property
    def erl_db(self) -> float:
        """The learned echo return in dB (``echo_return_db`` until learning lowers it)."""
        return 20.0 * log10(self.erl)

    @property
    def delay_ms(self) -> int:
        """The learned echo delay the gate centres on (ms, +- DELAY_WIDTH_MS), -1 while it uses every
        delay allowed (not learned yet, or forgotten after an echo it did not explain)."""
        if self.lag_c < 0:
            return -1
        return <int>(-(self.lo_off + self.lag_c) * FRAME_MS)

    def reset(self) -> None:
        """Forget every played frame and what was learned: a new stream, on a line assumed to
        return the worst echo until it shows otherwise."""
        cdef int i
        for i in range(ECHO_RING):
            self.tag[i] = NEVER
            self.rms[i] = 0.0
        self.erl = self.gain
        self.cand = 0.0
        self.caller_until = NEVER
        self._forget_delay()

    cdef void _forget_delay(self) noexcept:
        # back to the whole window, the delay to be learned afresh
        cdef int i
        for i in range(self.nlag):
            self.lag_xa[i] = 0.0
            self.lag_aa[i] = 0.0
        self.lag_xx = 0.0
        self.lag_n = 0
        self.lag_c = -1
        self.prev_t = NEVER
        self.unlock = False
        self.far_t = NEVER
        self.far_val = 0.0

    cpdef void played(self, double rms, long long t_ms):
        """The agent frame of RMS ``rms`` plays during inbound stream time [t_ms, t_ms + 20).

        Once per outbound frame, up to ~2 s ahead of the inbound frames; a frame played again
        at the same ``t_ms`` (new audio after a ``cut``) replaces the old one."""
        cdef long long k
        if t_ms < 0:
            return
        k = t_ms // FRAME_MS
        self.tag[k & (ECHO_RING - 1)] = k
        self.rms[k & (ECHO_RING - 1)] = rms
        self.far_t = NEVER

    def cut(self, long long t_ms) -> None:
        """The agent's audio from ``t_ms`` on was cleared: those frames never played."""
        cdef int i
        for i in range(ECHO_RING):
            if self.tag[i] != NEVER and self.tag[i] * FRAME_MS >= t_ms:
                self.tag[i] = NEVER
                self.rms[i] = 0.0
        self.far_t = NEVER

    cdef double _far(self, long long t_ms) noexcept:
        # the loudest agent frame whose echo can land in [t_ms, t_ms + 20) (cached per frame); with a
        # lock, also the loudest at the locked lags (far_in) and at the others (far_out)
        cdef long long k, k_lo, k_hi, k_c
        cdef double m = 0.0, m_in = 0.0, m_out = 0.0, v
        cdef int i
        if t_ms == self.far_t:
            return self.far_val
        if t_ms % FRAME_MS == 0:
            k = t_ms // FRAME_MS
            k_lo = k + self.lo_off
            k_hi = k + self.hi_off
        else:  # off the grid: the same window, computed exactly (and never a lock)
            k_lo = _floordiv(t_ms - FRAME_MS - self.max_delay, FRAME_MS) + 1
            k_hi = -_floordiv(self.min_delay - FRAME_MS - t_ms, FRAME_MS) - 1
        k_c = k_lo + self.lag_c  # the locked lag's slot (on the grid)
        if k_lo < 0:
            k_lo = 0
        k = k_lo
        while k <= k_hi:
            i = k & (ECHO_RING - 1)
            if self.tag[i] == k:
                v = self.rms[i]
                if v > m:
                    m = v
                if k - k_c <= LAG_WIDTH and k_c - k <= LAG_WIDTH:
                    if v > m_in:
                        m_in = v
                elif v > m_out:
                    m_out = v
            k += 1
        if self.lag_c < 0 or t_ms % FRAME_MS != 0:
            m_in = m
            m_out = m
        self.far_t = t_ms
        self.far_val = m
        self.far_in = m_in
        self.far_out = m_out
        return m

    cpdef double far(self, long long t_ms):
        """The loudest agent frame (RMS) whose echo can overlap the inbound frame at ``t_ms``: at
        some delay in [echo_min_delay_ms, echo_max_delay_ms], or, once the line's delay is learned
        (``delay_ms``), at that delay +- DELAY_WIDTH_MS; 0.0 when none was played."""
        self._far(t_ms)
        return self.far_in

    cpdef double level(self, long long t_ms):
        """Loudest echo (RMS, int16 units) the inbound frame at ``t_ms`` may carry: ``far(t_ms)``
        times the learned echo return ``erl``; 0.0 when nothing the agent played can reach this
        frame."""
        self._far(t_ms)
        return self.far_in * self.erl

    cpdef void learn(self, double rms, long long t_ms, bint voice, double threshold=0.0):
        """Learn the line's echo return and delay from the inbound frame at ``t_ms``, once it is classified.

        ``rms``: the frame's RMS; ``voice``: the classifier's decision for it; ``threshold``: the
        classifier's voice threshold (0: every frame counts as over it). With r = rms / the loudest
        agent frame at ANY delay allowed (module docstring): a frame over the threshold and the gate
        with r > the worst echo + ECHO_NOISE_DB is the caller's — it teaches nothing, drops the raise
        and the unlock still waiting, and no frame raises ``erl`` or unlocks the delay for
        CALLER_HOLD_MS after it; a frame over the threshold with erl < r <= the worst echo +
        ECHO_NOISE_DB raises ``erl`` to min(r, gain) on the next frame unless that one is the
        caller's; a frame that is not voice with r < erl lowers it toward r by at most
        ERL_DECAY_DB_PER_S, never under ERL_FLOOR_DB. With a delay learned, a frame over the
        threshold and the gate that the worst echo at a delay outside the learned one could explain
        forgets the delay on the next frame unless that one is the caller's. A frame that is not
        voice, not next to the caller's and in the agent's reach (with the frame before it) is
        evidence for the delay. O(window) per frame, no allocation."""
        cdef double far = self._far(t_ms)
        cdef double gate = self.far_in * self.margin * self.erl  # the classifier's own "loud"
        cdef double r, d
        cdef bint above = rms > threshold
        # loud for the classifier and louder than the worst echo at any delay: the caller's voice
        # (or a click), whatever the echo does
        cdef bint caller = above and rms > gate and rms > far * self.within
        # loud only because the gate trusts the learned delay, and as loud as the worst echo at
        # another delay could be: an echo that moved, or the caller — the lock cannot tell
        cdef bint moved = (self.lag_c >= 0 and above and rms > gate and rms <= self.far_out * self.within
                           and t_ms >= self.caller_until)
        if self.cand > 0.0:  # the previous frame's raise: believed unless this frame is the caller's
            if not caller and self.cand > self.erl:
                self.erl = self.cand
            self.cand = 0.0
        if self.unlock:  # likewise the previous frame's unlock
            self.unlock = False
            if not caller:
                self._forget_delay()
                far = self._far(t_ms)
                moved = False
        if caller:
            self.caller_until = t_ms + self.hold
            self.prev_t = NEVER
            return
        if far <= 0.0:
            self.prev_t = NEVER
            return  # the agent cannot be echoing into this frame: nothing to learn
        if moved:
            self.unlock = True
        r = rms / far
        if r > self.erl:
            if above and r <= self.within and t_ms >= self.caller_until:
                self.cand = r if r < self.gain else self.gain
        elif not voice:
            d = self.erl * self.decay
            if d < r:
                d = r
            if d < self.floor:
                d = self.floor
            self.erl = d
        if voice or moved or t_ms < self.caller_until or t_ms % FRAME_MS != 0:
            self.prev_t = NEVER
        else:
            self._evidence(rms, t_ms)

    cdef void _evidence(self, double x, long long t_ms) noexcept:
        # one trusted frame: with the one before it (also trusted), a pair of envelope differences
        cdef long long k, j
        cdef double dx, a, a_prev, da, f = self.forget
        cdef int i, s
        if self.prev_t != t_ms - FRAME_MS:
            self.prev_t = t_ms
            self.prev_x = x
            return
        dx = x - self.prev_x
        self.prev_t = t_ms
        self.prev_x = x
        self.lag_xx = self.lag_xx * f + dx * dx
        k = t_ms // FRAME_MS + self.lo_off  # the slot of lag 0; lag i is k + i, the frame before k + i - 1
        j = k - 1
        s = j & (ECHO_RING - 1)
        a_prev = self.rms[s] if (j >= 0 and self.tag[s] == j) else 0.0
        for i in range(self.nlag):
            j = k + i
            s = j & (ECHO_RING - 1)
            a = self.rms[s] if (j >= 0 and self.tag[s] == j) else 0.0
            da = a - a_prev
            a_prev = a
            self.lag_xa[i] = self.lag_xa[i] * f + dx * da
            self.lag_aa[i] = self.lag_aa[i] * f + da * da
        self.lag_n += 1
        if self.lag_n >= DELAY_MIN_FRAMES:
            self._decide()

    cdef void _decide(self) noexcept:
        # lock on the best lag when it is clearly best (module docstring); compared as signed
        # squares, c_i ** 2 * xx = xa_i * |xa_i| / aa_i, so no square root
        cdef int i, b = -1
        cdef double q, qb = 0.0
        cdef int c = -1
        for i in range(self.nlag):
            if self.lag_xa[i] > 0.0 and self.lag_aa[i] > 0.0:
                q = self.lag_xa[i] * self.lag_xa[i] / self.lag_aa[i]
                if q > qb:
                    qb = q
                    b = i
        if b >= 0 and qb >= self.corr2 * self.lag_xx:
            c = b
            for i in range(self.nlag):
                if (i - b > LAG_WIDTH or b - i > LAG_WIDTH) and self.lag_xa[i] > 0.0 \
                        and self.lag_xa[i] * self.lag_xa[i] > self.side2 * qb * self.lag_aa[i]:
                    c = -1
                    break
        if c != self.lag_c:
            self.lag_c = c
            self.far_t = NEVER
