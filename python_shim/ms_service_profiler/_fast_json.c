/*
 * The compact JSON writer: a growable buffer and encode(obj).
 */
#include "_fast.h"
#include <math.h>
#include <string.h>

int fast_buf_reserve(Buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra) cap *= 2;
    char *np = PyMem_Realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

int fast_buf_int(Buf *b, long long v) {
    if (fast_buf_grow(b, 24)) return -1;
    char tmp[24];
    char *e = tmp + sizeof tmp, *d = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do { *--d = (char)('0' + u % 10u); u /= 10u; } while (u);
    if (v < 0) *--d = '-';
    memcpy(b->p + b->n, d, (size_t)(e - d));
    b->n += (size_t)(e - d);
    return 0;
}

/* Bytes that JSON strings cannot hold as they are: '"', '\\' and the control characters. */
static bool needs_escape(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
}

int fast_buf_str(Buf *b, PyObject *o) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (!s) { PyErr_Clear(); return 1; }
    if (!needs_escape(s, n)) {                  /* the usual case: one copy */
        if (fast_buf_grow(b, (size_t)n + 2)) return -1;
        char *d = b->p + b->n;
        *d = '"';
        memcpy(d + 1, s, (size_t)n);
        d[n + 1] = '"';
        b->n += (size_t)n + 2;
        return 0;
    }
    if (fast_buf_grow(b, (size_t)n * 6 + 2)) return -1;
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
int fast_buf_obj(Buf *b, PyObject *o, int depth) {
    if (depth > 32) return 1;
    if (o == Py_None) return fast_buf_put(b, "null", 4);
    if (o == Py_True) return fast_buf_put(b, "true", 4);
    if (o == Py_False) return fast_buf_put(b, "false", 5);
    if (PyUnicode_Check(o)) return fast_buf_str(b, o);
    if (PyLong_Check(o)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (v == -1 && PyErr_Occurred()) { PyErr_Clear(); return 1; }
        if (overflow) {
            PyObject *t = PyLong_Type.tp_repr(o);
            if (!t) { PyErr_Clear(); return 1; }
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(t, &n);
            int r = s ? fast_buf_put(b, s, (size_t)n) : 1;
            Py_DECREF(t);
            return r;
        }
        return fast_buf_int(b, v);
    }
    if (PyFloat_Check(o)) {
        double v = PyFloat_AS_DOUBLE(o);
        if (!isfinite(v)) return 1;
        char *r = PyOS_double_to_string(v, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (!r) { PyErr_Clear(); return 1; }
        int rc = fast_buf_put(b, r, strlen(r));
        PyMem_Free(r);
        return rc;
    }
    if (PyDict_Check(o)) {
        if (fast_buf_put(b, "{", 1)) return -1;
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        int first = 1;
        while (PyDict_Next(o, &pos, &k, &v)) {
            if (!PyUnicode_Check(k)) return 1;
            if (!first && fast_buf_put(b, ",", 1)) return -1;
            first = 0;
            int r = fast_buf_str(b, k);
            if (r) return r;
            if (fast_buf_put(b, ":", 1)) return -1;
            r = fast_buf_obj(b, v, depth + 1);
            if (r) return r;
        }
        return fast_buf_put(b, "}", 1);
    }
    if (PyList_Check(o) || PyTuple_Check(o)) {
        if (fast_buf_put(b, "[", 1)) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (i && fast_buf_put(b, ",", 1)) return -1;
            int r = fast_buf_obj(b, PySequence_Fast_GET_ITEM(o, i), depth + 1);
            if (r) return r;
            n = PySequence_Fast_GET_SIZE(o);
        }
        return fast_buf_put(b, "]", 1);
    }
    return 1;
}

/* encode(obj) -> bytes | None: compact JSON for dict/list/tuple/str/int/float/bool/None.
 * None is returned for anything else (non-str keys, other types, NaN/Inf, lone surrogates,
 * nesting deeper than 32): the caller then falls back to the json module. Output matches
 * json.dumps(obj, separators=(",", ":"), ensure_ascii=False). */
PyObject *fast_encode(PyObject *m, PyObject *o) {
    Buf b = {NULL, 0, 0};
    int r = fast_buf_obj(&b, o, 0);
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
