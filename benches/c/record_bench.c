/* ns per record from a C caller, through the generated header and the shared library.
 * Usage: record_bench [records_per_thread] [threads]
 * Needs SERVICE_PROF_CONFIG_PATH pointing at a config with "enable": 1 (scripts/bench.sh sets it up).
 * Reports two costs: the record call alone (caller-provided timestamps) and a span as an
 * instrumented function pays it (two msp_now() + msp_span). On a shared machine, compare the
 * batch figures: the record-only loop on one thread in 40 batches of n/40 records, minimum and
 * median ns per record (the minimum is the least disturbed by other load). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "ms_service_profiler.h"

static long n = 2000000;
static uint32_t dom, name, key;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *record_only(void *arg) {
    (void)arg;
    MspAttr a = {.key = key, .kind = MSP_ATTR_INT};
    MspPayload p = {.attrs = &a, .n_attrs = 1};
    for (long i = 0; i < n; i++) {
        a.i = i;
        msp_span(dom, name, (uint64_t)i, (uint64_t)i + 100, &p);
    }
    return NULL;
}

static void *with_clock(void *arg) {
    (void)arg;
    MspAttr a = {.key = key, .kind = MSP_ATTR_INT};
    MspPayload p = {.attrs = &a, .n_attrs = 1};
    for (long i = 0; i < n; i++) {
        a.i = i;
        uint64_t t0 = msp_now();
        msp_span(dom, name, t0, msp_now(), &p);
    }
    return NULL;
}

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The record-only loop in batches on the calling thread: min and median ns per record. */
static void batches(double *min_ns, double *median_ns) {
    enum { B = 40 };
    double t[B];
    long m = n / B > 0 ? n / B : 1;
    MspAttr a = {.key = key, .kind = MSP_ATTR_INT};
    MspPayload p = {.attrs = &a, .n_attrs = 1};
    for (int b = 0; b < B; b++) {
        double t0 = now_s();
        for (long i = 0; i < m; i++) {
            a.i = i;
            msp_span(dom, name, (uint64_t)i, (uint64_t)i + 100, &p);
        }
        t[b] = (now_s() - t0) * 1e9 / (double)m;
    }
    qsort(t, B, sizeof t[0], cmp_double);
    *min_ns = t[0];
    *median_ns = (t[B / 2 - 1] + t[B / 2]) / 2;
}

static double cpu_ns; /* CPU time per record of the last run: unaffected by time spent preempted */

static double run(void *(*fn)(void *), int threads) {
    pthread_t th[16];
    double t = now_s(), c = cpu_s();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, fn, NULL);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    cpu_ns = (cpu_s() - c) * 1e9 / ((double)n * threads);
    return (now_s() - t) * 1e9 / ((double)n * threads);
}

int main(int argc, char **argv) {
    if (argc > 1) n = atol(argv[1]);
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    if (threads < 1 || threads > 16) threads = 1;
    if (msp_init() != 1 || !(*msp_state_word() & MSP_STATE_ENABLED)) {
        fprintf(stderr, "capture is not on (SERVICE_PROF_CONFIG_PATH with \"enable\": 1 needed)\n");
        return 2;
    }
    dom = msp_intern("Execute", 7);
    name = msp_intern("forward", 7);
    key = msp_intern("batch_size", 10);
    record_only(NULL); /* warm-up: chunks claimed, pages touched */
    double a = run(record_only, threads);
    double a_cpu = cpu_ns;
    double b = run(with_clock, threads);
    double b_cpu = cpu_ns;
    double bmin, bmed;
    batches(&bmin, &bmed);
    MspCounters c;
    msp_counters(&c);
    /* ns per record = wall time / records, i.e. per-thread cost divided by the thread count */
    printf("threads=%d record_only_ns=%.1f (cpu %.1f) span_with_2_clock_reads_ns=%.1f (cpu %.1f) records_per_s=%.0f "
           "batches_1_thread_ns min=%.1f median=%.1f written=%llu dropped=%llu\n",
           threads, a, a_cpu, b, b_cpu, 1e9 / a, bmin, bmed, (unsigned long long)c.records_written, (unsigned long long)c.records_dropped);
    msp_shutdown();
    return c.records_dropped != 0;
}
