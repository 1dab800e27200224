/* Stand-in for libms_tools_ext.so (tests only): mstx ranges, logged. */
#include <stdint.h>
#include "stub_log.h"

static uint64_t g_next = 1;

uint64_t mstxRangeStartA(const char *message, void *stream) {
    uint64_t id = __atomic_fetch_add(&g_next, 1, __ATOMIC_RELAXED);
    stub_log("mstxRangeStartA %s stream=%s id=%llu", message, stream ? "set" : "NULL", (unsigned long long)id);
    return id;
}

void mstxRangeEnd(uint64_t id) { stub_log("mstxRangeEnd %llu", (unsigned long long)id); }
