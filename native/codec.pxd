# Kernels shared with the other native modules (the framer encodes straight into its ring).
from libc.stdint cimport int16_t, int64_t, uint8_t

cdef void decode_into(const uint8_t* src, Py_ssize_t n, int16_t* dst) noexcept nogil
cdef void encode_into(const int16_t* src, Py_ssize_t n, uint8_t* dst) noexcept nogil
cdef int64_t decode_sumsq(const uint8_t* src, Py_ssize_t n, int16_t* dst) noexcept nogil
cdef int64_t sumsq16(const int16_t* src, Py_ssize_t n) noexcept nogil
