"""Talk to the brain in a terminal: `python -m dialog [he-IL|en-US]`.

Uses the same selection as the server (BRAIN, OPENAI_API_KEY, OPENAI_BASE_URL, OPENAI_MODEL).
Type the caller's words; prefix a line with "!" to say it over the agent (a barge-in that
cut the previous reply in half), with "?" to mark it as badly recognised (confidence 0.3).
"""
from __future__ import annotations

import datetime as dt
import os
import sys

import trio

from dialog.base import CallerTurn
from dialog.brains import select_brain
from dialog.schedule import TZ


async def chat(language: str) -> None:
    choice = select_brain(os.environ)
    brain = choice.new_brain(language, "+972501234567", dt.datetime.now(TZ))
    print(f"[{choice.name}] agent: {brain.opening()}")
    last = brain.opening()
    try:
        while not brain.finished:
            try:
                line = await trio.to_thread.run_sync(input, "caller> ")
            except EOFError:
                break
            cut, confidence = line.startswith("!"), 0.3 if line.startswith("?") else 0.95
            text = line.lstrip("!?").strip()
            brain.heard(" ".join(last.split()[: len(last.split()) // 2]) if cut else last, not cut)
            said = []
            async for sentence in brain.respond(CallerTurn(text, confidence, cut)):
                print(f"  agent: {sentence}")
                said.append(sentence)
            last = " ".join(said)
        print(f"\nlead: {brain.lead}\n\nWhatsApp:\n{brain.summary()}")
    finally:
        await brain.aclose()


if __name__ == "__main__":
    trio.run(chat, sys.argv[1] if len(sys.argv) > 1 else "he-IL")
