"""A custom handler is imported only from the dotted module path the YAML names, resolved through
sys.path: never from a file path, a relative name, the YAML's own directory or the working
directory (unless the user put those on sys.path)."""
import os
import sys

import pytest

from ms_service_profiler.patcher.hooks import resolve_handler
from ms_service_profiler.patcher.symbols import Entry

PLANTED = '''
import os
open(os.environ["MSP_PLANT_MARKER"], "w").write("imported")
def f(original, *a, **k):
    return original(*a, **k)
'''


@pytest.fixture
def planted(tmp_path, monkeypatch):
    (tmp_path / "msp_planted_handler.py").write_text(PLANTED)
    (tmp_path / "pkg_evil").mkdir()
    (tmp_path / "pkg_evil" / "__init__.py").write_text(PLANTED)
    marker = tmp_path / "marker"
    monkeypatch.setenv("MSP_PLANT_MARKER", str(marker))
    monkeypatch.chdir(tmp_path)   # the YAML and the working directory hold the planted module
    for m in ("msp_planted_handler", "pkg_evil"):
        sys.modules.pop(m, None)
    if "" in sys.path:
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    return tmp_path, marker


@pytest.mark.parametrize("handler", [
    "msp_planted_handler:f", "pkg_evil:f",                    # not on sys.path: not found
    "./msp_planted_handler.py:f", "msp_planted_handler.py:f",  # file paths are not module names
    "/tmp/msp_planted_handler:f", "../msp_planted_handler:f", ".msp_planted_handler:f",
    "..pkg_evil:f", "pkg_evil :f", "pkg-evil:f", "pkg_evil:f()", "pkg_evil:__init__",
])
def test_planted_module_is_never_imported(planted, handler):
    _tmp, marker = planted
    assert resolve_handler(Entry("m:x", handler)) is None     # falls back to the timer
    assert not marker.exists(), "%s imported a module from outside sys.path" % handler


def test_module_on_sys_path_is_imported(planted, monkeypatch):
    tmp, marker = planted
    monkeypatch.syspath_prepend(str(tmp))                      # the user's explicit choice
    h = resolve_handler(Entry("m:x", "msp_planted_handler:f"))
    assert callable(h) and h.__module__ == "msp_planted_handler"
    assert os.path.dirname(sys.modules["msp_planted_handler"].__file__) == str(tmp)
    assert marker.read_text() == "imported"
    sys.modules.pop("msp_planted_handler", None)
