"""The offline rule-based brain (BRAIN=rules): the whole call flow, Hebrew and English.

:class:`RuleDialog` decides (pure: text in, reply out, ``now`` given at construction);
:class:`RuleBrain` is the thin async :class:`Brain` around it. The OpenAI brain keeps a
RuleDialog too: it supplies the safe lines and takes over the call if the API fails.

Flow: collect the slots (area → property type and rooms → budget → timeframe → name →
phone, confirming the caller ID) → offer 2 meeting windows → confirm the choice → book it
with a one-line summary → goodbye. The caller may change any slot at any point, refuse
the budget, ask for apartments (none are offered), or say they are not interested.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import AsyncIterator, Literal

from dialog import extract, guardrails, schedule, summary
from dialog.base import Brain, CallerTurn, LeadState, Slots
from dialog.phrases import is_hebrew, table
from leads import metrics

CLARIFY_BELOW = 0.5  # ASR confidence under this: ask to repeat rather than guess
MAX_TURNS = 30  # a call that has not converged by then is closed politely
MAX_ASKS = 3  # after this many unanswered asks a slot is skipped (left to the meeting)
MAX_WRAPUP = 3

Phase = Literal["collect", "offer", "confirm", "wrapup", "done"]
_SLOT_ORDER = ("area", "property_type", "budget_ils", "timeframe", "name", "phone")


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
        self.hebrew = is_hebrew(language)
        self.say = table(self.hebrew)
        self.now = now
        self.lead = lead or LeadState(Slots(phone=caller_phone or None))
        self.phase: Phase = "collect"
        self.windows: list[dt.datetime] = []
        self.offered: list[dt.datetime] = []
        self.choice: dt.datetime | None = None
        self.declined: set[str] = set()
        self.asks: Counter[str] = Counter()
        self.expecting: str | None = "area"  # what the last question the caller heard asked for
        self._asking: str | None = "area"  # what the last question said asked for
        self.rooms_asked = False
        self.turns = 0
        self.wrapup_turns = 0
        self.finished = False
        self.violations: list[str] = []

    # -- the session's side ----------------------------------------------------------------------

    def opening(self) -> str:
        return self.say["opening"]

    def heard(self, said: str, heard_fully: bool) -> None:
        # A question cut off before its end was not heard: a bare "yes" no longer answers it.
        if not heard_fully and "?" not in said:
            self.expecting = None
            if self._asking == "rooms":
                self.rooms_asked = False  # ask again: they never heard it
        else:
            self.expecting = self._asking

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
            self.finished = True
            self.phase = "done"
        return reply

    def summary(self) -> str:
        return summary.whatsapp(self.lead, self.hebrew)

    # -- deciding --------------------------------------------------------------------------------

    def _amounts(self) -> frozenset[int]:
        b = self.lead.slots.budget_ils
        return frozenset({b}) if b else frozenset()

    def _decide(self, turn: CallerTurn) -> Reply:
        self.turns += 1
        text = turn.text.strip()
        if self.turns >= MAX_TURNS:  # also a line so bad that every turn is a clarify
            return self._goodbye()
        if not text or turn.confidence < CLARIFY_BELOW:
            return Reply(self.say["clarify"])
        if extract.not_interested(text):
            self.lead.status = "lost"
            return Reply(self.say["bye_lost"], final=True)
        if extract.busy(text) and self.phase != "wrapup":
            return self._goodbye()
        if turn.interrupted_agent and extract.only_holds_floor(text):
            return Reply(self.say["go_on"])

        changed = self.absorb(text)
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

    def absorb(self, text: str) -> list[str]:
        """Apply what the caller said to the slots; the names of the slots that changed."""
        s = self.lead.slots
        found = extract.extract(text, self.hebrew, self.expecting)
        changed: list[str] = []
        for key in ("area", "property_type", "rooms", "budget_ils", "timeframe", "name"):
            value = getattr(found, key)
            if value is not None and value != getattr(s, key):
                setattr(s, key, value)
                changed.append(key)
                self.declined.discard(key)
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
                return self.say[f"q_{'budget' if key == 'budget_ils' else key}"]
        if self.windows:
            return self.say["offer_which"].format(offer=schedule.say_offer(self.windows, self.now, self.hebrew))
        return self.say["anything_else"]

    def _collect(self, lead_in: str, changed: list[str]) -> Reply:
        s = self.lead.slots
        missing = self._missing()
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
        self.windows = schedule.offer_windows(self.now, 2, exclude=self.offered)
        self.offered.extend(self.windows)
        self.phase = "offer"
        return self._ask("meeting", lead_in, template.format(offer=schedule.say_offer(self.windows, self.now, self.hebrew)))

    def _on_offer(self, text: str, lead_in: str) -> Reply:
        chosen = schedule.pick(text, self.windows, self.now)
        if chosen.kind == "window" and chosen.at is not None:
            self.choice = chosen.at
            self.phase = "confirm"
            window = schedule.say_window(chosen.at, self.now, self.hebrew)
            return self._ask("confirm", lead_in, self.say["confirm"].format(window=window))
        if chosen.kind == "none":
            return self._offer(lead_in, self.say["offer_again"])
        offer = schedule.say_offer(self.windows, self.now, self.hebrew)
        return self._ask("meeting", lead_in, self.say["offer_which"].format(offer=offer))

    def _on_confirm(self, text: str, lead_in: str) -> Reply:
        assert self.choice is not None
        candidates = [*self.windows, self.choice]
        chosen = schedule.pick(text, candidates, self.now)
        yes = extract.yes_no(text)
        if chosen.kind == "window" and chosen.at is not None and chosen.at != self.choice and yes is not True:
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
        if extract.asks_listings(text):
            return self._with(self.say["no_listings"], self.say["anything_else"])
        if extract.wants_to_end(text) or extract.yes_no(text) is False or self.wrapup_turns >= MAX_WRAPUP:
            return self._goodbye()
        if changed:
            return Reply(self.say["updated_else"])
        return Reply(self.say["noted_else"])

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

    @property  # type: ignore[override]
    def finished(self) -> bool:
        return self.dialog.finished

    def opening(self) -> str:
        return self.dialog.opening()

    async def respond(self, turn: CallerTurn) -> AsyncIterator[str]:
        for sentence in guardrails.sentences(self.dialog.reply(turn).text):
            yield sentence

    def heard(self, said: str, heard_fully: bool) -> None:
        self.dialog.heard(said, heard_fully)

    def summary(self) -> str:
        return self.dialog.summary()
