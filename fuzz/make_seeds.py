#!/usr/bin/env python3
"""Write the small seed corpora of the fuzz targets (fuzz/corpus/<target>/seed-*).

The capture seeds come from the REAL recorder: each variant runs in a child process that loads
the cdylib (``target/debug/libms_service_profiler.so`` unless ``MSP_LIB`` names another), records
a few vLLM-like spans, events, metrics and links, and shuts down; its meta file and first ring
segment, with their zero tails trimmed, become the seeds.  Usage: ``python3 fuzz/make_seeds.py``.
"""
import ctypes
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def child(variant):
    lib = ctypes.CDLL(os.environ["MSP_LIB"])
    lib.msp_init()
    c = ctypes.c_char_p

    def intern(s):
        return lib.msp_intern(c(s.encode()), len(s.encode()))

    lib.msp_now.restype = ctypes.c_uint64
    for f in ("msp_span_json", "msp_event_json"):
        getattr(lib, f).argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_uint64, c, ctypes.c_size_t][: 6 if f == "msp_span_json" else None]
    lib.msp_event_json.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64, c, ctypes.c_size_t]
    lib.msp_metric.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_double, ctypes.c_uint32, ctypes.c_void_p]
    lib.msp_link.argtypes = [ctypes.c_uint64, c, ctypes.c_size_t, c, ctypes.c_size_t]
    lib.msp_meta.argtypes = [c, ctypes.c_size_t, c, ctypes.c_size_t]
    for k, v in (("processRole", ["api", "engine", "worker"][variant % 3]), ("dpRankId", "0")):
        lib.msp_meta(k.encode(), len(k), v.encode(), len(v))
    req, sched, kv = intern("Request"), intern("BatchSchedule"), intern("KVCache")
    t = lib.msp_now()
    n = 2 + variant
    for i in range(n):
        rid = "req-%d" % i
        for name, extra in (("httpReq", {}), ("tokenize", {"recvTokenSize=": 7 + i}), ("Enqueue", {}), ("DecodeEnd", {"replyTokenSize=": 3})):
            j = json.dumps(dict({"rid": rid}, **extra)).encode()
            lib.msp_event_json(req, intern(name), t + i * 1000, j, len(j))
        lib.msp_link(t + i * 1000 + 1, rid.encode(), len(rid), ("e-" + rid).encode(), len(rid) + 2)
    batch = json.dumps({"rid": [{"rid": "e-req-%d" % i, "iter_size": 1} for i in range(n)], "batch_size": n, "batch_type": "Prefill"}).encode()
    lib.msp_span_json(sched, intern("batchFrameworkProcessing"), t, t + 5000, batch, len(batch))
    lib.msp_span_json(intern("ModelExecute"), intern("forward"), t + 100, t + 4000, b'{"batch_size": 2}', 17)
    lib.msp_metric(kv, intern("usage"), t + 200, 0.25 * variant, 0, None)
    lib.msp_metric(kv, intern("allocate"), t + 300, 4.0, 1, None)
    lib.msp_shutdown()


def trim(b, keep=0):
    end = len(b.rstrip(b"\0"))
    end = max(keep, (end + 7) & ~7)
    return b[:end]


def capture(variant, lib):
    with tempfile.TemporaryDirectory(prefix="msp-seeds-") as d:
        cfg = os.path.join(d, "c.json")
        with open(cfg, "w") as f:
            json.dump({"enable": 1, "prof_dir": os.path.join(d, "prof"), "ring_size_mb": 1, "ring_chunk_kb": 16}, f)
        env = dict(os.environ, SERVICE_PROF_CONFIG_PATH=cfg, MSP_LIB=lib, PROF_LOG_LEVEL="ERROR")
        env.pop("MS_SERVICE_PROF_RUN_TAIL", None)
        subprocess.run([sys.executable, __file__, "--child", str(variant)], env=env, check=True)
        meta = ring = None
        for top, _, files in os.walk(os.path.join(d, "prof")):
            for n in files:
                p = os.path.join(top, n)
                if n.endswith(".meta"):
                    meta = open(p, "rb").read()
                elif n.endswith(".000000.ring"):
                    ring = open(p, "rb").read()
        return trim(meta, 4096), trim(ring, 4096 + 64)


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def main():
    lib = os.environ.get("MSP_LIB") or os.path.join(ROOT, "target", "debug", "libms_service_profiler.so")
    for v in range(6):
        meta, ring = capture(v, lib)
        put("parse", "capture%d" % v, struct.pack("<H", len(meta)) + meta + ring)
        put("parse", "metaonly%d" % v, struct.pack("<H", len(meta)) + meta)
        put("meta_reader", "meta%d" % v, meta)
        put("record_decode", "chunk%d" % v, ring[4096 + 64:])
        entries = b"".join(struct.pack("<HH", k, len(p)) + p for k, p in
                           ((1, struct.pack("<I", 1) + b"Request"), (2, struct.pack("<I", 3) + b"pidabc"),
                            (3, struct.pack("<qQ", 1 << 60, 5 + v)), (4, struct.pack("<QII", 9, 1, v)), (5, b"\0" * 4 + b"x.ring")))
        put("meta_reader", "framed%d" % v, b"\x01" + meta[8:16] + entries)
    configs = [
        '{\n    "enable": 0,\n    "prof_dir": "/tmp/prof",\n    "profiler_level": "INFO",\n    "acl_task_time": 0,\n'
        '    "acl_prof_task_time_level": "L0",\n    "timelimit": 0,\n    "domain": ""\n}\n',
        '{"enable": 1, "prof_dir": "~/x", "domain": "Request;KVCache", "profiler_level": "L1"}',
        '{"enable": 1, "enable": 0, "timelimit": 30, "profiler_step_num": 5}',
        '{"enable": "1", "ring_size_mb": 8, "ring_total_mb": 64, "ring_chunk_kb": 16, "ring_full_policy": "overwrite"}',
        '{"enable": 1, "api_filter": "matmul", "kernel_filter": ["a","b"], "acl_task_time": 2, "aicore_metrics": "PipeUtilization"}',
        '{"metric_enable": 1, "host_system_usage_freq": 50, "npu_memory_usage_freq": 5, "torch_prof_stack": true}',
        '{"enable": 1, "nested": {"enable": 0}, "x": [1, {"enable": 1}], "s": "\\"enable\\": 0"}',
        '[1, 2]', '{"enable": 1,}', '', '{"enable": 1e999}', '{"prof_dir": "\\ud800"}',
    ]
    for i, t in enumerate(configs):
        put("config_json", "cfg%d" % i, t.encode())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(int(sys.argv[2]))
    else:
        main()
