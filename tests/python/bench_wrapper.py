#!/usr/bin/env python3
"""Micro-benchmarks of the hook wrapper: unwrapped call vs. hooked call with capture off and on.

Usage: python tests/python/bench_wrapper.py [--lib PATH] [--n N] [--repeat R]

Uses the native library found by the normal lookup (or --lib / MS_SERVICE_PROFILER_LIB).
A temporary collection config (ring policy "overwrite", so a full ring is the steady state) is
written and capture is switched on and off by editing it, as a user would (with the test mock,
through its state word).
Reports the best-of-R per-call time in ns for each form, the added cost over the unwrapped call,
and the ratio to it.
"""
import argparse
import ctypes
import os
import sys
import timeit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=None)
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--pure-python", action="store_true",
                    help="ignore the C extension (measure the pure-Python wrappers)")
    a = ap.parse_args()
    if a.lib:
        os.environ["MS_SERVICE_PROFILER_LIB"] = a.lib
    import json
    import tempfile
    import time
    tmp = tempfile.mkdtemp(prefix="msp-bench-")
    cfg_path = os.path.join(tmp, "prof.json")

    def write_cfg(enable):
        with open(cfg_path + ".tmp", "w") as f:
            json.dump({"enable": enable, "prof_dir": os.path.join(tmp, "out") + "/",
                       "profiler_level": "INFO", "ring_full_policy": "overwrite",
                       "ring_size_mb": 64, "ring_total_mb": 256}, f)
        os.replace(cfg_path + ".tmp", cfg_path)
    write_cfg(0)
    os.environ["SERVICE_PROF_CONFIG_PATH"] = cfg_path
    if a.pure_python:
        sys.modules["ms_service_profiler._fast"] = None  # makes the import fail
    from ms_service_profiler._native import native
    from ms_service_profiler.patcher.hooks import Patcher
    from ms_service_profiler.patcher.symbols import parse_entries
    from ms_service_profiler import Profiler, Level
    import types

    if not native.available:
        print("native library not found; set --lib", file=sys.stderr)
        return 2
    lib = native.lib
    mock_set = getattr(lib, "mock_set_word", None)
    if mock_set is not None:
        mock_set.argtypes = [ctypes.c_uint64]
        gen = [10]

        def capture(on):
            gen[0] += 1
            mock_set((1 if on else 0) | (20 << 8) | (gen[0] << 32))
        reset = lib.mock_reset
    else:
        def capture(on):  # the real path: edit the config file, wait for the watcher
            write_cfg(1 if on else 0)
            deadline = time.time() + 5
            while bool(native.state.value & 1) != on and time.time() < deadline:
                time.sleep(0.01)
            if bool(native.state.value & 1) != on:
                raise SystemExit("capture did not switch %s" % ("on" if on else "off"))
        reset = lambda: None  # noqa: E731

    mod = types.ModuleType("bench_target")
    src = '''
def plain(a, b):
    return a
class K:
    def meth(self, a):
        return a
class K2:  # identical, never hooked: the baseline for methods
    def meth(self, a):
        return a
def withattr(a, b):
    return a
'''
    exec(src, mod.__dict__)
    sys.modules["bench_target"] = mod
    unwrapped_plain = mod.plain
    k = mod.K()
    k2 = mod.K2()

    p = Patcher()
    p.apply(parse_entries([
        {"symbol": "bench_target:plain", "domain": "Bench", "name": "plain"},
        {"symbol": "bench_target:K.meth", "domain": "Bench", "name": "meth"},
        {"symbol": "bench_target:withattr", "domain": "Bench", "name": "withattr",
         "attributes": [{"name": "a", "expr": "a"}, {"name": "len", "expr": "len(b)"}]},
    ], source="bench"))
    wrapped_plain = mod.plain
    wrapped_attr = mod.withattr

    g = {"u": unwrapped_plain, "w": wrapped_plain, "wa": wrapped_attr, "k": k, "K": mod.K,
         "k2": k2, "P": Profiler, "L": Level}
    # (label, statement, capture on?, baseline label or None)
    cases = [
        ("function, unwrapped", "u(1, 2)", False, None),
        ("function, hooked, capture off", "w(1, 2)", False, "function, unwrapped"),
        ("function, hooked, capture on (span)", "w(1, 2)", True, "function, unwrapped"),
        ("method, unwrapped", "k2.meth(1)", False, None),
        ("method, hooked, capture off", "k.meth(1)", False, "method, unwrapped"),
        ("method, hooked, capture on (span)", "k.meth(1)", True, "method, unwrapped"),
        ("function + 2 attributes, capture off", "wa(1, 'xy')", False, "function, unwrapped"),
        ("function + 2 attributes, capture on", "wa(1, 'xy')", True, "function, unwrapped"),
        ("Profiler span_start/span_end, capture off", "P(L.INFO).domain('Bench').span_start('x').span_end()",
         False, None),
        ("Profiler span_start/span_end, capture on", "P(L.INFO).domain('Bench').span_start('x').span_end()",
         True, None),
        ("Profiler res+metric+event, capture on",
         "P(L.INFO).domain('Bench').res('r1').metric('QueueSize', 3).event('e')", True, None),
    ]
    best = {}
    loop = min(timeit.repeat("pass", number=a.n, repeat=a.repeat)) / a.n * 1e9
    # interleaved rounds: every case once per round, best round kept (robust to load drift)
    for _round in range(a.repeat):
        for on in (False, True):
            capture(on)
            reset()
            for label, stmt, c_on, _b in cases:
                if c_on != on:
                    continue
                v = timeit.timeit(stmt, globals=g, number=a.n) / a.n * 1e9
                best[label] = min(best.get(label, v), v)
                reset()
    capture(False)
    p.unhook_all()
    counters = native.counters() or {}
    impl = "C Timer (_fast)" if native.fast is not None else "pure Python"
    print("library: %s" % native.path)
    print("timer implementation: %s; %d calls x best of %d interleaved rounds; timeit loop overhead "
          "%.1f ns (not subtracted)" % (impl, a.n, a.repeat, loop))
    print("%-44s %9s %10s %7s" % ("case", "ns/call", "added ns", "ratio"))
    for label, _stmt, _on, base in cases:
        v = best[label]
        if base is None and "unwrapped" in label:
            print("%-44s %9.1f %10s %7s" % (label, v, "-", "1.00"))
        elif base is None:
            print("%-44s %9.1f %10s %7s" % (label, v, "-", "-"))
        else:
            b0 = best[base]
            print("%-44s %9.1f %10.1f %7.2f" % (label, v, v - b0, v / b0))
    if counters:
        print("native counters: written %(records_written)d, overwritten %(records_overwritten)d, "
              "dropped %(records_dropped)d" % counters)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
