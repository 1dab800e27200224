/* Not linked against the library: finds it in the process when it was LD_PRELOADed. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdbool.h>

int main(void) {
    uint32_t (*intern)(const char *, size_t) = dlsym(RTLD_DEFAULT, "msp_intern");
    bool (*event_json)(uint32_t, uint32_t, uint64_t, const char *, size_t) = dlsym(RTLD_DEFAULT, "msp_event_json");
    const uint64_t *(*state)(void) = dlsym(RTLD_DEFAULT, "msp_state_word");
    if (!intern || !event_json || !state) { fprintf(stderr, "library not preloaded\n"); return 2; }
    /* The constructor already initialised it from SERVICE_PROF_CONFIG_PATH: capture is on. */
    if (!(*state() & 1)) { fprintf(stderr, "capture not on\n"); return 3; }
    uint32_t d = intern("Preload", 7);
    for (int i = 0; i < 1000; i++)
        if (!event_json(d, d, 0, "{\"i\":1}", 7)) return 4;
    return 0; /* no explicit shutdown: the exit handler marks the files clean */
}
