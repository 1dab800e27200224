"""Activation: the vllm.general_plugins entry point, ms_service_profiler.activate and .run."""
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import MOCK_LIB

CHECK = textwrap.dedent('''
    import ctypes, sys
    sys.path.insert(0, {moddir!r})
    {activate}
    import target_mod
    from ms_service_profiler.patcher.hooks import patcher
    from ms_service_profiler._native import native
    lib = native.lib
    lib.mock_set_word.argtypes = [ctypes.c_uint64]
    lib.mock_set_word(1 | (20 << 8) | (7 << 32))
    target_mod.f()
    print("HOOKED", sorted(patcher.hooked()), "RECORDS", lib.mock_count())
''')


def run_py(code, tmp_path, env_extra, args=()):
    env = dict(os.environ)
    env["MS_SERVICE_PROFILER_LIB"] = MOCK_LIB
    env.pop("SERVICE_PROF_CONFIG_PATH", None)
    env.update(env_extra)
    return subprocess.run([sys.executable] + list(args or ["-c", code]), env=env, capture_output=True,
                          text=True, cwd=str(tmp_path), timeout=120)


@pytest.fixture
def setup_files(tmp_path):
    moddir = tmp_path / "mods"
    moddir.mkdir()
    (moddir / "target_mod.py").write_text("def f():\n    return 1\n")
    syms = tmp_path / "syms.yaml"
    syms.write_text("- {symbol: 'target_mod:f', name: f}\n")
    return moddir, syms


def test_entry_point_registered():
    from importlib.metadata import entry_points
    try:
        eps = entry_points(group="vllm.general_plugins")
    except TypeError:  # Python < 3.10
        eps = entry_points().get("vllm.general_plugins", [])
    mine = [ep for ep in eps if ep.name == "msserviceprofiler"]
    if not mine:
        pytest.skip("package not installed with pip (entry points unavailable)")
    assert mine[0].value == "ms_service_profiler.patcher.vllm:register_service_profiler"
    assert callable(mine[0].load())


@pytest.mark.parametrize("activate", [
    "from ms_service_profiler.patcher.vllm import register_service_profiler as r; r(); r()",
    "import ms_service_profiler.activate",
])
def test_activation_with_config(tmp_path, setup_files, activate):
    moddir, syms = setup_files
    code = CHECK.format(moddir=str(moddir), activate=activate)
    out = run_py(code, tmp_path, {"SERVICE_PROF_CONFIG_PATH": str(tmp_path / "prof.json"),
                                  "PROFILING_SYMBOLS_PATH": str(syms)})
    assert out.returncode == 0, out.stderr
    assert "HOOKED ['target_mod.f'] RECORDS 1" in out.stdout, out.stdout + out.stderr


def test_no_config_env_means_nothing(tmp_path, setup_files):
    moddir, syms = setup_files
    code = CHECK.format(moddir=str(moddir), activate="import ms_service_profiler.activate")
    out = run_py(code, tmp_path, {"PROFILING_SYMBOLS_PATH": str(syms)})
    assert out.returncode == 0, out.stderr
    assert "HOOKED [] RECORDS 0" in out.stdout


def test_registry_subprocess_skipped(monkeypatch):
    from ms_service_profiler.patcher import vllm as plug
    monkeypatch.setattr(sys, "argv", ["/x/vllm/model_executor/models/registry.py"])
    assert plug._is_registry_subprocess()
    monkeypatch.setattr(sys, "argv", ["vllm", "serve"])
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "vllm.model_executor.models.registry"],
                        raising=False)
    assert plug._is_registry_subprocess()
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "vllm.entrypoints.cli.main"], raising=False)
    assert not plug._is_registry_subprocess()


def test_registry_subprocess_installs_nothing(tmp_path, setup_files):
    moddir, syms = setup_files
    code = CHECK.format(moddir=str(moddir), activate=(
        "sys.argv = ['/v/vllm/model_executor/models/registry.py']; import ms_service_profiler.activate"))
    out = run_py(code, tmp_path, {"SERVICE_PROF_CONFIG_PATH": str(tmp_path / "prof.json"),
                                  "PROFILING_SYMBOLS_PATH": str(syms)})
    assert "HOOKED [] RECORDS 0" in out.stdout, out.stdout + out.stderr


def test_run_module(tmp_path, setup_files):
    moddir, syms = setup_files
    script = tmp_path / "app.py"
    script.write_text(CHECK.format(moddir=str(moddir), activate="") +
                      "print('ARGS', sys.argv[1:], __name__)\n")
    out = run_py(None, tmp_path, {"SERVICE_PROF_CONFIG_PATH": str(tmp_path / "prof.json"),
                                  "PROFILING_SYMBOLS_PATH": str(syms)},
                 args=["-m", "ms_service_profiler.run", str(script), "--flag", "x"])
    assert out.returncode == 0, out.stderr
    assert "HOOKED ['target_mod.f'] RECORDS 1" in out.stdout
    assert "ARGS ['--flag', 'x'] __main__" in out.stdout


def test_plugin_never_raises(tmp_path):
    code = ("import ms_service_profiler.patcher as p\n"
            "def bad(): raise RuntimeError('x')\n"
            "p.enable_hooks = bad\n"
            "from ms_service_profiler.patcher.vllm import register_service_profiler as r\n"
            "r(); print('SURVIVED')\n")
    out = run_py(code, tmp_path, {"SERVICE_PROF_CONFIG_PATH": str(tmp_path / "prof.json")})
    assert "SURVIVED" in out.stdout, out.stderr
