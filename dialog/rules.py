"""The offline rule-based brain (BRAIN=rules): the whole call flow, Hebrew and English.

:class:`RuleDialog` decides (pure: text in, reply out, ``now`` given at construction);
:class:`RuleBrain` is the thin async :class:`Brain` around it. The OpenAI brain keeps a
RuleDialog too: it supplies the safe lines and takes over the call if the API fails.

Flow: collect the slots (area → property type and rooms → budget → timeframe → name →
phone, confirming the caller ID) → offer 2 meeting windows → confirm the choice → book it
with a one-line summary → goodbye. The caller may change any slot at any point, refuse
the budget, ask for apartments (none are offered), or say they are not interested.

Around that flow:
- "מה?" / "sorry, what?" (:func:`dialog.cues.asks_repeat`) -> the last question again, word
  for word, nothing else changes;
- a low-confidence turn that still carries a clear value -> one short check ("עד שני מיליון,
  נכון?"); the value is kept aside (``pending``) until a yes stores it, and a no or a
  correction drops it;
- the caller talking over the goodbye or right after it -> the call reopens: their words
  are taken and answered, and only bye/thanks gets a short goodbye again;
- :meth:`RuleDialog.snapshot` / :meth:`RuleDialog.restore`: the state before a reply, for
  :meth:`Brain.retract <dialog.base.Brain.retract>`.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Literal

from dialog import cues, extract, guardrails, outbound, schedule, summary
from dialog.base import Brain, CallerTurn, LeadState, Slots
from dialog.phrases import is_hebrew, table
from telemetry import metrics

CLARIFY_BELOW = 0.5  # ASR confidence under this: ask to repeat rather than guess
CONFIRM_FROM = 0.2  # ...but from this confidence up, a clear slot value is checked back instead
MAX_TURNS = 30  # a call that has not converged by then is closed politely
MAX_ASKS = 3  # after this many unanswered asks a slot is skipped (left to the meeting)
MAX_WRAPUP = 3

# good_time / callback_when: a call we placed, before the lead said they can talk (dialog.outbound)
Phase = Literal["good_time", "callback_when", "collect", "offer", "confirm", "wrapup", "done"]
_SLOT_ORDER = ("area", "property_type", "budget_ils", "timeframe", "name", "phone")
_VALUE_KEYS = ("area", "property_type", "rooms", "budget_ils", "deal", "timeframe", "name")  # what extract finds


def last_question(text: str) -> str | None:
    """The last sentence of ``text`` that is a question, as said."""
    return next((s for s in reversed(guardrails.sentences(text)) if s.rstrip().endswith("?")), None)


def assign_lead(dst: LeadState, src: LeadState) -> None:
    """Make ``dst`` equal to ``src`` in place (the session and the brains share the object)."""
    for f in dataclasses.fields(LeadState):
        if f.name == "slots":
            for g in dataclasses.fields(Slots):
                setattr(dst.slots, g.name, getattr(src.slots, g.name))
        else:
            setattr(dst, f.name, getattr(src, f.name))


@dataclass(frozen=True, slots=True)
class Settled:
    """How the caller answered a value check: ``confirmed`` (stored, nothing else said),
    ``denied`` (a bare no: ask ``keys[0]`` again), or ``more`` (go on as usual with the words;
    ``keys`` were stored by a yes that came with more)."""

    kind: Literal["confirmed", "denied", "more"]
    keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    final: bool = False  # the goodbye: the call ends after it


def count_violations(violations: tuple[str, ...] | list[str]) -> None:
    for rule in violations:
        metrics.rule_violations_total.labels(rule=rule).inc()


class RuleDialog:
    def __init__(self, language: str, caller_phone: str | None, now: dt.datetime, lead: LeadState | None = None) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.language = language
        self.hebrew = is_hebrew(language)
        self.say = table(self.hebrew)
        self.now = now
        self.lead = lead or LeadState(Slots(phone=caller_phone or None))
        self.phase: Phase = "collect"
        self.windows: list[dt.datetime] = []
        self.offered: list[dt.datetime] = []
        self.choice: dt.datetime | None = None
        # The realtor's calendar (server.meeting_brain): busy intervals no offered window may
        # touch — the calendar's, read when windows are chosen, and slots found taken here.
        self.busy_source: Callable[[], list[schedule.Busy]] | None = None
        self.busy: list[schedule.Busy] = []
        self.meeting_rules = schedule.MEETING
        self.declined: set[str] = set()
        self.asks: Counter[str] = Counter()
        self.expecting: str | None = "area"  # what the last question the caller heard asked for
        self._asking: str | None = "area"  # what the last question said asked for
        self.rooms_asked = False
        self.turns = 0
        self.wrapup_turns = 0
        self.finished = False
        self.violations: list[str] = []
        self.pending: dict[str, Any] | None = None  # values heard at low confidence, awaiting a yes
        # A bare number after the budget question ("שמונה"): 8 million to a buyer, 8,000 a month
        # to a renter. Kept until the caller says which (one short question: q_deal).
        self.unclear_budget: float | None = None
        self.question: str | None = None  # the last question asked (as heard, when it was heard)
        self.last_bye: str | None = None  # the last goodbye said, for "what?" over it
        self.status_before_lost: str = "new"  # what a "not interested" replaced, should the call reopen
        self._reopen_phase: Phase = "collect"  # the phase the goodbye ended
        self.outbound: outbound.OutboundContext | None = None  # a call we placed: whom, and why

    def call_out(self, ctx: outbound.OutboundContext) -> None:
        """This is a call we placed to a lead we know: start from what they told us, and open
        by asking whether it is a good time (before any slot question)."""
        self.outbound = ctx
        outbound.prefill(self.lead, ctx)
        self.phase = "good_time"
        self._asking = self.expecting = "good_time"
        if self.lead.status == "new" and not self._missing():
            self.lead.status = "qualified"

    # -- the session's side ----------------------------------------------------------------------

    def opening(self) -> str:
        line = outbound.opening(self.outbound, self.hebrew) if self.outbound is not None else self.say["opening"]
        self.note_asked(line)
        return line

    def heard(self, said: str, heard_fully: bool) -> None:
        # A question cut off before its end was not heard: a bare "yes" no longer answers it.
        if not heard_fully and "?" not in said:
            self.expecting = None
            if self._asking == "rooms":
                self.rooms_asked = False  # ask again: they never heard it
        else:
            self.expecting = self._asking
        self.note_asked(said)  # word for word what they heard

    def note_asked(self, text: str) -> None:
        """A reply was said (by this dialog or, for the OpenAI brain, by the model). Lines that
        ask the caller to say something again are not questions "what?" repeats."""
        question = last_question(text)
        if question and question not in self._not_repeated():
            self.question = question

    def _not_repeated(self) -> set[str]:
        return {self.say["clarify"], self.say["go_on"], self.say["safe"], *guardrails.sentences(self.say["go_on"])}

    def last_question(self) -> str:
        """What "sorry, what?" gets: the last question heard, or asked if it was cut; at first the opening's."""
        return self.question or last_question(self.say["opening"]) or self.say["q_area"]

    # -- retract ---------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything a reply may change, copied (the phrase table and the clock are shared)."""
        state = {k: v for k, v in vars(self).items()
                 if k not in ("say", "now", "lead", "language", "hebrew", "outbound", "busy", "busy_source")}
        return {"state": copy.deepcopy(state), "lead": copy.deepcopy(self.lead)}

    def restore(self, snap: dict[str, Any]) -> None:
        """Back to :meth:`snapshot`'s moment; the lead object stays the same one, its fields go back."""
        for key, value in copy.deepcopy(snap["state"]).items():
            setattr(self, key, value)
        assign_lead(self.lead, snap["lead"])

    def reply(self, turn: CallerTurn) -> Reply:
        reply = self._decide(turn)
        verdict = guardrails.enforce(reply.text, final=reply.final, allowed_amounts=self._amounts())
        if verdict.violations:
            self.violations.extend(verdict.violations)
            count_violations(verdict.violations)
        if verdict.text is None:
            reply = Reply(self.next_question(), reply.final) if not reply.final else Reply(self.say["bye"].format(name=""), True)
        elif verdict.text != reply.text:
            reply = Reply(verdict.text, reply.final)
        if reply.final:
            if self.phase != "done":
                self._reopen_phase = self.phase
            self.finished = True
            self.phase = "done"
            self.last_bye = reply.text
        self.note_asked(reply.text)
        return reply

    def summary(self) -> str:
        return summary.whatsapp(self.lead, self.hebrew)

    # -- deciding --------------------------------------------------------------------------------

    def _amounts(self) -> frozenset[int]:
        amounts = {self.lead.slots.budget_ils, (self.pending or {}).get("budget_ils")}
        return frozenset(a for a in amounts if a)

    def _decide(self, turn: CallerTurn) -> Reply:
        self.turns += 1
        text = turn.text.strip()
        if text and turn.confidence >= CLARIFY_BELOW and outbound.asks_no_more_calls(text):
            self.lead.do_not_call = True  # whatever else is said: never called again
        if self.finished:
            closing = self.reopen(turn)
            if closing is not None:
                return closing
        if self.turns >= MAX_TURNS:  # also a line so bad that every turn is a clarify
            if text and turn.confidence >= CLARIFY_BELOW:
                self.absorb(text)
            return self._goodbye()
        if not text or turn.confidence < CONFIRM_FROM:
            return Reply(self.say["clarify"])
        if cues.asks_repeat(text, self.language):
            return Reply(self.last_question())
        if turn.confidence < CLARIFY_BELOW:
            return Reply(self.confirm_or_clarify(text))
        if extract.not_interested(text):
            self.pending = None
            self.status_before_lost = self.lead.status if self.lead.status != "lost" else self.status_before_lost
            self.lead.status = "lost"
            return Reply(self.say["bye_lost"], final=True)
        if self.phase in ("good_time", "callback_when"):
            return self._on_good_time(text)
        if extract.busy(text) and self.phase != "wrapup":
            when = outbound.callback_time(text, self.now) if self.outbound is not None else None
            if when is not None:  # a call we placed, cut short: "call me tomorrow at ten"
                return self._call_back(when)
            return self._goodbye()
        if turn.interrupted_agent and cues.only_holds_floor(text, self.language):
            return Reply(self.say["go_on"])

        confirmed: list[str] = []
        if self.pending is not None:
            settled = self.settle_pending(text)
            if settled.kind == "denied":
                return self._ask(settled.keys[0], self.say["confirm_no"], self.slot_question(settled.keys[0]))
            if settled.kind == "confirmed":
                return self._go_on_after(self.opener(), list(settled.keys))
            confirmed = list(settled.keys)

        changed = confirmed + [k for k in self.absorb(text) if k not in confirmed]
        lead_in = ""
        if extract.asks_listings(text):
            lead_in = self.say["no_listings"]
        elif "budget_ils" in self.declined and "declined" in changed:
            lead_in = self.say["declined"]
        elif changed:
            lead_in = self._ack(changed)

        if self.phase == "collect":
            return self._collect(lead_in, changed)
        if self.phase == "offer":
            return self._on_offer(text, lead_in)
        if self.phase == "confirm":
            return self._on_confirm(text, lead_in)
        return self._on_wrapup(text, lead_in, changed)

    # -- a call we placed: "is this a good time?" ------------------------------------------------

    def _on_good_time(self, text: str) -> Reply:
        lines = outbound.LINES[self.hebrew]
        when = outbound.callback_time(text, self.now)
        yes = extract.yes_no(text, self.language)
        cannot = outbound.not_now(text) or extract.busy(text) or (yes is False and self.phase == "good_time")
        if self.phase == "good_time" and cannot:
            if when is not None:
                return self._call_back(when)
            self.phase = "callback_when"
            return self._ask("callback_when", "", lines["when"])
        if self.phase == "callback_when":
            if when is not None:
                return self._call_back(when)
            if cannot or yes is not True:  # "לא יודע", "מתי שנוח לכם": a couple of hours on
                return self._call_back(self.now + dt.timedelta(hours=2), vague=True)
        # They can talk: what they already told us is kept, the next missing slot is asked.
        self.phase = "collect"
        changed = self.absorb(text)
        return self._collect(self._ack(changed) if changed else lines["go_on"], changed)

    def _call_back(self, when: dt.datetime, vague: bool = False) -> Reply:
        hours = getattr(self.outbound, "hours", None)
        if hours is not None:  # the dialer will only call in calling hours: say when it really will
            when = hours.next_allowed(when).astimezone(schedule.TZ)
        self.lead.callback_at = when
        lines = outbound.LINES[self.hebrew]
        if vague:
            return Reply(lines["callback_later"], final=True)
        return Reply(lines["callback"].format(when=outbound.say_when(when, self.now, self.hebrew)), final=True)

    def absorb(self, text: str) -> list[str]:
        """Apply what the caller said to the slots; the names of the slots that changed."""
        s = self.lead.slots
        found = extract.extract(text, self.hebrew, self.expecting, deal=s.deal)
        changed = self._store({k: getattr(found, k) for k in _VALUE_KEYS if getattr(found, k) is not None})
        if found.budget_unclear is not None and found.budget_ils is None and s.deal is None:
            self.unclear_budget = found.budget_unclear
        elif self.unclear_budget is not None and (found.budget_ils is not None or s.budget_ils is not None):
            self.unclear_budget = None
        if self.unclear_budget is not None and s.deal is not None:
            amount = round(self.unclear_budget * (1000 if s.deal == extract.RENT else 1_000_000))
            self.unclear_budget = None
            changed += [k for k in self._store({"budget_ils": amount}) if k not in changed]
        if self.expecting == "phone" or self.expecting == "phone_number":
            phone = extract.phone_in(text)
            yes = extract.yes_no(text)
            if phone:
                s.phone, s.phone_confirmed = phone, True
                changed.append("phone")
            elif yes is True and s.phone and self.expecting == "phone":
                s.phone_confirmed = True
                changed.append("phone")
            elif yes is False:
                s.phone_confirmed = False
                s.phone = None  # the caller ID is not the number to call back: ask for it
        if self.expecting == "budget_ils" and s.budget_ils is None and extract.refuses(text):
            self.declined.add("budget_ils")
            changed.append("declined")
        if self.lead.status == "new" and not self._missing():
            self.lead.status = "qualified"
        return changed

    def _values(self, text: str, expecting: str | None) -> dict[str, Any]:
        found = extract.extract(text, self.hebrew, expecting, deal=self.lead.slots.deal)
        return {k: getattr(found, k) for k in _VALUE_KEYS if getattr(found, k) is not None}

    def _store(self, values: dict[str, Any]) -> list[str]:
        s = self.lead.slots
        changed: list[str] = []
        for key, value in values.items():
            if value != getattr(s, key):
                setattr(s, key, value)
                changed.append(key)
                self.declined.discard(key)
        if changed and self.lead.status == "new" and not self._missing():
            self.lead.status = "qualified"
        return changed

    # -- a value heard at low confidence -------------------------------------------------------------

    def confirm_or_clarify(self, text: str) -> str:
        """Low ASR confidence: one short check of the values the words still carry ("בחיפה,
        נכון?", kept as ``pending``), or the clarify line when they carry none."""
        s = self.lead.slots
        values = {k: v for k, v in self._values(text, self.expecting).items() if v != getattr(s, k)}
        question = self._confirm_question(values) if values else None
        if question is None:
            return self.say["clarify"]
        if self.pending and extract.yes_no(text) is None:
            # a caller who goes on to something new let the earlier check pass: it stands
            self._store({k: v for k, v in self.pending.items() if k not in values})
        self.pending = values
        self._asking = self.expecting = next(iter(values))
        return question

    def _confirm_question(self, values: dict[str, Any]) -> str | None:
        shown = {k: v for k, v in values.items() if k != "budget_ils" and not (k == "deal" and "budget_ils" in values)}
        slots = Slots(**shown)
        parts = summary.echo(slots, list(shown), self.hebrew)
        if "budget_ils" in values:
            amount = values["budget_ils"]
            said = summary.say_budget_words(amount, self.hebrew) or summary.say_budget(amount, self.hebrew)
            if (values.get("deal") or self.lead.slots.deal) == extract.RENT:
                said += " לחודש" if self.hebrew else " a month"
            parts.append(("עד " if self.hebrew else "up to ") + said)
        if values.get("name"):
            parts.append(values["name"])
        while parts:
            value = ", ".join(parts)
            question = self.say["confirm_value"].format(value=value[:1].upper() + value[1:])
            if guardrails.fits_after(0, question):
                return question
            parts.pop()
        return None

    def settle_pending(self, text: str) -> Settled:
        """The caller's answer to the value check: a yes stores the values, a bare no drops
        them (ask again), a new value for a slot replaces that one, and a caller who just goes
        on to something else let the check pass: the values stand (as people do on the phone)."""
        pending, self.pending = self.pending or {}, None
        yes = extract.yes_no(text)
        found = self._values(text, None if yes else self.expecting)  # "כן" is not a name
        new = {k: v for k, v in found.items() if pending.get(k) != v}
        if yes is True:
            stored = tuple(self._store(pending))
            return Settled("more" if new else "confirmed", stored)
        if yes is False and not new:
            return Settled("denied", (next(iter(pending), "area"),))
        if yes is None:
            return Settled("more", tuple(self._store({k: v for k, v in pending.items() if k not in new})))
        return Settled("more")

    def slot_question(self, key: str) -> str:
        """The question that asks for one slot."""
        if key == "property_type":
            return self.say["q_property_type_only" if self.lead.slots.rooms is not None else "q_property_type"]
        if key == "budget_ils":
            return self._budget_question()
        return self.say[f"q_{key}"]

    def _budget_question(self) -> str:
        return self.say["q_budget_rent" if self.lead.slots.deal == extract.RENT else "q_budget"]

    def ask_again(self, key: str) -> str:
        """ "No" to a value check: ask for that slot again."""
        reply = self._ask(key, self.say["confirm_no"], self.slot_question(key))
        return reply.text

    def opener(self) -> str:
        return self.say["acks"][self.turns % len(self.say["acks"])] + "."

    def _go_on_after(self, lead_in: str, changed: list[str]) -> Reply:
        """The phase's next question after a confirmed value (the "yes" answered the check, not the phase)."""
        if self.phase == "collect":
            return self._collect(lead_in, changed)
        if self.phase == "offer":
            return self._on_offer("", lead_in)
        if self.phase == "confirm":
            return self._on_confirm("", lead_in)
        return self._on_wrapup("", lead_in, changed)

    # -- the goodbye, talked over ----------------------------------------------------------------------

    def reopen(self, turn: CallerTurn) -> Reply | None:
        """The caller spoke over the goodbye or right after it: the call is not over. Only
        bye / thanks / an acknowledgement gets a short goodbye again, and "what?" the goodbye
        itself; anything else returns None and is answered as usual (from the phase the
        goodbye ended), a lost lead being back where it was."""
        was_done = self.phase == "done"
        self.finished = False
        if was_done:
            self.phase = self._reopen_phase
        self.wrapup_turns = 0
        text = turn.text.strip()
        if text and turn.confidence >= CLARIFY_BELOW:
            if cues.asks_repeat(text, self.language) and self.last_bye:
                return Reply(self.last_bye, final=True)
            if cues.is_closing(text, self.language) or cues.is_backchannel(text, self.language):
                return Reply(self.say["bye_again"], final=True)
        if self.lead.status == "lost" and not extract.not_interested(text):
            self.lead.status = self.status_before_lost  # type: ignore[assignment]
        return None

    def _missing(self) -> list[str]:
        return [m for m in self.lead.slots.missing() if m not in self.declined]

    def _ack(self, changed: list[str]) -> str:
        s = self.lead.slots
        if "name" in changed and s.name:
            return self.say["nice_to_meet"].format(name=self.first_name())
        if changed == ["phone"]:
            return self.say["phone_ok"]
        opener = self.say["acks"][self.turns % len(self.say["acks"])]
        parts = summary.echo(s, changed, self.hebrew)
        return f"{opener}, {', '.join(parts)}." if parts else f"{opener}."

    def _with(self, lead_in: str, question: str) -> Reply:
        """Lead-in + question, dropping echo pieces (then the lead-in) until it fits the rules."""
        if lead_in and len(guardrails.sentences(lead_in)) + len(guardrails.sentences(question)) > guardrails.MAX_SENTENCES:
            lead_in = ""  # the question brings its own opener ("אין בעיה. אולי ...?")
        while lead_in and not guardrails.fits_after(guardrails.words(lead_in), question):
            head, sep, _ = lead_in.rstrip(".").rpartition(", ")
            lead_in = head + "." if sep else ""
        return Reply(f"{lead_in} {question}".strip())

    def next_question(self) -> str:
        """The question for the first missing slot (also the OpenAI brain's safe line)."""
        s = self.lead.slots
        for key in _SLOT_ORDER:
            if key in self._missing():
                if key == "phone":
                    if s.phone:
                        digits = " ".join(s.phone[-4:])
                        return self.say["q_phone_confirm"].format(digits=digits)
                    return self.say["q_phone"]
                if key == "property_type" and s.rooms is not None:
                    return self.say["q_property_type_only"]
                if key == "budget_ils":
                    return self._budget_question()
                return self.say[f"q_{key}"]
        if self.windows:
            return self.say["offer_which"].format(offer=schedule.say_offer(self.windows, self.now, self.hebrew))
        return self.say["anything_else"]

    def _collect(self, lead_in: str, changed: list[str]) -> Reply:
        s = self.lead.slots
        missing = self._missing()
        if self.unclear_budget is not None and s.deal is None:
            if self.asks["deal"] < 2:
                self.asks["deal"] += 1
                return self._ask("deal", lead_in, self.say["q_deal"])  # "שמונה": million or thousand?
            self.unclear_budget = None
        if (
            "property_type" in changed and s.rooms is None and not self.rooms_asked
            and s.property_type not in ("מגרש", "plot", "משרד", "office")
        ):
            self.rooms_asked = True
            return self._ask("rooms", lead_in, self.say["q_rooms"])
        if missing:
            key = missing[0]
            question = self.next_question()
            if not changed and self.asks[key] >= 1:
                if self.asks[key] + 1 >= MAX_ASKS and key not in ("phone",):
                    self.declined.add(key)  # asked enough: the meeting will cover it
                    return self._collect("", ["declined"])
                lead_in = lead_in or self.say["rephrase"]
            self.asks[key] += 1
            asked = "phone" if key == "phone" and s.phone else ("phone_number" if key == "phone" else key)
            return self._ask(asked, lead_in, question)
        return self._offer(lead_in, self.say["offer"])

    def _ask(self, key: str, lead_in: str, question: str) -> Reply:
        self._asking = self.expecting = key
        return self._with(lead_in, question)

    def _offer(self, lead_in: str, template: str) -> Reply:
        if self.lead.status == "new":
            self.lead.status = "qualified"
        busy = self.current_busy()
        self.windows = schedule.offer_windows(self.now, 2, exclude=self.offered, busy=busy, rules=self.meeting_rules)
        if not self.windows:  # every window offered already: the free ones again, from the first
            self.windows = schedule.offer_windows(self.now, 2, busy=busy, rules=self.meeting_rules)
        self.offered.extend(self.windows)
        self.phase = "offer"
        return self._ask("meeting", lead_in, template.format(offer=schedule.say_offer(self.windows, self.now, self.hebrew)))

    def _on_offer(self, text: str, lead_in: str) -> Reply:
        chosen = schedule.pick(text, self.windows, self.now, self._free, self.meeting_rules)
        if chosen.kind == "window" and chosen.at is not None:
            self.choice = chosen.at
            self.phase = "confirm"
            window = schedule.say_window(chosen.at, self.now, self.hebrew)
            return self._ask("confirm", lead_in, self.say["confirm"].format(window=window))
        if chosen.kind == "none" or (chosen.kind != "window" and extract.yes_no(text, self.language) is False):
            return self._offer(lead_in, self.say["offer_again"])  # "אף אחד לא מתאים", "לא ממש", "עזבי"
        offer = schedule.say_offer(self.windows, self.now, self.hebrew)
        return self._ask("meeting", lead_in, self.say["offer_which"].format(offer=offer))

    def _on_confirm(self, text: str, lead_in: str) -> Reply:
        assert self.choice is not None
        candidates = [*self.windows, self.choice]
        chosen = schedule.pick(text, candidates, self.now, self._free, self.meeting_rules)
        yes = extract.yes_no(text)
        if chosen.kind == "window" and chosen.at is not None and chosen.at != self.choice:
            # another window named, even after a yes ("טוב, אבל עדיף ביום שישי"): confirm that one
            self.choice = chosen.at
            window = schedule.say_window(chosen.at, self.now, self.hebrew)
            return self._ask("confirm", lead_in, self.say["confirm"].format(window=window))
        if yes is True or (chosen.kind == "window" and chosen.at == self.choice):
            return self._book()
        if yes is False or chosen.kind == "none":
            self.phase = "offer"
            return self._offer(lead_in, self.say["offer_again"])
        window = schedule.say_window(self.choice, self.now, self.hebrew)
        return self._ask("confirm", lead_in, self.say["confirm"].format(window=window))

    def _free(self, at: dt.datetime) -> bool:
        return schedule.is_free(at, self.current_busy(), self.meeting_rules)

    def set_calendar(self, busy: Callable[[], list[schedule.Busy]], rules: schedule.MeetingRules) -> None:
        self.busy_source = busy
        self.meeting_rules = rules

    def current_busy(self) -> list[schedule.Busy]:
        """The calendar's busy intervals now (none without one), and the slots found taken."""
        found = self.busy_source() if self.busy_source is not None else []
        return [*found, *self.busy]

    def slot_taken(self, at: dt.datetime) -> Reply:
        """The booking found ``at`` taken in the calendar meanwhile: unbook it and offer the
        next free windows ("that time was just taken. How about ...?")."""
        end = at + self.meeting_rules.duration
        if (at, end) not in self.busy:
            self.busy.append((at, end))
        if self.lead.meeting_at == at:
            self.lead.meeting_at = None
        if self.lead.status == "meeting_booked":
            self.lead.status = "qualified"
        self.choice = None
        self.finished = False
        return self._offer(self.say["slot_taken"], self.say["offer_after_taken"])

    def _book(self) -> Reply:
        assert self.choice is not None
        self.lead.meeting_at = self.choice
        self.lead.status = "meeting_booked"
        self.phase = "wrapup"
        window = schedule.say_window(self.choice, self.now, self.hebrew)
        question = self.say["booked_question"]
        parts = summary.one_line(self.lead.slots, self.hebrew)
        while True:
            line = self.say["booked"].format(window=window, summary=", ".join(parts)) if parts else ""
            if not parts or guardrails.fits_after(guardrails.words(line), question):
                break
            parts.pop()
        if not parts:
            line = self.say["booked"].format(window=window, summary="").replace(": .", ".").replace(":.", ".")
        self._asking = self.expecting = "anything_else"
        return Reply(f"{line} {question}")

    def _on_wrapup(self, text: str, lead_in: str, changed: list[str]) -> Reply:
        self.wrapup_turns += 1
        if self.lead.meeting_at is not None:
            if extract.cancels_meeting(text):
                return self._cancel_meeting()
            if extract.moves_meeting(text):
                return self._move_meeting(text, lead_in)
        if extract.asks_listings(text):
            return self._with(self.say["no_listings"], self.say["anything_else"])
        if extract.wants_to_end(text) or extract.yes_no(text) is False or self.wrapup_turns >= MAX_WRAPUP:
            return self._goodbye()
        if changed:
            return Reply(self.say["updated_else"])
        return Reply(self.say["noted_else"])

    def _cancel_meeting(self) -> Reply:
        """ "I need to cancel the meeting": unbooked (the calendar follows, server.meeting_brain);
        the lead stays qualified for a call back."""
        self.lead.meeting_at = None
        self.lead.status = "qualified"
        self.choice = None
        self._asking = self.expecting = "anything_else"
        return Reply(self.say["meeting_cancelled"])

    def _move_meeting(self, text: str, lead_in: str) -> Reply:
        """ "Can we move it to Thursday?": that day's free window to confirm, else new windows.
        The booked time stands until another one is confirmed."""
        current = self.lead.meeting_at
        assert current is not None
        self.wrapup_turns = 0
        if current not in self.offered:
            self.offered.append(current)
        candidates = schedule.offer_windows(self.now, 3, exclude=self.offered, busy=self.current_busy(),
                                            rules=self.meeting_rules)
        chosen = schedule.pick(text, candidates, self.now, self._free, self.meeting_rules)
        named = chosen.kind == "window" and chosen.at is not None and chosen.at != current and (
            schedule.names_a_day(text, self.now))
        if named:
            assert chosen.at is not None
            self.windows = [w for w in candidates if w != chosen.at][:1] + [chosen.at]
            self.choice = chosen.at
            self.phase = "confirm"
            window = schedule.say_window(chosen.at, self.now, self.hebrew)
            return self._ask("confirm", lead_in, self.say["confirm"].format(window=window))
        return self._offer(lead_in, self.say["offer_again"])

    def first_name(self) -> str:
        return (self.lead.slots.name or "").split(" ")[0]

    def _goodbye(self) -> Reply:
        name = f", {self.first_name()}" if self.lead.slots.name else ""
        if self.lead.meeting_at:
            window = schedule.say_window(self.lead.meeting_at, self.now, self.hebrew)
            return Reply(self.say["bye_meeting"].format(name=name, window=window), final=True)
        return Reply(self.say["bye"].format(name=name), final=True)


class RuleBrain(Brain):
    """The offline brain: no network, deterministic, Hebrew and English."""

    name = "rules"

    def __init__(self, language: str, caller_phone: str, now: dt.datetime) -> None:
        self.dialog = RuleDialog(language, caller_phone, now)
        self.lead = self.dialog.lead
        self._before: dict[str, Any] | None = None  # the dialog before the last respond()

    def call_out(self, ctx: outbound.OutboundContext) -> None:
        self.dialog.call_out(ctx)

    @property  # type: ignore[override]
    def finished(self) -> bool:
        return self.dialog.finished

    def opening(self) -> str:
        return self.dialog.opening()

    def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        # Not an async generator itself: the snapshot is taken when respond() is called, so
        # retract() is right even if the reply is never iterated.
        self._before = self.dialog.snapshot()
        return self._respond(turn)

    async def _respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        for sentence in guardrails.sentences(self.dialog.reply(turn).text):
            yield sentence

    def retract(self) -> None:
        if self._before is not None:
            self.dialog.restore(self._before)
            self._before = None

    def heard(self, said: str, heard_fully: bool) -> None:
        self.dialog.heard(said, heard_fully)

    def asking(self) -> str | None:
        return None if self.dialog.finished else self.dialog._asking

    def summary(self) -> str:
        return self.dialog.summary()

    def set_calendar(self, busy: Callable[[], list[schedule.Busy]], rules: schedule.MeetingRules) -> None:
        self.dialog.set_calendar(busy, rules)

    def slot_taken(self, at: dt.datetime) -> str:
        text = self.dialog.slot_taken(at).text
        self.dialog.note_asked(text)
        return text
