"""The OpenAI brain in text mode, for the WhatsApp messages the rules cannot read.

dialog.whatsapp's rules answer first; a message they would hand to a person comes here. The
model gets the user's system prompt (verbatim, as on the phone), a note that this is a
WhatsApp thread, the facts (the meeting, the windows offered, with their indices) and the
thread's last messages, and reports what the message asks for through one tool,
``whatsapp_action`` (confirm / reschedule / choose window i / cancel / opt_out / thanks /
handoff). The transition and its reply are the rules' (:func:`dialog.whatsapp.apply_action`):
the windows come from dialog.schedule, never from the model's words. Only for a handoff the
model's own short text may be sent, when it passes the phone's rules (dialog.guardrails: at
most 2 sentences and 20 words, at most one question, nothing listed or priced); the lead is
flagged for a person either way.

Same client as the phone (dialog.openai_brain.make_client: the official AsyncOpenAI, no
retries), streamed (the tests' fake server speaks SSE); any API failure or timeout -> None,
and the rules' handoff stands.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import trio

from dialog import guardrails
from dialog.openai_brain import OpenAIConfig, make_client, sampling_args
from dialog.prompt import SYSTEM_PROMPT_HE
from dialog.schedule import TZ
from dialog.whatsapp import Decision, Rules, Thread, apply_action, handoff, is_hebrew_text, write_window
from telemetry import metrics

TOOL_NAME = "whatsapp_action"
ACTIONS = ("confirm", "reschedule", "choose", "cancel", "opt_out", "thanks", "handoff")
TOOLS: list[dict[str, Any]] = [{
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": "What the lead's WhatsApp message asks for. Call it once, with every reply.",
        "parameters": {
            "type": "object",
            "properties": {
                "action": {"type": "string", "enum": list(ACTIONS), "description": (
                    "confirm: yes to the booked meeting or to the window just chosen; reschedule: wants another "
                    "time or day; choose: picked one of the offered windows (give window); cancel: cancels the "
                    "meeting; opt_out: wants no more messages or calls; thanks: only thanks / bye; handoff: "
                    "anything else (a person will answer)")},
                "window": {"type": "integer", "description": "0-based index of the offered window chosen"},
            },
            "required": ["action"],
            "additionalProperties": False,
        },
    },
}]
TEXT_NOTE = (
    "ערוץ: וואטסאפ (הודעות כתובות, לא שיחה). אותם כללים: תשובה קצרה, לכל היותר שאלה אחת, בסוף. "
    f"דווחי מה ההודעה מבקשת רק דרך הכלי {TOOL_NAME}. אל תמציאי מועדים: מועדים מוצעים רק מהרשימה."
)
HISTORY_MESSAGES = 10
MESSAGE_CHARS = 500


def note(thread: Thread, now: dt.datetime, hebrew: bool) -> str:
    """The facts the model must not invent."""
    lines = [TEXT_NOTE, f"עכשיו: {now.astimezone(TZ):%A %d.%m.%Y %H:%M} (שעון ישראל)."]
    if thread.name:
        lines.append(f"שם הלקוח: {thread.name}.")
    lines.append(f"פגישה קבועה: {write_window(thread.meeting_at, now, True)}." if thread.meeting_at
                 else "אין פגישה קבועה.")
    if thread.offered:
        lines.append("מועדים שהוצעו: " + "; ".join(f"{i}: {write_window(w, now, True)}"
                                                   for i, w in enumerate(thread.offered)))
    if thread.chosen:
        lines.append(f"הלקוח בחר {write_window(thread.chosen, now, True)} וטרם אישר.")
    if not hebrew:
        lines.append("The lead writes in English: reply in English, same rules.")
    return "\n".join(lines)


def _clean(text: str) -> str | None:
    """The model's own line for a handoff, if it keeps the rules (a statement is fine)."""
    text = " ".join(text.split())
    if not text:
        return None
    broken = [v for v in guardrails.check(text) if v not in ("no_question", "not_ending_question")]
    if text.count("?") > 1 or (text.count("?") == 1 and not text.endswith("?")):
        broken.append("question")
    return None if broken else text


@dataclass
class OpenAIText:
    config: OpenAIConfig
    client: Any = None
    _lock: trio.Lock = field(default_factory=trio.Lock)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "OpenAIText":
        from dialog.brains import DEFAULT_OPENAI_MODEL

        return cls(OpenAIConfig(
            api_key=(env.get("OPENAI_API_KEY") or "").strip(),
            base_url=(env.get("OPENAI_BASE_URL") or "").strip() or None,
            model=(env.get("OPENAI_MODEL") or "").strip() or DEFAULT_OPENAI_MODEL,
        ))

    async def _client(self) -> Any:
        async with self._lock:
            if self.client is None:  # importing the SDK and building a client block: not on the loop
                self.client = await trio.to_thread.run_sync(make_client, self.config)
        return self.client

    def messages(self, text: str, thread: Thread, now: dt.datetime, hebrew: bool,
                 history: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": SYSTEM_PROMPT_HE},
                {"role": "system", "content": note(thread, now, hebrew)}]
        for m in list(history)[-HISTORY_MESSAGES:]:
            body = str(m.get("body") or "")[:MESSAGE_CHARS]
            if body:
                msgs.append({"role": "user" if m.get("direction") == "in" else "assistant", "content": body})
        msgs.append({"role": "user", "content": text[:MESSAGE_CHARS * 2]})
        return msgs

    async def read(self, text: str, thread: Thread, now: dt.datetime,
                   history: Sequence[Mapping[str, Any]] = ()) -> Decision | None:
        """The model's reading of ``text`` as the rules' transition, or None (API failure,
        nothing usable): the caller keeps the rules' handoff."""
        hebrew = is_hebrew_text(text) or not any(c.isascii() and c.isalpha() for c in text)
        try:
            with trio.fail_after(self.config.turn_timeout_s):
                content, calls = await self._ask(self.messages(text, thread, now, hebrew, history))
        except Exception:  # noqa: BLE001 - any failure of the API path: the rules' answer stands
            metrics.provider_errors_total.labels(provider="openai").inc()
            return None
        action, window = _action(calls)
        if action is None:
            return None
        decision = None if action == "handoff" else apply_action(action, thread, now, text, hebrew, window)
        if decision is not None:
            return decision
        line = _clean(content)
        reason = "openai: " + ("handoff" if action == "handoff" else f"{action} does not fit the thread")
        return handoff(thread, Rules(hebrew, now), reason, line)

    async def _ask(self, messages: list[dict[str, str]]) -> tuple[str, list[tuple[str, str]]]:
        client = await self._client()
        stream = await client.chat.completions.create(
            model=self.config.model, messages=messages, tools=TOOLS, tool_choice="required", stream=True,
            **sampling_args(self.config),
        )
        content = ""
        names: dict[int, str] = {}
        args: dict[int, str] = {}
        async with stream:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                content += delta.content or ""
                for call in delta.tool_calls or ():
                    fn = call.function
                    if fn and fn.name:
                        names[call.index] = fn.name
                    if fn and fn.arguments:
                        args[call.index] = args.get(call.index, "") + fn.arguments
        return content.strip(), [(names.get(i, ""), raw) for i, raw in sorted(args.items())]


def _action(calls: list[tuple[str, str]]) -> tuple[str | None, int | None]:
    for name, raw in calls:
        if name != TOOL_NAME:
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        action = parsed.get("action") if isinstance(parsed, dict) else None
        if action in ACTIONS:
            window = parsed.get("window")
            return action, window if isinstance(window, int) and not isinstance(window, bool) else None
    return None, None
