/*
 * msp_cann.h — the subset of the CANN run-time ABI that ms_service_profiler loads with dlopen.
 *
 * Written for this project from the interface description in docs/DEVICE.md and
 * shared/reference/CANN_ABI.md (function signatures, enum values, record byte offsets). It is not a
 * copy of any CANN header. Functions are declared as pointer typedefs (`<name>_fn`) because the
 * profiler never links against CANN: scripts/gen_cann_bindings.sh runs bindgen on this file and
 * writes src/device/sys.rs, and the loader resolves each symbol by name at run time.
 *
 * MSPTI records are packed: no padding between members (a uint64_t after the 4-byte kind sits at
 * byte 4). CANN also marks them aligned(8), which only rounds the stride up to a multiple of 8;
 * Rust cannot express packed+aligned on one type, so the strides are given as constants.
 */
#ifndef MSP_CANN_H
#define MSP_CANN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* ---------------------------------------------------------------- ACL prof (libmsprofiler) */

typedef int aclError;
#define ACL_SUCCESS 0
#define ACL_ERROR_REPEAT_INITIALIZE 100002

typedef struct aclprofConfig aclprofConfig;           /* opaque */
typedef struct aclprofAicoreEvents aclprofAicoreEvents; /* opaque, always NULL here */

typedef enum {
    ACL_AICORE_ARITHMETIC_UTILIZATION = 0,
    ACL_AICORE_PIPE_UTILIZATION = 1,
    ACL_AICORE_MEMORY_BANDWIDTH = 2,
    ACL_AICORE_L0B_AND_WIDTH = 3,
    ACL_AICORE_RESOURCE_CONFLICT_RATIO = 4,
    ACL_AICORE_MEMORY_UB = 5,
    ACL_AICORE_L2_CACHE = 6,
    ACL_AICORE_NONE = 0xFF
} aclprofAicoreMetrics;

typedef enum {
    ACL_PROF_ARGS_MIN = 0,
    ACL_PROF_STORAGE_LIMIT = 1,
    ACL_PROF_AIV_METRICS = 2,
    ACL_PROF_SYS_HARDWARE_MEM_FREQ = 3,
    ACL_PROF_LLC_MODE = 4,
    ACL_PROF_SYS_IO_FREQ = 5,
    ACL_PROF_SYS_INTERCONNECTION_FREQ = 6,
    ACL_PROF_DVPP_FREQ = 7,
    ACL_PROF_HOST_SYS = 8,
    ACL_PROF_HOST_SYS_USAGE = 9,
    ACL_PROF_HOST_SYS_USAGE_FREQ = 10,
    ACL_PROF_ARGS_MAX = 11
} aclprofConfigType;

/* dataTypeConfig bits */
#define ACL_PROF_ACL_API 0x0001ULL
#define ACL_PROF_TASK_TIME 0x0002ULL
#define ACL_PROF_AICORE_METRICS 0x0004ULL
#define ACL_PROF_AICPU 0x0008ULL
#define ACL_PROF_L2CACHE 0x0010ULL
#define ACL_PROF_HCCL_TRACE 0x0020ULL
#define ACL_PROF_TRAINING_TRACE 0x0040ULL
#define ACL_PROF_MSPROFTX 0x0080ULL
#define ACL_PROF_RUNTIME_API 0x0100ULL
#define ACL_PROF_TASK_TIME_L0 0x0800ULL
#define ACL_PROF_TASK_MEMORY 0x1000ULL
#define ACL_PROF_OP_ATTR 0x4000ULL

typedef aclError (*aclprofInit_fn)(const char *profilerResultPath, size_t length);
typedef aclError (*aclprofFinalize_fn)(void);
typedef aclprofConfig *(*aclprofCreateConfig_fn)(uint32_t *deviceIdList, uint32_t deviceNums, aclprofAicoreMetrics aicoreMetrics,
                                                 const aclprofAicoreEvents *aicoreEvents, uint64_t dataTypeConfig);
typedef aclError (*aclprofDestroyConfig_fn)(const aclprofConfig *config);
typedef aclError (*aclprofSetConfig_fn)(aclprofConfigType type, const char *config, size_t length);
typedef aclError (*aclprofStart_fn)(const aclprofConfig *config);
typedef aclError (*aclprofStop_fn)(const aclprofConfig *config);

/* ---------------------------------------------------------------- MSPTI (libmspti) */

typedef enum {
    MSPTI_SUCCESS = 0,
    MSPTI_ERROR_INVALID_PARAMETER = 1,
    MSPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED = 2,
    MSPTI_ERROR_MAX_LIMIT_REACHED = 3,
    MSPTI_ERROR_DEVICE_OFFLINE = 4,
    MSPTI_ERROR_QUEUE_EMPTY = 5,
    MSPTI_ERROR_WITHOUT_LD_PRELOAD = 6,
    MSPTI_ERROR_NOT_INITIALIZED = 7,
    MSPTI_ERROR_INVALID_KIND = 8,
    MSPTI_ERROR_PARAMETER_SIZE_NOT_SUFFICIENT = 9,
    MSPTI_ERROR_INNER = 999,
    MSPTI_ERROR_FORCE_INT = 0x7fffffff
} msptiResult;

typedef enum {
    MSPTI_ACTIVITY_KIND_INVALID = 0,
    MSPTI_ACTIVITY_KIND_MARKER = 1,
    MSPTI_ACTIVITY_KIND_KERNEL = 2,
    MSPTI_ACTIVITY_KIND_API = 3,
    MSPTI_ACTIVITY_KIND_HCCL = 4,
    MSPTI_ACTIVITY_KIND_MEMORY = 5,
    MSPTI_ACTIVITY_KIND_MEMSET = 6,
    MSPTI_ACTIVITY_KIND_MEMCPY = 7,
    MSPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION = 8,
    MSPTI_ACTIVITY_KIND_COMMUNICATION = 9,
    MSPTI_ACTIVITY_KIND_ACL_API = 10,
    MSPTI_ACTIVITY_KIND_NODE_API = 11,
    MSPTI_ACTIVITY_KIND_RUNTIME_API = 12,
    MSPTI_ACTIVITY_KIND_OVERHEAD = 13,
    MSPTI_ACTIVITY_KIND_FORCE_INT = 0x7fffffff
} msptiActivityKind;

/* Marker flags (a bit set). */
#define MSPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS 1
#define MSPTI_ACTIVITY_FLAG_MARKER_START 2
#define MSPTI_ACTIVITY_FLAG_MARKER_END 4
#define MSPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS_WITH_DEVICE 8
#define MSPTI_ACTIVITY_FLAG_MARKER_START_WITH_DEVICE 16
#define MSPTI_ACTIVITY_FLAG_MARKER_END_WITH_DEVICE 32

/* Marker source kind. */
#define MSPTI_ACTIVITY_SOURCE_KIND_HOST 0
#define MSPTI_ACTIVITY_SOURCE_KIND_DEVICE 1

#define MSPTI_INVALID_DEVICE_ID 0xFFFFFFFFu
#define MSPTI_INVALID_STREAM_ID 0xFFFFFFFFu

typedef struct msptiSubscriber *msptiSubscriberHandle;
typedef void (*msptiCallbackFunc)(void *userdata, uint32_t domain, uint32_t cbid, const void *cbdata);
typedef void (*msptiBuffersCallbackRequestFunc)(uint8_t **buffer, size_t *size, size_t *maxNumRecords);
typedef void (*msptiBuffersCallbackCompleteFunc)(uint8_t *buffer, size_t size, size_t validSize);
typedef uint64_t (*msptiTimestampCallbackFunc)(void);

/* Common prefix of every record. */
typedef struct __attribute__((packed)) {
    msptiActivityKind kind;
} msptiActivity;

/* Process/thread (host source) or device/stream (device source). */
typedef union __attribute__((packed)) {
    struct __attribute__((packed)) {
        uint32_t processId;
        uint32_t threadId;
    } pt;
    struct __attribute__((packed)) {
        uint32_t deviceId;
        uint32_t streamId;
    } ds;
} msptiObjectId;

typedef struct __attribute__((packed)) {
    uint32_t deviceId;
    uint32_t streamId;
} msptiDeviceStream;

typedef struct __attribute__((packed)) {
    uint32_t processId;
    uint32_t threadId;
} msptiProcessThread;

/* kind 1, stride 56 */
typedef struct __attribute__((packed)) {
    msptiActivityKind kind;
    uint32_t flag;
    uint32_t sourceKind;
    uint64_t timestamp;
    uint64_t id;
    msptiObjectId objectId;
    const char *name;
    const char *domain;
} msptiActivityMarker;

/* kind 3, stride 48 */
typedef struct __attribute__((packed)) {
    msptiActivityKind kind;
    uint64_t start;
    uint64_t end;
    msptiProcessThread pt;
    uint64_t correlationId;
    const char *name;
} msptiActivityApi;

/* kind 2, stride 56 */
typedef struct __attribute__((packed)) {
    msptiActivityKind kind;
    uint64_t start;
    uint64_t end;
    msptiDeviceStream ds;
    uint64_t correlationId;
    const char *type;
    const char *name;
} msptiActivityKernel;

/* kind 9, stride 72 */
typedef struct __attribute__((packed)) {
    msptiActivityKind kind;
    uint32_t dataType;
    uint64_t count;
    msptiDeviceStream ds;
    uint64_t start;
    uint64_t end;
    const char *algType;
    const char *name;
    const char *commName;
    uint64_t correlationId;
} msptiActivityCommunication;

#define MSPTI_MARKER_STRIDE 56
#define MSPTI_API_STRIDE 48
#define MSPTI_KERNEL_STRIDE 56
#define MSPTI_COMMUNICATION_STRIDE 72

typedef msptiResult (*msptiSubscribe_fn)(msptiSubscriberHandle *subscriber, msptiCallbackFunc callback, void *userdata);
typedef msptiResult (*msptiUnsubscribe_fn)(msptiSubscriberHandle subscriber);
typedef msptiResult (*msptiActivityRegisterCallbacks_fn)(msptiBuffersCallbackRequestFunc request, msptiBuffersCallbackCompleteFunc complete);
typedef msptiResult (*msptiActivityEnable_fn)(msptiActivityKind kind);
typedef msptiResult (*msptiActivityDisable_fn)(msptiActivityKind kind);
typedef msptiResult (*msptiActivityGetNextRecord_fn)(uint8_t *buffer, size_t validBufferSizeBytes, msptiActivity **record);
typedef msptiResult (*msptiActivityFlushAll_fn)(uint32_t flag);
typedef msptiResult (*msptiActivityGetNumDroppedRecords_fn)(void *context, uint32_t streamId, size_t *dropped);
typedef msptiResult (*msptiGetTimestamp_fn)(uint64_t *timestamp);
typedef msptiResult (*msptiActivityRegisterTimestampCallback_fn)(msptiTimestampCallbackFunc callback);

/* ---------------------------------------------------------------- mstx (libms_tools_ext) */

typedef uint64_t mstxRangeId;
typedef void *aclrtStream;
#define MSTX_INVALID_ID 0
#define MSTX_MESSAGE_MAX 128

typedef mstxRangeId (*mstxRangeStartA_fn)(const char *message, aclrtStream stream);
typedef void (*mstxRangeEnd_fn)(mstxRangeId id);

/* ---------------------------------------------------------------- device state (libprofapi) */

typedef struct {
    uint32_t chipId;
    uint32_t deviceId;
    bool isOpen;
} ProfSetDevParaDevice; /* size 12 */

#define PROFILE_DEVICE_STATE_C_CALLBACK 16

typedef void (*ProfDeviceStateCallback)(ProfSetDevParaDevice *data, uint32_t len);
typedef int32_t (*profRegDeviceStateCallback_fn)(ProfDeviceStateCallback callback);
typedef int32_t (*MsprofRegisterProfileCallback_fn)(int32_t callbackType, void *callback, uint32_t len);

/* ---------------------------------------------------------------- DCMI (libdcmi) */

struct dcmi_get_memory_info_stru {
    unsigned long long memory_size;      /* MB */
    unsigned long long memory_available; /* MB */
    unsigned int freq;
    unsigned long hugepagesize;
    unsigned long hugepages_total;
    unsigned long hugepages_free;
    unsigned int utiliza; /* percent */
    unsigned char reserve[60];
};

struct dcmi_hbm_info {
    unsigned long long memory_size;  /* MB */
    unsigned int freq;
    unsigned long long memory_usage; /* MB */
    int temp;
    unsigned int bandwith_util_rate;
};

typedef int (*dcmi_init_fn)(void);
typedef int (*dcmi_get_card_list_fn)(int *card_num, int *card_list, int list_len);
typedef int (*dcmi_get_device_id_in_card_fn)(int card_id, int *device_id_max, int *mcu_id, int *cpu_id);
typedef int (*dcmi_get_device_memory_info_v3_fn)(int card_id, int device_id, struct dcmi_get_memory_info_stru *memory_info);
typedef int (*dcmi_get_device_hbm_info_fn)(int card_id, int device_id, struct dcmi_hbm_info *hbm_info);

#endif /* MSP_CANN_H */
