"""Split a reply into sentences so the first one is voiced while the rest are still being made."""
from __future__ import annotations

import re

# End of sentence: . ! ? (and the Hebrew/Arabic question mark) followed by space or end.
# Decimal points ("3.5 חדרים") are not ends: the dot must be followed by whitespace or end.
_END = re.compile(r"(?<=[.!?\u061f…])\s+")


def split_sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _END.split(text.strip())]
    return [p for p in parts if p]
