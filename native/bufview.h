/* Point a Py_buffer at memory we did not acquire (view->obj = NULL makes PyBuffer_Release a
 * no-op). Cython types Py_buffer.obj as a Python object, so this is done in C. */
#ifndef AL_BUFVIEW_H
#define AL_BUFVIEW_H
#include <Python.h>
static inline void al_borrow_view(Py_buffer *view, void *buf, Py_ssize_t len) {
    view->obj = NULL;
    view->buf = buf;
    view->len = len;
}
#endif
