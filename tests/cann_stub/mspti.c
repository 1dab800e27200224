/*
 * Stand-in for libmspti.so (tests only): the documented MSPTI entry points and buffer protocol
 * (CANN_ABI §3), producing a deterministic set of records. Records are written at the documented
 * byte offsets of the packed layouts, independently of the project's own header.
 * Build with -DSTUB_OMIT_FLUSH to leave out msptiActivityFlushAll (a library missing a symbol), or
 * -DSTUB_OLD_CANN to leave out the optional clock functions (records then use CLOCK_REALTIME).
 * At run time, $CANN_STUB_SCALE multiplies every time offset of the deterministic buffer (default 1:
 * ns apart; 1000: µs apart) and $CANN_STUB_DROPPED sets the dropped count reported (default 7).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "stub_log.h"

typedef void (*request_fn)(uint8_t **buffer, size_t *size, size_t *max_records);
typedef void (*complete_fn)(uint8_t *buffer, size_t size, size_t valid);
typedef uint64_t (*timestamp_fn)(void);

static request_fn g_request;
static complete_fn g_complete;
static timestamp_fn g_timestamp;
static int g_subscribed, g_enabled[16];
__attribute__((unused)) static int g_emitted;
static size_t g_dropped;
static __thread size_t t_cursor; /* MSPTI keeps the iteration cursor per thread */

static uint64_t now_ns(void) {
    if (g_timestamp) return g_timestamp();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void put64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }
static void putp(uint8_t *b, size_t off, const char *p) { memcpy(b + off, &p, 8); }

static size_t stride(uint32_t kind) {
    switch (kind) {
    case 1: return 56; /* marker */
    case 2: return 56; /* kernel */
    case 3: return 48; /* api */
    case 9: return 72; /* communication */
    default: return 0;
    }
}

int msptiSubscribe(void **subscriber, void *callback, void *userdata) {
    (void)callback;
    (void)userdata;
    if (g_subscribed) return 2;
    g_subscribed = 1;
    *subscriber = &g_subscribed;
    stub_log("msptiSubscribe");
    return 0;
}

int msptiUnsubscribe(void *subscriber) {
    (void)subscriber;
    g_subscribed = 0;
    stub_log("msptiUnsubscribe");
    return 0;
}

int msptiActivityRegisterCallbacks(request_fn request, complete_fn complete) {
    if (!request || !complete) return 1;
    g_request = request;
    g_complete = complete;
    stub_log("msptiActivityRegisterCallbacks");
    return 0;
}

#ifndef STUB_OLD_CANN /* older CANN: no timestamp callback, no msptiGetTimestamp */
int msptiActivityRegisterTimestampCallback(timestamp_fn cb) {
    g_timestamp = cb;
    stub_log("msptiActivityRegisterTimestampCallback");
    return 0;
}

int msptiGetTimestamp(uint64_t *ts) {
    *ts = now_ns();
    return 0;
}
#endif

int msptiActivityEnable(uint32_t kind) {
    if (kind >= 16) return 8;
    g_enabled[kind] = 1;
    stub_log("msptiActivityEnable %u", kind);
    return 0;
}

int msptiActivityDisable(uint32_t kind) {
    if (kind >= 16) return 8;
    g_enabled[kind] = 0;
    stub_log("msptiActivityDisable %u", kind);
    return 0;
}

int msptiActivityGetNextRecord(uint8_t *buffer, size_t valid, void **record) {
    if (t_cursor >= valid) {
        t_cursor = 0;
        return 3; /* MAX_LIMIT_REACHED */
    }
    uint32_t kind;
    memcpy(&kind, buffer + t_cursor, 4);
    size_t n = stride(kind);
    if (!n) return 8; /* INVALID_KIND, cursor kept */
    *record = buffer + t_cursor;
    t_cursor += n;
    return 0;
}

int msptiActivityGetNumDroppedRecords(void *context, uint32_t stream, size_t *dropped) {
    (void)context;
    (void)stream;
    *dropped = g_dropped;
    g_dropped = 0; /* the call resets the count */
    return 0;
}

static const char *API_NAMES[3] = {"aclnnMatmul", "aclnnAdd", "aclrtSynchronizeStream"};
static const char *KERNEL_NAMES[3] = {"MatMulV2", "Add", "Cast"};
static const char *KERNEL_TYPES[3] = {"KERNEL_AICORE", "KERNEL_AIVEC", "KERNEL_AICORE"};

/* One buffer as MSPTI's own thread would deliver it. */
__attribute__((unused)) static void *emit(void *arg) {
    (void)arg;
    uint8_t *buf = NULL;
    size_t size = 0, max_records = 0;
    g_request(&buf, &size, &max_records);
    if (!buf || size < 4096) return NULL;
    uint64_t base = now_ns();
    const char *sc = getenv("CANN_STUB_SCALE"), *dr = getenv("CANN_STUB_DROPPED");
    const uint64_t x = sc ? strtoull(sc, NULL, 10) : 1;
    uint32_t pid = (uint32_t)getpid();
    size_t o = 0;
    for (uint32_t i = 0; i < 3; i++) { /* Api: start 4, end 12, pt 20/24, correlationId 28, name 36 */
        memset(buf + o, 0, 48);
        put32(buf, o, 3);
        put64(buf, o + 4, base + i * 1000 * x);
        put64(buf, o + 12, base + (i * 1000 + 400) * x);
        put32(buf, o + 20, pid);
        put32(buf, o + 24, 4242 + i);
        put64(buf, o + 28, 100 + i);
        putp(buf, o + 36, API_NAMES[i]);
        o += 48;
    }
    for (uint32_t i = 0; i < 4; i++) { /* Kernel: start 4, end 12, ds 20/24, correlationId 28, type 36, name 44 */
        memset(buf + o, 0, 56);
        put32(buf, o, 2);
        if (i < 3) { /* the fourth has no timestamps (start = end = 0) */
            put64(buf, o + 4, base + (i * 1000 + 100) * x);
            put64(buf, o + 12, base + (i * 1000 + 400) * x);
        }
        put32(buf, o + 20, 3);
        put32(buf, o + 24, 7);
        put64(buf, o + 28, 100 + i);
        putp(buf, o + 36, KERNEL_TYPES[i % 3]);
        putp(buf, o + 44, i < 3 ? KERNEL_NAMES[i] : "NoTime");
        o += 56;
    }
    /* Communication: dataType 4, count 8, ds 16/20, start 24, end 32, algType 40, name 48, commName 56, correlationId 64 */
    memset(buf + o, 0, 72);
    put32(buf, o, 9);
    put32(buf, o + 4, 3);
    put64(buf, o + 8, 4096);
    put32(buf, o + 16, 3);
    put32(buf, o + 20, 9);
    put64(buf, o + 24, base + 5000 * x);
    put64(buf, o + 32, base + 7000 * x);
    putp(buf, o + 40, "RING");
    putp(buf, o + 48, "hcom_allReduce_");
    putp(buf, o + 56, "hccl_world_group");
    put64(buf, o + 64, 200);
    o += 72;
    /* Marker: flag 4, sourceKind 8, timestamp 12, id 20, objectId 28/32, name 36, domain 44 */
    memset(buf + o, 0, 112);
    put32(buf, o, 1);
    put32(buf, o + 4, 2); /* START */
    put32(buf, o + 8, 0); /* host */
    put64(buf, o + 12, base + 8000 * x);
    put64(buf, o + 20, 55);
    put32(buf, o + 28, pid);
    put32(buf, o + 32, 4242);
    putp(buf, o + 36, "user_range");
    putp(buf, o + 44, "myDomain");
    o += 56;
    put32(buf, o, 1);
    put32(buf, o + 4, 4); /* END: no name, no domain */
    put64(buf, o + 12, base + 9000 * x);
    put64(buf, o + 20, 55);
    put32(buf, o + 28, pid);
    put32(buf, o + 32, 4242);
    o += 56;
    g_dropped = dr ? strtoul(dr, NULL, 10) : 7;
    stub_log("emit base=%llu", (unsigned long long)base);
    g_complete(buf, size, o);
    /* $CANN_STUB_KERNELS more kernel records, in as many buffers as they need. */
    const char *bulk = getenv("CANN_STUB_KERNELS");
    static const char *BULK_NAMES[4] = {"bulk_a", "bulk_b", "bulk_c", "bulk_d"};
    for (unsigned long left = bulk ? strtoul(bulk, NULL, 10) : 0, k = 0; left > 0;) {
        g_request(&buf, &size, &max_records);
        if (!buf) break;
        for (o = 0; left > 0 && o + 56 <= size; o += 56, left--, k++) {
            memset(buf + o, 0, 56);
            put32(buf, o, 2);
            put64(buf, o + 4, base + 10000 + k);
            put64(buf, o + 12, base + 10000 + k + 1);
            put32(buf, o + 20, 3);
            put32(buf, o + 24, 7);
            put64(buf, o + 28, 1000 + k);
            putp(buf, o + 36, "KERNEL_AICORE");
            putp(buf, o + 44, BULK_NAMES[k % 4]);
        }
        g_complete(buf, size, o);
    }
    stub_log("emitted");
    return NULL;
}

#ifndef STUB_OMIT_FLUSH
int msptiActivityFlushAll(uint32_t flag) {
    (void)flag;
    if (!g_emitted && g_enabled[2] && g_request && g_complete) {
        g_emitted = 1;
        pthread_t t;
        if (pthread_create(&t, NULL, emit, NULL) == 0) pthread_join(t, NULL);
    }
    return 0;
}
#endif
