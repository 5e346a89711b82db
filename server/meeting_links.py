"""``GET /meetings/<uid>.ics``: the add-to-calendar file the WhatsApp summary links to.

No login (the lead opens it from WhatsApp): the link is signed (HMAC over the UID and an
expiry, :meth:`leads.meetings.Meetings.ics_url`), anything else is a plain 404. A cancelled
meeting answers 410.
"""
from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, request

from server.webauth import security_headers

meetings_bp = Blueprint("meetings", __name__)


@meetings_bp.get("/meetings/<uid>.ics")
async def meeting_ics(uid: str) -> Any:
    meetings = getattr(current_app.wiring, "meetings", None)
    if meetings is None or not meetings.link_ok(uid, request.args.get("e"), request.args.get("sig")):
        return Response("not found", 404, content_type="text/plain; charset=utf-8")
    text = await meetings.ics_of(uid)
    if text is None:
        return Response("this meeting was cancelled", 410, content_type="text/plain; charset=utf-8")
    response = Response(text, 200, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="meeting.ics"'
    response.headers["Cache-Control"] = "no-store"
    security_headers(response.headers)
    return response
