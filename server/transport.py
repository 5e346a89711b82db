"""What a call session needs from its websocket: text frames in and out, and a close.

The Quart websocket and tests' in-memory pipes both satisfy it, so the session never knows
which one it runs on.
"""
from __future__ import annotations

from typing import Protocol


class TransportClosed(Exception):
    """The peer went away (or we closed). ``code``/``reason`` as the websocket close gave them."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"websocket closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


class Transport(Protocol):
    async def receive(self) -> str:
        """Next text frame. Raises TransportClosed when the peer closes or the link drops."""
        ...

    async def send(self, text: str) -> None:
        """Send one text frame. Raises TransportClosed if the link is gone."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        ...
