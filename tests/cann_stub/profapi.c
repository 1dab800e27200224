/* Stand-in for libprofapi.so (tests only): reports device 3 opened as soon as a callback registers. */
#include <stdbool.h>
#include <stdint.h>
#include "stub_log.h"

typedef struct {
    uint32_t chipId;
    uint32_t deviceId;
    bool isOpen;
} Payload; /* 12 bytes */

int32_t profRegDeviceStateCallback(void (*cb)(Payload *data, uint32_t len)) {
    stub_log("profRegDeviceStateCallback");
    Payload p = {0, 3, true};
    cb(&p, (uint32_t)sizeof p);
    return 0;
}
