/* A stand-in "service" for the native demo: 3 worker threads handle fake requests for a few
 * seconds, recording spans and queue metrics through the C ABI whenever capture is on. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ms_service_profiler.h"

static double seconds = 3.0;
static uint32_t d_engine, d_exec, n_req, n_fwd, n_queue, k_size;

static void *worker(void *arg) {
    long t = (long)arg;
    struct timespec start, now, nap = {0, 2000000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long i = 0;; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > seconds) break;
        char rid[32];
        int n = snprintf(rid, sizeof rid, "req-%ld-%ld", t, i);
        MspStr r = {rid, (size_t)n};
        MspPayload p = {.rids = &r, .n_rids = 1};
        uint64_t s = msp_now();
        nanosleep(&nap, NULL); /* the "work" */
        uint64_t f = msp_now();
        msp_span(d_exec, n_fwd, s + (f - s) / 4, f, NULL);
        msp_span(d_engine, n_req, s, msp_now(), &p);
        MspAttr a = {.key = k_size, .kind = MSP_ATTR_INT, .i = i % 8};
        MspPayload q = {.attrs = &a, .n_attrs = 1};
        msp_metric(d_engine, n_queue, 0, (double)(i % 8), MSP_METRIC_GAUGE, &q);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) seconds = atof(argv[1]);
    printf("demo service: config-driven capture: %s\n", msp_init() == 1 ? "yes" : "no (set SERVICE_PROF_CONFIG_PATH)");
    d_engine = msp_intern("Engine", 6);
    d_exec = msp_intern("Execute", 7);
    n_req = msp_intern("httpReq", 7);
    n_fwd = msp_intern("forward", 7);
    n_queue = msp_intern("QueueSize", 9);
    k_size = msp_intern("QueueSize=", 10);
    msp_meta("processRole", 11, "demo", 4);
    pthread_t th[3];
    for (long t = 0; t < 3; t++) pthread_create(&th[t], NULL, worker, (void *)t);
    for (int t = 0; t < 3; t++) pthread_join(th[t], NULL);
    MspCounters c;
    msp_counters(&c);
    printf("demo service: %llu records written, %llu dropped\n", (unsigned long long)c.records_written, (unsigned long long)c.records_dropped);
    return 0;
}
