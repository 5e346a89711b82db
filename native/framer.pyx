# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""20 ms framing for the outbound path: arbitrary chunks in, exact 160-byte μ-law frames out.

TTS engines hand audio over in chunks of any size (odd byte counts included). The framer
encodes each chunk straight into a μ-law ring buffer; the pacer takes one whole 20 ms frame
at a time. Only the tail of the ring can be a partial frame, so it never holds more than one
partial frame, and ``flush()`` (end of a TTS sentence) pads that one with μ-law silence
(0xFF) so the last syllable is sent instead of waiting for bytes that will never come.

No allocation after construction: writes encode in place, reads copy into the caller's
buffer. A write that does not fit raises BufferError and changes nothing.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport int16_t, uint8_t
from libc.string cimport memcpy, memset

from native.codec cimport encode_into

cdef enum:
    FRAME = 160  # μ-law bytes in 20 ms
ULAW_SILENCE = 0xFF


cdef class Framer:
    """Ring buffer of μ-law bytes, read out in 160-byte (20 ms) frames."""

    cdef uint8_t* ring
    cdef Py_ssize_t cap      # bytes, a multiple of FRAME
    cdef Py_ssize_t head     # read position
    cdef Py_ssize_t used     # bytes queued (full frames + the partial tail)
    cdef int carry           # a pending odd PCM byte (low byte of a sample), or -1
    cdef int16_t pair[1]

    def __cinit__(self, int capacity_frames=1500):
        if capacity_frames < 1:
            raise ValueError("capacity_frames must be >= 1")
        self.cap = <Py_ssize_t>capacity_frames * FRAME
        self.ring = <uint8_t*>PyMem_Malloc(self.cap)
        if self.ring == NULL:
            raise MemoryError()
        self.head = 0
        self.used = 0
        self.carry = -1

    def __dealloc__(self):
        PyMem_Free(self.ring)

    @property
    def frames(self) -> int:
        """Full 160-byte frames ready to read."""
        return self.used // FRAME

    @property
    def free_bytes(self) -> int:
        """μ-law bytes that can still be written (a PCM16 write of 2*free_bytes fits)."""
        return self.cap - self.used

    @property
    def partial_bytes(self) -> int:
        """μ-law bytes of the one partial frame at the tail (0..159)."""
        return self.used % FRAME

    @property
    def capacity_frames(self) -> int:
        return self.cap // FRAME

    cdef inline void _push_ulaw(self, const uint8_t* src, Py_ssize_t n) noexcept nogil:
        cdef Py_ssize_t tail = (self.head + self.used) % self.cap
        cdef Py_ssize_t first = self.cap - tail
        if first > n:
            first = n
        memcpy(self.ring + tail, src, first)
        if n > first:
            memcpy(self.ring, src + first, n - first)
        self.used += n

    cdef inline void _push_pcm(self, const int16_t* src, Py_ssize_t samples) noexcept nogil:
        cdef Py_ssize_t tail = (self.head + self.used) % self.cap
        cdef Py_ssize_t first = self.cap - tail
        if first > samples:
            first = samples
        encode_into(src, first, self.ring + tail)
        if samples > first:
            encode_into(src + first, samples - first, self.ring)
        self.used += samples

    def write_ulaw(self, chunk) -> None:
        """Queue μ-law bytes as they are."""
        cdef Py_buffer b
        PyObject_GetBuffer(chunk, &b, PyBUF_SIMPLE)
        try:
            if b.len > self.cap - self.used:
                raise BufferError(f"framer full: {b.len} bytes do not fit in {self.cap - self.used}")
            self._push_ulaw(<const uint8_t*>b.buf, b.len)
        finally:
            PyBuffer_Release(&b)

    def write_pcm16(self, chunk) -> None:
        """Encode native-endian PCM16 to μ-law and queue it. Any length: an odd trailing byte is
        kept and joined with the first byte of the next write (chunk boundaries need not fall
        on sample boundaries)."""
        cdef Py_buffer b
        cdef const uint8_t* p
        cdef Py_ssize_t n, samples
        cdef uint8_t* pb
        PyObject_GetBuffer(chunk, &b, PyBUF_SIMPLE)
        try:
            p = <const uint8_t*>b.buf
            n = b.len
            samples = (n + (1 if self.carry >= 0 else 0)) >> 1
            if samples > self.cap - self.used:
                raise BufferError(f"framer full: {samples} samples do not fit in {self.cap - self.used}")
            if n == 0:
                return
            if self.carry >= 0:
                # the two halves of this sample arrived in different chunks: join them
                pb = <uint8_t*>self.pair
                pb[0] = <uint8_t>self.carry
                pb[1] = p[0]
                self._push_pcm(self.pair, 1)
                self.carry = -1
                p += 1
                n -= 1
            if n >> 1:
                # may be an odd address (after a carried byte, or a slice): encode_into reads
                # samples with memcpy-loads, so alignment does not matter
                self._push_pcm(<const int16_t*>p, n >> 1)
            if n & 1:
                self.carry = p[n - 1]
        finally:
            PyBuffer_Release(&b)

    def read_frame(self, out) -> bool:
        """Copy the next 160 μ-law bytes into the writable buffer ``out``; False if no full frame."""
        cdef Py_buffer b
        cdef Py_ssize_t first
        if self.used < FRAME:
            return False
        PyObject_GetBuffer(out, &b, PyBUF_SIMPLE | PyBUF_WRITABLE)
        try:
            if b.len < FRAME:
                raise ValueError(f"out has {b.len} bytes, a frame is {FRAME}")
            # cap is a multiple of FRAME and head advances by FRAME, so a frame never wraps
            memcpy(b.buf, self.ring + self.head, FRAME)
            self.head = (self.head + FRAME) % self.cap
            self.used -= FRAME
        finally:
            PyBuffer_Release(&b)
        return True

    def flush(self) -> None:
        """Pad the partial tail frame with μ-law silence so it can be read. A dangling odd PCM
        byte (half a sample) is dropped: it cannot be encoded."""
        cdef Py_ssize_t part = self.used % FRAME
        cdef Py_ssize_t tail
        self.carry = -1
        if part:
            # the partial frame sits inside one FRAME-aligned slot, so the padding never wraps
            tail = (self.head + self.used) % self.cap
            memset(self.ring + tail, 0xFF, FRAME - part)
            self.used += FRAME - part

    def clear(self) -> None:
        """Drop everything queued (barge-in): full frames, the partial frame, the odd byte."""
        self.head = 0
        self.used = 0
        self.carry = -1
