"""The OpenAI brain: streaming Chat Completions, sentence by sentence, slots via a tool call.

Runs under trio as is: the official ``AsyncOpenAI`` client sits on httpx2/anyio, and anyio
has a trio backend (checked by the tests, which drive it against our own fake server under
pytest-trio). Retries are off (``max_retries=0``): a slow or failing API is handled here,
turn by turn, never by waiting inside the client.

Per turn:
- empty text / very low ASR confidence -> exactly the clarify line, no request at all;
- "sorry, what?" (:func:`dialog.cues.asks_repeat`) -> the last question again, word for word,
  no request; low confidence with a clear value -> the rules dialog's one-line check ("בחיפה,
  נכון?"), no request; a yes / bare no to that check -> the next question / the slot asked
  again, no request;
- a turn on a finished call (the caller talked over the goodbye) reopens it: bye/thanks only
  -> a short goodbye again, no request; anything else -> the model answers;
- the reply streams; each complete sentence passes :class:`~dialog.guardrails.StreamGuard`
  and is yielded at once (TTS starts before the model has finished);
- no first sentence within ``first_sentence_deadline_s`` -> a short holding line, then the
  request is made again and the turn continues. Why again: the deadline is a cancel
  scope, and cancelling an HTTP read closes that response (httpcore), so the original
  stream cannot be resumed; keeping it alive would need a task outliving the yield, which a
  plain async iterator cannot own;
- a first sentence that lists or prices properties -> regenerated once, then a safe line;
- any API error (HTTP status, connection, timeout, malformed stream) -> the offline rules
  brain, seeded with the same lead, answers this turn and the rest of the call;
- a reply that ends before its ``update_lead`` call was applied (a barge-in closed it, the
  stream failed) keeps the caller's words through the rules' extraction; a tool call that
  does arrive stays authoritative for words (area, type, timeframe, name), but numbers are
  cross-checked: an amount or a room count the rules read in the caller's words ("מיליון
  שמונה" = 1,800,000) overrules a different one from the model, or fills one it left out
  (counted in ``brain_tool_corrections_total``).
The history sent to the model holds only what the caller heard (:meth:`heard`);
:meth:`retract` takes a whole unheard turn back out of it. It is bounded: each request
carries the system prompt, the few-shot examples, the state note (every slot, the offered
and chosen windows: what the call has gathered) and only the last
:data:`MAX_HISTORY_MESSAGES` messages of the conversation, each cut to
:data:`MAX_MESSAGE_CHARS`; older messages are dropped from memory too. A long call costs the
same per turn as a short one, and a caller cannot grow the request (or the process) by talking.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import trio

from dialog import cues, extract, guardrails, outbound, schedule
from dialog.base import Brain, CallerTurn
from dialog.phrases import is_hebrew, table
from dialog.prompt import CUT_MARK, FEW_SHOT, INTERRUPTED_MARK, SYSTEM_PROMPT_HE, TOOL_NAME, TOOLS, state_note
from dialog.rules import CLARIFY_BELOW, CONFIRM_FROM, RuleDialog, count_violations
from telemetry import metrics

# Slots whose value in the caller's words the rules read better than a model does (numbers said
# the Israeli way); the model's word slots stand.
_CROSS_CHECKED = ("budget_ils", "rooms", "deal")
_DEALS = {"buy": "buy", "rent": "rent", "קנייה": "buy", "קניה": "buy", "שכירות": "rent", "purchase": "buy"}
CLOSE_STREAM_S = 1.0  # closing a cut reply's HTTP stream, shielded: never longer than this
# The conversation window sent with each request: 12 exchanges (caller + agent), enough for
# the model to follow the thread (a repeated question, a correction a few turns back); what
# matters from earlier on is in the state note.
MAX_HISTORY_MESSAGES = 24
# One message of the window: a long utterance or a runaway transcript is cut (agent replies are
# ~max_tokens 120, a minute of speech is ~700 characters of Hebrew).
MAX_MESSAGE_CHARS = 1000
OMITTED_NOTE = "(חלק מתחילת השיחה הושמט; מה שנאסף מופיע בהערת המצב למעלה.)"


@dataclass(frozen=True, slots=True)
class OpenAIConfig:
    api_key: str
    model: str
    base_url: str | None = None
    first_sentence_deadline_s: float = 1.5
    turn_timeout_s: float = 6.0  # after the holding line: longer than this and the rules take over
    connect_timeout_s: float = 3.0
    temperature: float = 0.3
    max_tokens: int = 120


def sampling_args(config: OpenAIConfig) -> dict[str, Any]:
    """Reasoning models (o1/o3/o4, gpt-5) reject `temperature` and `max_tokens`; the rest take both."""
    name = config.model.rsplit("/", 1)[-1].lower()
    if re.match(r"^(o\d|gpt-5)", name):
        return {"max_completion_tokens": config.max_tokens * 8}  # room for hidden reasoning tokens
    return {"temperature": config.temperature, "max_tokens": config.max_tokens}


class BrainFailure(Exception):
    """The API could not give this turn a reply."""


class _Restart(Exception):
    """The holding line was said; ask the model again."""


_BOUNDARY = re.compile(r"[.!?…](?=\s)")


def split_ready(buffer: str) -> tuple[list[str], str]:
    """Complete sentences in ``buffer`` and the unfinished rest. A trailing "?" completes one."""
    out: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(buffer):
        out.append(buffer[start : m.end()].strip())
        start = m.end()
    rest = buffer[start:].lstrip()
    if rest.rstrip().endswith("?"):
        out.append(rest.strip())
        rest = ""
    return [s for s in out if s], rest


class _ToolArgs:
    """Tool-call argument fragments, gathered by index while the stream runs."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}
        self.args: dict[int, str] = {}

    def add(self, index: int, name: str | None, fragment: str | None) -> None:
        if name:
            self.names[index] = name
        if fragment:
            self.args[index] = self.args.get(index, "") + fragment

    def updates(self) -> tuple[list[dict[str, Any]], int]:
        """The parsed update_lead calls, and how many were malformed."""
        good: list[dict[str, Any]] = []
        bad = 0
        for index, raw in sorted(self.args.items()):
            if self.names.get(index, TOOL_NAME) != TOOL_NAME:
                bad += 1
                continue
            try:
                parsed = json.loads(raw)
            except ValueError:
                bad += 1
                continue
            if isinstance(parsed, dict):
                good.append(parsed)
            else:
                bad += 1
        return good, bad


@dataclass(frozen=True, slots=True)
class _Before:
    """The brain when respond() was called, for :meth:`OpenAIBrain.retract`."""

    rules: dict[str, Any]
    history: int
    unheard: str | None
    windows: tuple[dt.datetime, ...]
    chosen: dt.datetime | None
    finished: bool
    fallback: bool
    violations: int
    expecting: str | None


def make_client(config: OpenAIConfig) -> Any:
    """The official async client for ``config`` (no retries: a failed turn goes to the rules)."""
    import httpx2
    import openai

    return openai.AsyncOpenAI(
        api_key=config.api_key, base_url=config.base_url, max_retries=0,
        timeout=httpx2.Timeout(config.turn_timeout_s, connect=config.connect_timeout_s),
    )


# A call we placed: the model must not greet again nor ask for what the form already told us.
OUTBOUND_NOTE = ("שיחה יוצאת: את התקשרת לליד שהשאיר פרטים, והוא אישר שזה זמן טוב. אל תציגי את עצמך שוב "
                 "ואל תשאלי על מה שכבר ידוע; המשיכי מהפרט החסר הבא.")


class OpenAIBrain(Brain):
    name = "openai"

    def __init__(
        self, config: OpenAIConfig, language: str, caller_phone: str, now: dt.datetime, client: Any = None
    ) -> None:
        self.config = config
        self.language = language
        self.hebrew = is_hebrew(language)
        self.say = table(self.hebrew)
        self.caller_phone = caller_phone or None
        self.now = now
        # The rules dialog holds the lead (one state for both brains), the safe lines, and
        # the whole call if the API fails.
        self.rules = RuleDialog(language, caller_phone, now)
        self.lead = self.rules.lead
        self.history: list[dict[str, str]] = []
        self.windows: list[dt.datetime] = []
        self.chosen: dt.datetime | None = None
        self.fallback = False
        self._finished = False
        self._unheard: str | None = None  # last reply, until heard() says what got through
        # A shared client (the server makes one per process at startup: importing the SDK and
        # building a client block the event loop for a moment, and every call would pay it) is
        # not the brain's to close; a client it made itself is.
        self._client: Any = client
        self._owns_client = client is None
        self.violations: list[str] = []
        self._before: _Before | None = None
        self._turn = 0  # bumped by respond() and retract(): an older reply must not touch the state
        self._applied = 0  # tool calls applied so far
        self._omitted = False  # the history window has dropped older messages
        self.expecting: str | None = "area"  # what the last question the model asked asks for (cues.asked_about)
        self._heard_expecting: str | None = "area"  # ...as the caller heard it before this turn


    # -- Brain -------------------------------------------------------------------------------------

    @property  # type: ignore[override]
    def finished(self) -> bool:
        return self._finished or self.rules.finished

    def call_out(self, ctx: Any) -> None:
        """A call we placed (dialog.outbound): the rules dialog holds the known slots and asks
        "is this a good time?"; its answer (go on, or a callback time) is the rules' to handle,
        then the model goes on from the slots already known."""
        self.rules.call_out(ctx)
        self.expecting = self._heard_expecting = "good_time"

    def opening(self) -> str:
        text = self.rules.opening() if self.rules.outbound is not None else self.say["opening"]
        self._said(text)
        return text

    def heard(self, said: str, heard_fully: bool) -> None:
        self._unheard = None
        said = said[:MAX_MESSAGE_CHARS]
        self.history.append({"role": "assistant", "content": said if heard_fully else said.rstrip() + CUT_MARK})
        self.rules.heard(said, heard_fully)
        self.expecting = cues.asked_about(said)  # None when the question was cut before its end

    def summary(self) -> str:
        return self.rules.summary()

    def set_calendar(self, busy: Callable[[], list[schedule.Busy]], rules: schedule.MeetingRules) -> None:
        self.rules.set_calendar(busy, rules)

    def slot_taken(self, at: dt.datetime) -> str:
        """The confirmed window was taken in the calendar meanwhile: the next free ones, said by
        the rules' line (the model hears it in the history like any reply of ours)."""
        if self.fallback:
            text = self.rules.slot_taken(at).text
        else:
            self.rules.busy.append((at, at + self.rules.meeting_rules.duration))
            self.lead.meeting_at = None
            if self.lead.status == "meeting_booked":
                self.lead.status = "qualified"
            self.chosen = None
            self._finished = False
            self.windows = schedule.offer_windows(
                self.now, 3, exclude=[at], busy=self.rules.current_busy(), rules=self.rules.meeting_rules)
            offer = self.say["offer_after_taken"].format(offer=schedule.say_offer(self.windows[:2], self.now, self.hebrew))
            text = f"{self.say['slot_taken']} {offer}"
        return self._said(text)

    def asking(self) -> str | None:
        if self.finished:
            return None
        return self.rules._asking if self.fallback else self.expecting

    async def aclose(self) -> None:
        if self._client is not None and self._owns_client:
            client, self._client = self._client, None
            with trio.CancelScope(shield=True):
                await client.close()

    def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        # Not an async generator itself: the state is noted when respond() is called, so
        # retract() is right even if the reply is never iterated.
        self._trim_history()
        self._before = _Before(
            self.rules.snapshot(), len(self.history), self._unheard, tuple(self.windows), self.chosen,
            self._finished, self.fallback, len(self.violations), self.expecting,
        )
        self._turn += 1
        return self._respond(turn, self._turn)

    def retract(self) -> None:
        before, self._before = self._before, None
        if before is None:
            return
        self._turn += 1  # the retracted reply, if still open, leaves the restored state alone
        self.rules.restore(before.rules)
        del self.history[before.history :]
        del self.violations[before.violations :]
        self._unheard = before.unheard
        self.windows = list(before.windows)
        self.chosen = before.chosen
        self._finished = before.finished
        self.fallback = before.fallback
        self.expecting = before.expecting

    def _trim_history(self) -> None:
        """Keep the last MAX_HISTORY_MESSAGES - 2 messages (this turn adds up to two: the
        unreported reply and the caller's words). Runs before respond() notes the state, so
        retract() restores to the trimmed list."""
        keep = MAX_HISTORY_MESSAGES - 2
        if len(self.history) > keep:
            del self.history[: len(self.history) - keep]
            self._omitted = True

    async def _respond(self, turn: CallerTurn, n: int) -> AsyncIterator[str]:
        if self._unheard is not None:  # the session did not report: assume it was all heard
            self.history.append({"role": "assistant", "content": self._unheard[:MAX_MESSAGE_CHARS]})
            self._unheard = None
        text = turn.text.strip()
        self._heard_expecting = self.expecting
        content = (INTERRUPTED_MARK if turn.interrupted_agent else "") + (text[:MAX_MESSAGE_CHARS] or "…")
        self.history.append({"role": "user", "content": content})
        if self.finished:  # the caller talked over the goodbye, or right after it
            self._finished = False
            if not self.rules.finished:  # (when the rules said it, their reply reopens the call)
                closing = self.rules.reopen(turn)
                if closing is not None:
                    self._finished = True
                    self.rules.last_bye = closing.text
                    yield self._said(closing.text)
                    await self._close_if_done()
                    return
        if self.fallback:
            async for sentence in self._rules_turn(turn):
                yield sentence
            return
        if not text or turn.confidence < CONFIRM_FROM:
            yield self._said(self.say["clarify"])
            return
        if cues.asks_repeat(text, self.language):
            yield self._said(self.rules.last_question())
            return
        if turn.confidence < CLARIFY_BELOW:
            yield self._said(self.rules.confirm_or_clarify(text))
            return
        if turn.interrupted_agent and cues.only_holds_floor(text, self.language):
            yield self._said(self.say["go_on"])
            return
        if outbound.asks_no_more_calls(text):
            self.lead.do_not_call = True  # decided here, not by the model: never called again
        if self.rules.outbound is not None and self.rules.phase == "collect" and outbound.not_now(text) \
                and outbound.callback_time(text, self.now) is not None:
            self.rules.phase = "good_time"  # cut short mid-call: the rules make the callback
        if self.rules.phase in ("good_time", "callback_when"):  # a call we placed: can they talk now?
            async for sentence in self._rules_turn(turn):
                yield sentence
            if self.rules.finished:
                self._finished = True
            return
        if self.rules.pending is not None:
            settled = self.rules.settle_pending(text)
            if settled.kind == "denied":
                yield self._said(self.rules.ask_again(settled.keys[0]))
                return
            if settled.kind == "confirmed":
                self._after_update()
                yield self._said(self._after_confirm())
                return
        reply = self._model_reply(turn, n)
        try:
            async for sentence in reply:
                yield sentence
        finally:  # closed by a barge-in: run the reply's own cleanup now, not at garbage collection
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_STREAM_S):
                await reply.aclose()

    async def _model_reply(self, turn: CallerTurn, n: int) -> AsyncIterator[str]:
        spoken: list[str] = []
        applied = self._applied
        taken = False  # the rules took this turn's words (the API failed)
        done = False
        inner = self._model_turn(turn.text)
        try:
            try:
                async for sentence in inner:
                    spoken.append(sentence)
                    self.rules.note_asked(sentence)
                    self._note_expecting(sentence)
                    yield sentence
            except BrainFailure:
                self._switch_to_rules()
                taken = True
                if not spoken:
                    async for sentence in self._rules_turn(turn):
                        yield sentence
                    done = True
                    return
                self.rules.absorb(turn.text)  # the offline brain takes this turn's facts from here on
                closing = self._closing_question(guardrails.words(" ".join(spoken)))
                if closing:
                    spoken.append(closing)
                    self.rules.note_asked(closing)
                    yield closing
            done = True
        finally:
            if n == self._turn and not done:
                # Cut (a barge-in closed the reply) before the update_lead call was applied:
                # what the caller said is kept from their own words.
                if not taken and self._applied == applied:
                    self.rules.absorb(turn.text)
                if spoken:
                    self._unheard = " ".join(spoken)  # what was handed out, until heard() says more
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_STREAM_S):
                await inner.aclose()  # the HTTP response, now rather than at garbage collection
        if spoken:
            self._unheard = " ".join(spoken)
        if self.finished:
            self.rules.last_bye = " ".join(spoken)
        await self._close_if_done()

    # -- the model turn ----------------------------------------------------------------------------

    async def _model_turn(self, caller_text: str = "") -> AsyncIterator[str]:
        held = False
        regenerated = False
        while True:
            guard = guardrails.StreamGuard(self._amounts(), reserve=4)
            tools = _ToolArgs()
            restart = False
            dropped_first = False
            poisoned = False  # a sentence offered property: nothing more of this reply is spoken
            agen = self._sentences(tools, regenerated)
            try:
                # Read to the end even after the question: the tool call comes after the text.
                while True:
                    waiting_first = not guard.spoken and not held and not poisoned
                    limit = self.config.first_sentence_deadline_s if waiting_first else self.config.turn_timeout_s
                    try:
                        with trio.fail_after(limit):
                            raw = await agen.__anext__()
                    except StopAsyncIteration:
                        break
                    except trio.TooSlowError:
                        if not waiting_first:
                            raise BrainFailure("no reply in time") from None
                        restart = True
                        break
                    if poisoned:
                        continue
                    listings = guard.violations.count("listing")
                    out = guard.offer(raw)
                    if guard.violations.count("listing") > listings:
                        if not guard.spoken and not regenerated:
                            dropped_first = True
                            break
                        poisoned = True
                    elif out is not None:
                        yield out
            finally:
                await agen.aclose()
            if restart:
                held = True
                yield self.say["holding"]
                continue
            self._record(guard.violations)
            if dropped_first:
                regenerated = True
                continue
            self._apply(tools, caller_text)
            if self.finished:
                if not guard.spoken:
                    yield self._goodbye()
                return
            if guard.finish():
                self._record(["no_question"])
                closing = self._closing_question(guard.words_spoken)
                if closing:
                    yield closing
            return

    async def _sentences(self, tools: _ToolArgs, regenerated: bool) -> AsyncIterator[str]:
        client = self._get_client()
        messages = self._messages(regenerated)
        buffer = ""
        try:
            stream = await client.chat.completions.create(
                model=self.config.model, messages=messages, tools=TOOLS, tool_choice="auto", stream=True,
                **sampling_args(self.config),
            )
            async with stream:
                async for chunk in stream:
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta
                    for call in delta.tool_calls or ():
                        fn = call.function
                        tools.add(call.index, fn.name if fn else None, fn.arguments if fn else None)
                    if delta.content:
                        buffer += delta.content
                        ready, buffer = split_ready(buffer)
                        for sentence in ready:
                            yield sentence
            if buffer.strip():
                yield buffer.strip()
        except Exception as exc:  # any failure of the API path (client, transport, payload) -> rules
            metrics.provider_errors_total.labels(provider="openai").inc()
            raise BrainFailure(f"{type(exc).__name__}: {exc}") from exc

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.config)
            self._owns_client = True
        return self._client

    def _messages(self, regenerated: bool) -> list[dict[str, str]]:
        note = state_note(
            self.lead, self.caller_phone, self.now, self.windows, self.chosen, self.hebrew, sorted(self.rules.declined)
        )
        msgs = [{"role": "system", "content": SYSTEM_PROMPT_HE}, *FEW_SHOT, {"role": "system", "content": note}]
        if self.rules.outbound is not None:
            msgs.append({"role": "system", "content": OUTBOUND_NOTE})
        if self._omitted:
            msgs.append({"role": "system", "content": OMITTED_NOTE})
        msgs += self.history[-MAX_HISTORY_MESSAGES:]
        if regenerated:
            msgs.append({"role": "system", "content": "התשובה הקודמת הציעה נכסים או מחירים בלי נתונים. עני שוב בלי זה."})
        return msgs

    # -- slots from the tool call ------------------------------------------------------------------

    def _apply(self, tools: _ToolArgs, caller_text: str = "") -> None:
        updates, bad = tools.updates()
        if bad:
            self._record(["bad_tool_call"] * bad)
        if updates:
            self._applied += 1
        s = self.lead.slots
        for args in updates:
            for key, kind in (("area", str), ("property_type", str), ("timeframe", str), ("name", str)):
                value = args.get(key)
                if isinstance(value, kind) and value.strip():
                    setattr(s, key, value.strip())
            rooms = args.get("rooms")
            if isinstance(rooms, (int, float)) and not isinstance(rooms, bool) and 0.5 <= rooms <= 20:
                s.rooms = float(rooms)
            deal = args.get("deal")
            if isinstance(deal, str) and deal.strip().lower() in _DEALS:
                s.deal = _DEALS[deal.strip().lower()]
            budget = args.get("budget_ils")
            if isinstance(budget, (int, float)) and not isinstance(budget, bool) and 1000 <= budget <= 1_000_000_000:
                s.budget_ils = int(budget)  # from 1,000: a month's rent is a budget too
            if args.get("budget_declined") is True and s.budget_ils is None:
                self.rules.declined.add("budget_ils")
            phone = args.get("phone")
            if isinstance(phone, str) and extract.phone_in(phone):
                s.phone, s.phone_confirmed = extract.phone_in(phone), True
            if args.get("phone_confirmed") is True and s.phone:
                s.phone_confirmed = True
            window = args.get("meeting_window")
            if isinstance(window, int) and not isinstance(window, bool) and 0 <= window < len(self.windows):
                self.chosen = self.windows[window]
            if args.get("meeting_confirmed") is True and self.chosen is not None:
                self.lead.meeting_at = self.chosen
                self.lead.status = "meeting_booked"
            if args.get("not_interested") is True:
                if self.lead.status != "lost":
                    self.rules.status_before_lost = self.lead.status
                self.lead.status = "lost"
                self._finished = True
            if args.get("call_done") is True:
                self._finished = True
        if caller_text:
            self._cross_check(caller_text)
        self._after_update()

    def _cross_check(self, caller_text: str) -> None:
        """The caller's numbers, as the rules read them, over the model's reading of them."""
        s = self.lead.slots
        found = extract.extract(caller_text[:MAX_MESSAGE_CHARS], self.hebrew, self._heard_expecting, deal=s.deal)
        for key in _CROSS_CHECKED:
            value = getattr(found, key)
            if value is not None and getattr(s, key) != value:
                setattr(s, key, value)
                metrics.brain_tool_corrections_total.labels(slot=key).inc()
        # "שמונה" after the budget question, then "לשכירות" after "לקנייה או לשכירות?": the
        # rules' own bookkeeping of the unclear amount, in case the model leaves it out
        r = self.rules
        if found.budget_unclear is not None and s.budget_ils is None and s.deal is None:
            r.unclear_budget = found.budget_unclear
        elif r.unclear_budget is not None and s.deal is not None:
            if s.budget_ils is None:
                s.budget_ils = round(r.unclear_budget * (1000 if s.deal == extract.RENT else 1_000_000))
                metrics.brain_tool_corrections_total.labels(slot="budget_ils").inc()
            r.unclear_budget = None

    def _after_update(self) -> None:
        """Slots filled: the lead is qualified and the windows to offer are chosen."""
        missing = [m for m in self.lead.slots.missing() if m not in self.rules.declined]
        if not missing and self.lead.status == "new":
            self.lead.status = "qualified"
        if not missing and not self.windows:
            self.windows = schedule.offer_windows(
                self.now, 3, busy=self.rules.current_busy(), rules=self.rules.meeting_rules)

    # -- helpers -----------------------------------------------------------------------------------

    def _amounts(self) -> frozenset[int]:
        b = self.lead.slots.budget_ils
        return frozenset({b}) if b else frozenset()

    def _record(self, violations: list[str]) -> None:
        if violations:
            self.violations.extend(violations)
            count_violations(violations)

    def _said(self, text: str) -> str:
        self._unheard = text
        self.rules.note_asked(text)
        self._note_expecting(text)
        return text

    def _note_expecting(self, text: str) -> None:
        asked = cues.asked_about(text)
        if asked is not None or "?" in text:
            self.expecting = asked

    def _after_confirm(self) -> str:
        """A yes to the value check: a short ack and the next question."""
        opener = self.rules.opener()
        question = self._closing_question(guardrails.words(opener))
        return f"{opener} {question}" if question else self._safe_question()

    def _closing_question(self, spoken_words: int) -> str | None:
        for question in (self._safe_question(), self.say["safe"]):
            if guardrails.fits_after(spoken_words, question):
                return question
        return None

    def _safe_question(self) -> str:
        if self.lead.status == "meeting_booked":
            return self.say["anything_else"]
        if self.windows and self.chosen is None and not self.rules.windows:
            offer = schedule.say_offer(self.windows[:2], self.now, self.hebrew)
            return self.say["offer_which"].format(offer=offer)
        return self.rules.next_question()

    def _goodbye(self) -> str:
        self._finished = True
        if self.lead.status == "lost":
            return self.say["bye_lost"]
        name = f", {self.rules.first_name()}" if self.lead.slots.name else ""
        if self.lead.meeting_at:
            window = schedule.say_window(self.lead.meeting_at, self.now, self.hebrew)
            return self.say["bye_meeting"].format(name=name, window=window)
        return self.say["bye"].format(name=name)

    def _switch_to_rules(self) -> None:
        self.fallback = True
        metrics.provider_fallbacks_total.labels(kind="brain").inc()
        r = self.rules
        if self.lead.meeting_at:
            r.phase = "wrapup"
        elif self.chosen is not None:
            r.phase, r.choice, r.windows = "confirm", self.chosen, list(self.windows[:2])
        elif self.windows:
            r.phase, r.windows = "offer", list(self.windows[:2])
            r.offered.extend(self.windows)
        else:
            missing = r._missing()
            r._asking = r.expecting = missing[0] if missing else None

    async def _rules_turn(self, turn: CallerTurn) -> AsyncIterator[str]:
        reply = self.rules.reply(turn)
        self._unheard = reply.text
        for sentence in guardrails.sentences(reply.text):
            yield sentence
        await self._close_if_done()

    async def _close_if_done(self) -> None:
        if self.finished:
            await self.aclose()
