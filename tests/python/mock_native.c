/* A stand-in for libms_service_profiler.so used by the shim's unit tests: the same C ABI,
 * recording into memory.  Test-only helpers: mock_set_word, mock_count, mock_record, mock_reset. */
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct MspStr { const char *ptr; size_t len; } MspStr;
typedef struct MspCounters { uint64_t records_written, bytes_written, records_dropped, records_overwritten,
    records_oversize, segments, strings, hook_errors, expr_errors; } MspCounters;

static uint64_t word = 0;
static char *strings[4096];
static uint32_t nstrings = 0;
typedef struct { int kind; uint32_t d, n; uint64_t a, b; char *json; } Rec;
static Rec recs[200000];
static size_t nrecs = 0;
static uint64_t hook_errors = 0, expr_errors = 0, step = 0;
static char meta_buf[65536]; static size_t meta_len = 0;

int32_t msp_init(void) { return 1; }
void msp_shutdown(void) {}
void msp_after_fork_child(void) {}
const uint64_t *msp_state_word(void) { return &word; }
void mock_set_word(uint64_t w) { word = w; }
bool msp_is_enabled(uint32_t level, uint32_t domain) {
    if (!(word & 1) || level > ((word >> 8) & 0xff)) return false;
    if (!(word & 2)) return true;
    /* domain filter: only domains whose name starts with "Allowed" */
    return domain > 0 && domain <= nstrings && strncmp(strings[domain - 1], "Allowed", 7) == 0;
}
uint32_t msp_intern(const char *s, size_t len) {
    for (uint32_t i = 0; i < nstrings; i++)
        if (strlen(strings[i]) == len && memcmp(strings[i], s, len) == 0) return i + 1;
    if (nstrings >= 4096) return 0;
    strings[nstrings] = strndup(s ? s : "", len);
    return ++nstrings;
}
uint64_t msp_now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec * 1000000000ull + ts.tv_nsec; }
static bool add(int kind, uint32_t d, uint32_t n, uint64_t a, uint64_t b, const char *js, size_t jl) {
    if (!(word & 1) || nrecs >= 200000) return false;
    Rec *r = &recs[nrecs++];
    r->kind = kind; r->d = d; r->n = n; r->a = a; r->b = b;
    r->json = js ? strndup(js, jl) : NULL;
    return true;
}
bool msp_span_json(uint32_t d, uint32_t n, uint64_t s, uint64_t e, const char *js, size_t jl) { return add(2, d, n, s, e, js, jl); }
bool msp_event_json(uint32_t d, uint32_t n, uint64_t ts, const char *js, size_t jl) { return add(0, d, n, ts ? ts : msp_now(), 0, js, jl); }
bool msp_span(uint32_t d, uint32_t n, uint64_t s, uint64_t e, const void *p) { return add(2, d, n, s, e, NULL, 0); }
bool msp_event(uint32_t d, uint32_t n, uint64_t ts, const void *p) { return add(0, d, n, ts, 0, NULL, 0); }
bool msp_metric(uint32_t d, uint32_t n, uint64_t ts, double v, uint32_t k, const void *p) { return add(1, d, n, ts, 0, NULL, 0); }
bool msp_link(uint64_t ts, const char *f, size_t fl, const char *t, size_t tl) {
    char buf[1024]; int k = snprintf(buf, sizeof buf, "{\"from\":\"%.*s\",\"to\":\"%.*s\"}", (int)fl, f, (int)tl, t);
    return add(3, 0, 0, ts, 0, buf, (size_t)k);
}
void msp_meta(const char *k, size_t kl, const char *v, size_t vl) {
    if (meta_len + kl + vl + 2 < sizeof meta_buf) {
        memcpy(meta_buf + meta_len, k, kl); meta_len += kl; meta_buf[meta_len++] = '=';
        memcpy(meta_buf + meta_len, v, vl); meta_len += vl; meta_buf[meta_len++] = '\n';
        meta_buf[meta_len] = 0;
    }
}
const char *mock_meta(void) { return meta_buf; }
void msp_set_step(int64_t s) { step = (uint64_t)s; }
int64_t msp_get_step(void) { return (int64_t)step; }
void msp_start(void) { word |= 1; word += (1ull << 32); }
void msp_stop(void) { word &= ~1ull; word += (1ull << 32); }
bool msp_counters(MspCounters *o) {
    if (!o) return false;
    memset(o, 0, sizeof *o);
    o->records_written = nrecs; o->strings = nstrings; o->hook_errors = hook_errors; o->expr_errors = expr_errors;
    return true;
}
void msp_count_error(uint32_t kind, uint64_t n) { if (kind == 1) hook_errors += n; else if (kind == 2) expr_errors += n; }
static size_t put(char *buf, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (buf && cap > n) memcpy(buf, s, n + 1);
    return n;
}
size_t msp_config_json(char *buf, size_t cap) {
    return put(buf, cap, "{\"enable\":1,\"prof_dir\":\"/tmp/x/\",\"profiler_level\":20,\"acl_task_time\":0,"
                         "\"acl_level\":\"L1\",\"aicore_metrics\":255,\"torch_prof_step_num\":3,\"domains\":[]}");
}
size_t msp_run_dir(char *buf, size_t cap) { return put(buf, cap, "/tmp/x/0101-0000/"); }

/* test helpers */
void mock_reset(void) { for (size_t i = 0; i < nrecs; i++) free(recs[i].json); nrecs = 0; hook_errors = expr_errors = 0; meta_len = 0; meta_buf[0] = 0; }
size_t mock_count(void) { return nrecs; }
/* record i as text: kind\tdomain\tname\ta\tb\tjson */
size_t mock_record(size_t i, char *buf, size_t cap) {
    if (i >= nrecs) return 0;
    Rec *r = &recs[i];
    const char *d = (r->d && r->d <= nstrings) ? strings[r->d - 1] : "";
    const char *n = (r->n && r->n <= nstrings) ? strings[r->n - 1] : "";
    return (size_t)snprintf(buf, cap, "%d\t%s\t%s\t%llu\t%llu\t%s", r->kind, d, n,
                            (unsigned long long)r->a, (unsigned long long)r->b, r->json ? r->json : "");
}
