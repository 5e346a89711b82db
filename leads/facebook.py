"""Facebook Lead Ads: the webhook's checks and the lead fetched from the Graph API.

Facebook posts only the lead's id (``entry[].changes[].value.leadgen_id``, field
``leadgen``), signed ``X-Hub-Signature-256: sha256=HMAC-SHA256(app secret, raw body)``; the
lead's answers are then read from the Graph API (``GET {graph}/{leadgen_id}`` with the page
access token). Their field names are the form's: the usual ones (``full_name``,
``phone_number``, ``city`` ...) and our own intake names map onto an intake submission
(leads.intake), source ``facebook``, idempotent per leadgen id (Facebook retries a
delivery that did not get a 200 for a day and more).
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import requests

DEFAULT_GRAPH_URL = "https://graph.facebook.com/v19.0"
SIGNATURE_HEADER = "X-Hub-Signature-256"
# Facebook's standard questions and common custom ones -> our intake fields.
FIELD_MAP = {
    "full_name": "name", "name": "name", "שם": "name", "שם_מלא": "name",
    "phone_number": "phone", "phone": "phone", "טלפון": "phone",
    "city": "area", "area": "area", "אזור": "area", "עיר": "area",
    "property_type": "property_type", "סוג_נכס": "property_type",
    "rooms": "rooms", "חדרים": "rooms",
    "budget": "budget_ils", "budget_ils": "budget_ils", "תקציב": "budget_ils",
    "deal": "deal", "עסקה": "deal",
    "timeframe": "timeframe", "מתי": "timeframe",
}


@dataclass(frozen=True, slots=True)
class FacebookConfig:
    app_secret: str | None = None
    verify_token: str | None = None
    page_access_token: str | None = None
    graph_url: str = DEFAULT_GRAPH_URL
    timeout_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "FacebookConfig":
        def get(name: str) -> str | None:
            return (env.get(name) or "").strip() or None

        return cls(app_secret=get("FACEBOOK_APP_SECRET"), verify_token=get("FACEBOOK_VERIFY_TOKEN"),
                   page_access_token=get("FACEBOOK_PAGE_ACCESS_TOKEN"),
                   graph_url=(get("FACEBOOK_GRAPH_URL") or DEFAULT_GRAPH_URL).rstrip("/"))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str | None, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def verify(cfg: FacebookConfig, args: Mapping[str, str]) -> str | None:
    """The subscription handshake: the challenge to echo back, or None (403)."""
    token = args.get("hub.verify_token") or ""
    if args.get("hub.mode") != "subscribe" or not cfg.verify_token:
        return None
    if not hmac.compare_digest(token.encode(), cfg.verify_token.encode()):
        return None
    return args.get("hub.challenge") or ""


def leadgen_ids(payload: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(leadgen id, its change value) for every new lead in a webhook delivery."""
    if not isinstance(payload, dict):
        return
    for entry in payload.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or []:
            if not isinstance(change, dict) or change.get("field") != "leadgen":
                continue
            value = change.get("value") or {}
            lead_id = value.get("leadgen_id") if isinstance(value, dict) else None
            if isinstance(lead_id, (str, int)) and str(lead_id).isdigit() and len(str(lead_id)) <= 32:
                yield str(lead_id), value


def fetch_lead(cfg: FacebookConfig, leadgen_id: str, session: requests.Session | None = None) -> dict[str, Any]:
    """The lead from the Graph API (blocking). Raises requests' errors (the webhook then
    answers 502 and Facebook delivers again)."""
    http = session or requests
    response = http.get(f"{cfg.graph_url}/{leadgen_id}",
                        params={"access_token": cfg.page_access_token or "",
                                "fields": "id,created_time,field_data,form_id,ad_id"},
                        timeout=cfg.timeout_s)
    response.raise_for_status()
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError("the Graph API answered something other than an object")
    return data


def to_submission(lead: Mapping[str, Any], value: Mapping[str, Any]) -> dict[str, Any]:
    """The Graph API's lead as an intake submission (leads.intake.parse checks it)."""
    out: dict[str, Any] = {"source": "facebook"}
    first = last = None
    for item in lead.get("field_data") or []:
        if not isinstance(item, dict):
            continue
        name = str(item.get("name") or "").strip().lower()
        values = item.get("values") or []
        answer = values[0] if isinstance(values, list) and values else None
        if not isinstance(answer, str):
            continue
        if name == "first_name":
            first = answer
        elif name == "last_name":
            last = answer
        elif name in FIELD_MAP and FIELD_MAP[name] not in out:
            out[FIELD_MAP[name]] = answer
    if "name" not in out and (first or last):
        out["name"] = " ".join(p for p in (first, last) if p)
    for key in ("form_id", "ad_id"):
        ident = lead.get(key) or value.get(key)
        if ident:
            out[f"facebook_{key}"] = str(ident)
    out["facebook_leadgen_id"] = str(lead.get("id") or value.get("leadgen_id") or "")
    return out
