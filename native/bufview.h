/* Buffer helpers done in C (Cython cannot express them):
 *
 * al_borrow_view: point a Py_buffer at memory we did not acquire (view->obj = NULL makes
 *   PyBuffer_Release a no-op). Cython types Py_buffer.obj as a Python object.
 * al_load16 / al_store16: int16 access at any address. A bytes-like slice can start at an
 *   odd address; dereferencing an int16_t* there is undefined behaviour (the optimiser may
 *   assume alignment when it vectorises). memcpy of 2 bytes compiles to one plain move. */
#ifndef AL_BUFVIEW_H
#define AL_BUFVIEW_H
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline void al_borrow_view(Py_buffer *view, void *buf, Py_ssize_t len) {
    view->obj = NULL;
    view->buf = buf;
    view->len = len;
}

static inline int16_t al_load16(const void *p, Py_ssize_t i) {
    int16_t v;
    memcpy(&v, (const char *)p + 2 * i, 2);
    return v;
}

static inline void al_store16(void *p, Py_ssize_t i, int16_t v) { memcpy((char *)p + 2 * i, &v, 2); }
#endif
