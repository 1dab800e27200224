/*
 * classify(scheduler_output, counts, prompt_len_of) -> (dicts_json, batch_type, ids_json, n) | None
 *
 * The C form of handlers/v1/common.py:classify for the common case, writing the rid dict list
 * (CONTRACT §3.5 shape 3) straight to JSON instead of building Python dicts:
 *
 *   dicts_json  b'[{"rid":..,"iter":..,"type":..,"num_scheduled_tokens":..,
 *                  "num_prompt_tokens":..,"num_computed_tokens":..},..]'
 *   batch_type  "Prefill" / "Decode" / "Prefill,Decode" / None
 *   ids_json    b'["rid",..]' in the same order
 *   n           the number of requests
 *
 * `counts` is IterCounters.counts (rid -> [next iter, prompt length]) and is updated exactly as
 * the Python classify updates it.  None is returned, with `counts` untouched, whenever the input
 * is not the common shape (draft tokens scheduled, the vLLM 0.9.x list of cached requests, a new
 * request without prompt_token_ids, a value that is not a plain int or str, ...): the caller then
 * runs the Python classify, which handles everything.  All inputs are read and checked before
 * `counts` is changed, so a fallback never counts an iteration twice.
 */
#include "_fast.h"

static PyObject *s_num_scheduled_tokens, *s_scheduled_spec_decode_tokens, *s_scheduled_new_reqs,
    *s_scheduled_cached_reqs, *s_req_id, *s_req_ids, *s_num_computed_tokens, *s_prompt_token_ids,
    *s_prefill, *s_decode, *s_both;

int fast_batch_init(void) {
#define I(v, s) if (!(v = PyUnicode_InternFromString(s))) return -1
    I(s_num_scheduled_tokens, "num_scheduled_tokens");
    I(s_scheduled_spec_decode_tokens, "scheduled_spec_decode_tokens");
    I(s_scheduled_new_reqs, "scheduled_new_reqs");
    I(s_scheduled_cached_reqs, "scheduled_cached_reqs");
    I(s_req_id, "req_id");
    I(s_req_ids, "req_ids");
    I(s_num_computed_tokens, "num_computed_tokens");
    I(s_prompt_token_ids, "prompt_token_ids");
    I(s_prefill, "Prefill");
    I(s_decode, "Decode");
    I(s_both, "Prefill,Decode");
#undef I
    return 0;
}

/* getattr(o, name, None) without the AttributeError: 1 found (*out owned), 0 absent, -1 error. */
static int get_optional(PyObject *o, PyObject *name, PyObject **out) {
    *out = PyObject_GetAttr(o, name);
    if (*out != NULL) return 1;
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) { PyErr_Clear(); return 0; }
    return -1;
}

/* One scheduled request, as read in the first pass. */
typedef struct {
    PyObject *rid;      /* owned */
    long long n;        /* num_scheduled_tokens */
    long long c;        /* num_computed_tokens */
    long long p;        /* prompt length (valid when has_p) */
    PyObject *p_obj;    /* owned int or None: the prompt length to store for a new entry */
    bool has_p;
    bool is_new;
} Item;

/* A plain int (not bool, not a subclass) that fits in a long long. */
static bool plain_int(PyObject *o, long long *out) {
    if (!PyLong_CheckExact(o)) return false;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return false; }
    *out = v;
    return true;
}

/* A counts entry we can use: [int, int | None]. */
static bool good_state(PyObject *st) {
    long long x;
    if (!PyList_CheckExact(st) || PyList_GET_SIZE(st) != 2) return false;
    if (!plain_int(PyList_GET_ITEM(st, 0), &x)) return false;
    PyObject *p = PyList_GET_ITEM(st, 1);
    return p == Py_None || plain_int(p, &x);
}

/* Set it->p_obj / p / has_p from an int-or-None object (a new reference is taken). */
static bool set_prompt(Item *it, PyObject *p) {
    if (p == Py_None) {
        it->has_p = false;
    } else if (plain_int(p, &it->p)) {
        it->has_p = true;
    } else {
        return false;
    }
    Py_INCREF(p);
    it->p_obj = p;
    return true;
}

/* prompt_len_of(rid), an int or None; anything else (or an exception) is None. */
static PyObject *call_prompt_len(PyObject *fn, PyObject *rid) {
    PyObject *r = PyObject_CallOneArg(fn, rid);
    long long x;
    if (r == NULL) {
        PyErr_Clear();
    } else if (r == Py_None || plain_int(r, &x)) {
        return r;
    } else {
        Py_DECREF(r);
    }
    Py_RETURN_NONE;
}

/* Reads one request into *it; 1 = not scheduled (skip), 0 = read, -1 = fall back. */
static int read_item(Item *it, PyObject *rid, PyObject *c_obj, PyObject *nst, PyObject *counts,
                     PyObject *prompt_obj, bool is_new, PyObject *prompt_len_of) {
    Py_ssize_t len;
    if (!PyUnicode_CheckExact(rid)) return -1;
    if (PyUnicode_AsUTF8AndSize(rid, &len) == NULL) { PyErr_Clear(); return -1; }   /* e.g. a lone surrogate */
    PyObject *n_obj = PyDict_GetItemWithError(nst, rid);
    if (n_obj == NULL) return PyErr_Occurred() ? (PyErr_Clear(), -1) : 1;
    if (n_obj == Py_None) return 1;
    if (!plain_int(n_obj, &it->n) || !plain_int(c_obj, &it->c)) return -1;
    PyObject *st = PyDict_GetItemWithError(counts, rid);
    if (st == NULL && PyErr_Occurred()) { PyErr_Clear(); return -1; }
    if (st != NULL && !good_state(st)) return -1;
    it->is_new = is_new;
    if (is_new) {
        if (!set_prompt(it, prompt_obj)) return -1;
    } else if (st != NULL) {
        if (!set_prompt(it, PyList_GET_ITEM(st, 1))) return -1;
    } else {
        PyObject *p = call_prompt_len(prompt_len_of, rid);
        bool ok = set_prompt(it, p);
        Py_DECREF(p);
        if (!ok) return -1;
    }
    Py_INCREF(rid);
    it->rid = rid;
    return 0;
}

static void free_items(Item *items, Py_ssize_t k) {
    for (Py_ssize_t i = 0; i < k; i++) {
        Py_XDECREF(items[i].rid);
        Py_XDECREF(items[i].p_obj);
    }
    PyMem_Free(items);
}

#define PUT(b, lit) fast_buf_put(b, lit, sizeof(lit) - 1)

/* Second pass for one request: advance its counter, append its dict. 0 ok, -1 error. */
static int emit_item(Item *it, PyObject *counts, Buf *dj, Buf *ij, bool *has_prefill, bool *has_decode) {
    PyObject *st = PyDict_GetItemWithError(counts, it->rid);
    if (st == NULL) {
        if (PyErr_Occurred()) return -1;
        st = PyList_New(2);
        if (st == NULL) return -1;
        PyList_SET_ITEM(st, 0, PyLong_FromLong(0));
        Py_INCREF(it->p_obj);
        PyList_SET_ITEM(st, 1, it->p_obj);
        int rc = PyList_GET_ITEM(st, 0) ? PyDict_SetItem(counts, it->rid, st) : -1;
        Py_DECREF(st);       /* the dict holds it */
        if (rc) return -1;
    } else if (it->is_new) {
        Py_INCREF(it->p_obj);
        PyList_SetItem(st, 1, it->p_obj);
    } else {                 /* a cached request's prompt length is the one its entry holds */
        PyObject *p = PyList_GET_ITEM(st, 1);
        it->has_p = p != Py_None && plain_int(p, &it->p);
    }
    long long iter;
    if (!plain_int(PyList_GET_ITEM(st, 0), &iter)) return -1;
    PyObject *next = PyLong_FromLongLong(iter + 1);
    if (next == NULL) return -1;
    PyList_SetItem(st, 0, next);
    bool prefill = it->has_p && it->c < it->p;
    if (prefill) *has_prefill = true; else *has_decode = true;
    if ((dj->n > 1 && PUT(dj, ",")) || (ij->n > 1 && PUT(ij, ","))) return -1;
    if (PUT(dj, "{\"rid\":") || fast_buf_str(dj, it->rid) || fast_buf_str(ij, it->rid) ||
        PUT(dj, ",\"iter\":") || fast_buf_int(dj, iter) ||
        (prefill ? PUT(dj, ",\"type\":0") : PUT(dj, ",\"type\":1")) ||
        PUT(dj, ",\"num_scheduled_tokens\":") || fast_buf_int(dj, it->n) ||
        PUT(dj, ",\"num_prompt_tokens\":") || (it->has_p ? fast_buf_int(dj, it->p) : PUT(dj, "null")) ||
        PUT(dj, ",\"num_computed_tokens\":") || fast_buf_int(dj, it->c) || PUT(dj, "}"))
        return -1;
    return 0;
}

/* Reads every scheduled request into items (new ones first, like the Python classify).
 * Returns the count, or -1 to fall back. */
static Py_ssize_t read_all(PyObject *so, PyObject *nst, PyObject *counts, PyObject *prompt_len_of,
                           Item **out) {
    PyObject *news = NULL, *cr = NULL, *ids = NULL, *cs = NULL;
    Item *items = NULL;
    Py_ssize_t k = 0, ret = -1, cap = 0;
    news = PyObject_GetAttr(so, s_scheduled_new_reqs);
    cr = news ? PyObject_GetAttr(so, s_scheduled_cached_reqs) : NULL;
    if (cr == NULL || !PyList_CheckExact(news) || PyList_CheckExact(cr) || PyTuple_Check(cr))
        goto done;   /* the 0.9.x list of cached requests: Python */
    if (get_optional(cr, s_req_ids, &ids) < 0) goto done;
    Py_ssize_t n_cached = 0;
    if (ids != NULL && ids != Py_None) {
        int t = PyObject_IsTrue(ids);
        if (t < 0) goto done;
        if (t) {
            cs = PyObject_GetAttr(cr, s_num_computed_tokens);
            if (cs == NULL || !PyList_CheckExact(ids) || !PyList_CheckExact(cs)) goto done;
            n_cached = PyList_GET_SIZE(ids) < PyList_GET_SIZE(cs) ? PyList_GET_SIZE(ids) : PyList_GET_SIZE(cs);
        }
    }
    cap = PyList_GET_SIZE(news) + n_cached;
    items = PyMem_Calloc(cap ? (size_t)cap : 1, sizeof(Item));
    if (items == NULL) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(news); i++) {
        PyObject *r = PyList_GET_ITEM(news, i);
        PyObject *rid = PyObject_GetAttr(r, s_req_id);
        PyObject *c = rid ? PyObject_GetAttr(r, s_num_computed_tokens) : NULL;
        PyObject *ptoks = c ? PyObject_GetAttr(r, s_prompt_token_ids) : NULL;
        int rc = -1;
        if (ptoks != NULL && ptoks != Py_None) {     /* prompt_embeds & co.: Python */
            Py_ssize_t len = PyObject_Length(ptoks);
            PyObject *p = len >= 0 ? PyLong_FromSsize_t(len) : NULL;
            if (p != NULL) rc = read_item(&items[k], rid, c, nst, counts, p, true, prompt_len_of);
            Py_XDECREF(p);
        }
        Py_XDECREF(rid);
        Py_XDECREF(c);
        Py_XDECREF(ptoks);
        if (rc < 0) goto done;
        if (rc == 0) k++;
    }
    for (Py_ssize_t i = 0; i < n_cached; i++) {
        int rc = read_item(&items[k], PyList_GET_ITEM(ids, i), PyList_GET_ITEM(cs, i), nst, counts,
                           NULL, false, prompt_len_of);
        if (rc < 0) goto done;
        if (rc == 0) k++;
    }
    ret = k;
done:
    if (PyErr_Occurred()) PyErr_Clear();
    Py_XDECREF(news);
    Py_XDECREF(cr);
    Py_XDECREF(ids);
    Py_XDECREF(cs);
    if (ret < 0 && items != NULL) { free_items(items, cap); items = NULL; }   /* zeroed past k */
    *out = items;
    return ret;
}

PyObject *fast_classify(PyObject *m, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "classify(scheduler_output, counts: dict, prompt_len_of)");
        return NULL;
    }
    PyObject *so = args[0], *counts = args[1], *prompt_len_of = args[2];
    PyObject *nst = PyObject_GetAttr(so, s_num_scheduled_tokens);
    if (nst == NULL) { PyErr_Clear(); Py_RETURN_NONE; }
    if (!PyDict_Check(nst)) { Py_DECREF(nst); Py_RETURN_NONE; }
    if (PyDict_GET_SIZE(nst) == 0) {
        Py_DECREF(nst);
        return Py_BuildValue("(y#Oy#i)", "[]", (Py_ssize_t)2, Py_None, "[]", (Py_ssize_t)2, 0);
    }
    PyObject *spec = NULL;
    if (get_optional(so, s_scheduled_spec_decode_tokens, &spec) < 0) {
        PyErr_Clear();
        Py_DECREF(nst);
        Py_RETURN_NONE;
    }
    int has_spec = spec != NULL ? PyObject_IsTrue(spec) : 0;
    Py_XDECREF(spec);
    if (has_spec) {                                  /* drafts (or an error): Python */
        PyErr_Clear();
        Py_DECREF(nst);
        Py_RETURN_NONE;
    }
    Item *items;
    Py_ssize_t k = read_all(so, nst, counts, prompt_len_of, &items);
    Py_DECREF(nst);
    if (k < 0) Py_RETURN_NONE;
    Buf dj = {NULL, 0, 0}, ij = {NULL, 0, 0};
    bool has_prefill = false, has_decode = false;
    PyObject *res = NULL;
    if (fast_buf_grow(&dj, 128 * (size_t)k + 2) || fast_buf_grow(&ij, 48 * (size_t)k + 2) ||
        PUT(&dj, "[") || PUT(&ij, "["))
        goto done;
    for (Py_ssize_t i = 0; i < k; i++)
        if (emit_item(&items[i], counts, &dj, &ij, &has_prefill, &has_decode)) goto done;
    if (PUT(&dj, "]") || PUT(&ij, "]")) goto done;
    PyObject *bt = has_prefill ? (has_decode ? s_both : s_prefill) : (has_decode ? s_decode : Py_None);
    res = Py_BuildValue("(y#Oy#n)", dj.p, (Py_ssize_t)dj.n, bt, ij.p, (Py_ssize_t)ij.n, k);
done:
    if (res == NULL && !PyErr_Occurred()) PyErr_NoMemory();
    PyMem_Free(dj.p);
    PyMem_Free(ij.p);
    free_items(items, k);
    return res;
}
