# Types of native/wsframe.pyx.
from collections import deque

from typing_extensions import Buffer  # collections.abc.Buffer from 3.12

def text_frame(text: str) -> bytes: ...
def control_frame(opcode: int, payload: Buffer = b"") -> bytes: ...
def close_frame(code: int, reason: str = "") -> bytes: ...

class FrameReader:
    max_message: int  # read-only
    messages: deque[str]  # read-only attribute (the deque itself is the owner's to popleft/clear)
    replies: list[bytes]
    closed: tuple[int, str] | None
    mid_message: bool  # read-only: part of a frame / fragmented message is held
    def __init__(self, max_message: int) -> None: ...
    def feed(self, data: Buffer) -> None: ...
