"""The judge: one call as the CALLER lived it -> figures and verdicts (pure; no clocks, no I/O).

Inputs are what the line recorded (the caller's own clips and voice, the agent audio as it
played at the caller, clears, late inbound frames, the close), the texts the agent's voice was
asked for (with their renders), the brain spy's calls and the lead at the end. Nothing comes
from the server's logs or metrics: words, question marks and audio are measured here.

Definitions (all times on the line's clock, s):
- caller voice: the voiced intervals of the clips the caller said (clean track, 10 ms blocks
  over RMS 200, gaps < 150 ms closed); caller runs = those intervals merged across clips the
  same way.
- agent audible: 10 ms blocks of the played agent audio over RMS 200; edges to the sample
  (|x| > 100). An agent SPURT is audible audio with gaps < 350 ms merged (a comma or
  sentence pause does not end it), split at every `clear` and wherever the frames show a cut sentence followed by
  something else than its own continuation.
- which words were heard: played μ-law frames are matched to the agent renders (sentences
  start on a frame edge), giving for each text its played frames and the last word begun.

Rules (a scenario passes when none is broken):
  dead_air     every caller turn (answer / interrupt / repeat, with its continuations) hears
               the agent's next audio <= 2000 ms after its voice ended
  resume       a backchannel / noise over the agent (a false interruption): the agent's audio
               goes on or RESUMES <= 600 ms after the caller's voice ended; a sentence it cut
               is resumed from the word the caller last heard or up to 3 words before it
               (+1 word of tolerance for the word-timing estimate)
  talk_over    agent audio audible while the caller's voice is on, except where the caller
               started over agent audio audible for > 150 ms already: <= 100 ms per event
  halt         a caller turn (an interrupt, or an answer said over the agent) starting over
               agent audio audible for >= 200 ms (past the grace window): voice onset -> last audible agent sample <= 220 ms (+ how late the
               line delivered the frames of that onset, when the scenario has bursts); voice in
               bursts shorter than 200 ms before the first longer stretch (a clipped "רגע,")
               is added to the budget: it cannot be told from a cough
  no_reply     a knock / cough / hum while the agent is silent (and no reply was due) hears
               no agent audio in the 2 s after it
  brain        the brain got exactly one respond() per caller turn (not for backchannels or
               noise; one merged turn for a continuation, holding the continuation's words),
               and every caller turn's words reached it
  slots        RuleBrain.lead.slots (and status) at the end equal the expectation
  one_question every agent turn heard in full has exactly one "?" (the goodbye before the agent
               hangs up: none needed) and at most 20 words
  repeat       after "מה?" / "sorry, what?" the agent's reply repeats the last question heard
               (>= 60 % of its words)
  hangup       the agent never hangs up while the caller talks, before answering a turn, or
               right after asking a question
  self_cut     the agent never stops mid-sentence while the caller is silent (nothing of the
               caller's voice in the 800 ms before the cut): echo or noise taken for a barge-in
  no_cut       (echo-only) nothing the agent said was cut, no `clear` at all
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import numpy as np

from native.codec import pcm16_to_ulaw
from native.config import SAMPLE_RATE
from speech.sentences import split_sentences

from .caller import TURN_ROLES, Performed
from .harness import Record
from .voices import BLOCK, block_rms, intervals

AUDIBLE_RMS = 200.0
EDGE = 100
BLOCK_S = BLOCK / SAMPLE_RATE
CALLER_MERGE_S = 0.15
SPURT_MERGE_S = 0.45
DEAD_AIR_MAX_MS = 2000.0
RESUME_MAX_MS = 600.0
TALK_OVER_MAX_MS = 100.0
HALT_MAX_MS = 220.0
BARGE_AUDIBLE_S = 0.15  # the caller starts over agent audio audible this long: a barge-in
GRACE_S = 0.2
BARGE_MIN_VOICE_S = 0.2
NOISE_WINDOW_S = 2.0
ANSWER_MIN_S = 0.5
MAX_WORDS = 20
REPEAT_OVERLAP = 0.6
RESUME_BEFORE_WORDS = 3
RESUME_AFTER_WORDS = 1


@dataclass
class Verdict:
    name: str
    group: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dead_air_ms: list[float] = field(default_factory=list)
    unanswered: int = 0
    talk_over_ms: list[float] = field(default_factory=list)
    halt_ms: list[float] = field(default_factory=list)
    resume_ms: list[float] = field(default_factory=list)
    resume_never: int = 0
    noise_replies: int = 0
    brain_calls: int = 0
    turns: int = 0
    agent_turns_checked: int = 0

    @property
    def passed(self) -> bool:
        return not self.failures

    def fail(self, rule: str, detail: str) -> None:
        self.failures.append(f"{rule}: {detail}")

    def explain(self) -> str:
        head = f"{self.name} [{self.group}] {'PASS' if self.passed else 'FAIL'}"
        return "\n  ".join([head, *self.failures, *(f"({n})" for n in self.notes)])


def norm_words(text: str) -> list[str]:
    return [w for w in (re.sub(r"[^\w'\-]", "", t).lower() for t in text.split()) if w]


def count_questions(text: str) -> int:
    return text.count("?") + text.count("؟")


# -- the agent's audio -----------------------------------------------------------------------


@dataclass
class Spurt:
    start: float
    end: float


class AgentAudio:
    """The agent audio at the caller: audible intervals, spurts, and which text played when."""

    def __init__(self, rec: Record) -> None:
        self.heard = rec.line.heard.astype(np.int32)
        self.clears = sorted(rec.line.clears)
        audible = block_rms(rec.line.heard) > AUDIBLE_RMS
        self.raw = [self._precise(a, b) for a, b in intervals(audible, BLOCK_S, 0.001)]
        self.synth = rec.synth
        self._identify(rec)
        self.spurts = self._spurts()

    def _precise(self, a: float, b: float) -> tuple[float, float]:
        ia, ib = int(round(a * SAMPLE_RATE)), int(round(b * SAMPLE_RATE))
        first = self.heard[ia : ia + BLOCK]
        last = self.heard[max(ia, ib - BLOCK) : ib]
        fi = np.flatnonzero(np.abs(first) > EDGE)
        li = np.flatnonzero(np.abs(last) > EDGE)
        start = (ia + (int(fi[0]) if len(fi) else 0)) / SAMPLE_RATE
        end = (max(ia, ib - BLOCK) + (int(li[-1]) + 1 if len(li) else len(last))) / SAMPLE_RATE
        return start, end

    # which text each audible played frame belongs to
    def _identify(self, rec: Record) -> None:
        index: dict[bytes, list[tuple[int, int]]] = {}
        self.last_loud: dict[int, int] = {}
        for call in rec.synth:
            pcm = call.pcm
            n = -(-len(pcm) // 160)
            padded = np.zeros(n * 160, dtype=np.int16)
            padded[: len(pcm)] = pcm
            frames = padded.reshape(n, 160)
            rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
            for f in np.flatnonzero(rms > AUDIBLE_RMS):
                index.setdefault(pcm16_to_ulaw(frames[f].tobytes()), []).append((call.index, int(f)))
                self.last_loud[call.index] = int(f)
        self.ids: list[tuple[float, float, int | None, int | None]] = []  # (start, end, call, frame)
        self.played: dict[int, dict[int, float]] = {}  # call -> frame -> fraction played
        last = (-1, -1)
        prev_end = -1.0
        for pf in sorted(rec.line.frames, key=lambda f: f.start):
            if pf.rms <= AUDIBLE_RMS or pf.end <= pf.start:
                continue
            cands = index.get(pf.ulaw, [])
            forward = [c for c in cands if c > last]
            pick = min(forward) if forward else None
            if pick is None and pf.start - prev_end >= 0.06:  # a replay after a pause
                same = [c for c in cands if c[0] == last[0]]
                pick = min(same, key=lambda c: abs(c[1] - last[1])) if same else None
            if pick is not None:
                last = pick
                self.played.setdefault(pick[0], {})[pick[1]] = (pf.end - pf.start) / 0.02
            self.ids.append((pf.start, pf.end, *(pick or (None, None))))
            prev_end = pf.end
        self._id_starts = [i[0] for i in self.ids]

    def complete(self, call: int) -> bool:
        frames = self.played.get(call, {})
        last = self.last_loud.get(call)
        return last is not None and frames.get(last, 0.0) >= 0.5

    def cut(self, call: int) -> bool:
        return bool(self.played.get(call)) and not self.complete(call)

    def first_played(self, call: int) -> float | None:
        starts = [s for s, _, c, _ in self.ids if c == call]
        return starts[0] if starts else None

    def id_before(self, t: float) -> tuple[int | None, int | None, float]:
        """Identity of the last audible frame that began before ``t`` (and its end)."""
        i = bisect.bisect_left(self._id_starts, t - 1e-9) - 1
        if i < 0:
            return None, None, 0.0
        s, e, c, f = self.ids[i]
        return c, f, e

    def id_at_or_after(self, t: float, within: float = 0.1) -> tuple[int | None, int | None]:
        """Identity of the first recognised audible frame starting in [t, t + within) (a
        faded-in first frame may not match its render)."""
        i = bisect.bisect_left(self._id_starts, t - 0.011)
        while i < len(self.ids) and self.ids[i][0] < t + within:
            if self.ids[i][2] is not None:
                return self.ids[i][2], self.ids[i][3]
            i += 1
        return None, None

    def _discontinuity(self, gap_start: float, gap_end: float) -> bool:
        c0, f0, _ = self.id_before(gap_start + 1e-6)
        c1, f1 = self.id_at_or_after(gap_end)
        if c0 is None or c1 is None or f0 is None or f1 is None:
            return False
        if c1 == c0 and f1 > f0:
            return False  # the same sentence goes on (a pause inside it)
        if c1 > c0 and self.complete(c0) and f0 == self.last_loud.get(c0):
            return False  # the next sentence after a finished one
        return True

    def _spurts(self) -> list[Spurt]:
        out: list[Spurt] = []
        for a, b in self.raw:
            if out:
                prev = out[-1]
                gap = a - prev.end
                cleared = any(prev.end - 0.021 <= c <= a for c in self.clears)
                if gap < SPURT_MERGE_S and not cleared and not (gap >= 0.06 and self._discontinuity(prev.end, a)):
                    prev.end = b
                    continue
            out.append(Spurt(a, b))
        return out

    def spurt_at(self, t: float) -> Spurt | None:
        for s in self.spurts:
            if s.start <= t < s.end:
                return s
        return None

    def next_start(self, after: float) -> float | None:
        for a, _ in self.raw:
            if a >= after - 1e-9:
                return a
        return None

    def audible_at(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.raw)

    def word_index(self, call: int, pos_s: float) -> int:
        """Index of the last word of ``call`` that had begun by ``pos_s`` into its audio."""
        words = self.synth[call].words
        k = 0
        for i, (_, a, _b) in enumerate(words):
            if a < pos_s:
                k = i
        return k

    def heard_pos(self, call: int) -> float:
        frames = self.played.get(call, {})
        if not frames:
            return 0.0
        f = max(frames)
        return (f + min(1.0, frames[f])) * 0.02


def suffix_start(cut_text: str, new_text: str) -> int | None:
    """k when ``new_text`` starts with the words of ``cut_text`` from word k on. k = 0 is the
    sentence said again from its start: a resumption only if the cut came that early (the
    caller of this checks k against the word the caller last heard)."""
    old, new = norm_words(cut_text), norm_words(new_text)
    for k in range(0, len(old)):
        rest = old[k:]
        if new[: len(rest)] == rest or (len(new) < len(rest) and rest[: len(new)] == new and new):
            return k
    return None


# -- the caller's side ---------------------------------------------------------------------


@dataclass
class Turn:
    steps: list[Performed]

    @property
    def onset(self) -> float:
        return self.steps[0].placed.voice_start

    @property
    def voice_end(self) -> float:
        return max(p.placed.voice_end for p in self.steps)

    @property
    def role(self) -> str:
        return self.steps[0].step.role


def caller_runs(performed: list[Performed]) -> list[tuple[float, float]]:
    spans = sorted(iv for p in performed for iv in p.placed.voiced)
    out: list[list[float]] = []
    for a, b in spans:
        if out and a - out[-1][1] < CALLER_MERGE_S:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _turns(performed: list[Performed]) -> tuple[list[Turn], list[Performed]]:
    turns: list[Turn] = []
    asides: list[Performed] = []
    for p in performed:
        role = p.step.role
        if role in TURN_ROLES or (role == "cont" and not turns):
            turns.append(Turn([p]))
        elif role == "cont":
            turns[-1].steps.append(p)
        else:
            asides.append(p)
    return turns, asides


def _fmt(t: float) -> str:
    return f"{t:.2f}s"


# -- the verdict -----------------------------------------------------------------------------


def judge(rec: Record) -> Verdict:
    sc = rec.scenario
    v = Verdict(sc.name, sc.group)
    agent = AgentAudio(rec)
    performed = rec.performed
    turns, asides = _turns(performed)
    runs = caller_runs(performed)
    v.turns = len(turns)
    onsets = [t.onset for t in turns]

    def next_turn_onset(after: float) -> float:
        later = [o for o in onsets if o > after + 1e-6]
        return later[0] if later else float("inf")

    for p in performed:
        if p.waited_out:
            v.notes.append(f"step {p.index} ({p.step.voice.text or p.step.voice.kind}): what the caller waited for never came")

    # dead air -----------------------------------------------------------------------------
    answer_start: dict[int, float | None] = {}
    for k, t in enumerate(turns):
        end = t.voice_end
        limit = next_turn_onset(t.onset)
        over = agent.spurt_at(end)
        if over is not None and over.end > end + ANSWER_MIN_S:
            answer_start[k] = end  # the agent talks on past the caller's end: not dead air
            v.dead_air_ms.append(0.0)
            continue
        # (audio that stops within ANSWER_MIN_S of the caller's end was being halted: the
        # answer is what comes after it)
        start = agent.next_start(over.end + 1e-6 if over is not None else end)
        if start is None or start >= limit + BARGE_AUDIBLE_S:  # (it may start with the next turn)
            answer_start[k] = None
            v.unanswered += 1
            why = ""
            if agent_hung_up(rec) and rec.line.closed_at is not None and rec.line.closed_at < end + DEAD_AIR_MAX_MS / 1000:
                why = f" (the agent hung up at {_fmt(rec.line.closed_at)})"
            v.fail("dead_air", f"turn '{_turn_text(t)}' (ended {_fmt(end)}) never answered{why}")
            continue
        answer_start[k] = start
        ms = (start - end) * 1000
        v.dead_air_ms.append(round(ms, 1))
        if ms > DEAD_AIR_MAX_MS:
            v.fail("dead_air", f"{ms:.0f} ms of silence after '{_turn_text(t)}' (ended {_fmt(end)})")

    # false interruptions and noise ----------------------------------------------------------
    for p in asides:
        onset, end = p.placed.voice_start, p.placed.voice_end
        what = p.step.voice.text or p.step.voice.kind
        s = agent.spurt_at(onset)
        if s is not None:
            _judge_resume(v, agent, p, s, what, end, next_turn_onset(onset))
            continue
        due = any(t.voice_end <= onset and (answer_start.get(k) or 0) > onset for k, t in enumerate(turns))
        if due:
            v.notes.append(f"'{what}' at {_fmt(onset)}: a reply was due, no-reply rule not applied")
            continue
        window_end = min(end + NOISE_WINDOW_S, next_turn_onset(onset))
        start = agent.next_start(onset)
        if start is not None and start < window_end:
            v.noise_replies += 1
            v.fail("no_reply", f"agent spoke {(start - end) * 1000:.0f} ms after '{what}' ({p.step.role} at {_fmt(onset)})")

    # talk-over ----------------------------------------------------------------------------
    for a, b in runs:
        for s in agent.spurts:
            lo, hi = max(a, s.start), min(b, s.end)
            if hi <= lo:
                continue
            if s.start <= a - BARGE_AUDIBLE_S:
                continue  # the caller started over the agent: barge-in / backchannel rules
            ms = (hi - lo) * 1000
            v.talk_over_ms.append(round(ms, 1))
            if ms > TALK_OVER_MAX_MS:
                v.fail("talk_over", f"agent audible {ms:.0f} ms over the caller's voice at {_fmt(lo)}")

    # halt ---------------------------------------------------------------------------------
    for t in turns:  # any caller turn said over the agent is a barge-in, whatever it was meant as
        first = t.steps[0]
        # Voice in bursts shorter than the barge-in minimum cannot be told from a cough: the
        # time until the first stretch of >= 200 ms is added to the budget.
        stretches = [(a, b) for a, b in first.placed.voiced if b - a >= BARGE_MIN_VOICE_S - 1e-9]
        if not stretches:
            if agent.spurt_at(first.placed.voice_start) is not None:
                v.notes.append(f"'{_turn_text(t)}' over the agent: no stretch of voice >= 200 ms, halt not judged")
            continue
        onset = first.placed.voice_start
        s = agent.spurt_at(onset)
        if s is None:  # silent at the first burst: is it talking when the real stretch starts?
            onset = stretches[0][0]
            s = agent.spurt_at(onset)
        if s is None:
            if first.step.role == "interrupt":
                v.notes.append(f"interrupt at {_fmt(onset)}: the agent was already silent")
            continue
        if onset - s.start < GRACE_S:
            v.notes.append(f"'{_turn_text(t)}' {(onset - s.start) * 1000:.0f} ms into agent audio: talk-over rule, not halt")
            continue
        allowance = stretches[0][0] - onset
        late = max((dl - due for due, dl in rec.line.lateness if onset < due <= onset + 0.26), default=0.0)
        ms = (s.end - onset) * 1000
        v.halt_ms.append(round(ms, 1))
        budget = HALT_MAX_MS + (late + allowance) * 1000
        if ms > budget:
            v.fail("halt", f"agent heard {ms:.0f} ms after the caller's '{_turn_text(t)}' began at {_fmt(onset)} (budget {budget:.0f} ms)")

    # brain --------------------------------------------------------------------------------
    v.brain_calls = len(rec.brain_turns)
    if v.brain_calls != len(turns):
        said = "; ".join(f"'{text}'" for text, _, _ in rec.brain_turns)
        v.fail("brain", f"{v.brain_calls} brain turns for {len(turns)} caller turns ({said})")
    brain_texts = [set(norm_words(text)) for text, _, _ in rec.brain_turns]
    for t in turns:
        words = {w for p in t.steps if p.step.voice.kind == "speech" for w in norm_words(p.step.voice.text)}
        if not words:
            continue
        best = max(brain_texts, key=lambda got: len(words & got), default=set())
        if not words & best:
            v.fail("brain", f"the brain never got the caller's '{_turn_text(t)}'")
        elif not words <= best:
            missing = " ".join(sorted(words - best))
            v.fail("brain", f"no single brain turn holds the whole turn '{_turn_text(t)}' (missing: {missing})")

    # slots --------------------------------------------------------------------------------
    for key, want in sc.expect.slots:
        got = rec.slots.get(key)
        if got != want:
            v.fail("slots", f"{key} = {got!r}, expected {want!r}")
    if sc.expect.status is not None and rec.status != sc.expect.status:
        v.fail("slots", f"status = {rec.status!r}, expected {sc.expect.status!r}")

    # what the agent said ------------------------------------------------------------------
    hung_up = agent_hung_up(rec)
    _judge_agent_turns(v, rec, agent, hung_up)
    _judge_repeats(v, rec, agent, turns)

    # hang-up --------------------------------------------------------------------------------
    if hung_up and rec.line.closed_at is not None:
        c = rec.line.closed_at
        if any(a <= c < b + 0.3 for a, b in runs):
            v.fail("hangup", f"the agent hung up at {_fmt(c)} while the caller was talking")
        played = [x for x in rec.synth if agent.played.get(x.index)]
        if played and count_questions(played[-1].text):
            v.fail("hangup", f"the agent hung up at {_fmt(c)} right after asking '{played[-1].text}'")

    # the agent cutting itself off with nobody talking (echo or line noise taken for voice)
    for c in sorted(agent.played):
        if not agent.cut(c):
            continue
        t_cut = max(e for _, e, cc, _ in agent.ids if cc == c)
        if rec.line.closed_at is not None and t_cut >= rec.line.closed_at - 0.1:
            continue  # cut by the end of the call: the hangup rule's business
        if not any(a < t_cut + 0.05 and b > t_cut - 0.8 for p in performed for a, b in p.placed.voiced):
            v.fail("self_cut", f"the agent stopped mid-sentence at {_fmt(t_cut)} with the caller silent: '{agent.synth[c].text}'")

    if sc.expect.no_cut:
        cut = [agent.synth[c].text for c in agent.played if agent.cut(c)]
        if rec.line.clears or cut:
            v.fail("no_cut", f"{len(rec.line.clears)} clear(s); cut: {cut}")
    return v


def agent_hung_up(rec: Record) -> bool:
    """The server closed the call before the caller's `stop` (the agent hung up)."""
    line = rec.line
    if line.closed_by != "server" or line.closed_at is None:
        return False
    return line.stop_sent_at is None or line.closed_at < line.stop_sent_at - 1e-9


def _turn_text(t: Turn) -> str:
    return " ".join(p.step.voice.text or p.step.voice.kind for p in t.steps)


def _judge_resume(v: Verdict, agent: AgentAudio, p: Performed, s: Spurt, what: str, end: float, limit: float) -> None:
    if s.end >= end:
        v.resume_ms.append(0.0)
        return  # the agent talked on through it
    nxt = agent.next_start(s.end + 1e-6)
    if nxt is None or nxt >= limit:
        v.resume_never += 1
        v.fail("resume", f"agent stopped at {_fmt(s.end)} for '{what}' and never resumed")
        return
    ms = max(0.0, (nxt - end) * 1000)
    v.resume_ms.append(round(ms, 1))
    if ms > RESUME_MAX_MS:
        v.fail("resume", f"agent resumed {ms:.0f} ms after '{what}' ended ({_fmt(end)})")
    c, f, _ = agent.id_before(s.end)
    if c is None or not agent.cut(c):
        return
    cut_text = agent.synth[c].text
    h = agent.word_index(c, agent.heard_pos(c))
    c2, f2 = agent.id_at_or_after(nxt)
    k: int | None = None
    said = "?"
    if c2 == c and f2 is not None:
        k = agent.word_index(c, f2 * 0.02 + 0.03)
        said = "(replay of the same audio)"
    elif c2 is not None:
        said = agent.synth[c2].text
        k = suffix_start(cut_text, said)
    words = cut_text.split()
    heard_word = words[h] if h < len(words) else "?"
    if k is None:
        v.fail("resume", f"after '{what}' the agent said '{said}' instead of the rest of '{cut_text}' (cut at '{heard_word}')")
    elif not (h - RESUME_BEFORE_WORDS <= k <= h + RESUME_AFTER_WORDS):
        v.fail("resume", f"resumed '{cut_text}' at word {k}, the caller last heard word {h} ('{heard_word}')")


def agent_turns(rec: Record, agent: AgentAudio) -> list[tuple[list[str], list[int]]]:
    """The agent's turns as (sentences meant, synth calls that said them): the greeting and each
    brain reply (the spy recorded what it yielded); a resumption belongs to the turn of the
    sentence it resumes; any other text the session spoke on its own is a turn by itself."""
    turns: list[tuple[float, list[str], list[int]]] = [(t, list(s), []) for t, s in rec.brain_replies]
    owner: dict[int, int] = {}
    for call in rec.synth:
        k = next(
            (i for i in range(len(turns) - 1, -1, -1) if turns[i][0] <= call.asked_at + 1e-9 and call.text in turns[i][1]),
            None,
        )
        if k is None:
            k = next((owner[c] for c in sorted(owner, reverse=True)
                      if agent.cut(c) and suffix_start(rec.synth[c].text, call.text) is not None), None)
        if k is None:
            turns.append((call.asked_at, [call.text], []))
            k = len(turns) - 1
        owner[call.index] = k
        turns[k][2].append(call.index)
    return [(sentences, calls) for _, sentences, calls in sorted(turns, key=lambda x: x[0])]


def _judge_agent_turns(v: Verdict, rec: Record, agent: AgentAudio, hung_up: bool) -> None:
    spoken = [(s, calls) for s, calls in agent_turns(rec, agent) if any(agent.played.get(c) for c in calls)]
    for n, (sentences, calls) in enumerate(spoken):
        def heard(sentence: str) -> bool:
            said = [c for c in calls if rec.synth[c].text == sentence]
            for c in said:
                if agent.complete(c):
                    return True
                if agent.cut(c) and any(
                    agent.complete(r) and suffix_start(rec.synth[c].text, rec.synth[r].text) is not None
                    for r in calls if r > c
                ):
                    return True
            return False

        if not sentences or not all(heard(x) for x in sentences):
            continue
        v.agent_turns_checked += 1
        text = " ".join(sentences)
        words = len(text.split())
        questions = count_questions(text)
        goodbye = hung_up and n == len(spoken) - 1
        if words > MAX_WORDS:
            v.fail("one_question", f"agent turn of {words} words: '{text}'")
        if questions != 1 and not (goodbye and questions == 0):
            v.fail("one_question", f"agent turn with {questions} question marks: '{text}'")


def _judge_repeats(v: Verdict, rec: Record, agent: AgentAudio, turns: list[Turn]) -> None:
    for k, t in enumerate(turns):
        if t.role != "repeat":
            continue
        heard_q = [
            c.index for c in rec.synth
            if count_questions(c.text) and agent.complete(c.index)
            and (agent.first_played(c.index) or 0) < t.onset
        ]
        if not heard_q:
            v.notes.append("repeat: no question had been heard before")
            continue
        question = [x for x in split_sentences(rec.synth[heard_q[-1]].text) if count_questions(x)][-1]
        q = set(norm_words(question))
        limit = turns[k + 1].onset if k + 1 < len(turns) else float("inf")
        replies = [
            c for c in rec.synth
            if (agent.first_played(c.index) or -1) >= t.voice_end and (agent.first_played(c.index) or 0) < limit
        ]
        best = max((len(q & set(norm_words(c.text))) / len(q) for c in replies if count_questions(c.text)), default=0.0)
        if best < REPEAT_OVERLAP:
            said = " ".join(c.text for c in replies) or "(nothing)"
            v.fail("repeat", f"asked to repeat '{question}', heard '{said}'")
