"""Import hook, wrapping and unwrapping of symbol targets.

* A target is (owner, attribute): the *defining* class (found along the MRO of the class the
  symbol names) or the module.  Entries are grouped per target, so one function is never
  wrapped twice; several entries on one target are chained in YAML order, the first outermost.
* Modules not yet imported are hooked right after their body executes (a ``sys.meta_path``
  finder wraps the loader's ``exec_module``), before importers bind names.
* ``staticmethod`` / ``classmethod`` objects are unwrapped, their function wrapped, and the
  same descriptor type re-created; unhooking puts back the exact original object.
* Every wrapper checks the native state word first.  A sync plain timer without attributes
  or caller filter is the C ``Timer`` (when the extension is built); every other form is a
  Python wrapper specialised per kind (sync, async, generator, async generator,
  contextmanager, custom handler).
* Nothing here raises into the host: resolution problems are warnings, wrapper faults are
  counted with ``msp_count_error(1)``, expression failures with ``msp_count_error(2)``.
"""

import contextlib
import fnmatch
import functools
import importlib
import importlib.abc
import inspect
import logging
import sys
import threading
import types
import weakref
from time import monotonic_ns as _now

from .. import _control
from .._native import native, HOOK_ERROR, EXPR_ERROR
from ..profiler import encode_attrs
from . import symbols as _config
from .expr import Binder

logger = logging.getLogger("ms_service_profiler")

_state = native.state
_span_json = native.span_json
_fast = native.fast
_TIMER_LEVEL = 20  # Level.INFO, as the reference's default timer
_MARK = "__msp_hook__"   # attribute set on every wrapper we install: the Target

_warned = set()


def _warn_once(key, msg, *args):
    if key in _warned:
        return
    _warned.add(key)
    try:
        logger.warning("ms_service_profiler: " + msg, *args)
    except Exception:
        pass


# ------------------------------------------------------------------------------------------------
# kinds of callables

def _cm_helper_code(deco):
    def g():
        yield
    try:
        return deco(g).__code__
    except Exception:  # pragma: no cover
        return None


_CM_CODE = _cm_helper_code(contextlib.contextmanager)
_ACM_CODE = _cm_helper_code(contextlib.asynccontextmanager)


def callable_kind(fn):
    """'async', 'asyncgen', 'gen', 'cm', 'acm' or 'sync'."""
    code = getattr(fn, "__code__", None)
    if code is not None and code is _CM_CODE:
        return "cm"
    if code is not None and code is _ACM_CODE:
        return "acm"
    if inspect.isasyncgenfunction(fn):
        return "asyncgen"
    if inspect.iscoroutinefunction(fn):
        return "async"
    if inspect.isgeneratorfunction(fn):
        return "gen"
    return "sync"


# ------------------------------------------------------------------------------------------------
# per-entry runtime (interned ids, compiled expressions, caller filter)

class _Runtime:
    __slots__ = ("entry", "dom", "name", "attrs", "sig", "has_this", "cfilter", "dom_gen", "dom_ok")

    def __init__(self, entry, func, has_this):
        self.entry = entry
        self.dom = native.intern(entry.domain)
        self.name = native.intern(entry.name)
        self.attrs = entry.compiled
        self.has_this = has_this
        self.sig = None
        if self.attrs and any(comp.names - _NON_PARAM_NAMES for _n, comp in self.attrs):
            try:
                self.sig = Binder(inspect.signature(func))
            except (TypeError, ValueError):
                self.sig = None
        self.cfilter = entry.caller_filter
        self.dom_gen = -1
        self.dom_ok = True

    def domain_ok(self, w):
        if not w & 2:
            return True
        gen = w >> 32
        if self.dom_gen != gen:
            self.dom_ok = native.is_enabled(_TIMER_LEVEL, self.dom)
            self.dom_gen = gen
        return self.dom_ok

    def caller_ok(self):
        """caller_filter: a glob matched against the first caller outside this module."""
        try:
            f = sys._getframe(2)
            here = __file__
            while f is not None and f.f_code.co_filename == here:
                f = f.f_back
            if f is None:
                return False
            mod = f.f_globals.get("__name__", "")
            qn = getattr(f.f_code, "co_qualname", f.f_code.co_name)
            pat = self.cfilter
            for cand in ("%s:%s" % (mod, qn), "%s.%s" % (mod, qn), qn, f.f_code.co_name):
                if fnmatch.fnmatchcase(cand, pat):
                    return True
            return False
        except Exception:
            return True

    def emit(self, t0, t1, args, kwargs, ret, exc):
        """Record the span with its attributes; never raises."""
        try:
            js = None
            if self.attrs or exc is not None:
                values = {}
                if self.attrs:
                    env = (args, kwargs, ret, self.has_this, self.sig)   # expr.Env
                    for an, comp in self.attrs:
                        if exc is not None and comp.uses_return:
                            continue
                        try:
                            v = comp.fn(env)
                        except Exception as e:
                            native.count_error(EXPR_ERROR)
                            _warn_once((id(self.entry), an),
                                       "%s: attribute %r (%s) failed: %s: %s; dropped",
                                       self.entry.where(), an, comp.text, type(e).__name__, e)
                            continue
                        if v is None:
                            _warn_once((id(self.entry), an, "none"),
                                       "%s: attribute %r (%s) is None; dropped",
                                       self.entry.where(), an, comp.text)
                            continue
                        values[an] = v
                if exc is not None:
                    values["error"] = type(exc).__name__
                js = encode_attrs(values) if values else None
            _span_json(self.dom, self.name, t0, t1, js)
        except Exception:
            native.count_error(HOOK_ERROR)


_NON_PARAM_NAMES = frozenset(("return", "args"))


def _gate(rt):
    """Return True when this call must be recorded (enabled, level, domain, caller)."""
    w = _state.value
    if not w & 1 or ((w >> 8) & 0xFF) < _TIMER_LEVEL:
        return False
    if (w >> 32) != _control.last_gen:
        _control.changed()
    if w & 2 and not rt.domain_ok(w):
        return False
    if rt.cfilter is not None and not rt.caller_ok():
        return False
    return True


# ------------------------------------------------------------------------------------------------
# timer layers

def _gated(inner, slow, level):
    """C gate: capture off -> inner(*args) directly; on -> slow(*args)."""
    if _fast is None:
        return slow
    return _fast.Timer(inner, 0, 0, level, slow)


def _timer_sync(inner, rt):
    if (_fast is not None and not rt.attrs and rt.cfilter is None):
        return _fast.Timer(inner, rt.dom, rt.name, _TIMER_LEVEL)
    return _gated(inner, _timer_sync_py(inner, rt), _TIMER_LEVEL)


def _timer_sync_py(inner, rt):
    state = _state

    def timer(*args, **kwargs):
        w = state.value
        if not w & 1 or not _gate(rt):
            return inner(*args, **kwargs)
        t0 = _now()
        try:
            ret = inner(*args, **kwargs)
        except BaseException as exc:
            rt.emit(t0, _now(), args, kwargs, None, exc)
            raise
        rt.emit(t0, _now(), args, kwargs, ret, None)
        return ret
    return timer


def _timer_async(inner, rt):
    state = _state

    async def timer(*args, **kwargs):
        if not state.value & 1 or not _gate(rt):
            return await inner(*args, **kwargs)
        t0 = _now()
        try:
            ret = await inner(*args, **kwargs)
        except BaseException as exc:
            rt.emit(t0, _now(), args, kwargs, None, exc)
            raise
        rt.emit(t0, _now(), args, kwargs, ret, None)
        return ret
    return timer


def _timer_gen(inner, rt):
    state = _state

    def timer(*args, **kwargs):
        if not state.value & 1 or not _gate(rt):
            return (yield from inner(*args, **kwargs))
        t0 = _now()
        err = None
        try:
            return (yield from inner(*args, **kwargs))
        except GeneratorExit:
            raise
        except BaseException as exc:
            err = exc
            raise
        finally:
            rt.emit(t0, _now(), args, kwargs, None, err)
    return timer


def _timer_asyncgen(inner, rt):
    state = _state

    async def timer(*args, **kwargs):
        rec = bool(state.value & 1) and _gate(rt)
        agen = inner(*args, **kwargs)
        t0 = _now()
        err = None
        try:
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                return
            while True:
                try:
                    sent = yield item
                except GeneratorExit:
                    await agen.aclose()
                    raise
                except BaseException as exc:
                    try:
                        item = await agen.athrow(exc)
                    except StopAsyncIteration:
                        return
                else:
                    try:
                        item = await agen.asend(sent)
                    except StopAsyncIteration:
                        return
        except GeneratorExit:
            raise
        except BaseException as exc:
            err = exc
            raise
        finally:
            if rec:
                rt.emit(t0, _now(), args, kwargs, None, err)
    return timer


class _TimedCM:
    """Wraps the context manager returned by a @contextmanager function: the span covers the
    with-block (from __enter__ to __exit__)."""

    __slots__ = ("_cm", "_rt", "_args", "_kwargs", "_t0")

    def __init__(self, cm, rt, args, kwargs):
        self._cm = cm
        self._rt = rt
        self._args = args
        self._kwargs = kwargs
        self._t0 = 0

    def __enter__(self):
        self._t0 = _now()
        return self._cm.__enter__()

    def __exit__(self, et, ev, tb):
        try:
            suppress = self._cm.__exit__(et, ev, tb)
        except BaseException as exc:
            self._rt.emit(self._t0, _now(), self._args, self._kwargs, None, exc)
            raise
        self._rt.emit(self._t0, _now(), self._args, self._kwargs, None,
                      ev if (ev is not None and not suppress) else None)
        return suppress

    async def __aenter__(self):
        self._t0 = _now()
        return await self._cm.__aenter__()

    async def __aexit__(self, et, ev, tb):
        try:
            suppress = await self._cm.__aexit__(et, ev, tb)
        except BaseException as exc:
            self._rt.emit(self._t0, _now(), self._args, self._kwargs, None, exc)
            raise
        self._rt.emit(self._t0, _now(), self._args, self._kwargs, None,
                      ev if (ev is not None and not suppress) else None)
        return suppress

    def __call__(self, func):  # ContextDecorator use: leave as the original would
        return self._cm(func)

    def __getattr__(self, name):
        return getattr(self._cm, name)


def _timer_cm(inner, rt):
    state = _state

    def timer(*args, **kwargs):
        cm = inner(*args, **kwargs)
        if not state.value & 1 or not _gate(rt):
            return cm
        return _TimedCM(cm, rt, args, kwargs)
    return _gated(inner, timer, _TIMER_LEVEL)


_TIMERS = {"sync": _timer_sync, "async": _timer_async, "gen": _timer_gen,
           "asyncgen": _timer_asyncgen, "cm": _timer_cm, "acm": _timer_cm}


# ------------------------------------------------------------------------------------------------
# custom handler layers

_NOT_CALLED, _RUNNING, _RETURNED, _RAISED = 0, 1, 2, 3


def _handler_error(rt, exc):
    """A custom handler's own exception (not the original function's): counted, warned once."""
    native.count_error(HOOK_ERROR)
    _warn_once(("handler", id(rt.entry)), "%s: handler %s raised %s: %s",
               rt.entry.where(), rt.entry.handler, type(exc).__name__, exc)


def _handler_sync(inner, handler, rt):
    """The custom-handler layer: ``handler(original, *args, **kwargs)`` while capture is on.  An
    exception of the original propagates as it is; the handler's own error is counted, warned
    once, and the caller gets the original's result (calling it if the handler had not).  In C
    (``_fast.Timer(handler=...)``) unless a caller filter applies."""
    if _fast is not None and rt.cfilter is None:
        return _fast.Timer(inner, 0, 0, 0, None, handler, functools.partial(_handler_error, rt))
    state = _state

    def layer(*args, **kwargs):
        if not state.value & 1:
            return inner(*args, **kwargs)
        w = state.value
        if (w >> 32) != _control.last_gen:
            _control.changed()
        if rt.cfilter is not None and not rt.caller_ok():
            return inner(*args, **kwargs)
        st = [_NOT_CALLED, None]

        def original(*a, **k):
            st[0] = _RUNNING
            try:
                r = inner(*a, **k)
            except BaseException as exc:
                st[0] = _RAISED
                st[1] = exc
                raise
            st[0] = _RETURNED
            st[1] = r
            return r
        try:
            return handler(original, *args, **kwargs)
        except Exception as exc:
            if st[0] == _RAISED:
                if exc is st[1]:
                    raise
                raise st[1] from None
            _handler_error(rt, exc)
            if st[0] == _RETURNED:
                return st[1]
            return inner(*args, **kwargs)
    return _gated(inner, layer, 0)


def _handler_async(inner, handler, rt):
    state = _state

    async def layer(*args, **kwargs):
        if not state.value & 1:
            return await inner(*args, **kwargs)
        w = state.value
        if (w >> 32) != _control.last_gen:
            _control.changed()
        if rt.cfilter is not None and not rt.caller_ok():
            return await inner(*args, **kwargs)
        st = [_NOT_CALLED, None]

        async def original(*a, **k):
            st[0] = _RUNNING
            try:
                r = await inner(*a, **k)
            except BaseException as exc:
                st[0] = _RAISED
                st[1] = exc
                raise
            st[0] = _RETURNED
            st[1] = r
            return r
        try:
            r = handler(original, *args, **kwargs)
            if inspect.isawaitable(r):
                r = await r
            return r
        except Exception as exc:
            if st[0] == _RAISED:
                if exc is st[1]:
                    raise
                raise st[1] from None
            _handler_error(rt, exc)
            if st[0] == _RETURNED:
                return st[1]
            return await inner(*args, **kwargs)
    return layer


def _make_layer(inner, entry, handler, kind, func, has_this):
    rt = _Runtime(entry, func, has_this)
    if handler is None:
        return _TIMERS[kind](inner, rt)
    if kind == "async":
        return _handler_async(inner, handler, rt)
    return _handler_sync(inner, handler, rt)


# ------------------------------------------------------------------------------------------------
# handler resolution

def resolve_handler(entry):
    """The handler callable for ``entry`` or None for the timer (import failure -> timer)."""
    h = entry.handler
    if entry.is_timer:
        return None
    if ":" in h:
        modname, _, attr = h.partition(":")
    elif "." in h:
        modname, _, attr = h.rpartition(".")
    else:
        _warn_once(("hres", h), "%s: handler %r is neither 'timer', 'pkg.mod:func' nor "
                   "'pkg.mod.func'; using the timer", entry.where(), h)
        return None
    if not all(p.isidentifier() for p in modname.split(".") + attr.split(".")):
        # only a dotted module path resolved through sys.path: never a file path or a relative name
        _warn_once(("hres", h), "%s: handler %r is not a dotted module path ('pkg.mod:func'); "
                   "using the timer", entry.where(), h)
        return None
    try:
        obj = importlib.import_module(modname)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        _warn_once(("hres", h), "%s: cannot import handler %r (%s: %s); using the timer",
                   entry.where(), h, type(exc).__name__, exc)
        return None
    if not callable(obj):
        _warn_once(("hres", h), "%s: handler %r is not callable; using the timer", entry.where(), h)
        return None
    if inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj):
        _warn_once(("hres", h), "%s: handler %r is a generator function, which is not a valid "
                   "handler; entry skipped", entry.where(), h)
        return False
    return obj


# ------------------------------------------------------------------------------------------------
# targets

class Target:
    """One patched attribute: owner.__dict__[attr]."""

    def __init__(self, owner, attr, original):
        self.owner = owner
        self.attr = attr
        self.original = original        # exact object found in owner.__dict__
        self.entries = ()
        self.installed = None           # the object we put there
        self.aliases = []               # [(module, name)] other bindings of a module function

    @property
    def key(self):
        return (id(self.owner), self.attr)

    def describe(self):
        return "%s.%s" % (getattr(self.owner, "__qualname__", getattr(self.owner, "__name__", "?")),
                          self.attr)


def _unwrap_ours(obj):
    """If obj is one of our wrappers (maybe inside static/classmethod), return the original."""
    inner = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    t = getattr(inner, _MARK, None) if not isinstance(inner, type) else None
    if isinstance(t, Target):
        return t.original
    return obj


def _build(target):
    """Build the object to install for target.entries (None if nothing to install)."""
    raw = target.original
    wrap_type = None
    if isinstance(raw, staticmethod):
        func, wrap_type, has_this = raw.__func__, staticmethod, False
    elif isinstance(raw, classmethod):
        func, wrap_type, has_this = raw.__func__, classmethod, True
    elif isinstance(target.owner, type) and not isinstance(raw, types.FunctionType):
        if hasattr(type(raw), "__get__"):
            _warn_once(("descr", target.key), "%s is a %s descriptor, which cannot be hooked; skipped",
                       target.describe(), type(raw).__name__)
            return None
        # a callable object stored on a class (partial, builtin...): it does not bind, keep it so
        func, wrap_type, has_this = raw, staticmethod, False
    else:
        func = raw
        has_this = isinstance(target.owner, type)
    if not callable(func):
        _warn_once(("notcallable", target.key), "%s is not callable (%s); not hooked",
                   target.describe(), type(func).__name__)
        return None
    kind = callable_kind(func)
    inner = func
    built = 0
    for entry in reversed(target.entries):
        handler = resolve_handler(entry)
        if handler is False:
            continue
        try:
            inner = _make_layer(inner, entry, handler, kind, func, has_this)
            built += 1
        except Exception as exc:
            _warn_once(("build", id(entry)), "%s: cannot wrap: %s", entry.where(), exc)
    if not built:
        return None
    try:
        if isinstance(inner, types.FunctionType):
            functools.update_wrapper(inner, func)
        else:
            functools.update_wrapper(inner, func, updated=())
            try:
                inner.__dict__.update(getattr(func, "__dict__", {}))
            except Exception:
                pass
        setattr(inner, _MARK, target)
    except Exception:
        pass
    return wrap_type(inner) if wrap_type is not None else inner


# ------------------------------------------------------------------------------------------------
# symbol parsing and resolution

def parse_symbol(symbol):
    """('concrete', module, [attrs]) or ('pattern', module_prefix, class_glob, method)."""
    mod, _, rest = symbol.partition(":")
    mod = mod.strip()
    rest = rest.strip()
    if "*" in symbol:
        if "." not in rest:
            return None
        cls_pat, _, meth = rest.rpartition(".")
        if not meth or "*" in meth:
            return None
        prefix = mod.rstrip("*").rstrip(".")
        return ("pattern", prefix, cls_pat or "*", meth)
    if not mod or not rest:
        return None
    return ("concrete", mod, rest.split("."))


def _resolve_concrete(module, chain):
    """(owner, attr, raw) for the defining owner, or raise LookupError with a reason."""
    obj = module
    for part in chain[:-1]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LookupError("%r has no attribute %r" % (getattr(obj, "__name__", obj), part))
    name = chain[-1]
    if isinstance(obj, type):
        for klass in obj.__mro__:
            if name in klass.__dict__:
                return klass, name, klass.__dict__[name]
        raise LookupError("class %s has no attribute %r" % (obj.__qualname__, name))
    if isinstance(obj, types.ModuleType):
        d = obj.__dict__
        if name in d:
            return obj, name, d[name]
        raise LookupError("module %s has no attribute %r" % (obj.__name__, name))
    raise LookupError("%r is neither a class nor a module" % (obj,))


# Companion packages whose absence is normal (the bundled YAML names them for Ascend hosts).
_OPTIONAL_PACKAGES = frozenset({"vllm_ascend"})


def _module_missing(name):
    """True when ``name`` certainly cannot be imported, judged without importing anything:
    the top-level package is not installed, or the parent package is imported and has no such
    submodule."""
    try:
        import importlib.util
        top = name.split(".", 1)[0]
        if top not in sys.modules and importlib.util.find_spec(top) is None:
            return True
        parent = name.rpartition(".")[0]
        if parent and _module_ready(parent) is not None:
            return importlib.util.find_spec(name) is None
    except Exception:
        return False
    return False


def _module_ready(name):
    m = sys.modules.get(name)
    if m is None:
        return None
    spec = getattr(m, "__spec__", None)
    if spec is not None and getattr(spec, "_initializing", False):
        return None
    return m


# ------------------------------------------------------------------------------------------------
# the import hook

class _PostImportFinder(importlib.abc.MetaPathFinder):
    def __init__(self, patcher):
        self.patcher = patcher
        self._local = threading.local()

    def find_spec(self, fullname, path, target=None):
        try:
            if not self.patcher.wants(fullname) or getattr(self._local, "busy", False):
                return None
            self._local.busy = True
            try:
                spec = None
                for finder in sys.meta_path:
                    if finder is self or not hasattr(finder, "find_spec"):
                        continue
                    spec = finder.find_spec(fullname, path, target)
                    if spec is not None:
                        break
            finally:
                self._local.busy = False
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return None
            loader = spec.loader
            if isinstance(loader, type):     # class-level loaders (BuiltinImporter, ...): no hook
                return None
            orig_exec = loader.exec_module
            patcher = self.patcher

            def exec_module(module, _orig=orig_exec, _loader=loader):
                try:
                    _orig(module)
                finally:
                    try:
                        if _loader.__dict__.get("exec_module") is exec_module:
                            del _loader.exec_module
                    except Exception:
                        pass
                patcher.on_module_executed(module)
            try:
                loader.exec_module = exec_module
            except Exception:
                spec.loader = _LoaderProxy(loader, exec_module)
            return spec
        except Exception:
            return None


class _LoaderProxy:
    def __init__(self, loader, exec_module):
        self._loader = loader
        self.exec_module = exec_module

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def __getattr__(self, name):
        return getattr(self._loader, name)


# ------------------------------------------------------------------------------------------------
# the patcher

_instances = weakref.WeakSet()


class Patcher:
    def __init__(self):
        _instances.add(self)
        self.lock = threading.RLock()
        self.entries = []                 # current entries (after version filtering)
        self.targets = {}                 # key -> Target
        self.pending = {}                 # module name -> [entries]
        self.patterns = []                # [(prefix, cls_glob, method, entry)]
        self.finder = None
        self.symbols_path = ""
        self._file_sig = None
        self.version = None

    # -- import hook -------------------------------------------------------------------------
    def wants(self, fullname):
        if fullname in self.pending:
            return True
        for prefix, _c, _m, _e in self.patterns:
            if fullname.startswith(prefix + "."):
                return True
        return False

    def _ensure_finder(self):
        if self.finder is None:
            self.finder = _PostImportFinder(self)
        if self.finder not in sys.meta_path:
            sys.meta_path.insert(0, self.finder)

    def on_module_executed(self, module):
        try:
            with self.lock:
                name = module.__name__
                desired = {}
                for e in self.pending.get(name, ()):
                    self._collect_concrete(e, module, desired)
                for prefix, cglob, meth, e in self.patterns:
                    if name.startswith(prefix + "."):
                        self._collect_pattern(module, cglob, meth, e, desired)
                for key, (owner, attr, raw, entries) in desired.items():
                    t = self.targets.get(key)
                    if t is not None and owner.__dict__.get(attr) is not t.installed:
                        # re-executed module (importlib.reload): start again from the new object
                        t.installed = None
                        t.entries = ()
                        t.original = _unwrap_ours(raw)
                    if t is None:
                        t = Target(owner, attr, _unwrap_ours(raw))
                        self.targets[key] = t
                    merged = tuple(t.entries) + tuple(x for x in entries if x not in t.entries)
                    self._install(t, self._order(merged))
        except Exception as exc:
            _warn_once(("onexec", getattr(module, "__name__", "?")),
                       "post-import hook failed for %s: %s", getattr(module, "__name__", "?"), exc)

    # -- collection --------------------------------------------------------------------------
    def _order(self, entries):
        pos = {id(e): i for i, e in enumerate(self.entries)}
        return tuple(sorted(entries, key=lambda e: pos.get(id(e), 1 << 30)))

    @staticmethod
    def _add(desired, owner, attr, raw, entry):
        key = (id(owner), attr)
        slot = desired.get(key)
        if slot is None:
            slot = desired[key] = (owner, attr, raw, [])
        if entry not in slot[3]:
            slot[3].append(entry)

    def _collect_concrete(self, entry, module, desired):
        parsed = parse_symbol(entry.symbol)
        try:
            owner, attr, raw = _resolve_concrete(module, parsed[2])
        except LookupError as exc:
            _warn_once(("resolve", entry.key()), "%s: cannot resolve symbol: %s; skipped",
                       entry.where(), exc)
            return
        if isinstance(raw, property) or isinstance(raw, type):
            _warn_once(("resolve", entry.key()), "%s: %s is a %s, which cannot be hooked; skipped",
                       entry.where(), entry.symbol, type(raw).__name__)
            return
        self._add(desired, owner, attr, raw, entry)

    def _collect_pattern(self, module, cglob, meth, entry, desired):
        for cname, cls in list(vars(module).items()):
            if not isinstance(cls, type) or getattr(cls, "__module__", None) != module.__name__:
                continue
            if not fnmatch.fnmatchcase(cname, cglob):
                continue
            raw = cls.__dict__.get(meth)
            if raw is None:
                continue  # inherited: hooked in the defining class's module if it matches
            func = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            if not callable(func):
                continue
            self._add(desired, cls, meth, raw, entry)

    # -- install / restore -------------------------------------------------------------------
    def _install(self, t, entries):
        if tuple(entries) == tuple(t.entries) and t.installed is not None:
            return
        t.entries = tuple(entries)
        if not t.entries:
            self._restore(t)
            return
        obj = _build(t)
        if obj is None:
            self._restore(t)
            return
        try:
            setattr(t.owner, t.attr, obj)
        except Exception as exc:
            _warn_once(("set", t.key), "cannot patch %s: %s", t.describe(), exc)
            return
        if isinstance(t.owner, types.ModuleType):
            self._patch_aliases(t, obj)
        t.installed = obj

    def _patch_aliases(self, t, obj):
        """Other modules that bound the same function by name (``from m import f``)."""
        for mname, m in list(sys.modules.items()):
            if m is None or m is t.owner:
                continue
            try:
                if m.__dict__.get(t.attr) is t.original:
                    setattr(m, t.attr, obj)
                    if (m, t.attr) not in t.aliases:
                        t.aliases.append((m, t.attr))
            except Exception:
                continue
        for m, a in t.aliases:
            try:
                if m.__dict__.get(a) is not obj:
                    setattr(m, a, obj)
            except Exception:
                pass

    def _restore(self, t):
        if t.installed is not None:
            try:
                cur = t.owner.__dict__.get(t.attr)
                if cur is t.installed:
                    setattr(t.owner, t.attr, t.original)
                else:
                    _warn_once(("restore", t.key), "%s was replaced by someone else; left as is",
                               t.describe())
            except Exception as exc:
                _warn_once(("restore", t.key), "cannot restore %s: %s", t.describe(), exc)
            for m, a in t.aliases:
                try:
                    if m.__dict__.get(a) is t.installed:
                        setattr(m, a, t.original)
                except Exception:
                    pass
        t.aliases = []
        t.installed = None
        t.entries = ()

    # -- public ------------------------------------------------------------------------------
    def apply(self, entries, version=None):
        """Make the installed hooks match ``entries`` (whole-entry diff). Never raises."""
        try:
            with self.lock:
                self._apply(entries, version)
        except Exception as exc:  # pragma: no cover
            _warn_once(("apply", id(entries)), "applying symbols failed: %s", exc)

    def _apply(self, entries, version):
        if version is None and any(e.min_version or e.max_version for e in entries):
            version = _config.vllm_version()
        self.version = version
        kept = []
        for e in entries:
            if parse_symbol(e.symbol) is None:
                _warn_once(("sym", e.key()), "%s: invalid symbol %r; skipped", e.where(), e.symbol)
                continue
            if not _config.version_ok(e, version):
                logger.info("ms_service_profiler: %s: vLLM %s outside [%s, %s]; skipped",
                            e.where(), version, e.min_version, e.max_version)
                continue
            kept.append(e)
        self.entries = kept
        self.pending = {}
        self.patterns = []
        desired = {}
        for e in kept:
            parsed = parse_symbol(e.symbol)
            if parsed[0] == "pattern":
                _k, prefix, cglob, meth = parsed
                self.patterns.append((prefix, cglob, meth, e))
                for mname, m in list(sys.modules.items()):
                    if mname.startswith(prefix + ".") and _module_ready(mname) is not None:
                        self._collect_pattern(m, cglob, meth, e, desired)
            else:
                mod = _module_ready(parsed[1])
                if mod is None:
                    if _module_missing(parsed[1]):
                        # sys.path may still change: keep watching, but say so now. Entries for
                        # an optional companion package that is not installed (vllm_ascend on
                        # CPU/CUDA hosts) are expected: debug level only.
                        top = parsed[1].split(".", 1)[0]
                        if top in _OPTIONAL_PACKAGES and _module_missing(top):
                            logger.debug("%s: package %r is not installed; entry skipped",
                                         e.where(), top)
                        else:
                            _warn_once(("nomod", e.key()), "%s: module %r cannot be found; the "
                                       "entry applies only if it is imported later", e.where(),
                                       parsed[1])
                    self.pending.setdefault(parsed[1], []).append(e)
                    continue
                self._collect_concrete(e, mod, desired)
        # diff against what is installed
        for key, t in list(self.targets.items()):
            if key not in desired:
                self._restore(t)
                del self.targets[key]
        for key, (owner, attr, raw, ents) in desired.items():
            t = self.targets.get(key)
            if t is None:
                t = Target(owner, attr, _unwrap_ours(raw))
                self.targets[key] = t
            self._install(t, self._order(ents))
        if self.pending or self.patterns:
            self._ensure_finder()

    def unhook_all(self):
        """Restore every original object and stop watching imports."""
        try:
            with self.lock:
                for t in list(self.targets.values()):
                    self._restore(t)
                self.targets.clear()
                self.pending = {}
                self.patterns = []
                self.entries = []
                if self.finder is not None and self.finder in sys.meta_path:
                    sys.meta_path.remove(self.finder)
        except Exception as exc:  # pragma: no cover
            _warn_once(("unhook",), "unhook failed: %s", exc)

    def load_and_apply(self):
        """Read the symbol YAML for this environment and apply it."""
        path, entries = _config.load_symbols()
        self.symbols_path = path
        if entries is None:
            if self.targets or self.pending or self.patterns:
                _warn_once(("keep", path, id(self.entries)), "symbol file %s unusable; keeping the "
                           "current hooks", path)
            return self.entries
        self.apply(entries)
        return entries

    def reload(self):
        """Called at enable 0 -> 1 (generation change while enabled)."""
        self.load_and_apply()

    def hooked(self):
        """{'Owner.attr': [entry symbols]} of what is installed (for tests and debugging)."""
        return {t.describe(): [e.symbol for e in t.entries] for t in self.targets.values()
                if t.installed is not None}


patcher = Patcher()


def _after_fork_child():
    # a lock held by another thread at fork time would never be released in the child
    for p in list(_instances):
        p.lock = threading.RLock()


try:
    import os as _os
    _os.register_at_fork(after_in_child=_after_fork_child)
except Exception:  # pragma: no cover
    pass
