/* Stand-in for libdcmi.so (tests only): one card with two NPUs of fixed memory use. */
#include <string.h>
#include "stub_log.h"

struct mem_info { /* dcmi_get_memory_info_stru on LP64 */
    unsigned long long memory_size, memory_available;
    unsigned int freq;
    unsigned long hugepagesize, hugepages_total, hugepages_free;
    unsigned int utiliza;
    unsigned char reserve[60];
};

int dcmi_init(void) { return 0; }

int dcmi_get_card_list(int *num, int *list, int len) {
    if (len < 1) return -1;
    *num = 1;
    list[0] = 5;
    return 0;
}

int dcmi_get_device_id_in_card(int card, int *max, int *mcu, int *cpu) {
    if (card != 5) return -1;
    *max = 2;
    *mcu = -1;
    *cpu = -1;
    return 0;
}

int dcmi_get_device_memory_info_v3(int card, int dev, struct mem_info *m) {
    if (card != 5 || dev < 0 || dev > 1) return -1;
    memset(m, 0, sizeof *m);
    m->memory_size = 65536;
    m->memory_available = dev == 0 ? 16384 : 32768;
    m->utiliza = dev == 0 ? 75 : 50;
    return 0;
}
