/*
 * Phase(cm, domain, name, level=20, json=None): a context manager wrapping another one (vLLM's
 * record_function_or_nullcontext result) with a span around its `with` block.
 *
 * __enter__ decides once whether the span is captured (state word, level, domain filter) and
 * takes the start time before entering `cm`; __exit__ leaves `cm` and then records the span with
 * the given attribute JSON (bytes; None: no attributes), also when cm.__exit__ raised.  Attribute
 * lookups the wrapper does not answer go to `cm`.  Nothing of the profiler's raises into the
 * caller.  The Python fallback is model_handlers._PhaseSpan.
 */
#include "_fast.h"
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *cm;
    PyObject *js;        /* bytes or NULL */
    uint32_t domain, name, level;
    bool armed;
    uint64_t t0;
} PhaseObject;

static PyObject *s_enter, *s_exit;

static PyObject *phase_make(PyTypeObject *type, PyObject *const *args, Py_ssize_t nargs) {
    unsigned long d, n, level = 20;
    if (nargs < 3 || nargs > 5) {
        PyErr_SetString(PyExc_TypeError, "Phase(cm, domain, name, level=20, json=None)");
        return NULL;
    }
    d = PyLong_AsUnsignedLong(args[1]);
    n = d == (unsigned long)-1 && PyErr_Occurred() ? 0 : PyLong_AsUnsignedLong(args[2]);
    if (nargs > 3 && !PyErr_Occurred()) level = PyLong_AsUnsignedLong(args[3]);
    if (PyErr_Occurred()) return NULL;
    PyObject *js = nargs > 4 && args[4] != Py_None ? args[4] : NULL;
    if (js != NULL && !PyBytes_Check(js)) {
        PyErr_SetString(PyExc_TypeError, "json must be bytes or None");
        return NULL;
    }
    PhaseObject *self = (PhaseObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    Py_INCREF(args[0]);
    self->cm = args[0];
    Py_XINCREF(js);
    self->js = js;
    self->domain = (uint32_t)d;
    self->name = (uint32_t)n;
    self->level = (uint32_t)level;
    self->armed = false;
    return (PyObject *)self;
}

static PyObject *phase_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames)) {
        PyErr_SetString(PyExc_TypeError, "Phase() takes positional arguments only");
        return NULL;
    }
    return phase_make((PyTypeObject *)type, args, PyVectorcall_NARGS(nargsf));
}

static PyObject *phase_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    if (kwds != NULL && PyDict_GET_SIZE(kwds)) {
        PyErr_SetString(PyExc_TypeError, "Phase() takes positional arguments only");
        return NULL;
    }
    return phase_make(type, &PyTuple_GET_ITEM(args, 0), PyTuple_GET_SIZE(args));
}

static void phase_dealloc(PhaseObject *self) {
    Py_XDECREF(self->cm);
    Py_XDECREF(self->js);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *phase_enter(PhaseObject *self, PyObject *unused) {
    uint32_t ok = 2;
    uint64_t gen = 0;
    if (fast_capturing(*fast_word, self->level, self->domain, &ok, &gen)) {
        self->armed = true;
        self->t0 = fast_now_ns();
    }
    PyObject *a[2] = {NULL, self->cm};        /* a[0]: the slot ARGUMENTS_OFFSET lends the callee */
    return PyObject_VectorcallMethod(s_enter, a + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

static PyObject *phase_exit(PhaseObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[5] = {NULL, self->cm, Py_None, Py_None, Py_None};   /* a[0]: lent, as above */
    for (Py_ssize_t i = 0; i < nargs && i < 3; i++) a[i + 2] = args[i];
    PyObject *r = PyObject_VectorcallMethod(s_exit, a + 1, 4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    if (self->armed) {
        self->armed = false;
        uint64_t t1 = fast_now_ns();
        if (fast_span != NULL) {
            PyObject *js = self->js;
            fast_span(self->domain, self->name, self->t0, t1, js ? PyBytes_AS_STRING(js) : NULL,
                      js ? (size_t)PyBytes_GET_SIZE(js) : 0);
        }
    }
    return r;
}

static PyObject *phase_getattro(PyObject *self, PyObject *name) {
    PyObject *r = PyObject_GenericGetAttr(self, name);
    if (r != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) return r;
    PyErr_Clear();
    return PyObject_GetAttr(((PhaseObject *)self)->cm, name);
}

static PyObject *phase_repr(PhaseObject *self) {
    return PyUnicode_FromFormat("<ms_service_profiler phase span around %R>", self->cm);
}

static PyMethodDef phase_methods[] = {
    {"__enter__", (PyCFunction)phase_enter, METH_NOARGS, "start the span, enter the wrapped manager"},
    {"__exit__", (PyCFunction)(void (*)(void))phase_exit, METH_FASTCALL, "leave the wrapped manager, record the span"},
    {NULL}
};

static PyMemberDef phase_members[] = {
    {"_msp_cm", T_OBJECT, offsetof(PhaseObject, cm), READONLY, "the wrapped context manager"},
    {NULL}
};

PyTypeObject FastPhaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ms_service_profiler._fast.Phase",
    .tp_basicsize = sizeof(PhaseObject),
    .tp_dealloc = (destructor)phase_dealloc,
    .tp_repr = (reprfunc)phase_repr,
    .tp_getattro = phase_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Phase(cm, domain, name, level=20, json=None): a span around cm's with block",
    .tp_methods = phase_methods,
    .tp_members = phase_members,
    .tp_new = phase_new,
    .tp_vectorcall = phase_vectorcall,
};

int fast_phase_init(void) {
    if (!(s_enter = PyUnicode_InternFromString("__enter__"))) return -1;
    if (!(s_exit = PyUnicode_InternFromString("__exit__"))) return -1;
    return PyType_Ready(&FastPhaseType);
}
