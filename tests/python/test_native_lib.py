"""End-to-end against the real Rust library: records land in the capture files.

Each test runs a fresh interpreter (the library is bound once per process).  The library is
located like this: $MSP_NATIVE_LIB, the copy bundled in the installed package,
$CARGO_TARGET_DIR/release, <repo>/target/release.  When none exists the tests are skipped,
unless MSP_REQUIRE_NATIVE=1 (set by run.sh), in which case they fail.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SONAME = "libms_service_profiler.so"


def _candidates():
    env = os.environ.get("MSP_NATIVE_LIB")
    if env:
        yield env
    try:
        import ms_service_profiler
        yield os.path.join(os.path.dirname(ms_service_profiler.__file__), SONAME)
    except Exception:
        pass
    if os.environ.get("CARGO_TARGET_DIR"):
        yield os.path.join(os.environ["CARGO_TARGET_DIR"], "release", SONAME)
    yield os.path.join(REPO, "target", "release", SONAME)


def _find_lib():
    for c in _candidates():
        if c and os.path.isfile(c):
            return c
    return None


def _find_cli(lib):
    cands = [shutil.which("msserviceprofiler"),
             os.path.join(os.path.dirname(sys.executable), "msserviceprofiler"),
             os.path.join(os.path.dirname(os.path.dirname(lib)), "msserviceprofiler") if lib else None,
             os.path.join(os.path.dirname(lib), "msserviceprofiler") if lib else None]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


LIB = _find_lib()
CLI = _find_cli(LIB)

if LIB is None:
    if os.environ.get("MSP_REQUIRE_NATIVE") == "1":
        raise RuntimeError("native library %s not found (MSP_REQUIRE_NATIVE=1)" % SONAME)
    pytestmark = pytest.mark.skip(reason="native library not built (pip install . builds it)")

SCRIPT = textwrap.dedent(r'''
    import json, os, sys, time, ctypes
    sys.path.insert(0, os.environ["MODDIR"])
    from ms_service_profiler._native import native
    from ms_service_profiler import Profiler, Level
    out = {"path": native.path, "init_rc": native.init_rc, "fast": native.fast is not None}
    deadline = time.time() + 5
    while not native.state.value & 1 and time.time() < deadline:
        time.sleep(0.01)
    out["enabled"] = bool(native.state.value & 1)
    before = native.counters()
    import ms_service_profiler.activate          # SERVICE_PROF_CONFIG_PATH is set: hooks installed
    import target_mod
    for i in range(int(os.environ.get("N", "100"))):
        target_mod.plain(i)
        target_mod.K().meth(i)
    target_mod.with_attrs([1, 2, 3])
    try:
        target_mod.raises()
    except ValueError:
        pass
    Profiler(Level.INFO).domain("Schedule").res(["r1", "r2"]).metric("QueueSize", 2).event("Enqueue")
    with Profiler(Level.INFO).domain("Execute").span_start("modelExec") as p:
        p.res([{"rid": "r1", "iter": 0}])
    Profiler(Level.INFO).link("a", "b")
    Profiler(Level.INFO).add_meta_info("dpRankId", 0)
    after = native.counters()
    out["delta"] = {k: after[k] - before[k] for k in after}
    out["run_dir"] = native.run_dir()
    out["config"] = native.config()
    native.shutdown()
    print("RESULT " + json.dumps(out))
''')

TARGET = textwrap.dedent('''
    def plain(i):
        return i
    class K:
        def meth(self, i):
            return i
    def with_attrs(items):
        return len(items)
    def raises():
        raise ValueError("x")
''')

SYMS = textwrap.dedent('''
    - {symbol: 'target_mod:plain', domain: Test, name: plain}
    - {symbol: 'target_mod:K.meth', domain: Test, name: meth}
    - symbol: target_mod:with_attrs
      domain: Test
      name: with_attrs
      attributes:
        - {name: n, expr: len(items)}
        - {name: ret, expr: return}
        - {name: bad, expr: items.nope}
    - {symbol: 'target_mod:raises', domain: Test, name: raises}
''')


def _run(tmp_path, enable=1, extra_env=None, n=100):
    (tmp_path / "mods").mkdir(exist_ok=True)
    (tmp_path / "mods" / "target_mod.py").write_text(TARGET)
    (tmp_path / "syms.yaml").write_text(SYMS)
    cfg = tmp_path / "prof.json"
    cfg.write_text(json.dumps({"enable": enable, "prof_dir": str(tmp_path / "out") + "/",
                               "profiler_level": "INFO"}))
    env = dict(os.environ)
    env.pop("MS_SERVICE_PROFILER_LIB", None)
    env.update({"MS_SERVICE_PROFILER_LIB": LIB, "SERVICE_PROF_CONFIG_PATH": str(cfg),
                "PROFILING_SYMBOLS_PATH": str(tmp_path / "syms.yaml"), "MODDIR": str(tmp_path / "mods"),
                "N": str(n), "HOME": str(tmp_path)})
    env.update(extra_env or {})
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, p.stdout + p.stderr
    return json.loads(line[0][7:]), p


def test_records_land_and_errors_are_counted(tmp_path):
    res, _p = _run(tmp_path, n=100)
    assert res["path"] == LIB and res["init_rc"] == 1 and res["enabled"], res
    d = res["delta"]
    # 200 hooked calls + with_attrs + raises + event + span + link
    assert d["records_written"] >= 205, d
    assert d["expr_errors"] == 1 and d["hook_errors"] == 0, d
    assert os.path.isdir(tmp_path / "out")


@pytest.mark.skipif(CLI is None, reason="msserviceprofiler CLI not found")
def test_records_readable_by_reader(tmp_path):
    res, _p = _run(tmp_path, n=10)
    out = subprocess.run([CLI, "dump", "--input-path", str(tmp_path / "out"), "--records"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    text = out.stdout
    for name in ("plain", "meth", "with_attrs", "raises", "Enqueue", "modelExec"):
        assert '"%s"' % name in text, name
    assert "QueueSize=" in text and "ValueError" in text
    assert lines


def test_disabled_writes_nothing(tmp_path):
    res, _p = _run(tmp_path, enable=0, n=50)
    assert not res["enabled"]
    assert res["delta"]["records_written"] == 0, res["delta"]


def test_ld_preload_same_instance(tmp_path):
    code = ("import ctypes\nfrom ms_service_profiler._native import native\n"
            "lib = ctypes.CDLL(%r)\nlib.msp_state_word.restype = ctypes.c_void_p\n"
            "print('SAME', native.path, lib.msp_state_word() == native.word_addr)\n" % LIB)
    env = dict(os.environ)
    env.pop("MS_SERVICE_PROFILER_LIB", None)
    env["LD_PRELOAD"] = LIB
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "SAME already loaded" in p.stdout and p.stdout.strip().endswith("True"), p.stdout


def test_enable_transition_reloads_yaml(tmp_path):
    """Start with enable 0; edit the YAML; switch enable to 1 in the config file: the next hooked
    call observes the generation change and re-reads the YAML (edited name applies)."""
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "target_mod.py").write_text(TARGET)
    syms = tmp_path / "syms.yaml"
    syms.write_text("- {symbol: 'target_mod:plain', domain: Test, name: before}\n")
    cfg = tmp_path / "prof.json"
    cfg.write_text('{\n    "enable": 0,\n    "prof_dir": "%s/"\n}\n' % (tmp_path / "out"))
    code = textwrap.dedent(r'''
        import os, sys, time, re
        sys.path.insert(0, os.environ["MODDIR"])
        import ms_service_profiler.activate
        from ms_service_profiler._native import native
        from ms_service_profiler.patcher.hooks import patcher
        import target_mod
        target_mod.plain(1)
        names = lambda: sorted(e.name for t in patcher.targets.values() for e in t.entries)
        print("NAMES0", names())
        syms, cfg = os.environ["PROFILING_SYMBOLS_PATH"], os.environ["SERVICE_PROF_CONFIG_PATH"]
        open(syms, "w").write("- {symbol: 'target_mod:plain', domain: Test, name: after}\n")
        text = open(cfg).read()
        tmp = cfg + ".tmp"
        open(tmp, "w").write(re.sub(r'"enable":\s*0', '"enable": 1', text))
        os.replace(tmp, cfg)                       # like sed -i: a new inode
        t0 = time.time()
        while not native.state.value & 1 and time.time() - t0 < 5:
            time.sleep(0.01)
        print("REACT_MS", int((time.time() - t0) * 1000))
        target_mod.plain(1)
        print("NAMES1", names())
    ''')
    env = dict(os.environ)
    env.update({"MS_SERVICE_PROFILER_LIB": LIB, "SERVICE_PROF_CONFIG_PATH": str(cfg),
                "PROFILING_SYMBOLS_PATH": str(syms), "MODDIR": str(tmp_path / "mods"), "HOME": str(tmp_path)})
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=60)
    assert p.returncode == 0, p.stderr
    assert "NAMES0 ['before']" in p.stdout and "NAMES1 ['after']" in p.stdout, p.stdout + p.stderr
