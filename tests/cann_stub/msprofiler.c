/* Stand-in for libmsprofiler.so (tests only): the aclprof* calls, each logged with its arguments. */
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include "stub_log.h"

static int g_config = 1;

int aclprofInit(const char *path, size_t len) {
    stub_log("aclprofInit %.*s %zu", (int)len, path, len);
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s/PROF_000001_stub", (int)len, path);
    mkdir(dir, 0750);
    return 0;
}

void *aclprofCreateConfig(uint32_t *devices, uint32_t n, int metrics, const void *events, uint64_t mask) {
    stub_log("aclprofCreateConfig devices=%u n=%u metrics=%d events=%s mask=%#llx", n ? devices[0] : 0xffffffffu, n, metrics, events ? "set" : "NULL",
             (unsigned long long)mask);
    return &g_config;
}

int aclprofStart(const void *config) {
    stub_log("aclprofStart %s", config == &g_config ? "config" : "bad");
    return 0;
}

int aclprofStop(const void *config) {
    stub_log("aclprofStop %s", config == &g_config ? "config" : "bad");
    return 0;
}

int aclprofDestroyConfig(const void *config) {
    stub_log("aclprofDestroyConfig %s", config == &g_config ? "config" : "bad");
    return 0;
}

int aclprofFinalize(void) {
    stub_log("aclprofFinalize");
    return 0;
}
