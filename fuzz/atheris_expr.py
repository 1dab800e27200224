#!/usr/bin/env python3
"""atheris fuzzer of the attribute expression language (python_shim/.../patcher/expr.py).

Properties checked on every input:
  * ``compile_expr`` raises nothing but ``ExprError`` (no RecursionError, ValueError, ...);
  * a compiled expression evaluated against objects a hook could see (an instance holding a
    function, generator, traceback, module, class, dicts) never yields a frame, code object,
    cell, a module's globals or the builtins, and raises only ordinary exceptions (which the
    hook layer counts as expression errors).

Run (from the repository root):
    python3 -m venv /tmp/atheris && /tmp/atheris/bin/pip install atheris==3.1.0
    PYTHONPATH=python_shim /tmp/atheris/bin/python fuzz/atheris_expr.py \\
        fuzz/corpus/expr -max_total_time=600 -jobs=1
The seeds in fuzz/corpus/expr/ are the user guide's examples and the attack corpus.
"""
import builtins
import os
import sys
import types

import atheris

with atheris.instrument_imports():
    from ms_service_profiler.patcher import expr as E


def _gen():
    yield 1


def _tb():
    try:
        raise KeyError("k")
    except KeyError:
        return sys.exc_info()[2]


class Obj:
    _req_ids = ["a", "b"]
    device = "cpu"

    def __init__(self):
        self.fn = _gen
        self.gen = _gen()
        self.tb = _tb()
        self.mod = os
        self.cls = Obj
        self.data = {"k": [1, 2, 3], "s": "x" * 10}
        self.meth = self.__init__


OBJ = Obj()
ENV = E.Env((OBJ, [1, 2, 3], "s"), {"x": OBJ, "n": 3, "d": OBJ.data}, ret=[OBJ, 5])
GLOBALS = [m.__dict__ for m in list(sys.modules.values()) if m is not None]
BAD = (types.FrameType, types.CodeType, types.CellType)


def check(text):
    try:
        c = E.compile_expr(text)
    except E.ExprError:
        return
    try:
        v = c(ENV)
    except Exception:  # counted as an expression error by the hook layer (hooks.py: emit)
        return
    if isinstance(v, BAD) or v is builtins or v is builtins.__dict__ or (
            isinstance(v, dict) and any(v is g for g in GLOBALS)):
        raise AssertionError("%r reached %r" % (text, type(v)))


def TestOneInput(data):
    fdp = atheris.FuzzedDataProvider(data)
    check(fdp.ConsumeUnicodeNoSurrogates(len(data)))


if __name__ == "__main__":
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 3000))
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
