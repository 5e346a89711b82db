"""The leads list as CSV (the dashboard's export), pure: rows in, text out.

UTF-8 with a byte-order mark, so Excel opens the Hebrew as Hebrew. A free-text cell that a
spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR at its start: a
caller can say their name is "=HYPERLINK(...)") is prefixed with an apostrophe (OWASP's CSV
injection advice). The phone column is E.164, checked by the store, so it keeps its ``+``.
"""
from __future__ import annotations

import csv
import io
from typing import Any, Iterable

COLUMNS = ("phone", "name", "area", "property_type", "rooms", "deal", "budget_ils", "timeframe",
           "status", "source", "meeting_at", "created_at", "updated_at")
FREE_TEXT = frozenset({"name", "area", "property_type", "timeframe", "source", "status"})
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # rooms: "3", not "3.0"
    text = str(value)
    if column in FREE_TEXT and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def leads_csv(leads: Iterable[dict[str, Any]]) -> str:
    """``leads`` as /api/leads gives them (leads.queries.list_leads)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS)
    for lead in leads:
        writer.writerow([cell(col, lead.get(col)) for col in COLUMNS])
    return BOM + out.getvalue()
