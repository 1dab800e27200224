"""The patcher on synthetic modules: every callable form, exceptions, restore, no double wrap,
import-time hooking, patterns, versions, caller_filter, domain filter, disabled cost path."""
import asyncio
import importlib.util
import inspect
import logging
import sys
import types

import pytest

from conftest import entries_from_yaml
from ms_service_profiler.patcher import hooks

SRC = '''
import contextlib

CALLS = []

def func(a, b=2):
    CALLS.append(("func", a, b))
    return a + b

def boom(x):
    raise ValueError("boom %s" % x)

async def afunc(x, delay=0):
    import asyncio
    await asyncio.sleep(delay)
    return x * 2

async def aboom():
    raise KeyError("k")

def gen(n):
    got = []
    for i in range(n):
        s = yield i
        if s is not None:
            got.append(s)
    return got

async def agen(n):
    for i in range(n):
        s = yield i
        if s == "stop":
            return

@contextlib.contextmanager
def cm(tag):
    CALLS.append(("enter", tag))
    try:
        yield tag.upper()
    finally:
        CALLS.append(("exit", tag))

@contextlib.asynccontextmanager
async def acm(tag):
    yield tag

class Base:
    """Base doc."""
    def __init__(self, v=1):
        self.v = v
    def meth(self, x):
        """meth doc"""
        return self.v + x
    def over(self):
        return "base"
    @classmethod
    def cmeth(cls, y):
        return (cls.__name__, y)
    @staticmethod
    def smeth(z):
        return z * 3
    async def ameth(self):
        return self.v

class Sub(Base):
    def over(self):
        return "sub+" + super().over()

class Other(Base):
    pass

class Outer:
    class Inner:
        def m(self):
            return "inner"
'''


@pytest.fixture
def mod(synth):
    synth("synthpkg.mod", SRC)
    import synthpkg.mod as m
    return m


def apply(patcher, text):
    patcher.apply(entries_from_yaml(text))
    return patcher


# -- basic forms ------------------------------------------------------------------------------

def test_plain_function_span(mod, patcher, mock):
    apply(patcher, "- {symbol: 'synthpkg.mod:func', domain: D, name: F}")
    assert mod.func(1) == 3
    (s,) = mock.spans()
    assert (s["domain"], s["name"]) == ("D", "F") and s["end"] >= s["start"] > 0
    assert mod.func.__name__ == "func" and mod.func.__wrapped__ is not None
    assert inspect.signature(mod.func) == inspect.signature(mod.func.__wrapped__)


def test_default_name_and_domain(mod, patcher, mock):
    apply(patcher, "- symbol: synthpkg.mod:Outer.Inner.m")
    assert mod.Outer.Inner().m() == "inner"
    (s,) = mock.spans()
    assert (s["domain"], s["name"]) == ("Default", "Inner.m")


def test_method_classmethod_staticmethod(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth', name: meth}
- {symbol: 'synthpkg.mod:Base.cmeth', name: cmeth}
- {symbol: 'synthpkg.mod:Base.smeth', name: smeth}
""")
    b = mod.Base(5)
    assert b.meth(1) == 6
    assert mod.Base.meth(b, 2) == 7
    assert mod.Base.cmeth(1) == ("Base", 1)
    assert mod.Sub.cmeth(2) == ("Sub", 2)          # polymorphism kept
    assert mod.Sub(1).cmeth(3) == ("Sub", 3)
    assert mod.Base.smeth(2) == 6 and b.smeth(3) == 9
    assert isinstance(mod.Base.__dict__["cmeth"], classmethod)
    assert isinstance(mod.Base.__dict__["smeth"], staticmethod)
    names = [s["name"] for s in mock.spans()]
    assert names == ["meth", "meth", "cmeth", "cmeth", "cmeth", "smeth", "smeth"]
    assert mod.Base.meth.__doc__ == "meth doc"


def test_exception_closes_span_with_error(mod, patcher, mock):
    apply(patcher, "- {symbol: 'synthpkg.mod:boom', name: boom}")
    with pytest.raises(ValueError, match="boom 3"):
        mod.boom(3)
    (s,) = mock.spans()
    assert s["attrs"] == {"error": "ValueError"}


def test_async_span_covers_awaited_execution(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:afunc', name: afunc}
- {symbol: 'synthpkg.mod:aboom', name: aboom}
- {symbol: 'synthpkg.mod:Base.ameth', name: ameth}
""")
    assert inspect.iscoroutinefunction(mod.afunc)
    coro = mod.afunc(2, delay=0.05)
    assert mock.spans() == []                      # creating the coroutine records nothing
    assert asyncio.run(coro) == 4
    (s,) = mock.spans()
    assert s["end"] - s["start"] >= 40_000_000
    with pytest.raises(KeyError):
        asyncio.run(mod.aboom())
    assert mock.spans("aboom")[0]["attrs"] == {"error": "KeyError"}
    assert asyncio.run(mod.Base(7).ameth()) == 7
    assert len(mock.spans("ameth")) == 1


def test_generator_span_covers_iteration_send_throw_close(mod, patcher, mock):
    apply(patcher, "- {symbol: 'synthpkg.mod:gen', name: gen}")
    assert inspect.isgeneratorfunction(mod.gen)
    assert list(mod.gen(3)) == [0, 1, 2]
    assert len(mock.spans()) == 1
    g = mod.gen(3)
    assert next(g) == 0 and g.send("a") == 1 and g.send("b") == 2
    with pytest.raises(StopIteration) as si:
        g.send("c")
    assert si.value.value == ["a", "b", "c"]       # return value preserved
    g = mod.gen(5)
    next(g)
    g.close()                                      # early close: span ended, no error
    g = mod.gen(5)
    next(g)
    with pytest.raises(RuntimeError):
        g.throw(RuntimeError("x"))
    spans = mock.spans()
    assert len(spans) == 4
    assert spans[2]["attrs"] == {} and spans[3]["attrs"] == {"error": "RuntimeError"}


def test_async_generator(mod, patcher, mock):
    apply(patcher, "- {symbol: 'synthpkg.mod:agen', name: agen}")
    assert inspect.isasyncgenfunction(mod.agen)

    async def run():
        out = [x async for x in mod.agen(3)]
        g = mod.agen(10)
        first = await g.__anext__()
        second = await g.asend("x")
        with pytest.raises(StopAsyncIteration):
            await g.asend("stop")
        g2 = mod.agen(10)
        await g2.__anext__()
        await g2.aclose()
        return out, first, second
    assert asyncio.run(run()) == ([0, 1, 2], 0, 1)
    assert len(mock.spans("agen")) == 3


def test_contextmanager_span_covers_block(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:cm', name: cm}
- {symbol: 'synthpkg.mod:acm', name: acm}
""")
    import time
    with mod.cm("t") as v:
        assert v == "T"
        time.sleep(0.02)
    (s,) = mock.spans()
    assert s["end"] - s["start"] >= 15_000_000
    with pytest.raises(ZeroDivisionError):
        with mod.cm("e"):
            1 / 0
    assert mock.spans()[-1]["attrs"] == {"error": "ZeroDivisionError"}

    async def arun():
        async with mod.acm("q") as v:
            return v
    assert asyncio.run(arun()) == "q"
    assert len(mock.spans("acm")) == 1


# -- restore, double wrap, inheritance ---------------------------------------------------------

def test_unhook_restores_exact_objects(mod, patcher, mock):
    before = {k: mod.Base.__dict__[k] for k in ("meth", "cmeth", "smeth", "ameth")}
    fbefore = mod.func
    apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth'}
- {symbol: 'synthpkg.mod:Base.cmeth'}
- {symbol: 'synthpkg.mod:Base.smeth'}
- {symbol: 'synthpkg.mod:Base.ameth'}
- {symbol: 'synthpkg.mod:func'}
""")
    assert all(mod.Base.__dict__[k] is not v for k, v in before.items())
    patcher.unhook_all()
    assert all(mod.Base.__dict__[k] is v for k, v in before.items())
    assert mod.func is fbefore


def test_no_double_wrap_inherited_and_alias(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth', name: first}
- {symbol: 'synthpkg.mod:Sub.meth', name: second}
- {symbol: 'synthpkg.mod:Other.meth', name: first}
""")
    # all three resolve to Base.meth: one target, chained in YAML order (duplicates merged)
    assert patcher.hooked() == {"Base.meth": ["synthpkg.mod:Base.meth", "synthpkg.mod:Sub.meth",
                                              "synthpkg.mod:Other.meth"]}
    assert "meth" not in mod.Sub.__dict__
    mod.Sub(1).meth(1)
    names = [s["name"] for s in mock.spans()]
    assert sorted(names) == ["first", "first", "second"]
    # applying the same config again changes nothing
    obj = mod.Base.__dict__["meth"]
    apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth', name: first}
- {symbol: 'synthpkg.mod:Sub.meth', name: second}
- {symbol: 'synthpkg.mod:Other.meth', name: first}
""")
    assert mod.Base.__dict__["meth"] is obj


def test_chain_order_first_entry_outermost(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:func', name: outer}
- {symbol: 'synthpkg.mod:func', name: inner}
""")
    mod.func(1)
    inner, outer = mock.spans()                   # inner ends first
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert outer["start"] <= inner["start"] and inner["end"] <= outer["end"]


def test_subclass_override_hooked_separately(mod, patcher, mock):
    apply(patcher, "- {symbol: 'synthpkg.mod:Base.over', name: base_over}")
    assert mod.Sub().over() == "sub+base"
    assert [s["name"] for s in mock.spans()] == ["base_over"]   # via super() only
    patcher.unhook_all()
    mock.reset()
    apply(patcher, "- {symbol: 'synthpkg.mod:Sub.over', name: sub_over}")
    assert mod.Base().over() == "base"
    assert mock.spans() == []
    mod.Sub().over()
    assert [s["name"] for s in mock.spans()] == ["sub_over"]


def test_second_patcher_does_not_double_wrap(mod, patcher, mock):
    from ms_service_profiler.patcher.hooks import Patcher
    apply(patcher, "- {symbol: 'synthpkg.mod:func', name: A}")
    p2 = Patcher()
    try:
        apply(p2, "- {symbol: 'synthpkg.mod:func', name: B}")
        mod.func(1)
        assert [s["name"] for s in mock.spans()] == ["B"]
    finally:
        p2.unhook_all()


def test_unresolvable_symbols_warn_and_skip(mod, patcher, mock, caplog):
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        apply(patcher, """
- {symbol: 'synthpkg.mod:NoSuch.meth'}
- {symbol: 'synthpkg.mod:Base.nosuch'}
- {symbol: 'synthpkg.mod:nosuchfunc'}
- {symbol: 'no_such_top_level_pkg.mod:f'}
- {symbol: 'synthpkg.nosuchmodule:f'}
- {symbol: 'synthpkg.mod:func', name: ok}
""")
    assert "NoSuch" in caplog.text and "nosuch" in caplog.text and "nosuchfunc" in caplog.text
    assert "no_such_top_level_pkg.mod" in caplog.text and "synthpkg.nosuchmodule" in caplog.text
    assert sorted(patcher.pending) == ["no_such_top_level_pkg.mod", "synthpkg.nosuchmodule"]
    mod.func(1)
    assert [s["name"] for s in mock.spans()] == ["ok"]


# -- import hook ----------------------------------------------------------------------------------

def test_post_import_hook_patches_before_importers_bind(synth, patcher, mock):
    synth("lazypkg.target", "def f(x):\n    return x + 1\nclass C:\n    def m(self):\n        return 1\n")
    synth("lazypkg.user", "from lazypkg.target import f\nfrom lazypkg.target import C\n"
                          "def call():\n    return f(1), C().m()\n")
    apply(patcher, """
- {symbol: 'lazypkg.target:f', name: f}
- {symbol: 'lazypkg.target:C.m', name: m}
""")
    assert "lazypkg.target" not in sys.modules
    assert patcher.hooked() == {}
    import lazypkg.user
    assert lazypkg.user.call() == (2, 1)
    assert sorted(s["name"] for s in mock.spans()) == ["f", "m"]
    assert "f" in [n.split(".")[-1] for n in patcher.hooked()]
    patcher.unhook_all()
    assert hooks.patcher.finder not in sys.meta_path or hooks.patcher is not patcher


def test_already_imported_alias_bindings_patched(synth, patcher, mock):
    synth("aliaspkg.target", "def f(x):\n    return x\n")
    synth("aliaspkg.user", "from aliaspkg.target import f\ndef call():\n    return f(5)\n")
    import aliaspkg.user
    orig = aliaspkg.user.f
    apply(patcher, "- {symbol: 'aliaspkg.target:f', name: f}")
    assert aliaspkg.user.call() == 5
    assert len(mock.spans()) == 1
    patcher.unhook_all()
    assert aliaspkg.user.f is orig


# -- patterns -----------------------------------------------------------------------------------

def test_pattern_with_class_glob(synth, patcher, mock):
    synth("models.llama", "class LlamaModel:\n    def embed_multimodal(self):\n        return 1\n"
                          "class Helper:\n    def embed_multimodal(self):\n        return 2\n")
    synth("models.qwen", "from models.llama import LlamaModel\n"
                         "class QwenModel(LlamaModel):\n    pass\n"
                         "class QwenVL:\n    def embed_multimodal(self):\n        return 3\n")
    import models.llama
    apply(patcher, "- {symbol: 'models.*:*Model.embed_multimodal', name: mm, domain: Multimodal}")
    import models.qwen  # imported after: hooked by the import hook
    assert models.llama.LlamaModel().embed_multimodal() == 1
    assert models.llama.Helper().embed_multimodal() == 2          # class glob not matched
    assert models.qwen.QwenVL().embed_multimodal() == 3           # not *Model
    assert models.qwen.QwenModel().embed_multimodal() == 1        # inherited: LlamaModel's hook
    assert [s["name"] for s in mock.spans()] == ["mm", "mm"]


def test_pattern_all_classes(synth, patcher, mock):
    synth("mp.a", "class A:\n    def go(self):\n        return 1\nclass B:\n    def go(self):\n        return 2\n")
    import mp.a
    apply(patcher, "- {symbol: 'mp.*:*.go', name: go}")
    mp.a.A().go()
    mp.a.B().go()
    assert len(mock.spans()) == 2


# -- versions -----------------------------------------------------------------------------------

def test_version_bounds_applied_to_concrete_and_patterns(mod, patcher, mock, monkeypatch):
    fake = types.ModuleType("vllm")
    fake.__version__ = "0.32.0+cpu"
    monkeypatch.setitem(sys.modules, "vllm", fake)
    apply(patcher, """
- {symbol: 'synthpkg.mod:func', name: ok, min_version: "0.9.1", max_version: "0.32.0"}
- {symbol: 'synthpkg.mod:func', name: old, max_version: "0.11.0"}
- {symbol: 'synthpkg.mod:func', name: new, min_version: "0.33.0"}
- {symbol: 'synthpkg.*:Base.meth', name: pat_old, max_version: "0.10"}
""")
    mod.func(1)
    mod.Base().meth(1)
    assert [s["name"] for s in mock.spans()] == ["ok"]


# -- attributes, caller filter, domain filter, disabled ----------------------------------------

def test_timer_attributes(mod, patcher, mock, caplog):
    apply(patcher, """
- symbol: synthpkg.mod:Base.meth
  name: meth
  attributes:
    - {name: x, expr: x}
    - {name: v, expr: this.v}
    - {name: dev, expr: "args[0] | attr v | str"}
    - {name: ret, expr: "return | str"}
    - {name: bad, expr: "this.nope"}
    - {name: none, expr: "this.maybe"}
    - {name: obj, expr: "this"}
""")
    b = mod.Base(4)
    b.maybe = None
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        assert b.meth(2) == 6
        b.meth(3)
    s1, s2 = mock.spans()
    assert s1["attrs"]["x"] == 2 and s1["attrs"]["v"] == 4 and s1["attrs"]["dev"] == "4"
    assert s1["attrs"]["ret"] == "6"
    assert "bad" not in s1["attrs"] and "none" not in s1["attrs"]
    assert s1["attrs"]["obj"].startswith("<synthpkg.mod.Base object")    # non-JSON -> str()
    assert caplog.text.count("this.nope") == 1                            # warned once
    assert mock.counters()["expr_errors"] == 2                            # counted per call


def test_attributes_on_exception_keep_non_return(mod, patcher, mock):
    apply(patcher, """
- symbol: synthpkg.mod:boom
  attributes: [{name: x, expr: x}, {name: r, expr: return}]
""")
    with pytest.raises(ValueError):
        mod.boom(9)
    assert mock.spans()[0]["attrs"] == {"x": 9, "error": "ValueError"}


def test_caller_filter(synth, patcher, mock):
    synth("cf.target", "def f():\n    return 1\n")
    synth("cf.callers", "from cf import target\n"
                        "def allowed():\n    return target.f()\n"
                        "def other():\n    return target.f()\n")
    import cf.callers
    apply(patcher, "- {symbol: 'cf.target:f', name: f, caller_filter: 'cf.callers:allowed'}")
    cf.callers.allowed()
    cf.callers.other()
    assert len(mock.spans()) == 1
    patcher.unhook_all()
    apply(patcher, "- {symbol: 'cf.target:f', name: g, caller_filter: '*other'}")
    cf.callers.allowed()
    cf.callers.other()
    assert [s["name"] for s in mock.spans()] == ["f", "g"]


def test_domain_filter_and_level(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:func', domain: AllowedDomain, name: pass_}
- {symbol: 'synthpkg.mod:Base.meth', domain: Blocked, name: blocked}
- {symbol: 'synthpkg.mod:boom', domain: Blocked, name: blocked2, attributes: [{name: x, expr: x}]}
""")
    mock.set(enabled=True, domain_filter=True)
    mod.func(1)
    mod.Base().meth(1)
    with pytest.raises(ValueError):
        mod.boom(1)
    assert [s["name"] for s in mock.spans()] == ["pass_"]
    mock.set(enabled=True, level=10)           # profiler_level below INFO: timers off
    mod.func(1)
    assert len(mock.spans()) == 1


def test_disabled_records_nothing_and_behaves(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:func'}
- {symbol: 'synthpkg.mod:gen'}
- {symbol: 'synthpkg.mod:afunc'}
- {symbol: 'synthpkg.mod:cm'}
- {symbol: 'synthpkg.mod:Base.meth', attributes: [{name: x, expr: x}]}
""")
    mock.set(enabled=False)
    assert mod.func(1, b=5) == 6
    assert list(mod.gen(2)) == [0, 1]
    assert asyncio.run(mod.afunc(3)) == 6
    with mod.cm("z") as v:
        assert v == "Z"
    assert mod.Base(1).meth(1) == 2
    assert mock.records() == []


# -- reload -----------------------------------------------------------------------------------

def test_reload_diffs_whole_entries(mod, patcher, mock):
    apply(patcher, """
- {symbol: 'synthpkg.mod:func', name: one, domain: D1}
- {symbol: 'synthpkg.mod:Base.meth', name: m}
""")
    kept = mod.Base.__dict__["meth"]
    orig_func = mod.func.__wrapped__
    apply(patcher, """
- {symbol: 'synthpkg.mod:func', name: two, domain: D2, attributes: [{name: a, expr: a}]}
- {symbol: 'synthpkg.mod:Base.meth', name: m}
""")
    assert mod.Base.__dict__["meth"] is kept          # unchanged entry: untouched
    mod.func(7)
    (s,) = mock.spans()
    assert (s["name"], s["domain"], s["attrs"]) == ("two", "D2", {"a": 7})
    apply(patcher, "- {symbol: 'synthpkg.mod:Base.meth', name: m}")
    assert mod.func is orig_func                       # removed entry: restored


def test_generation_change_triggers_yaml_reload(mod, tmp_path, monkeypatch, mock):
    """0->1 transition observed from a hook: the YAML is re-read and edits apply."""
    from ms_service_profiler import _control
    from ms_service_profiler.patcher import hooks as H
    y = tmp_path / "syms.yaml"
    y.write_text("- {symbol: 'synthpkg.mod:func', name: v1}\n")
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(y))
    mock.set(enabled=False)
    p = H.Patcher()
    p.load_and_apply()
    monkeypatch.setattr(_control, "reload_hook", p.reload)
    try:
        y.write_text("- {symbol: 'synthpkg.mod:func', name: v2}\n- {symbol: 'synthpkg.mod:Base.meth'}\n")
        mod.func(1)                                    # disabled: nothing, no reload
        assert mock.records() == []
        mock.set(enabled=True)                         # 0 -> 1 (generation bump)
        mod.func(1)                                    # this call notices; later calls use v2
        mod.func(1)
        names = [s["name"] for s in mock.spans()]
        assert names[-1] == "v2"
        assert "Base.meth" in p.hooked()
    finally:
        p.unhook_all()


# -- custom handlers ------------------------------------------------------------------------------

HANDLERS = '''
from ms_service_profiler import Profiler, Level
LOG = []

def around(original_func, this, *args, **kwargs):
    LOG.append(("before", type(this).__name__, args, kwargs))
    r = original_func(this, *args, **kwargs)
    Profiler(Level.INFO).domain("H").res("r1").attr("result", r).event("handled")
    return r

def modfunc(original_func, *args, **kwargs):
    return original_func(*args, **kwargs) * 10

def fails_before(original_func, this, *args, **kwargs):
    raise RuntimeError("handler bug")

def fails_after(original_func, this, *args, **kwargs):
    original_func(this, *args, **kwargs)
    raise RuntimeError("handler bug after")

def swallow(original_func, *args, **kwargs):
    try:
        return original_func(*args, **kwargs)
    except ValueError:
        raise TypeError("replaced")

async def aaround(original_func, this, *args, **kwargs):
    r = await original_func(this, *args, **kwargs)
    LOG.append(("async", r))
    return r + 1

def genhandler(original_func, *args, **kwargs):
    yield 1

not_callable = 3
'''


def test_custom_handlers(mod, synth, patcher, mock, caplog):
    synth("myhandlers", HANDLERS)
    import myhandlers
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth', handler: 'myhandlers:around'}
- {symbol: 'synthpkg.mod:func', handler: 'myhandlers.modfunc'}
- {symbol: 'synthpkg.mod:Base.ameth', handler: 'myhandlers:aaround'}
""")
    b = mod.Base(2)
    assert b.meth(3, ) == 5
    assert myhandlers.LOG[0] == ("before", "Base", (3,), {})
    (ev,) = [r for r in mock.records() if r["kind"] == "event"]
    assert ev["name"] == "handled" and ev["attrs"]["rid"] == "r1" and ev["attrs"]["result"] == 5
    assert ev["attrs"]["type"] == 0
    assert mod.func(1) == 30
    assert asyncio.run(b.ameth()) == 3
    mock.set(enabled=False)                       # capture off: handlers are bypassed
    assert mod.func(1) == 3


def test_handler_faults_degrade_to_one_original_call(mod, synth, patcher, mock, caplog):
    synth("myhandlers2", HANDLERS)
    apply(patcher, """
- {symbol: 'synthpkg.mod:Base.meth', handler: 'myhandlers2:fails_before'}
- {symbol: 'synthpkg.mod:Base.over', handler: 'myhandlers2:fails_after'}
- {symbol: 'synthpkg.mod:boom', handler: 'myhandlers2:swallow'}
- {symbol: 'synthpkg.mod:func', handler: 'myhandlers2:fails_before'}
""")
    calls = []
    orig = mod.Base.__dict__["over"].__wrapped__

    b = mod.Base(1)
    assert b.meth(1) == 2                                      # fallback: original once
    assert b.over() == "base"                                  # result of the single call kept
    mod.CALLS.clear()
    assert mod.func(1) == 3 and len(mod.CALLS) == 1            # no second execution
    with pytest.raises(ValueError, match="boom 1"):            # original's exception unchanged
        mod.boom(1)
    assert mock.counters()["hook_errors"] == 3
    del calls, orig


def test_handler_import_failure_falls_back_to_timer(mod, synth, patcher, mock, caplog):
    synth("myhandlers3", HANDLERS)
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        apply(patcher, """
- {symbol: 'synthpkg.mod:func', handler: 'no.such.module:h', name: fallback1}
- {symbol: 'synthpkg.mod:Base.meth', handler: 'myhandlers3:not_callable', name: fallback2}
- {symbol: 'synthpkg.mod:Base.over', handler: 'myhandlers3:genhandler', name: skipped}
""")
    mod.func(1)
    mod.Base().meth(1)
    mod.Base().over()
    assert [s["name"] for s in mock.spans()] == ["fallback1", "fallback2"]
    assert "no.such.module" in caplog.text and "generator" in caplog.text


def test_shipped_example_handler(synth, patcher, mock):
    synth("vllm_fake.kv", '''
class KVCacheManager:
    usage = 0.25
    def __init__(self):
        self.freed = []
    def free(self, request):
        self.freed.append(request.request_id)
''')
    import vllm_fake.kv as kv
    apply(patcher, """
- symbol: vllm_fake.kv:KVCacheManager.free
  handler: ms_service_profiler.patcher.config.custom_handler_example.kvcache_manager_free_example_handler
  domain: Example
  name: example_custom
""")
    m = kv.KVCacheManager()
    req = types.SimpleNamespace(request_id="req-1")
    m.free(req)
    m.free(request=req)
    assert m.freed == ["req-1", "req-1"]
    s = mock.spans("example_custom")
    assert len(s) == 2 and s[0]["domain"] == "Example"
    assert s[0]["attrs"]["rid"] == "req-1" and s[0]["attrs"]["UsagePercent="] == 0.25


def test_nothing_raises_from_broken_inputs(patcher, mock):
    from ms_service_profiler.patcher.symbols import Entry
    patcher.apply([Entry("no.such.module.anywhere:f"), Entry("sys:maxsize"), Entry("os:path.join"),
                   Entry(":x"), Entry("a*:b")])
    patcher.apply(None)  # type: ignore[arg-type]
    patcher.unhook_all()


def test_module_reload_rehooks_new_objects(synth, patcher, mock):
    import importlib
    synth("reloadme", "def f():\n    return 1\n")
    apply(patcher, "- {symbol: 'reloadme:f', name: f}")
    import reloadme
    reloadme.f()
    importlib.reload(reloadme)
    reloadme.f()
    assert [s["name"] for s in mock.spans()] == ["f", "f"]
    patcher.unhook_all()
    assert not hasattr(reloadme.f, "__wrapped__")


def test_forked_child_keeps_working(mod, patcher, mock):
    import os
    apply(patcher, "- {symbol: 'synthpkg.mod:func', name: f}")
    import threading
    got, release = threading.Event(), threading.Event()

    def holder():                       # another thread holds the lock while we fork
        with patcher.lock:
            got.set()
            release.wait(10)
    t = threading.Thread(target=holder)
    t.start()
    got.wait(10)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                patcher.apply(patcher.entries)   # would deadlock without the at-fork reset
                code = 0 if mod.func(1) == 3 else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        t.join()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def test_builtin_modules_import_normally_when_pending(patcher, mock):
    apply(patcher, "- {symbol: '_msp_no_such_builtin:f'}\n- {symbol: 'json.decoder:JSONDecoder.decode'}")
    import json  # noqa: F401  (already imported; nothing breaks)
    import array  # a builtin/extension module import while the finder is installed
    assert array.array("i", [1]).tolist() == [1]


def test_non_function_class_attributes(synth, patcher, mock, caplog):
    synth("oddattrs", '''
import functools
def _g(a, b=0):
    return (a, b)
class C:
    part = functools.partial(_g, 1)
    blen = len
    @property
    def prop(self):
        return 1
    pm = functools.partialmethod(_g, b=5)
''')
    import oddattrs
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        apply(patcher, """
- {symbol: 'oddattrs:C.part', name: part}
- {symbol: 'oddattrs:C.blen', name: blen}
- {symbol: 'oddattrs:C.prop', name: prop}
- {symbol: 'oddattrs:C.pm', name: pm}
""")
    c = oddattrs.C()
    assert c.part() == (1, 0) and c.part(b=2) == (1, 2)      # no self injected
    assert c.blen([1, 2]) == 2
    assert c.prop == 1
    assert c.pm() == (c, 5)
    assert [s["name"] for s in mock.spans()] == ["part", "part", "blen"]
    assert "property" in caplog.text and "partialmethod" in caplog.text


def test_broken_yaml_on_reload_keeps_hooks(mod, tmp_path, monkeypatch, mock):
    from ms_service_profiler.patcher import hooks as H
    y = tmp_path / "s.yaml"
    y.write_text("- {symbol: 'synthpkg.mod:func', name: v1}\n")
    monkeypatch.setenv("PROFILING_SYMBOLS_PATH", str(y))
    p = H.Patcher()
    try:
        p.load_and_apply()
        y.write_text("- {symbol: 'synthpkg.mod:func', name: [unclosed\n")   # half-written
        p.reload()
        mod.func(1)
        assert [s["name"] for s in mock.spans()] == ["v1"]
        y.write_text("[]\n")                                                 # really emptied
        p.reload()
        assert p.hooked() == {}
    finally:
        p.unhook_all()


def test_absent_vllm_ascend_entries_are_quiet(patcher, mock, caplog):
    if importlib.util.find_spec("vllm_ascend") is not None:
        pytest.skip("vllm_ascend is installed here")
    with caplog.at_level(logging.WARNING, logger="ms_service_profiler"):
        apply(patcher, "- {symbol: 'vllm_ascend.worker.model_runner_v1:NPUModelRunner.execute_model'}\n")
    assert "vllm_ascend" not in caplog.text
    assert sorted(patcher.pending) == ["vllm_ascend.worker.model_runner_v1"]
