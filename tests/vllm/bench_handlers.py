#!/usr/bin/env python3
"""Per-step cost of the built-in vLLM V1 handlers with capture ON, recording through the real
native library (not a stand-in), on the fake vLLM objects of ``test_handlers.py``.

Usage (in the vLLM venv of tests/vllm/run.sh, or any Python with the package installed):
    python tests/vllm/bench_handlers.py [--batch 8] [--steps 2000] [--repeat 5]

One decode step of a batch of B running requests is timed as each process pays it:
  EngineCore  ``Scheduler.schedule`` (batch span with rid dicts, KVCacheStatus, queue upkeep)
  Worker      ``execute_model`` + the five ``record_function_or_nullcontext`` phase tags +
              ``sample_tokens`` (modelExec with rid dicts, forward with ids, step counter)
  API server  ``OutputProcessor.process_outputs`` (detokenize)
Each handler sits behind the layer the patcher installs (``hooks._handler_sync``); the wrapped
vLLM functions do nothing and the SchedulerOutputs are built before timing, so the figures are
the profiler's own cost per step (best of --repeat, µs per step).  ``MSP_PURE_PYTHON=1``: without
the C extension.  docs/PERFORMANCE.md and docs/VLLM.md quote them.
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import types


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="msp-bench-handlers-")
    cfg = os.path.join(tmp, "cfg.json")
    with open(cfg, "w") as f:
        json.dump({"enable": 1, "prof_dir": tmp + "/prof/", "profiler_level": "INFO",
                   "ring_full_policy": "overwrite", "ring_size_mb": 64}, f)
    os.environ["SERVICE_PROF_CONFIG_PATH"] = cfg
    if os.environ.get("MSP_PURE_PYTHON") == "1":
        sys.modules["ms_service_profiler._fast"] = None            # the pure-Python fallback
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_handlers import FakeSched, ns, output              # fakes only; no pytest fixture
    from ms_service_profiler import Profiler, Level
    from ms_service_profiler._native import native
    from ms_service_profiler.patcher import hooks
    from ms_service_profiler.patcher.vllm.handlers.v1 import batch_handlers, model_handlers, request_handlers

    if not native.available:
        print("native library not found", file=sys.stderr)
        return 2
    for _ in range(100):                                          # the control thread reads the config
        if Profiler(Level.INFO).enable:
            break
        time.sleep(0.01)
    else:
        print("capture did not turn on", file=sys.stderr)
        return 2

    b = a.batch
    rids = [f"cmpl-{i:032x}-0" for i in range(b)]
    sched = FakeSched()
    for r in rids:
        sched.requests[r] = ns(num_prompt_tokens=16)
    sched.running = list(rids)
    runner = ns(requests={r: ns(num_prompt_tokens=16) for r in rids}, sample_tokens=True)

    outs = []
    for k in range(a.steps):                      # built up front: only the handlers are timed
        outs.append(output(cached=[(r, 17 + k) for r in rids], tokens={r: 1 for r in rids}))

    # every handler behind the same layer the patcher installs (hooks._handler_sync: the C
    # custom-handler layer when the extension is built), as in a served process
    rt = types.SimpleNamespace(cfilter=None, entry=types.SimpleNamespace(where=lambda: "bench", handler="bench"))

    def layered(inner, handler):
        return hooks._handler_sync(inner, handler, rt)

    cur = [None]
    schedule = layered(lambda this: cur[0], batch_handlers.schedule)

    def schedule_once(i):
        cur[0] = outs[i]
        schedule(sched)

    null = contextlib.nullcontext
    phase = layered(lambda name: null(), model_handlers.record_function_or_nullcontext)
    tags = ("gpu_model_runner: preprocess", "gpu_model_runner: forward", "gpu_model_runner: postprocess",
            "gpu_model_runner: sample", "gpu_model_runner: bookkeep")

    def execute(this, s):
        for t in tags:
            with phase(t):
                pass

    execute_model = layered(execute, model_handlers.execute_model_runner)
    sample = layered(lambda this, g: None, model_handlers.sample_tokens)

    def worker_once(i):
        execute_model(runner, outs[i])
        sample(runner, None)

    det = ns(num_output_tokens=lambda: 5)
    proc = ns(request_states={r: ns(prompt_len=16, prompt_token_ids=[0] * 16, detokenizer=det, stats=None) for r in rids})
    outputs = [ns(request_id=r) for r in rids]
    process_outputs = layered(lambda this, o: None, request_handlers.process_outputs)

    def outputs_once(i):
        process_outputs(proc, outputs)

    print(f"batch {b}, {a.steps} steps, best of {a.repeat}; µs per step with capture on (real library)")
    for name, fn in (("schedule (EngineCore)", schedule_once), ("worker step (Worker)", worker_once),
                     ("process_outputs (API server)", outputs_once)):
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            for i in range(a.steps):
                fn(i)
            best = min(best, (time.perf_counter() - t0) / a.steps)
        print(f"  {name:30s} {best * 1e6:8.1f}")
    c = native.counters() if hasattr(native, "counters") else None
    if c:
        print(f"records written: {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
