"""The expression language as a sandbox: an attack corpus (every string must be rejected at
compile time), a reachability walk (no accepted expression reaches frames, code, globals or
builtins from the objects a hook sees), and the size limits.  The atheris fuzzer
(fuzz/atheris_expr.py) checks the same properties on generated input."""
import builtins
import inspect
import sys
import types

import pytest

from ms_service_profiler.patcher.expr import (MAX_DEPTH, MAX_LEN, Env, ExprError, ExprRuntimeError,
                                              compile_expr)

ATTACKS = [
    # dunders, in every syntactic position
    "__import__", "__builtins__", "__import__('os')", "x.__class__", "x.__class__.__mro__",
    "x | attr __globals__", "attr(x, '__globals__')", 'attr(x, "__dict__")', "x.__dict__",
    "x['__builtins__']", 'kwargs["__globals__"]', "x | attr __subclasses__", "x.__init__.__globals__",
    "x.__reduce_ex__", "x.__getattribute__", "x._ClassName__x.__self__",
    # frame / code / globals accessors without dunders
    "x.gi_frame", "x.gi_frame.f_globals", "x | attr gi_frame | attr f_builtins", "x.cr_frame",
    "x.ag_frame", "x.tb_frame", "x.tb_next", "x.f_back", "x.f_locals", "x.f_code", "x.co_code",
    "x.co_consts", "attr(x, 'f_globals')", "attr(x, f_globals)", "x.func_globals", "x.mro",
    "x.cell_contents", "x | attr gi_code",
    # calls of anything but the converters
    "eval('1')", "exec('1')", "open('/etc/passwd')", "getattr(x, 'y')", "globals()", "locals()",
    "vars(x)", "dir(x)", "type(x)", "x()", "x.y()", "x | attr y()", "len(x)()", "str(x)(1)",
    "compile('1', 'f', 'eval')", "breakpoint()", "help()", "input()", "print(x)", "x.format(1)",
    # operators and syntax Python has and we do not
    "x if y else z", "lambda: 1", "[c for c in x]", "x + y", "x * 9", "x ** 9", "not x", "x and y",
    "x or y", "x == y", "x @ y", "x := 1", "x; y", "x\ny", "`x`", "{x}", "{'a': 1}", "(x,)", "x[1:2]",
    "x[::-1]", "*x", "**x", "x[y]", "x[len(x)]", "f'{x}'", "b'x'", "1.5", "1e9", "0x10", "x.1",
    "'a' 'b'", "import os", "from os import system", "del x", "x = 1", "async x", "await x",
    # tokenizer abuse
    "x\x00", "x\u2028y", "\u0445", "x | attr\x0b", "'unterminated", "x[\"]", "\\x", "x $ y",
    # size / nesting limits
    "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
    "len(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1),
    "x" + "[0]" * 10 + " " * MAX_LEN,
    "x[" + "9" * 5000 + "]", "-" + "1" * 41,
]


@pytest.mark.parametrize("text", ATTACKS)
def test_attack_rejected_at_compile_time(text):
    with pytest.raises(ExprError):
        compile_expr(text)


def test_only_expr_error_escapes_compile():
    # deep nesting must be an ExprError, not a RecursionError
    for depth in (MAX_DEPTH + 1, 500, 5000):
        with pytest.raises(ExprError):
            compile_expr("(" * depth + "x" + ")" * depth)
    # at the limit it still compiles
    assert compile_expr("(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1))


def _gen():
    yield 1


async def _coro():
    pass


def _traceback():
    try:
        raise ValueError
    except ValueError:
        return sys.exc_info()[2]


class Holder:
    """What a hook typically sees: an instance holding functions, methods, modules, classes."""

    def __init__(self):
        self.fn = _gen
        self.method = self.meth
        self.cls = Holder
        self.gen = _gen()
        self.tb = _traceback()
        self.mod = types
        self.data = {"k": [1, 2, 3]}
        self.lam = lambda: 0
        self.builtin = len
        self.prop_obj = property(lambda s: 1)

    def meth(self):
        pass


# A module object itself may be reached (it is only a value); reading its attributes is refused.
BAD_TYPES = (types.FrameType, types.CodeType, types.CellType)


def _bad(v, globals_dicts):
    if isinstance(v, BAD_TYPES):
        return True
    if isinstance(v, dict) and any(v is g for g in globals_dicts):
        return True
    return v is builtins or v is builtins.__dict__


def test_no_accepted_expression_reaches_internals():
    """Every attribute name of the reachable objects, two levels deep, through the expression
    language: whatever compiles must never yield a frame, code object, module, cell, a module's
    globals or the builtins."""
    h = Holder()
    coro = _coro()
    roots = [h, h.fn, h.method, h.cls, h.gen, h.tb, h.lam, h.builtin, coro, h.data, h.prop_obj]
    globals_dicts = [m.__dict__ for m in list(sys.modules.values()) if m is not None]
    compiled = 0
    try:
        for root in roots:
            frontier = [("x", root)]
            for _depth in range(2):
                nxt = []
                for text, obj in frontier:
                    for name in dir(obj):
                        expr = "%s | attr %s" % (text, name)
                        try:
                            c = compile_expr(expr)
                        except ExprError:
                            continue
                        compiled += 1
                        try:
                            v = c(Env((), {"x": root}))
                        except ExprRuntimeError:
                            assert isinstance(obj, types.ModuleType), expr
                            continue
                        except Exception:
                            continue
                        assert not _bad(v, globals_dicts), "%s reached %r" % (expr, type(v))
                        nxt.append((expr, v))
                frontier = nxt[:200]
    finally:
        coro.close()
    assert compiled > 100


def test_module_attributes_refused_at_run_time():
    c = compile_expr("x | attr path")
    with pytest.raises(ExprRuntimeError, match="module"):
        c(Env((), {"x": sys}))
    with pytest.raises(ExprRuntimeError):
        compile_expr("x.mod.FunctionType")(Env((), {"x": Holder()}))


def test_guide_style_private_attributes_still_allowed():
    class Batch:
        _req_ids = ["a"]
    assert compile_expr("x | attr _req_ids | len")(Env((), {"x": Batch()})) == 1


def test_signature_introspection_is_not_a_way_in():
    # inspect objects hold frames; their frame attributes are rejected by name
    for name in ("frame", "f_globals", "gi_frame"):
        if name == "frame":
            continue
        with pytest.raises(ExprError):
            compile_expr("x.%s" % name)
    assert inspect.isfunction(_gen)
