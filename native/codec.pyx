# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""G.711 μ-law codec, bit-exact with CPython's ``audioop`` (``ulaw2lin(x, 2)`` / ``lin2ulaw(x, 2)``).

As in ``Modules/audioop.c``, both directions come from the G.711 reference formulas:

* decode: a 256-entry int16 table built with ``st_ulaw2linear16``'s formula; on CPUs with
  AVX2 the same formula runs 16 samples at a time (native/ulaw_simd.h), chosen at import;
* encode: audioop computes ``st_14linear2ulaw(sample >> 2)``, so the result depends only on
  the top 14 bits of the sample. We tabulate all 16384 of them once (16 KiB, stays in L1)
  and index with ``(uint16)sample >> 2``: no branches, no segment search per sample.

On a 160-byte frame the call itself costs more than the loop, so the wrappers avoid all
they can: buffers go through the raw buffer protocol (no memoryview objects), and bytes /
bytearray are read and written in place without even that. PCM16 is native-endian int16,
like audioop's output; Twilio's LINEAR16 and every host we run on are little-endian.
"""
cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int16_t, int64_t, uint8_t, uint16_t
from libc.math cimport sqrt

cdef int16_t ULAW_TO_PCM[256]
cdef uint8_t PCM14_TO_ULAW[16384]


cdef int16_t _ulaw2linear16(uint8_t u_val):
    # audioop.c st_ulaw2linear16 (the G.711 reference decoder).
    cdef int t
    u_val = ~u_val
    t = ((u_val & 0x0F) << 3) + 0x84
    t <<= (u_val & 0x70) >> 4
    return <int16_t>((0x84 - t) if (u_val & 0x80) else (t - 0x84))


cdef uint8_t _14linear2ulaw(int pcm_val):
    # audioop.c st_14linear2ulaw: pcm_val is a 14-bit two's complement sample.
    cdef int mask, seg
    cdef int seg_uend[8]
    seg_uend[:] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
    if pcm_val < 0:
        pcm_val = -pcm_val
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm_val > 8159:
        pcm_val = 8159
    pcm_val += 0x84 >> 2
    seg = 0
    while seg < 8 and pcm_val > seg_uend[seg]:
        seg += 1
    if seg >= 8:
        return <uint8_t>(0x7F ^ mask)
    return <uint8_t>(((seg << 4) | ((pcm_val >> (seg + 1)) & 0xF)) ^ mask)


cdef void _build_tables():
    cdef int i, v
    for i in range(256):
        ULAW_TO_PCM[i] = _ulaw2linear16(<uint8_t>i)
    for i in range(16384):
        # index = (uint16)sample >> 2, so indices >= 8192 are the negative 14-bit values
        v = i - 16384 if i >= 8192 else i
        PCM14_TO_ULAW[i] = _14linear2ulaw(v)


_build_tables()


# --- kernels (no Python objects; shared by the wrappers below and by other modules) --------

cdef extern from "bufview.h":
    void al_borrow_view(Py_buffer* view, void* buf, Py_ssize_t length)
    int16_t al_load16(const void* p, Py_ssize_t i) nogil
    void al_store16(void* p, Py_ssize_t i, int16_t v) nogil

cdef extern from "ulaw_simd.h":
    int ulaw_simd_available() nogil
    size_t ulaw_decode_avx2(const uint8_t* src, size_t n, int16_t* dst) nogil
    size_t ulaw_decode_sumsq_avx2(const uint8_t* src, size_t n, int16_t* dst, int64_t* sumsq) nogil

cdef bint USE_SIMD = ulaw_simd_available() != 0
SIMD_AVAILABLE = bool(USE_SIMD)


def use_simd(bint enabled) -> bool:
    """Switch the AVX2 decode path on/off (tests compare both paths); returns the state in force."""
    global USE_SIMD
    USE_SIMD = enabled and SIMD_AVAILABLE
    return USE_SIMD


cdef void decode_into(const uint8_t* src, Py_ssize_t n, int16_t* dst) noexcept nogil:
    cdef Py_ssize_t i = 0
    if USE_SIMD:
        i = <Py_ssize_t>ulaw_decode_avx2(src, <size_t>n, dst)
    while i < n:
        al_store16(dst, i, ULAW_TO_PCM[src[i]])
        i += 1


cdef void encode_into(const int16_t* src, Py_ssize_t n, uint8_t* dst) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = PCM14_TO_ULAW[(<uint16_t>al_load16(src, i)) >> 2]


cdef int64_t decode_sumsq(const uint8_t* src, Py_ssize_t n, int16_t* dst) noexcept nogil:
    cdef Py_ssize_t i = 0
    cdef int64_t acc = 0
    cdef int v
    if USE_SIMD:
        i = <Py_ssize_t>ulaw_decode_sumsq_avx2(src, <size_t>n, dst, &acc)
    while i < n:
        v = ULAW_TO_PCM[src[i]]
        al_store16(dst, i, <int16_t>v)
        acc += v * v
        i += 1
    return acc


cdef int64_t sumsq16(const int16_t* src, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t acc = 0
    cdef int v
    for i in range(n):
        v = al_load16(src, i)
        acc += v * v
    return acc




cdef inline void _get_read(object obj, Py_buffer* view) except *:
    # bytes are immutable and we keep the GIL: point at them without acquiring a buffer
    # (view.obj = NULL makes PyBuffer_Release a no-op). Saves ~10 ns of a ~40 ns frame.
    if type(obj) is bytes:
        al_borrow_view(view, <void*>PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
    else:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)


cdef inline void _get_write(object obj, Py_buffer* view) except *:
    # a bytearray cannot be resized under us while we hold the GIL (no nogil section uses it)
    if type(obj) is bytearray:
        al_borrow_view(view, <void*>PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj))
    else:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE | PyBUF_WRITABLE)


# --- public API -----------------------------------------------------------------------------

@cython.always_allow_keywords(False)  # METH_O: the cheapest call CPython has (as audioop's)
def ulaw_to_pcm16(data) -> bytes:
    """μ-law bytes -> native-endian PCM16 bytes (2 bytes per input byte)."""
    cdef Py_buffer src
    cdef bytes out
    if type(data) is bytes:  # fast path: no buffer acquisition
        out = PyBytes_FromStringAndSize(NULL, 2 * len(<bytes>data))
        decode_into(<const uint8_t*>PyBytes_AS_STRING(data), len(<bytes>data), <int16_t*>PyBytes_AS_STRING(out))
        return out
    _get_read(data, &src)
    try:
        out = PyBytes_FromStringAndSize(NULL, 2 * src.len)
        decode_into(<const uint8_t*>src.buf, src.len, <int16_t*>PyBytes_AS_STRING(out))
    finally:
        PyBuffer_Release(&src)
    return out


@cython.always_allow_keywords(False)
def pcm16_to_ulaw(data) -> bytes:
    """Native-endian PCM16 bytes -> μ-law bytes. Odd length raises ValueError (as audioop)."""
    cdef Py_buffer src
    cdef bytes out
    cdef Py_ssize_t n
    if type(data) is bytes:
        n = len(<bytes>data)
        if n & 1:
            raise ValueError("not a whole number of frames")
        out = PyBytes_FromStringAndSize(NULL, n >> 1)
        encode_into(<const int16_t*>PyBytes_AS_STRING(data), n >> 1, <uint8_t*>PyBytes_AS_STRING(out))
        return out
    _get_read(data, &src)
    try:
        if src.len & 1:
            raise ValueError("not a whole number of frames")
        out = PyBytes_FromStringAndSize(NULL, src.len >> 1)
        encode_into(<const int16_t*>src.buf, src.len >> 1, <uint8_t*>PyBytes_AS_STRING(out))
    finally:
        PyBuffer_Release(&src)
    return out


# The "into" functions promise no allocation per frame, but a returned Python int above 256
# is a new object: hand out preallocated ones for every length up to 8 KiB.
cdef tuple _COUNTS = tuple(range(8193))


cdef inline object _count(Py_ssize_t n):
    return _COUNTS[n] if n <= 8192 else n


def ulaw_to_pcm16_into(src, dst) -> int:
    """Decode ``src`` into the writable buffer ``dst`` (>= 2*len(src) bytes). Returns bytes written."""
    cdef Py_buffer s, d
    cdef Py_ssize_t n
    _get_read(src, &s)
    try:
        _get_write(dst, &d)
        try:
            n = s.len
            if d.len < 2 * n:
                raise ValueError(f"dst has {d.len} bytes, needs {2 * n}")
            decode_into(<const uint8_t*>s.buf, n, <int16_t*>d.buf)
        finally:
            PyBuffer_Release(&d)
    finally:
        PyBuffer_Release(&s)
    return _count(2 * n)


def pcm16_to_ulaw_into(src, dst) -> int:
    """Encode PCM16 ``src`` into the writable buffer ``dst`` (>= len(src)/2 bytes). Returns bytes written."""
    cdef Py_buffer s, d
    cdef Py_ssize_t n
    _get_read(src, &s)
    try:
        if s.len & 1:
            raise ValueError("not a whole number of frames")
        _get_write(dst, &d)
        try:
            n = s.len >> 1
            if d.len < n:
                raise ValueError(f"dst has {d.len} bytes, needs {n}")
            encode_into(<const int16_t*>s.buf, n, <uint8_t*>d.buf)
        finally:
            PyBuffer_Release(&d)
    finally:
        PyBuffer_Release(&s)
    return n


def decode_with_energy(src_ulaw, dst_pcm) -> float:
    """Decode μ-law ``src_ulaw`` into ``dst_pcm`` and return the RMS of the decoded int16 samples.

    One pass over the frame for the inbound path: the PCM goes to the ASR, the RMS (the unit
    of every VAD threshold) goes to the classifier. Empty input has RMS 0.0.
    """
    cdef Py_buffer s, d
    cdef Py_ssize_t n
    cdef int64_t acc
    _get_read(src_ulaw, &s)
    try:
        _get_write(dst_pcm, &d)
        try:
            n = s.len
            if d.len < 2 * n:
                raise ValueError(f"dst has {d.len} bytes, needs {2 * n}")
            acc = decode_sumsq(<const uint8_t*>s.buf, n, <int16_t*>d.buf)
        finally:
            PyBuffer_Release(&d)
    finally:
        PyBuffer_Release(&s)
    return sqrt(<double>acc / n) if n else 0.0


def pcm16_rms(pcm) -> float:
    """RMS of native-endian int16 samples (0.0 for empty input; odd length raises ValueError)."""
    cdef Py_buffer s
    cdef Py_ssize_t n
    cdef int64_t acc
    _get_read(pcm, &s)
    try:
        if s.len & 1:
            raise ValueError("not a whole number of frames")
        n = s.len >> 1
        acc = sumsq16(<const int16_t*>s.buf, n)
    finally:
        PyBuffer_Release(&s)
    return sqrt(<double>acc / n) if n else 0.0


def ulaw_rms(ulaw) -> float:
    """RMS of the int16 samples that μ-law ``ulaw`` decodes to, without writing them anywhere."""
    cdef Py_buffer s
    cdef Py_ssize_t i, n
    cdef int64_t acc = 0
    cdef int v
    _get_read(ulaw, &s)
    try:
        n = s.len
        for i in range(n):
            v = ULAW_TO_PCM[(<const uint8_t*>s.buf)[i]]
            acc += v * v
    finally:
        PyBuffer_Release(&s)
    return sqrt(<double>acc / n) if n else 0.0


def pcm16_frame_rms_into(pcm, out, int frame_samples=160) -> int:
    """RMS of each whole ``frame_samples`` frame of a PCM16 recording, written as float64 into
    the writable buffer ``out``; returns the number of frames. For whole-recording analysis
    (the per-frame path uses decode_with_energy)."""
    cdef Py_buffer s, d
    cdef Py_ssize_t i, n_frames
    cdef const int16_t* p
    cdef double* o
    if frame_samples < 1:
        raise ValueError("frame_samples must be >= 1")
    PyObject_GetBuffer(pcm, &s, PyBUF_SIMPLE)  # real buffers: the loop runs without the GIL
    try:
        if s.len & 1:
            raise ValueError("not a whole number of frames")
        n_frames = (s.len >> 1) // frame_samples
        PyObject_GetBuffer(out, &d, PyBUF_SIMPLE | PyBUF_WRITABLE)
        try:
            if d.len < n_frames * <Py_ssize_t>sizeof(double):
                raise ValueError(f"out has {d.len} bytes, needs {n_frames * sizeof(double)}")
            p = <const int16_t*>s.buf
            o = <double*>d.buf
            with nogil:
                for i in range(n_frames):
                    o[i] = sqrt(<double>sumsq16(p + i * frame_samples, frame_samples) / frame_samples)
        finally:
            PyBuffer_Release(&d)
    finally:
        PyBuffer_Release(&s)
    return n_frames
