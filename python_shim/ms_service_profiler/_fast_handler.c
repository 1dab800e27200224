/*
 * The custom-handler layer of a Timer built with handler=...: on the enabled path it calls
 * handler(original, *args, **kwargs), where `original` is an Original object that calls the
 * wrapped function and remembers how that went.  When the handler raises an Exception:
 *
 *   - raised by the original function itself: it propagates unchanged;
 *   - the original raised something else first: that exception propagates (`from None`);
 *   - the handler's own error: on_error(exc) is told (it counts and warns), and the caller gets
 *     the original's result if it already ran, else the original is called now.
 *
 * BaseExceptions that are not Exceptions (KeyboardInterrupt, SystemExit, ...) always propagate.
 * The Python fallback with the same rules is patcher/hooks.py:_handler_sync.
 */
#include "_fast.h"

enum { NOT_CALLED, RUNNING, RETURNED, RAISED };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *inner;
    PyObject *result;    /* RETURNED: the value; RAISED: the exception instance */
    int state;
} OriginalObject;

static PyObject *original_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    OriginalObject *self = (OriginalObject *)op;
    self->state = RUNNING;
    PyObject *r = PyObject_Vectorcall(self->inner, args, nargsf, kwnames);
    Py_CLEAR(self->result);
    if (r != NULL) {
        self->state = RETURNED;
        Py_INCREF(r);
        self->result = r;
    } else {
        self->state = RAISED;
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (ev != NULL && tb != NULL) PyException_SetTraceback(ev, tb);
        Py_XINCREF(ev);
        self->result = ev;
        PyErr_Restore(et, ev, tb);
    }
    return r;
}

static int original_traverse(OriginalObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->inner);
    Py_VISIT(self->result);
    return 0;
}

static int original_clear(OriginalObject *self) {
    Py_CLEAR(self->inner);
    Py_CLEAR(self->result);
    return 0;
}

static void original_dealloc(OriginalObject *self) {
    PyObject_GC_UnTrack(self);
    original_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *original_repr(OriginalObject *self) {
    return PyUnicode_FromFormat("<ms_service_profiler original of %R>", self->inner);
}

static PyTypeObject OriginalType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ms_service_profiler._fast.Original",
    .tp_basicsize = sizeof(OriginalObject),
    .tp_dealloc = (destructor)original_dealloc,
    .tp_vectorcall_offset = offsetof(OriginalObject, vectorcall),
    .tp_repr = (reprfunc)original_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the wrapped function as a custom handler receives it",
    .tp_traverse = (traverseproc)original_traverse,
    .tp_clear = (inquiry)original_clear,
};

int fast_handler_init(void) {
    return PyType_Ready(&OriginalType);
}

/* handler(original, *args, **kwargs) with the rules above. */
PyObject *fast_handler_call(PyObject *inner, PyObject *handler, PyObject *on_error,
                            PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    OriginalObject *orig = PyObject_GC_New(OriginalObject, &OriginalType);
    if (orig == NULL) {
        PyErr_Clear();
        return PyObject_Vectorcall(inner, args, nargsf, kwnames);
    }
    orig->vectorcall = original_vectorcall;
    Py_INCREF(inner);
    orig->inner = inner;
    orig->result = NULL;
    orig->state = NOT_CALLED;
    PyObject_GC_Track(orig);

    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **buf = total + 1 <= 8 ? small : PyMem_Malloc(((size_t)total + 1) * sizeof(PyObject *));
    PyObject *r;
    if (buf == NULL) {
        Py_DECREF(orig);
        PyErr_Clear();
        return PyObject_Vectorcall(inner, args, nargsf, kwnames);
    }
    buf[0] = (PyObject *)orig;
    for (Py_ssize_t i = 0; i < total; i++) buf[i + 1] = args[i];
    r = PyObject_Vectorcall(handler, buf, (size_t)(nargs + 1), kwnames);
    if (buf != small) PyMem_Free(buf);

    if (r == NULL && PyErr_ExceptionMatches(PyExc_Exception)) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        PyErr_NormalizeException(&et, &ev, &tb);
        if (orig->state == RAISED) {
            if (ev == orig->result || orig->result == NULL) {
                PyErr_Restore(et, ev, tb);              /* the original's own exception */
            } else {                                    /* raise original's exception from None */
                Py_XDECREF(et);
                Py_XDECREF(ev);
                Py_XDECREF(tb);
                PyObject *exc = orig->result;
                PyException_SetCause(exc, NULL);     /* also sets __suppress_context__ */
                PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
            }
        } else {
            if (ev != NULL && tb != NULL) PyException_SetTraceback(ev, tb);
            if (on_error != NULL) {
                PyObject *x = PyObject_CallOneArg(on_error, ev ? ev : Py_None);
                if (x == NULL) PyErr_Clear();
                Py_XDECREF(x);
            }
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
            if (orig->state == RETURNED) {
                r = orig->result;
                Py_INCREF(r);
            } else {
                r = PyObject_Vectorcall(inner, args, nargsf, kwnames);
            }
        }
    }
    Py_DECREF(orig);
    return r;
}
