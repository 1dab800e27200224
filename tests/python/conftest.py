"""Shared fixtures for the Python shim tests.

Unit tests run the shim against ``mock_native.c`` (the same C ABI, recording in memory), built
here with the system C compiler and selected through ``MS_SERVICE_PROFILER_LIB`` before the
package is imported.  Tests against the real Rust library run in subprocesses
(test_native_lib.py).
"""
import ctypes
import os
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

_build_dir = tempfile.mkdtemp(prefix="msp-mock-")
MOCK_LIB = os.path.join(_build_dir, "libmsp_mock.so")
subprocess.check_call(["cc", "-O2", "-shared", "-fPIC", "-o", MOCK_LIB,
                       os.path.join(HERE, "mock_native.c")])
os.environ["MS_SERVICE_PROFILER_LIB"] = MOCK_LIB
if os.environ.get("MSP_PURE_PYTHON") == "1":   # exercise the fallback without the C extension
    sys.modules["ms_service_profiler._fast"] = None
os.environ.pop("SERVICE_PROF_CONFIG_PATH", None)
os.environ.pop("PROFILING_SYMBOLS_PATH", None)

try:
    import ms_service_profiler  # noqa: F401  (the installed package)
except ImportError:  # running from a checkout without `pip install .`
    sys.path.insert(0, os.path.join(REPO, "python_shim"))
    import ms_service_profiler  # noqa: F401

from ms_service_profiler._native import native  # noqa: E402

assert native.path == MOCK_LIB, native.path


class Mock:
    def __init__(self):
        self.lib = ctypes.CDLL(MOCK_LIB)
        self.lib.mock_set_word.argtypes = [ctypes.c_uint64]
        self.lib.mock_count.restype = ctypes.c_size_t
        self.lib.mock_record.restype = ctypes.c_size_t
        self.lib.mock_record.argtypes = [ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        self.lib.mock_meta.restype = ctypes.c_char_p
        self.gen = 1

    def set(self, enabled=True, level=20, domain_filter=False, bump=True):
        if bump:
            self.gen += 1
        w = (1 if enabled else 0) | (2 if domain_filter else 0) | ((level & 0xFF) << 8) | (self.gen << 32)
        self.lib.mock_set_word(w)

    def reset(self):
        self.lib.mock_reset()

    def records(self):
        out = []
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(self.lib.mock_count()):
            n = self.lib.mock_record(i, buf, len(buf))
            kind, dom, name, a, b, js = buf.raw[:n].decode().split("\t", 5)
            import json
            out.append({"kind": {"0": "event", "1": "metric", "2": "span", "3": "link"}[kind],
                        "domain": dom, "name": name, "start": int(a), "end": int(b),
                        "attrs": json.loads(js) if js else {}})
        return out

    def spans(self, name=None):
        return [r for r in self.records() if r["kind"] == "span" and (name is None or r["name"] == name)]

    def meta(self):
        return self.lib.mock_meta().decode()

    def counters(self):
        return native.counters()


_mock = Mock()


@pytest.fixture
def mock():
    _mock.reset()
    _mock.set(enabled=True)
    yield _mock
    _mock.set(enabled=False)
    _mock.reset()


@pytest.fixture
def synth(tmp_path, monkeypatch):
    """Write synthetic modules: synth('pkgname.mod', 'source') -> path; cleaned up afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created = []

    def make(modname, source):
        parts = modname.split(".")
        d = tmp_path
        for p in parts[:-1]:
            d = d / p
            d.mkdir(exist_ok=True)
            init = d / "__init__.py"
            if not init.exists():
                init.write_text("")
        f = d / (parts[-1] + ".py")
        f.write_text(source)
        created.append(parts[0])
        return str(f)

    yield make
    for name in list(sys.modules):
        if any(name == c or name.startswith(c + ".") for c in created):
            del sys.modules[name]


@pytest.fixture
def patcher():
    from ms_service_profiler.patcher.hooks import Patcher
    p = Patcher()
    yield p
    p.unhook_all()


def entries_from_yaml(text, source="test.yaml"):
    import yaml
    from ms_service_profiler.patcher.symbols import parse_entries
    return parse_entries(yaml.safe_load(text), source=source)
