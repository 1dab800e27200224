/*
 * ms_service_profiler._fast: the module (see _fast.h for what each file holds).
 *
 * - bind(): the native library's state word and entry points;
 * - span_json / event_json: METH_FASTCALL entry points used by the Python-level wrappers and
 *   the Profiler API;
 * - the config-generation callback: Python is told (once) when the config changed while
 *   capture is on, whichever wrapper noticed it.
 */
#include "_fast.h"

static uint64_t zero_word = 0;
const volatile uint64_t *fast_word = &zero_word;
span_json_fn fast_span = NULL;
event_json_fn fast_event = NULL;
is_enabled_fn fast_is_enabled = NULL;
count_error_fn fast_count_error = NULL;
static PyObject *g_gen_cb = NULL;     /* called when the generation changes while enabled */
static uint64_t g_last_gen = 0;
typedef void (*set_step_fn)(int64_t);
static set_step_fn g_set_step = NULL;

void fast_check_generation(uint64_t w) {
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

bool fast_domain_ok(uint64_t w, uint32_t level, uint32_t domain, uint32_t *ok, uint64_t *gen) {
    if (!(w & 2u))
        return true;
    uint64_t g = w >> 32;
    if (*gen != g || *ok > 1) {
        *ok = fast_is_enabled ? (uint32_t)fast_is_enabled(level, domain) : 0u;
        *gen = g;
    }
    return *ok != 0;
}

bool fast_capturing(uint64_t w, uint32_t level, uint32_t domain, uint32_t *ok, uint64_t *gen) {
    if (!(w & 1u) || ((w >> 8) & 0xffu) < level)
        return false;
    fast_check_generation(w);
    return fast_domain_ok(w, level, domain, ok, gen);
}

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
    if (!fast_span) Py_RETURN_FALSE;
    bool ok = fast_span((uint32_t)d, (uint32_t)nm, s, e, js, (size_t)jl);
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
    if (!fast_event) Py_RETURN_FALSE;
    bool ok = fast_event((uint32_t)d, (uint32_t)nm, ts, js, (size_t)jl);
    return PyBool_FromLong(ok);
}

static PyObject *m_state(PyObject *m, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(*fast_word);
}

static PyObject *m_now(PyObject *m, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(fast_now_ns());
}

/* bind(word_addr, span_json_addr, event_json_addr, is_enabled_addr, count_error_addr[, set_step_addr]) */
static PyObject *m_bind(PyObject *m, PyObject *args) {
    unsigned long long w, s, e, ie, ce, ss = 0;
    if (!PyArg_ParseTuple(args, "KKKKK|K", &w, &s, &e, &ie, &ce, &ss)) return NULL;
    fast_word = w ? (const volatile uint64_t *)(uintptr_t)w : &zero_word;
    fast_span = (span_json_fn)(uintptr_t)s;
    fast_event = (event_json_fn)(uintptr_t)e;
    fast_is_enabled = (is_enabled_fn)(uintptr_t)ie;
    fast_count_error = (count_error_fn)(uintptr_t)ce;
    g_set_step = (set_step_fn)(uintptr_t)ss;
    g_last_gen = (*fast_word) >> 32;
    Py_RETURN_NONE;
}

/* set_step(n): the framework step counter; never raises (a value that is not an integer is ignored) */
static PyObject *m_set_step(PyObject *m, PyObject *o) {
    PyObject *i = PyNumber_Long(o);
    if (i != NULL) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(i, &overflow);
        Py_DECREF(i);
        if (!overflow && !(v == -1 && PyErr_Occurred()) && g_set_step != NULL) g_set_step((int64_t)v);
    }
    PyErr_Clear();
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

static PyMethodDef methods[] = {
    {"encode", fast_encode, METH_O, "compact JSON bytes of simple values, or None"},
    {"classify", (PyCFunction)(void (*)(void))fast_classify, METH_FASTCALL,
     "classify(scheduler_output, counts, prompt_len_of) -> (dicts_json, batch_type, ids_json, n) | None"},
    {"span_json", (PyCFunction)(void (*)(void))m_span_json, METH_FASTCALL, "record a span"},
    {"event_json", (PyCFunction)(void (*)(void))m_event_json, METH_FASTCALL, "record an event"},
    {"state", m_state, METH_NOARGS, "the state word"},
    {"now", m_now, METH_NOARGS, "CLOCK_MONOTONIC in ns"},
    {"bind", m_bind, METH_VARARGS, "bind native function addresses"},
    {"set_step", m_set_step, METH_O, "set the framework step counter"},
    {"set_generation_callback", m_set_generation_callback, METH_O, "callback on generation change"},
    {"set_last_generation", m_set_last_generation, METH_O, "set the last observed generation"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_fast", "hot path of ms_service_profiler", -1, methods,
};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&FastTimerType) < 0 || fast_phase_init() < 0 || fast_batch_init() < 0 ||
        fast_handler_init() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    Py_INCREF(&FastTimerType);   /* PyModule_AddObject steals on success; 3.9 has no AddObjectRef */
    if (PyModule_AddObject(m, "Timer", (PyObject *)&FastTimerType) < 0) {
        Py_DECREF(&FastTimerType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&FastPhaseType);
    if (PyModule_AddObject(m, "Phase", (PyObject *)&FastPhaseType) < 0) {
        Py_DECREF(&FastPhaseType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
