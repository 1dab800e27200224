/*
 * Timer: a callable, descriptor-aware wrapper (vectorcall) around a synchronous function.
 * It reads the native state word first; when capture is off it forwards the call with no
 * other work.  When on, it takes CLOCK_MONOTONIC before and after the call and records one
 * span through msp_span_json (an `{"error": "<ExcType>"}` attribute when the call raised).
 * With `slow`, the Timer is a gate instead: capture off -> func(*args), capture on ->
 * slow(*args) (a Python wrapper doing the full work: attributes, handlers, filters).  With
 * `handler`, the enabled path is the custom-handler layer of _fast_handler.c.
 */
#include "_fast.h"
#include <structmember.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
    PyObject *slow;   /* when set: the enabled path calls slow(*args) instead of timing */
    PyObject *handler;   /* when set: the enabled path runs the custom-handler layer */
    PyObject *on_error;  /* the handler layer's error callback (or NULL) */
    PyObject *dict;
    PyObject *weakreflist;
    uint32_t domain;
    uint32_t name;
    uint32_t level;
    uint32_t dom_ok;
    uint64_t dom_gen;
} TimerObject;

static void record_error_span(TimerObject *self, uint64_t t0, uint64_t t1) {
    /* an exception is set; keep it, record {"error": "<type name>"} */
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    char buf[256];
    const char *tn = (et && PyType_Check(et)) ? ((PyTypeObject *)et)->tp_name : "Exception";
    const char *dot = strrchr(tn, '.');
    if (dot) tn = dot + 1;
    size_t n = 0;
    memcpy(buf, "{\"error\":\"", 10);
    n = 10;
    for (const char *p = tn; *p && n < sizeof(buf) - 4; p++) {
        char c = *p;
        if (c == '"' || c == '\\' || (unsigned char)c < 0x20) continue;
        buf[n++] = c;
    }
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = 0;
    if (fast_span) fast_span(self->domain, self->name, t0, t1, buf, n);
    PyErr_Restore(et, ev, tb);
}

static PyObject *timer_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    TimerObject *self = (TimerObject *)op;
    uint64_t w = *fast_word;
    if (!(w & 1u) || ((w >> 8) & 0xffu) < self->level)
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    fast_check_generation(w);
    if (self->slow != NULL)
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    if (self->handler != NULL)
        return fast_handler_call(self->func, self->handler, self->on_error, args, nargsf, kwnames);
    if (!fast_domain_ok(w, self->level, self->domain, &self->dom_ok, &self->dom_gen))
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    uint64_t t0 = fast_now_ns();
    PyObject *res = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    uint64_t t1 = fast_now_ns();
    if (res != NULL) {
        if (fast_span) fast_span(self->domain, self->name, t0, t1, NULL, 0);
    } else {
        record_error_span(self, t0, t1);
    }
    return res;
}

static PyObject *timer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"func", "domain", "name", "level", "slow", "handler", "on_error", NULL};
    PyObject *func, *slow = NULL, *handler = NULL, *on_error = NULL;
    unsigned int domain = 0, name = 0, level = 20;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OII|IOOO", kwlist, &func, &domain, &name, &level, &slow,
                                     &handler, &on_error))
        return NULL;
    if (slow == Py_None) slow = NULL;
    if (handler == Py_None) handler = NULL;
    if (on_error == Py_None) on_error = NULL;
    if (!PyCallable_Check(func) || (slow != NULL && !PyCallable_Check(slow)) ||
        (handler != NULL && !PyCallable_Check(handler)) || (on_error != NULL && !PyCallable_Check(on_error))) {
        PyErr_SetString(PyExc_TypeError, "func, slow, handler and on_error must be callable");
        return NULL;
    }
    TimerObject *self = (TimerObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    Py_INCREF(func);
    self->func = func;
    Py_XINCREF(slow);
    self->slow = slow;
    Py_XINCREF(handler);
    self->handler = handler;
    Py_XINCREF(on_error);
    self->on_error = on_error;
    self->dict = NULL;
    self->weakreflist = NULL;
    self->domain = domain;
    self->name = name;
    self->level = level;
    self->dom_ok = 2; /* unknown */
    self->dom_gen = 0;
    self->vectorcall = timer_vectorcall;
    return (PyObject *)self;
}

static int timer_traverse(TimerObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->func);
    Py_VISIT(self->slow);
    Py_VISIT(self->handler);
    Py_VISIT(self->on_error);
    Py_VISIT(self->dict);
    return 0;
}

static int timer_clear(TimerObject *self) {
    Py_CLEAR(self->func);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->handler);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->dict);
    return 0;
}

static void timer_dealloc(TimerObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    timer_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *timer_descr_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *timer_repr(TimerObject *self) {
    return PyUnicode_FromFormat("<ms_service_profiler timer of %R>", self->func);
}

static PyObject *timer_get_func(TimerObject *self, void *closure) {
    Py_INCREF(self->func);
    return self->func;
}

static PyObject *timer_get_ids(TimerObject *self, void *closure) {
    return Py_BuildValue("(III)", self->domain, self->name, self->level);
}

static PyGetSetDef timer_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"_msp_func", (getter)timer_get_func, NULL, "the called function", NULL},
    {"_msp_ids", (getter)timer_get_ids, NULL, "(domain id, name id, level)", NULL},
    {NULL}
};

static PyMemberDef timer_members[] = {
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(TimerObject, vectorcall), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TimerObject, weakreflist), READONLY, NULL},
    {"__dictoffset__", T_PYSSIZET, offsetof(TimerObject, dict), READONLY, NULL},
    {NULL}
};

PyTypeObject FastTimerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ms_service_profiler._fast.Timer",
    .tp_basicsize = sizeof(TimerObject),
    .tp_dealloc = (destructor)timer_dealloc,
    .tp_vectorcall_offset = offsetof(TimerObject, vectorcall),
    .tp_repr = (reprfunc)timer_repr,
    .tp_call = PyVectorcall_Call,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "Timer(func, domain, name, level=20, slow=None, handler=None, on_error=None): "
              "span-recording wrapper of a sync callable; with slow, a gate that calls func when "
              "capture is off and slow when on; with handler, the custom-handler layer when on",
    .tp_traverse = (traverseproc)timer_traverse,
    .tp_clear = (inquiry)timer_clear,
    .tp_weaklistoffset = offsetof(TimerObject, weakreflist),
    .tp_getset = timer_getset,
    .tp_members = timer_members,
    .tp_descr_get = timer_descr_get,
    .tp_dictoffset = offsetof(TimerObject, dict),
    .tp_new = timer_new,
};
