/*
 * ms_service_profiler._fast — the hot path of the Python shim.
 *
 * - Timer: a callable, descriptor-aware wrapper (vectorcall) around a synchronous function.
 *   It reads the native state word first; when capture is off it forwards the call with no
 *   other work.  When on, it takes CLOCK_MONOTONIC before and after the call and records one
 *   span through msp_span_json (an `{"error": "<ExcType>"}` attribute when the call raised).
 *   With `slow`, the Timer is a gate instead: capture off -> func(*args), capture on ->
 *   slow(*args) (a Python wrapper doing the full work: attributes, handlers, filters).
 * - span_json / event_json: METH_FASTCALL entry points used by the Python-level wrappers and
 *   the Profiler API.
 *
 * The native functions are not linked: Python passes their addresses (obtained with ctypes
 * from whichever library instance it loaded) to bind().  Before bind(), or with null
 * addresses, everything is a no-op and the state word reads 0.
 *
 * Nothing here raises into the host program except argument errors of the explicit API.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <math.h>

typedef bool (*span_json_fn)(uint32_t, uint32_t, uint64_t, uint64_t, const char *, size_t);
typedef bool (*event_json_fn)(uint32_t, uint32_t, uint64_t, const char *, size_t);
typedef bool (*is_enabled_fn)(uint32_t, uint32_t);
typedef void (*count_error_fn)(uint32_t, uint64_t);

static uint64_t g_zero_word = 0;
static const volatile uint64_t *g_word = &g_zero_word;
static span_json_fn g_span = NULL;
static event_json_fn g_event = NULL;
static is_enabled_fn g_is_enabled = NULL;
static count_error_fn g_count_error = NULL;
static PyObject *g_gen_cb = NULL;     /* called when the generation changes while enabled */
static uint64_t g_last_gen = 0;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Called with the GIL, on the enabled path only. */
static inline void check_generation(uint64_t w) {
    uint64_t gen = w >> 32;
    if (gen != g_last_gen) {
        g_last_gen = gen;
        if (g_gen_cb != NULL) {
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            PyObject *r = PyObject_CallNoArgs(g_gen_cb);
            if (r == NULL)
                PyErr_Clear();
            Py_XDECREF(r);
            PyErr_Restore(et, ev, tb);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Timer                                                                                      */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
    PyObject *slow;   /* when set: the enabled path calls slow(*args) instead of timing */
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
    if (g_span) g_span(self->domain, self->name, t0, t1, buf, n);
    PyErr_Restore(et, ev, tb);
}

static PyObject *timer_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    TimerObject *self = (TimerObject *)op;
    uint64_t w = *g_word;
    if (!(w & 1u) || ((w >> 8) & 0xffu) < self->level)
        return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    check_generation(w);
    if (self->slow != NULL)
        return PyObject_Vectorcall(self->slow, args, nargsf, kwnames);
    if (w & 2u) {
        uint64_t gen = w >> 32;
        if (self->dom_gen != gen || self->dom_ok > 1) {
            self->dom_ok = g_is_enabled ? (uint32_t)g_is_enabled(self->level, self->domain) : 0u;
            self->dom_gen = gen;
        }
        if (!self->dom_ok)
            return PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    }
    uint64_t t0 = now_ns();
    PyObject *res = PyObject_Vectorcall(self->func, args, nargsf, kwnames);
    uint64_t t1 = now_ns();
    if (res != NULL) {
        if (g_span) g_span(self->domain, self->name, t0, t1, NULL, 0);
    } else {
        record_error_span(self, t0, t1);
    }
    return res;
}

static PyObject *timer_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"func", "domain", "name", "level", "slow", NULL};
    PyObject *func, *slow = NULL;
    unsigned int domain = 0, name = 0, level = 20;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OII|IO", kwlist, &func, &domain, &name, &level, &slow))
        return NULL;
    if (slow == Py_None) slow = NULL;
    if (!PyCallable_Check(func) || (slow != NULL && !PyCallable_Check(slow))) {
        PyErr_SetString(PyExc_TypeError, "func and slow must be callable");
        return NULL;
    }
    TimerObject *self = (TimerObject *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    Py_INCREF(func);
    self->func = func;
    Py_XINCREF(slow);
    self->slow = slow;
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
    Py_VISIT(self->dict);
    return 0;
}

static int timer_clear(TimerObject *self) {
    Py_CLEAR(self->func);
    Py_CLEAR(self->slow);
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

static PyTypeObject TimerType = {
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
    .tp_doc = "Timer(func, domain, name, level=20, slow=None): span-recording wrapper of a sync "
              "callable; with slow, a gate that calls func when capture is off and slow when on",
    .tp_traverse = (traverseproc)timer_traverse,
    .tp_clear = (inquiry)timer_clear,
    .tp_weaklistoffset = offsetof(TimerObject, weakreflist),
    .tp_getset = timer_getset,
    .tp_members = timer_members,
    .tp_descr_get = timer_descr_get,
    .tp_dictoffset = offsetof(TimerObject, dict),
    .tp_new = timer_new,
};

/* ------------------------------------------------------------------------------------------ */
/* module functions                                                                           */

static int get_u64(PyObject *o, uint64_t *out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *out = (uint64_t)v;
    return 0;
}

static int get_json(PyObject *o, const char **p, Py_ssize_t *n) {
    if (o == Py_None) { *p = NULL; *n = 0; return 0; }
    if (PyBytes_Check(o)) { *p = PyBytes_AS_STRING(o); *n = PyBytes_GET_SIZE(o); return 0; }
    if (PyUnicode_Check(o)) { *p = PyUnicode_AsUTF8AndSize(o, n); return *p ? 0 : -1; }
    PyErr_SetString(PyExc_TypeError, "json must be bytes, str or None");
    return -1;
}

/* span_json(domain, name, start_ns, end_ns, json=None) -> bool */
static PyObject *m_span_json(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 4 || nargs > 5) {
        PyErr_SetString(PyExc_TypeError, "span_json(domain, name, start, end, json=None)");
        return NULL;
    }
    uint64_t d, nm, s, e;
    const char *js = NULL; Py_ssize_t jl = 0;
    if (get_u64(args[0], &d) || get_u64(args[1], &nm) || get_u64(args[2], &s) || get_u64(args[3], &e))
        return NULL;
    if (nargs == 5 && get_json(args[4], &js, &jl)) return NULL;
    if (!g_span) Py_RETURN_FALSE;
    bool ok = g_span((uint32_t)d, (uint32_t)nm, s, e, js, (size_t)jl);
    return PyBool_FromLong(ok);
}

/* event_json(domain, name, ts_ns, json=None) -> bool */
static PyObject *m_event_json(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 4) {
        PyErr_SetString(PyExc_TypeError, "event_json(domain, name, ts, json=None)");
        return NULL;
    }
    uint64_t d, nm, ts;
    const char *js = NULL; Py_ssize_t jl = 0;
    if (get_u64(args[0], &d) || get_u64(args[1], &nm) || get_u64(args[2], &ts)) return NULL;
    if (nargs == 4 && get_json(args[3], &js, &jl)) return NULL;
    if (!g_event) Py_RETURN_FALSE;
    bool ok = g_event((uint32_t)d, (uint32_t)nm, ts, js, (size_t)jl);
    return PyBool_FromLong(ok);
}

static PyObject *m_state(PyObject *m, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(*g_word);
}

static PyObject *m_now(PyObject *m, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(now_ns());
}

/* bind(word_addr, span_json_addr, event_json_addr, is_enabled_addr, count_error_addr) */
static PyObject *m_bind(PyObject *m, PyObject *args) {
    unsigned long long w, s, e, ie, ce;
    if (!PyArg_ParseTuple(args, "KKKKK", &w, &s, &e, &ie, &ce)) return NULL;
    g_word = w ? (const volatile uint64_t *)(uintptr_t)w : &g_zero_word;
    g_span = (span_json_fn)(uintptr_t)s;
    g_event = (event_json_fn)(uintptr_t)e;
    g_is_enabled = (is_enabled_fn)(uintptr_t)ie;
    g_count_error = (count_error_fn)(uintptr_t)ce;
    g_last_gen = (*g_word) >> 32;
    Py_RETURN_NONE;
}

static PyObject *m_set_generation_callback(PyObject *m, PyObject *cb) {
    if (cb != Py_None && !PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable or None");
        return NULL;
    }
    Py_XDECREF(g_gen_cb);
    if (cb == Py_None) {
        g_gen_cb = NULL;
    } else {
        Py_INCREF(cb);
        g_gen_cb = cb;
    }
    Py_RETURN_NONE;
}

/* set_last_generation(gen): the Python side observed this generation itself */
static PyObject *m_set_last_generation(PyObject *m, PyObject *o) {
    uint64_t g;
    if (get_u64(o, &g)) return NULL;
    g_last_gen = g;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------------------ */
/* encode(obj) -> bytes | None: compact JSON for dict/list/tuple/str/int/float/bool/None.
 * None is returned for anything else (non-str keys, other types, NaN/Inf, lone surrogates,
 * nesting deeper than 32): the caller then falls back to the json module. Output matches
 * json.dumps(obj, separators=(",", ":"), ensure_ascii=False). */

typedef struct { char *p; size_t n, cap; } Buf;

static int buf_grow(Buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    char *np = PyMem_Realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, size_t n) {
    if (buf_grow(b, n)) return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static int enc_str(Buf *b, PyObject *o) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) { PyErr_Clear(); return 1; }
    if (buf_grow(b, (size_t)n * 6 + 2)) return -1;
    char *d = b->p + b->n;
    *d++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') { *d++ = '\\'; *d++ = (char)c; }
        else if (c >= 0x20) { *d++ = (char)c; }
        else {
            switch (c) {
            case '\n': *d++ = '\\'; *d++ = 'n'; break;
            case '\r': *d++ = '\\'; *d++ = 'r'; break;
            case '\t': *d++ = '\\'; *d++ = 't'; break;
            case '\b': *d++ = '\\'; *d++ = 'b'; break;
            case '\f': *d++ = '\\'; *d++ = 'f'; break;
            default: {
                static const char hex[] = "0123456789abcdef";
                *d++ = '\\'; *d++ = 'u'; *d++ = '0'; *d++ = '0';
                *d++ = hex[c >> 4]; *d++ = hex[c & 15];
            }
            }
        }
    }
    *d++ = '"';
    b->n = (size_t)(d - b->p);
    return 0;
}

/* 0 ok, 1 unsupported (fall back), -1 error */
static int enc_obj(Buf *b, PyObject *o, int depth) {
    if (depth > 32) return 1;
    if (o == Py_None) return buf_put(b, "null", 4);
    if (o == Py_True) return buf_put(b, "true", 4);
    if (o == Py_False) return buf_put(b, "false", 5);
    if (PyUnicode_Check(o)) return enc_str(b, o);
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
        if (overflow) {
            PyObject *t = PyLong_Type.tp_repr(o);
            if (!t) { PyErr_Clear(); return 1; }
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(t, &n);
            int r = s ? buf_put(b, s, (size_t)n) : 1;
            Py_DECREF(t);
            return r;
        }
        char tmp[32];
        int k = snprintf(tmp, sizeof tmp, "%lld", v);
        return buf_put(b, tmp, (size_t)k);
    }
    if (PyFloat_Check(o)) {
        double v = PyFloat_AS_DOUBLE(o);
        if (!isfinite(v)) return 1;
        char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!r) { PyErr_Clear(); return 1; }
        int rc = buf_put(b, r, strlen(r));
        PyMem_Free(r);
        return rc;
    }
    if (PyDict_Check(o)) {
        if (buf_put(b, "{", 1)) return -1;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        int first = 1;
        while (PyDict_Next(o, &pos, &k, &v)) {
            if (!PyUnicode_Check(k)) return 1;
            if (!first && buf_put(b, ",", 1)) return -1;
            first = 0;
            int r = enc_str(b, k);
            if (r) return r;
            if (buf_put(b, ":", 1)) return -1;
            r = enc_obj(b, v, depth + 1);
            if (r) return r;
        }
        return buf_put(b, "}", 1);
    }
    if (PyList_Check(o) || PyTuple_Check(o)) {
        if (buf_put(b, "[", 1)) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i && buf_put(b, ",", 1)) return -1;
            int r = enc_obj(b, PySequence_Fast_GET_ITEM(o, i), depth + 1);
            if (r) return r;
            n = PySequence_Fast_GET_SIZE(o);
        }
        return buf_put(b, "]", 1);
    }
    return 1;
}

static PyObject *m_encode(PyObject *m, PyObject *o) {
    Buf b = {NULL, 0, 0};
    int r = enc_obj(&b, o, 0);
    PyObject *res;
    if (r == 0) {
        res = PyBytes_FromStringAndSize(b.p, (Py_ssize_t)b.n);
    } else if (r > 0) {
        Py_INCREF(Py_None);
        res = Py_None;
    } else {
        res = PyErr_NoMemory();
    }
    PyMem_Free(b.p);
    return res;
}

static PyMethodDef methods[] = {
    {"encode", m_encode, METH_O, "compact JSON bytes of simple values, or None"},
    {"span_json", (PyCFunction)(void (*)(void))m_span_json, METH_FASTCALL, "record a span"},
    {"event_json", (PyCFunction)(void (*)(void))m_event_json, METH_FASTCALL, "record an event"},
    {"state", m_state, METH_NOARGS, "the state word"},
    {"now", m_now, METH_NOARGS, "CLOCK_MONOTONIC in ns"},
    {"bind", m_bind, METH_VARARGS, "bind native function addresses"},
    {"set_generation_callback", m_set_generation_callback, METH_O, "callback on generation change"},
    {"set_last_generation", m_set_last_generation, METH_O, "set the last observed generation"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_fast", "hot path of ms_service_profiler", -1, methods,
};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&TimerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&TimerType);
    if (PyModule_AddObject(m, "Timer", (PyObject *)&TimerType) < 0) {
        Py_DECREF(&TimerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
