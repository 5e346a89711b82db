"""The realtors meetings are booked for: each with a CalDAV calendar and the areas they serve.

Configuration (read once at startup; a bad one is a startup error naming the field):

- ``REALTORS`` (JSON) or ``REALTORS_FILE`` (a path to the same JSON): a list of
  ``{"name": ..., "areas": ["חיפה", "קריות"], "calendar_url": ..., "user": ...,
  "password": ... | "password_env": "NAME_OF_AN_ENV_VAR"}``. ``areas`` empty or ``["*"]``:
  the realtor takes leads of any area no one else serves. No ``calendar_url``: that realtor's
  windows follow the office-hour rules alone.
- Else ``CALENDAR_URL`` (+ ``CALENDAR_USER``, ``CALENDAR_PASSWORD``): one realtor, every area.
- Else none: no calendar, today's rules.

A lead goes to the realtors whose areas include its area (see :func:`area_key`), else to the
catch-all ones, else to everyone; among equals, round-robin (:meth:`Realtors.pick`).
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from native.config import ConfigError

ANY_AREA = "*"


@dataclass(frozen=True, slots=True)
class CalendarAccess:
    url: str  # the calendar collection (e.g. https://caldav.fastmail.com/dav/calendars/user/me/Default/)
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Realtor:
    name: str
    areas: frozenset[str] = frozenset()  # area_key()s; empty: any area
    calendar: CalendarAccess | None = None

    @property
    def catch_all(self) -> bool:
        return not self.areas or ANY_AREA in self.areas


def area_key(area: str) -> str:
    """Areas compared loosely: case, spaces, dashes and quotes aside ("תל-אביב" is "תל אביב").
    The lead's area comes from dialog.extract already in its canonical spelling (no prefix ב)."""
    return re.sub(r"[\s\-_'\"׳״]+", " ", area.strip().casefold()).strip()


class Realtors:
    """The configured realtors, and who gets a lead of a given area (round-robin among equals)."""

    def __init__(self, realtors: list[Realtor]) -> None:
        names = [r.name for r in realtors]
        if len(set(names)) != len(names):
            raise ConfigError(f"REALTORS: names must be unique, got {names}")
        self.all = realtors
        # When each realtor was last given a lead (epoch seconds): picks made here, and the
        # meetings other server processes booked (Meetings.refresh_all reads them from the
        # database), so round-robin holds across `serve --workers N` and several instances.
        self.last_assigned: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self.all)

    def by_name(self, name: str) -> Realtor | None:
        return next((r for r in self.all if r.name == name), None)

    def candidates(self, area: str | None) -> list[Realtor]:
        key = area_key(area) if area else None
        if key:
            serving = [r for r in self.all if key in r.areas]
            if serving:
                return serving
        catch_all = [r for r in self.all if r.catch_all]
        return catch_all or list(self.all)

    def pick(self, area: str | None, now: float | None = None) -> Realtor | None:
        """The realtor for a lead of ``area``: among those who serve it, the one given a lead
        longest ago (never: first; a tie: the configured order) — round-robin among equals."""
        equals = self.candidates(area)
        if not equals:
            return None
        chosen = min(equals, key=lambda r: self.last_assigned.get(r.name, float("-inf")))
        stamp = time.time() if now is None else now
        # Strictly after every stamp so far: picks within one clock tick still take turns.
        latest = max(self.last_assigned.values(), default=stamp)
        self.last_assigned[chosen.name] = max(stamp, latest + 1e-6)
        return chosen

    def note_assigned(self, name: str, when: float) -> None:
        """A lead given to ``name`` at ``when`` elsewhere (another process's booking)."""
        if when > self.last_assigned.get(name, float("-inf")):
            self.last_assigned[name] = when


def _text(entry: Mapping[str, object], key: str, where: str, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise ConfigError(f"{where}: {key!r} is required")
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key!r} must be a string")
    return value.strip()


def _url(value: str, where: str) -> str:
    if not re.match(r"^https?://[^/\s]+", value):
        raise ConfigError(f"{where}: {value!r} is not an http(s) URL")
    return value


def _realtor(entry: object, index: int, env: Mapping[str, str], source: str) -> Realtor:
    where = f"{source}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    name = _text(entry, "name", where, required=True)
    assert name is not None
    areas_raw = entry.get("areas", [])
    if not isinstance(areas_raw, list) or not all(isinstance(a, str) for a in areas_raw):
        raise ConfigError(f"{where}: 'areas' must be a list of strings")
    areas = frozenset(ANY_AREA if a.strip() == ANY_AREA else area_key(a) for a in areas_raw if a.strip())
    url = _text(entry, "calendar_url", where)
    calendar = None
    if url:
        password = _text(entry, "password", where)
        password_env = _text(entry, "password_env", where)
        if password_env:
            password = (env.get(password_env) or "").strip() or None
            if password is None:
                raise ConfigError(f"{where}: password_env {password_env!r} is not set")
        calendar = CalendarAccess(_url(url, f"{where}.calendar_url"), _text(entry, "user", where), password)
    return Realtor(name, areas, calendar)


def load_realtors(env: Mapping[str, str]) -> Realtors:
    """From REALTORS / REALTORS_FILE, else CALENDAR_URL; empty when neither is set."""
    raw = (env.get("REALTORS") or "").strip()
    source = "REALTORS"
    path = (env.get("REALTORS_FILE") or "").strip()
    if raw and path:
        raise ConfigError("set REALTORS or REALTORS_FILE, not both")
    if path:
        source = f"REALTORS_FILE={path}"
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: {exc.strerror or exc}") from None
    if raw:
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{source} must be a non-empty JSON list of realtors")
        return Realtors([_realtor(e, i, env, source) for i, e in enumerate(entries)])
    url = (env.get("CALENDAR_URL") or "").strip()
    if url:
        access = CalendarAccess(
            _url(url, "CALENDAR_URL"),
            (env.get("CALENDAR_USER") or "").strip() or None,
            (env.get("CALENDAR_PASSWORD") or "").strip() or None,
        )
        return Realtors([Realtor("realtor", frozenset(), access)])
    return Realtors([])
