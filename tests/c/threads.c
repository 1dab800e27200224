/* Records spans, events, metrics and links from several threads through the generated header. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ms_service_profiler.h"

#define THREADS 4
static int per_thread = 10000;
static uint32_t dom, name, k_batch, k_queue;

static void *worker(void *arg) {
    long t = (long)arg;
    char rid[32];
    snprintf(rid, sizeof rid, "req-%ld", t);
    MspStr rids[1] = {{rid, strlen(rid)}};
    for (int i = 0; i < per_thread; i++) {
        uint64_t s = msp_now();
        MspAttr attrs[2] = {
            {.key = k_batch, .kind = MSP_ATTR_INT, .i = i},
            {.key = k_queue, .kind = MSP_ATTR_STR, .s = "WAITING", .len = 7},
        };
        MspPayload p = {.attrs = attrs, .n_attrs = 2, .rids = rids, .n_rids = 1,
                        .json = "{\"thread\":1}", .json_len = 12};
        if (!msp_span(dom, name, s, msp_now(), &p)) return (void *)1;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1) per_thread = atoi(argv[1]);
    if (msp_init() != 1) { fprintf(stderr, "not controlled\n"); return 2; }
    dom = msp_intern("Execute", 7);
    name = msp_intern("forward", 7);
    k_batch = msp_intern("batch_size", 10);
    k_queue = msp_intern("scope#QueueName", 15);
    msp_meta("processRole", 11, "c-test", 6);
    /* NULLs are accepted everywhere. */
    msp_span(dom, name, 1, 2, NULL);
    msp_meta(NULL, 3, NULL, 0);
    msp_counters(NULL);
    if (msp_intern(NULL, 5) != 0) return 3;
    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, worker, (void *)t);
    int bad = 0;
    for (int t = 0; t < THREADS; t++) { void *r; pthread_join(th[t], &r); bad |= r != NULL; }
    msp_metric(dom, msp_intern("KVCacheStatus", 13), 0, 0.5, MSP_METRIC_GAUGE, NULL);
    msp_link(0, "api-1", 5, "engine-1", 8);
    MspCounters c;
    msp_counters(&c);
    printf("written=%llu dropped=%llu\n", (unsigned long long)c.records_written, (unsigned long long)c.records_dropped);
    msp_shutdown();
    return bad;
}
