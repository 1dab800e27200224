/*
 * ms_service_profiler._fast — the hot path of the Python shim, in C.  What each file holds:
 *
 *   _fast.c        the module: bind() to the native library's entry points, span_json /
 *                  event_json / state / now, the config-generation callback
 *   _fast_timer.c  Timer: a descriptor-aware span-recording (or gating) wrapper of a callable
 *   _fast_handler.c  the custom-handler layer a Timer runs: handler(original, *args, **kwargs)
 *   _fast_phase.c  Phase: a context manager that wraps another one and records a span around it
 *   _fast_json.c   the compact JSON writer (Buf) and encode(obj)
 *   _fast_batch.c  classify(): a SchedulerOutput's rid dict list written straight to JSON
 *
 * The native functions are not linked: Python passes their addresses (obtained with ctypes
 * from whichever library instance it loaded) to bind().  Before bind(), or with null
 * addresses, everything is a no-op and the state word reads 0.  Nothing here raises into the
 * host program except argument errors of the explicit API.
 */
#ifndef MSP_FAST_H
#define MSP_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

typedef bool (*span_json_fn)(uint32_t, uint32_t, uint64_t, uint64_t, const char *, size_t);
typedef bool (*event_json_fn)(uint32_t, uint32_t, uint64_t, const char *, size_t);
typedef bool (*is_enabled_fn)(uint32_t, uint32_t);
typedef void (*count_error_fn)(uint32_t, uint64_t);

/* bound native entry points (_fast.c) */
extern const volatile uint64_t *fast_word;
extern span_json_fn fast_span;
extern event_json_fn fast_event;
extern is_enabled_fn fast_is_enabled;
extern count_error_fn fast_count_error;

static inline uint64_t fast_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* With the GIL, on the enabled path: tells Python when the config generation changed. */
void fast_check_generation(uint64_t w);

/* The domain filter's answer for (level, domain) under state word w: true without a filter;
 * *ok / *gen cache it per config generation (initialise *ok to 2, "unknown"). */
bool fast_domain_ok(uint64_t w, uint32_t level, uint32_t domain, uint32_t *ok, uint64_t *gen);

/* Whether a record of (level, domain) is captured under state word w (capture on, level within
 * profiler_level, domain filter); *ok / *gen cache the filter answer per config generation
 * (initialise *ok to 2, "unknown").  Observes a generation change. */
bool fast_capturing(uint64_t w, uint32_t level, uint32_t domain, uint32_t *ok, uint64_t *gen);

/* ---- JSON (_fast_json.c) ---------------------------------------------------------------- */

/* A growable byte buffer (PyMem); free b->p when done. */
typedef struct { char *p; size_t n, cap; } Buf;

int fast_buf_reserve(Buf *b, size_t extra);            /* the slow part of fast_buf_grow */

/* Room for `extra` more bytes: 0 ok, -1 no memory. */
static inline int fast_buf_grow(Buf *b, size_t extra) {
    return b->n + extra <= b->cap ? 0 : fast_buf_reserve(b, extra);
}

/* Append n bytes: 0 ok, -1 no memory (inline, so constant sizes become plain stores). */
static inline int fast_buf_put(Buf *b, const char *s, size_t n) {
    if (fast_buf_grow(b, n)) return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

int fast_buf_int(Buf *b, long long v);                  /* decimal; 0 ok, -1 no memory */
int fast_buf_str(Buf *b, PyObject *str);                /* JSON string; 0, 1 unsupported, -1 */
int fast_buf_obj(Buf *b, PyObject *o, int depth);       /* JSON value; 0, 1 unsupported, -1 */
PyObject *fast_encode(PyObject *m, PyObject *o);        /* encode(obj) -> bytes | None */

/* ---- types and functions of the other files --------------------------------------------- */

extern PyTypeObject FastTimerType;
extern PyTypeObject FastPhaseType;
PyObject *fast_classify(PyObject *m, PyObject *const *args, Py_ssize_t nargs);
int fast_batch_init(void);
int fast_phase_init(void);
int fast_handler_init(void);
PyObject *fast_handler_call(PyObject *inner, PyObject *handler, PyObject *on_error,
                            PyObject *const *args, size_t nargsf, PyObject *kwnames);

#endif
