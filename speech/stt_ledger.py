"""Sans-IO bookkeeping for a streaming recognizer that rotates its engine streams.

The audio of a call is cut into engine streams (one per utterance, a restart before the
engine's stream limit, a reconnect after an error). Streams overlap by a replay so a word at
a cut is always heard whole by one of them. This module decides, from stream times only:

* when to restart a stream (:func:`restart_due`), and
* which stream owns each recognized word, so overlap never duplicates a word and a
  rotation never drops one (:class:`WordLedger`).

Ownership is by word start time: each stream owns ``[owns_from, owns_until)``; the old
stream's ``owns_until`` and the new stream's ``owns_from`` are the same cut.
"""
from __future__ import annotations

from dataclasses import dataclass, field

INF = 1 << 62


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start_ms: int
    end_ms: int
    confidence: float


@dataclass(slots=True)
class StreamSpan:
    """The part of the call one engine stream is responsible for."""

    start_ms: int  # stream time of the first audio sent to it (replay included)
    owns_from: int
    owns_until: int = INF

    def owns(self, word_start_ms: int) -> bool:
        return self.owns_from <= word_start_ms < self.owns_until


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    restart_after_ms: int = 240_000  # Google's own endless-streaming sample restarts at 240 s
    hard_limit_ms: int = 285_000  # the engine aborts at ~300 s: restart even mid-speech
    replay_ms: int = 500

    def __post_init__(self) -> None:
        if not 0 < self.restart_after_ms <= self.hard_limit_ms:
            raise ValueError("need 0 < restart_after_ms <= hard_limit_ms")


def restart_due(policy: RestartPolicy, stream_start_ms: int, now_ms: int, in_utterance: bool) -> str | None:
    """'quiet' when the stream is old and the caller is not talking, 'hard' at the limit."""
    age = now_ms - stream_start_ms
    if age >= policy.hard_limit_ms:
        return "hard"
    if age >= policy.restart_after_ms and not in_utterance:
        return "quiet"
    return None


def rotation_cut(policy: RestartPolicy, now_ms: int, reason: str, eou_ms: int | None = None) -> tuple[int, int]:
    """(replay_from, cut) for a rotation at ``now_ms``.

    At EOU the old stream heard the whole utterance: it owns everything before ``now``; the
    replay is only context for words after it. Otherwise the cut sits mid-replay, so a word
    that straddles ``now`` starts after the cut and the new stream, which heard it whole, owns it.
    """
    replay_from = max(0, now_ms - policy.replay_ms)
    if reason == "eou":
        cut = max(now_ms, eou_ms or 0)
    else:
        cut = max(0, now_ms - policy.replay_ms // 2)
    return replay_from, cut


@dataclass(slots=True)
class WordLedger:
    """Accepted words of the call, in order, until an utterance takes them."""

    words: list[Word] = field(default_factory=list)
    dropped: int = 0  # words a stream reported outside its span (overlap duplicates)
    # The words the last take handed out: a caller who goes on talking after an EOU gets the
    # utterance reopened, and the merged span is taken again, its first part included.
    last_taken: list[Word] = field(default_factory=list)

    def add(self, span: StreamSpan, words: list[Word]) -> None:
        for w in words:
            if not span.owns(w.start_ms):
                self.dropped += 1
                continue
            # Two streams may report out of order: keep the list sorted by start time.
            i = len(self.words)
            while i > 0 and self.words[i - 1].start_ms > w.start_ms:
                i -= 1
            self.words.insert(i, w)

    def take(self, start_ms: int, end_ms: int) -> list[Word]:
        """Words that started in ``[start_ms, end_ms)``; older ones are discarded (they were
        never part of a turn, e.g. a murmur during the agent's speech)."""
        again = [w for w in self.last_taken if start_ms <= w.start_ms < end_ms]
        taken = again + [w for w in self.words if start_ms <= w.start_ms < end_ms]
        self.words = [w for w in self.words if w.start_ms >= end_ms]
        self.last_taken = taken
        return taken
