# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""RFC 6455 framing of the media websocket (server.media_socket): client frames in, server frames out.

Every call is ~50 masked client text frames a second (~250-byte Twilio ``media`` JSON). The
reader parses headers, unmasks and decodes in C: per message the only allocation is the
resulting str (and its slot in the deque). Unmasking goes into a scratch buffer the reader
owns; a fragmented message is unmasked straight onto the end of its own buffer; the partial
frame at the end of a read waits in a third buffer. All three are bounded by ``max_message``
plus a frame header (a frame is refused at its header when its message would exceed
``max_message``), and shrink back once a large message has gone through.

Only RFC 6455 without extensions (permessage-deflate is never negotiated): masked client
frames, fragmentation, ping/pong, close; a message over ``max_message`` closes 1009, a
protocol error 1002, invalid UTF-8 in a text message 1007. Binary messages are decoded
leniently (Twilio sends text; the Quart path did the same).
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memmove

from collections import deque

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    object PyUnicode_DecodeUTF8(const char* s, Py_ssize_t size, const char* errors)

cdef enum:
    SMALL = 4096  # what a buffer keeps between messages (a Twilio message is ~250-400 bytes)
    REASON_MAX = 120  # bytes of a close reason we send (a control payload is at most 125)


cdef inline void unmask_into(const uint8_t* src, uint8_t* dst, Py_ssize_t n, const uint8_t* mask) noexcept nogil:
    """XOR ``n`` bytes with the 4-byte mask (index relative to ``src``), 8 bytes at a time."""
    cdef uint32_t m4
    cdef uint64_t m8, w
    cdef Py_ssize_t i = 0
    memcpy(&m4, mask, 4)
    m8 = (<uint64_t>m4 << 32) | m4  # memcpy loads: the mask repeats whatever the byte order
    while i + 8 <= n:
        memcpy(&w, src + i, 8)
        w ^= m8
        memcpy(dst + i, &w, 8)
        i += 8
    while i < n:
        dst[i] = src[i] ^ mask[i & 3]
        i += 1


cdef bytes _control(int opcode, const char* payload, Py_ssize_t n):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 2 + n)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
    p[0] = 0x80 | opcode
    p[1] = <uint8_t>n
    if n:
        memcpy(p + 2, payload, n)
    return out


def text_frame(str text) -> bytes:
    """One unmasked, final text frame (server → client), in one allocation."""
    cdef Py_ssize_t n
    cdef const char* s = PyUnicode_AsUTF8AndSize(text, &n)  # ASCII: the str's own bytes, no copy
    cdef Py_ssize_t head = 2 if n < 126 else 4 if n < 65536 else 10
    cdef bytes out = PyBytes_FromStringAndSize(NULL, head + n)
    cdef uint8_t* p = <uint8_t*>PyBytes_AS_STRING(out)
    cdef int k
    p[0] = 0x81
    if n < 126:
        p[1] = <uint8_t>n
    elif n < 65536:
        p[1] = 126
        p[2] = <uint8_t>(n >> 8)
        p[3] = <uint8_t>n
    else:
        p[1] = 127
        for k in range(8):
            p[2 + k] = <uint8_t>((<uint64_t>n) >> (56 - 8 * k))
    memcpy(p + head, s, n)
    return out


def control_frame(int opcode, payload: bytes = b"") -> bytes:
    """One unmasked control frame (server → client); a control payload is at most 125 bytes."""
    cdef Py_buffer b
    if not 8 <= opcode <= 15:
        raise ValueError(f"not a control opcode: {opcode}")
    PyObject_GetBuffer(payload, &b, PyBUF_SIMPLE)
    try:
        if b.len > 125:
            raise ValueError(f"control payload of {b.len} bytes (at most 125)")
        return _control(opcode, <const char*>b.buf, b.len)
    finally:
        PyBuffer_Release(&b)


def close_frame(int code, str reason = "") -> bytes:
    """A close frame with ``code`` and the first 120 bytes of ``reason``; code 0: an empty body."""
    cdef Py_ssize_t n
    cdef const char* s
    cdef char body[2 + REASON_MAX]
    if not code:
        return _control(0x8, NULL, 0)
    if not 0 < code < 65536:
        raise OverflowError(f"close code {code} does not fit in 2 bytes")
    s = PyUnicode_AsUTF8AndSize(reason, &n)
    if n > REASON_MAX:
        n = REASON_MAX
    body[0] = <char>(code >> 8)
    body[1] = <char>(code & 0xFF)
    memcpy(body + 2, s, n)
    return _control(0x8, body, 2 + n)


cdef int _grow(uint8_t** buf, Py_ssize_t* cap, Py_ssize_t need) except -1:
    """Make ``*buf`` hold at least ``need`` bytes (contents kept)."""
    cdef Py_ssize_t size
    cdef uint8_t* p
    if need <= cap[0]:
        return 0
    size = cap[0] * 2 if cap[0] * 2 > need else need
    if size < 512:
        size = 512
    p = <uint8_t*>PyMem_Realloc(buf[0], size)
    if p == NULL:
        raise MemoryError()
    buf[0] = p
    cap[0] = size
    return 0


cdef void _shrink(uint8_t** buf, Py_ssize_t* cap) noexcept:
    """Back to SMALL bytes after a large message (contents dropped); keeps the buffer on failure."""
    cdef uint8_t* p
    if cap[0] <= SMALL:
        return
    p = <uint8_t*>PyMem_Realloc(buf[0], SMALL)
    if p != NULL:
        buf[0] = p
        cap[0] = SMALL


cdef class FrameReader:
    """Incremental parser of client frames into whole messages.

    ``feed(data)`` returns nothing; complete text messages land in ``messages`` (a deque of
    str), control frames to send back (pongs, the close reply) in ``replies`` (a list of
    bytes); ``closed`` is set to ``(code, reason)`` when the peer closed or broke the
    protocol, after which input is ignored. A frame is refused at its header when its
    message would exceed ``max_message``, so the buffer never holds more than one allowed
    message and a partial header. ``replies`` and ``closed`` may be reassigned by the owner
    (it swaps in a fresh list after sending, marks a dropped socket closed).
    """

    cdef readonly Py_ssize_t max_message
    cdef readonly object messages
    cdef public object replies
    cdef public object closed
    cdef object _append       # messages.append, bound once
    cdef uint8_t* _buf        # the partial frame left by the last feed
    cdef Py_ssize_t _buf_len, _buf_cap
    cdef uint8_t* _scratch    # an unfragmented payload, unmasked
    cdef Py_ssize_t _scratch_cap
    cdef uint8_t* _frag       # the fragmented message in progress, unmasked
    cdef Py_ssize_t _frag_len, _frag_cap
    cdef int _frag_op         # its opcode (0: none)

    def __cinit__(self, Py_ssize_t max_message):
        if max_message < 0:
            raise ValueError("max_message must be >= 0")
        # the tail and fragment buffers are allocated on first use (most calls never need the
        # second); scratch always holds at least a control payload
        self._scratch = <uint8_t*>PyMem_Malloc(SMALL)
        if self._scratch == NULL:
            raise MemoryError()
        self._scratch_cap = SMALL
        self._buf = self._frag = NULL
        self._buf_cap = self._frag_cap = 0
        self._buf_len = self._frag_len = 0
        self._frag_op = 0
        self.max_message = max_message
        self.messages = deque()
        self._append = self.messages.append
        self.replies = []
        self.closed = None

    @property
    def mid_message(self) -> bool:
        """Part of a frame or of a fragmented message is held: the last byte fed did not end
        a message (so the time it arrived is not any whole message's arrival)."""
        return self._buf_len > 0 or self._frag_op != 0

    def __dealloc__(self):
        PyMem_Free(self._buf)
        PyMem_Free(self._scratch)
        PyMem_Free(self._frag)

    cdef void _reset(self) noexcept:
        self._buf_len = 0
        self._frag_len = 0
        self._frag_op = 0
        _shrink(&self._buf, &self._buf_cap)
        _shrink(&self._frag, &self._frag_cap)
        _shrink(&self._scratch, &self._scratch_cap)

    cdef int _fail(self, int code, str reason) except -1:
        self.replies.append(close_frame(code, reason))
        self.closed = (code, reason)
        self._reset()
        return 0

    def feed(self, data) -> None:
        cdef Py_buffer b
        if self.closed is not None:
            return
        PyObject_GetBuffer(data, &b, PyBUF_SIMPLE)
        try:
            self._feed(<const uint8_t*>b.buf, b.len)
        finally:
            PyBuffer_Release(&b)

    cdef int _feed(self, const uint8_t* data, Py_ssize_t n) except -1:
        cdef Py_ssize_t used
        if self._buf_len == 0:  # the usual case: whole frames, parsed in the caller's bytes
            used = self._parse(data, n)
            if used < 0 or used == n:
                return 0
            data += used
            n -= used
            _grow(&self._buf, &self._buf_cap, n)
            memcpy(self._buf, data, n)
            self._buf_len = n
            return 0
        _grow(&self._buf, &self._buf_cap, self._buf_len + n)
        memcpy(self._buf + self._buf_len, data, n)
        self._buf_len += n
        used = self._parse(self._buf, self._buf_len)
        if used < 0:
            return 0
        self._buf_len -= used
        if self._buf_len == 0:
            _shrink(&self._buf, &self._buf_cap)
        elif used:
            memmove(self._buf, self._buf + used, self._buf_len)
        return 0

    cdef Py_ssize_t _parse(self, const uint8_t* buf, Py_ssize_t end) except -2:
        """Handle every whole frame in ``buf``; the bytes used, or -1 once closed."""
        cdef Py_ssize_t pos = 0, head, start
        cdef uint64_t length
        cdef uint8_t b0, b1
        cdef int opcode, k
        cdef const uint8_t* mask
        cdef uint8_t* out
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            head = pos + 2
            if length == 126:
                if end - pos < 4:
                    break
                length = (<uint64_t>buf[pos + 2] << 8) | buf[pos + 3]
                head = pos + 4
            elif length == 127:
                if end - pos < 10:
                    break
                length = 0
                for k in range(8):
                    length = (length << 8) | buf[pos + 2 + k]
                head = pos + 10
            opcode = b0 & 0x0F
            if b0 & 0x70:
                self._fail(1002, "reserved bits set (no extension was negotiated)")
                return -1
            if not b1 & 0x80:
                self._fail(1002, "client frame not masked")
                return -1
            if opcode >= 8:
                if not b0 & 0x80 or length > 125:
                    self._fail(1002, "bad control frame")
                    return -1
            elif length > <uint64_t>(self.max_message - self._frag_len):
                self._fail(1009, "message too big")
                return -1
            start = head + 4  # length now fits in Py_ssize_t (<= 125, or <= max_message)
            if end - start < <Py_ssize_t>length:  # the mask or payload is still to come
                break
            mask = buf + head
            pos = start + <Py_ssize_t>length
            if opcode == 1 or opcode == 2:
                if self._frag_op:
                    self._fail(1002, "new message inside a fragmented one")
                    return -1
                if b0 & 0x80:
                    _grow(&self._scratch, &self._scratch_cap, <Py_ssize_t>length)
                    unmask_into(buf + start, self._scratch, <Py_ssize_t>length, mask)
                    if not self._message(opcode, self._scratch, <Py_ssize_t>length):
                        return -1
                    if <Py_ssize_t>length > SMALL:
                        _shrink(&self._scratch, &self._scratch_cap)
                else:
                    self._frag_op = opcode
                    _grow(&self._frag, &self._frag_cap, <Py_ssize_t>length)
                    unmask_into(buf + start, self._frag, <Py_ssize_t>length, mask)
                    self._frag_len = <Py_ssize_t>length
            elif opcode == 0:
                if not self._frag_op:
                    self._fail(1002, "continuation without a message")
                    return -1
                _grow(&self._frag, &self._frag_cap, self._frag_len + <Py_ssize_t>length)
                unmask_into(buf + start, self._frag + self._frag_len, <Py_ssize_t>length, mask)
                self._frag_len += <Py_ssize_t>length
                if b0 & 0x80:
                    opcode = self._frag_op
                    self._frag_op = 0
                    if not self._message(opcode, self._frag, self._frag_len):
                        return -1
                    self._frag_len = 0
                    _shrink(&self._frag, &self._frag_cap)
            elif opcode >= 8 and opcode <= 10:
                out = self._scratch  # control payloads are at most 125 bytes: scratch holds them
                unmask_into(buf + start, out, <Py_ssize_t>length, mask)
                if opcode == 8:
                    self._peer_close(out, <Py_ssize_t>length)
                    return -1
                if opcode == 9:
                    self.replies.append(_control(0xA, <const char*>out, <Py_ssize_t>length))
                # 10: an unsolicited pong, ignored
            else:
                self._fail(1002, f"unknown opcode {opcode}")
                return -1
        return pos

    cdef int _message(self, int opcode, const uint8_t* payload, Py_ssize_t n) except -1:
        if opcode == 2:  # Twilio sends text; binary is decoded leniently, like the Quart path did
            self._append(PyUnicode_DecodeUTF8(<const char*>payload, n, "replace"))
            return True
        try:
            text = PyUnicode_DecodeUTF8(<const char*>payload, n, NULL)
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8 in a text message")
            return False
        self._append(text)
        return True

    cdef int _peer_close(self, const uint8_t* payload, Py_ssize_t n) except -1:
        cdef int code
        if n == 1:
            self._fail(1002, "bad close frame")
            return 0
        code = ((payload[0] << 8) | payload[1]) if n else 1000
        reason = PyUnicode_DecodeUTF8(<const char*>payload + 2, n - 2, "replace") if n else ""
        self.replies.append(close_frame(code if n else 1000))
        self.closed = (code, reason or ("closed" if code == 1000 else "dropped"))
        self._reset()
        return 0
