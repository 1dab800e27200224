"""msServiceProfiler-compatible Python API: ``Profiler``, ``Level``, ``MarkType``, ``prof_step``.

Every method is a cheap no-op when capture is off; nothing here raises into the caller
(errors while encoding or emitting are counted as hook errors and dropped).
"""

import enum
import json
import math
import threading
from time import monotonic_ns as _now

from . import _control, torch_prof
from ._native import native, HOOK_ERROR

__all__ = ["Profiler", "Level", "MarkType", "prof_step"]


class Level(enum.IntEnum):
    L0 = 10
    L1 = 20
    L2 = 30
    # aliases (the first four are marked for removal after 2026-06-30 in the reference)
    ERROR = 10
    INFO = 20
    DETAILED = 30
    VERBOSE = 40
    LEVEL_CORE_TRACE = 10
    LEVEL_OUTLIER_ENENT = 10  # spelling kept
    LEVEL_NORMAL_TRACE = 20
    LEVEL_DETAILED_TRACE = 30


class MarkType(enum.IntEnum):
    TYPE_EVENT = 0
    TYPE_METRIC = 1
    TYPE_SPAN = 2
    TYPE_LINK = 3


_state = native.state
_span_json = native.span_json
_event_json = native.event_json
_intern = native.intern


def _sanitize(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, dict):
        return {str(k): _sanitize(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_sanitize(x) for x in v]
    return v


_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str,
                            allow_nan=False, check_circular=False)
try:  # the C encoder built once (JSONEncoder.encode rebuilds it on every call)
    from json.encoder import c_make_encoder as _cme, encode_basestring as _ebs
    _c_iterencode = _cme(None, str, _ebs, None, ":", ",", False, False, False) if _cme else None
except Exception:  # pragma: no cover
    _c_iterencode = None
if _c_iterencode is not None:
    def _encode(obj, _it=_c_iterencode, _join="".join):
        return _join(_it(obj, 0))
else:  # pragma: no cover
    _encode = _encoder.encode


_fast_encode = native.fast.encode if native.fast is not None else None


def encode_attrs(attrs):
    """Attributes dict -> JSON text (bytes); non-JSON values become str(); never raises."""
    if _fast_encode is not None:
        b = _fast_encode(attrs)
        if b is not None:
            return b
    try:
        return _encode(attrs).encode("utf-8", "surrogatepass")
    except (ValueError, TypeError, RecursionError):
        try:
            return json.dumps(_sanitize(attrs), ensure_ascii=False, separators=(",", ":"),
                              default=str).encode("utf-8", "surrogatepass")
        except Exception:
            return b"{}"


# domain filter cache: (generation, level, domain) -> bool
_dom_cache = {}
_dom_cache_gen = [None]


def _domain_ok(level, domain):
    w = _state.value
    if not w & 2:
        return True
    gen = w >> 32
    if _dom_cache_gen[0] != gen:
        _dom_cache.clear()
        _dom_cache_gen[0] = gen
    key = (level, domain)
    ok = _dom_cache.get(key)
    if ok is None:
        ok = native.is_enabled(level, _intern(domain))
        _dom_cache[key] = ok
    return ok


def is_enabled(level=Level.INFO):
    """IsEnable(level): capture on and level <= configured profiler_level."""
    w = _state.value
    return bool(w & 1) and int(level) <= ((w >> 8) & 0xFF)


class Profiler:
    """Builder: ``Profiler(Level.INFO).domain("X").res(rid).attr(k, v).event("name")``."""

    __slots__ = ("_enabled", "_level", "_domain", "_attrs", "_name", "_start", "_ended")

    def __init__(self, profiler_level=20):
        w = _state.value
        self._domain = ""
        if (w >> 32) != _control.last_gen:
            _control.changed()
        if not w & 1:
            self._enabled = False
            return
        try:
            self._enabled = profiler_level <= ((w >> 8) & 0xFF)
        except TypeError:
            self._enabled = False
        self._level = profiler_level
        self._attrs = {}
        self._name = None
        self._start = 0
        self._ended = False

    # -- builder -------------------------------------------------------------------------------
    @property
    def enable(self):
        return self._enabled

    def domain(self, domain):
        self._domain = domain
        if self._enabled and _state.value & 2 and not _domain_ok(self._level, str(domain)):
            self._enabled = False
        return self

    def attr(self, key, value):
        if self._enabled:
            self._attrs[key] = value
        return self

    def res(self, rid):
        if self._enabled:
            self._attrs["rid"] = rid
        return self

    def metric(self, name, value):
        if self._enabled:
            self._attrs[str(name) + "="] = value
        return self

    def metric_inc(self, name, value):
        if self._enabled:
            self._attrs[str(name) + "+"] = value
        return self

    def metric_scope(self, name, value=0):
        if self._enabled:
            self._attrs["scope#" + str(name)] = value
        return self

    def metric_scope_as_req_id(self):
        if self._enabled:
            self._attrs["scope#"] = "req"
        return self

    # -- emitters ------------------------------------------------------------------------------
    def event(self, name):
        if not self._enabled:
            return None
        try:
            self._attrs["type"] = 0
            _event_json(_intern(str(self._domain)), _intern(str(name)), 0, encode_attrs(self._attrs))
        except Exception:
            native.count_error(HOOK_ERROR)
        return None

    def launch(self):
        return self.event("Launch")

    def link(self, from_rid, to_rid):
        if not self._enabled:
            return None
        try:
            self._attrs.clear()
            native.link(0, from_rid, to_rid)
        except Exception:
            native.count_error(HOOK_ERROR)
        return None

    def span_start(self, name):
        if self._enabled:
            self._attrs["type"] = 2
            self._name = name
            self._start = _now()
            self._ended = False
        return self

    def span_end(self):
        if not self._enabled or self._ended or self._name is None:
            return None
        self._ended = True
        try:
            end = _now()
            _span_json(_intern(str(self._domain)), _intern(str(self._name)), self._start, end,
                       encode_attrs(self._attrs))
        except Exception:
            native.count_error(HOOK_ERROR)
        return None

    def add_meta_info(self, key, value):
        if self._enabled:
            native.meta(key, str(value))
        return None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and self._enabled and self._name is not None and not self._ended:
            self._attrs.setdefault("error", getattr(exc_type, "__name__", "Exception"))
        self.span_end()
        return False


def span_enabled(level, domain):
    """Would ``Profiler(level).domain(domain)`` record? The common case (capture on, no domain
    filter, ``level`` within ``profiler_level``, no config change left to observe) reads only the
    state word; anything else asks a ``Profiler``, which also observes the change.  For hooks that
    run several times per step and write their spans directly."""
    w = _state.value
    if not w & 1:
        return False
    if w & 2 or (w >> 32) != _control.last_gen or ((w >> 8) & 0xFF) < level:
        return Profiler(level).domain(domain).enable
    return True


_step_lock = threading.Lock()
_py_step = [None]   # the step counter as this process last set it; None: read the native one first


def set_step(n):
    """Set the framework step counter (Python side and native side)."""
    try:
        n = int(n)
    except (TypeError, ValueError):
        native.count_error(HOOK_ERROR)
        return
    with _step_lock:
        _py_step[0] = n
        native.set_step(n)


def prof_step(stop_check=False):
    """Increment the framework step counter and push it to the native side."""
    try:
        with _step_lock:
            n = _py_step[0]
            if n is None:          # first step of the process: continue from the native counter
                n = native.get_step() if native.available else 0
            n += 1
            _py_step[0] = n
            native.set_step(n)
        torch_prof.on_step()   # acl_task_time: 3 (framework profiler)
        return n
    except Exception:
        return 0
