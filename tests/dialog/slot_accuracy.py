"""Per-slot accuracy of the rule brain's extraction on the utterance corpus (tests/dialog/utterances.py).

    python -m tests.dialog.slot_accuracy            # the table (markdown, for the README)
    python -m tests.dialog.slot_accuracy --misses   # and every miss

A slot is judged on every row where it is expected or where something was found: a wrong
value, a value missed and a value found where none was said are all misses. ``yes`` is judged
on the rows that answer a yes/no question. Accuracy = right / judged.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, __file__.rsplit("/tests/", 1)[0])

from dialog import extract  # noqa: E402

try:
    from tests.dialog.utterances import EN, HE, HE_HELDOUT, SLOTS, YES_NO_ASKED, U
except ImportError:  # pytest puts tests/dialog itself on the path
    from utterances import EN, HE, HE_HELDOUT, SLOTS, YES_NO_ASKED, U  # type: ignore[no-redef]

GOAL = 0.95
JUDGED = (*SLOTS, "yes")


def predict(row: U, hebrew: bool) -> dict[str, Any]:
    found = extract.extract(row.text, hebrew, row.asked, deal=row.deal)
    out = {slot: getattr(found, slot) for slot in SLOTS}
    if row.asked in YES_NO_ASKED:
        out["yes"] = extract.yes_no(row.text)
    return out


@dataclass
class Score:
    right: int = 0
    judged: int = 0
    expected: int = 0
    false_found: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.right / self.judged if self.judged else 1.0


def score(rows: list[U], hebrew: bool) -> dict[str, Score]:
    scores = {slot: Score() for slot in JUDGED}
    for row in rows:
        got = predict(row, hebrew)
        for slot in JUDGED:
            if slot == "yes" and row.asked not in YES_NO_ASKED:
                continue
            want = row.want.get(slot)
            have = got.get(slot)
            if want is None and have is None and slot != "yes":
                continue
            s = scores[slot]
            s.judged += 1
            s.expected += want is not None
            if want == have:
                s.right += 1
            else:
                s.false_found += want is None
                s.misses.append(f"{slot}: {row.text!r} (asked {row.asked}) -> {have!r}, expected {want!r}")
    return scores


def table(columns: list[tuple[str, dict[str, Score]]]) -> str:
    head = "| slot | " + " | ".join(f"{name} right / judged | {name} accuracy" for name, _ in columns) + " |"
    lines = [head, "|---|" + "---|---|" * len(columns)]
    for slot in JUDGED:
        cells = [f"{sc[slot].right} / {sc[slot].judged} | {sc[slot].accuracy:.1%}" for _, sc in columns]
        lines.append(f"| {slot} | " + " | ".join(cells) + " |")
    cells = []
    for _, sc in columns:
        right, judged = sum(s.right for s in sc.values()), sum(s.judged for s in sc.values())
        cells.append(f"**{right} / {judged}** | **{right / judged:.1%}**")
    lines.append("| **all** | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    columns = [("he-IL", score(HE, True)), ("he-IL held-out", score(HE_HELDOUT, True)), ("en-US", score(EN, False))]
    print(f"{len(HE)} Hebrew utterances (+ {len(HE_HELDOUT)} held out), {len(EN)} English\n")
    print(table(columns))
    if "--misses" in argv:
        for name, scores in columns:
            for slot, s in scores.items():
                for miss in s.misses:
                    print(f"{name} {miss}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
