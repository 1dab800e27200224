"""Locating and binding ``libms_service_profiler.so``; the no-op fallback.

Lookup order (first that loads wins):

1. a copy already loaded in this process (``LD_PRELOAD`` or an earlier ``dlopen``): the
   global namespace is searched with ``dlsym`` and the soname is probed with ``RTLD_NOLOAD``,
   so the very same library instance is used;
2. ``$MS_SERVICE_PROFILER_LIB`` (a file path);
3. the copy bundled inside this package (``ms_service_profiler/libms_service_profiler.so``);
4. ``$ASCEND_HOME_PATH/lib64/libms_service_profiler.so``.

If none loads, one warning is logged and every entry point is a no-op.

Hot-path entry points (``span_json``, ``event_json``) go through the small C extension
``ms_service_profiler._fast`` when it was built; it receives raw function pointers from here,
so it always calls the same library instance as ctypes does.  Without it they fall back to
ctypes calls with ``argtypes`` set.

Nothing in this module raises into the host program.
"""

import ctypes
import json
import logging
import os
import threading

logger = logging.getLogger("ms_service_profiler")

LIB_SONAME = "libms_service_profiler.so"
_RTLD_NOLOAD = getattr(os, "RTLD_NOLOAD", 4)

# error kinds for msp_count_error
HOOK_ERROR = 1
EXPR_ERROR = 2


class MspStr(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_char_p), ("len", ctypes.c_size_t)]


class MspCounters(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "records_written", "bytes_written", "records_dropped", "records_overwritten",
        "records_oversize", "segments", "strings", "hook_errors", "expr_errors")]


_u32, _u64, _i64, _sz, _b, _cp = (ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64,
                                  ctypes.c_size_t, ctypes.c_bool, ctypes.c_char_p)

_SIGS = {
    "msp_init": (ctypes.c_int32, []),
    "msp_shutdown": (None, []),
    "msp_after_fork_child": (None, []),
    "msp_state_word": (ctypes.c_void_p, []),
    "msp_is_enabled": (_b, [_u32, _u32]),
    "msp_intern": (_u32, [_cp, _sz]),
    "msp_now": (_u64, []),
    "msp_span_json": (_b, [_u32, _u32, _u64, _u64, _cp, _sz]),
    "msp_event_json": (_b, [_u32, _u32, _u64, _cp, _sz]),
    "msp_link": (_b, [_u64, _cp, _sz, _cp, _sz]),
    "msp_meta": (None, [_cp, _sz, _cp, _sz]),
    "msp_set_step": (None, [_i64]),
    "msp_get_step": (_i64, []),
    "msp_start": (None, []),
    "msp_stop": (None, []),
    "msp_counters": (_b, [ctypes.POINTER(MspCounters)]),
    "msp_count_error": (None, [_u32, _u64]),
    "msp_config_json": (_sz, [ctypes.c_char_p, _sz]),
    "msp_run_dir": (_sz, [ctypes.c_char_p, _sz]),
}


def _bind(lib):
    """Set signatures; return the CDLL if every symbol exists, else None."""
    try:
        for name, (res, args) in _SIGS.items():
            fn = getattr(lib, name)
            fn.restype = res
            fn.argtypes = args
        return lib
    except (AttributeError, OSError):
        return None


def _try_path(path, mode=ctypes.DEFAULT_MODE):
    try:
        return _bind(ctypes.CDLL(path, mode=mode))
    except OSError:
        return None


def _find_library():
    """Return (CDLL or None, description, list of attempts)."""
    tried = []
    # 1. already loaded: global namespace, then the soname with RTLD_NOLOAD.
    try:
        lib = _bind(ctypes.CDLL(None))
        if lib is not None:
            return lib, "already loaded (global namespace)", tried
    except OSError:
        pass
    lib = _try_path(LIB_SONAME, mode=_RTLD_NOLOAD | ctypes.DEFAULT_MODE)
    if lib is not None:
        return lib, "already loaded (%s)" % LIB_SONAME, tried
    tried.append("already loaded")
    # 2. explicit env var
    env = os.environ.get("MS_SERVICE_PROFILER_LIB", "")
    if env:
        lib = _try_path(env)
        if lib is not None:
            return lib, env, tried
        tried.append("MS_SERVICE_PROFILER_LIB=" + env)
    # 3. bundled in the package
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.join(here, LIB_SONAME)
    if os.path.exists(bundled):
        lib = _try_path(bundled)
        if lib is not None:
            return lib, bundled, tried
    tried.append(bundled)
    # 4. $ASCEND_HOME_PATH/lib64
    ascend = os.environ.get("ASCEND_HOME_PATH", "")
    if ascend:
        p = os.path.join(ascend, "lib64", LIB_SONAME)
        if os.path.exists(p):
            lib = _try_path(p)
            if lib is not None:
                return lib, p, tried
        tried.append(p)
    return None, "", tried


class Native:
    """The bound library (or the no-op fallback when ``lib`` is None)."""

    def __init__(self):
        self.lib = None
        self.path = ""
        self.init_rc = 0
        self._intern = {}
        self._intern_lock = threading.Lock()
        self._fallback_word = ctypes.c_uint64(0)
        self.word_addr = ctypes.addressof(self._fallback_word)
        self.fast = None
        try:
            self._load()
        except Exception as exc:  # pragma: no cover - defensive
            logger.warning("ms_service_profiler: native library unusable (%s); profiling is a no-op", exc)
            self.lib = None
        # the state word, read through one ctypes object created once
        self.state = ctypes.c_uint64.from_address(self.word_addr)
        self._bind_fast()
        self._bind_ctypes_hot()

    # -- loading -----------------------------------------------------------------------------
    def _load(self):
        lib, where, tried = _find_library()
        if lib is None:
            logger.warning(
                "ms_service_profiler: %s not found (tried: %s); profiling calls are no-ops. "
                "Set MS_SERVICE_PROFILER_LIB to the library path.", LIB_SONAME, ", ".join(tried))
            return
        self.lib = lib
        self.path = where
        try:
            self.init_rc = int(lib.msp_init())
        except Exception:  # pragma: no cover
            self.init_rc = -1
        if self.init_rc < 0:
            logger.warning("ms_service_profiler: msp_init() failed (%d)", self.init_rc)
        addr = lib.msp_state_word()
        if addr:
            self.word_addr = addr
        try:
            os.register_at_fork(after_in_child=self._after_fork_child)
        except Exception:  # pragma: no cover
            pass

    def _after_fork_child(self):
        self._intern_lock = threading.Lock()
        try:
            self.lib.msp_after_fork_child()
        except Exception:  # pragma: no cover
            pass

    def _bind_fast(self):
        try:
            from . import _fast  # type: ignore
        except Exception:
            _fast = None
        if _fast is None:
            return
        lib = self.lib

        def addr(name):
            if lib is None:
                return 0
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0

        try:
            _fast.bind(self.word_addr, addr("msp_span_json"), addr("msp_event_json"),
                       addr("msp_is_enabled"), addr("msp_count_error"), addr("msp_set_step"))
            self.fast = _fast
        except Exception:  # pragma: no cover
            self.fast = None

    def _bind_ctypes_hot(self):
        fast = self.fast
        lib = self.lib
        if fast is not None:
            self.span_json = fast.span_json
            self.event_json = fast.event_json
            if lib is not None:
                self.set_step = fast.set_step
            return
        if lib is None:
            self.span_json = _noop_false
            self.event_json = _noop_false
            return
        span = lib.msp_span_json
        event = lib.msp_event_json

        def span_json(domain, name, start, end, js=None):
            if js is None:
                return span(domain, name, start, end, None, 0)
            return span(domain, name, start, end, js, len(js))

        def event_json(domain, name, ts, js=None):
            if js is None:
                return event(domain, name, ts, None, 0)
            return event(domain, name, ts, js, len(js))

        self.span_json = span_json
        self.event_json = event_json

    # -- simple wrappers (never raise) -------------------------------------------------------
    @property
    def available(self):
        return self.lib is not None

    def intern(self, s):
        """String -> small id, cached per process (0 without the library)."""
        i = self._intern.get(s)
        if i is not None:
            return i
        if self.lib is None:
            return 0
        try:
            b = str(s).encode("utf-8", "replace")
            i = int(self.lib.msp_intern(b, len(b)))
        except Exception:
            return 0
        if i:
            with self._intern_lock:
                self._intern[s] = i
        return i

    def is_enabled(self, level, domain_id=0):
        if self.lib is None:
            return False
        try:
            return bool(self.lib.msp_is_enabled(int(level), int(domain_id)))
        except Exception:
            return False

    def count_error(self, kind, n=1):
        if self.lib is None:
            return
        try:
            self.lib.msp_count_error(kind, n)
        except Exception:
            pass

    def link(self, ts, frm, to):
        if self.lib is None:
            return False
        try:
            a = str(frm).encode("utf-8", "replace")
            b = str(to).encode("utf-8", "replace")
            return bool(self.lib.msp_link(ts, a, len(a), b, len(b)))
        except Exception:
            return False

    def meta(self, key, value):
        if self.lib is None:
            return
        try:
            a = str(key).encode("utf-8", "replace")
            b = str(value).encode("utf-8", "replace")
            self.lib.msp_meta(a, len(a), b, len(b))
        except Exception:
            pass

    def set_step(self, n):
        """Set the framework step counter; a value that is not a 64-bit integer is ignored (the C
        extension's ``set_step`` replaces this when built)."""
        if self.lib is not None:
            try:
                n = int(n)
                if -(1 << 63) <= n < (1 << 63):       # ctypes would wrap it silently
                    self.lib.msp_set_step(n)
            except Exception:
                pass

    def get_step(self):
        if self.lib is None:
            return 0
        try:
            return int(self.lib.msp_get_step())
        except Exception:
            return 0

    def start(self):
        if self.lib is not None:
            try:
                self.lib.msp_start()
            except Exception:
                pass

    def stop(self):
        if self.lib is not None:
            try:
                self.lib.msp_stop()
            except Exception:
                pass

    def shutdown(self):
        if self.lib is not None:
            try:
                self.lib.msp_shutdown()
            except Exception:
                pass

    def counters(self):
        """Dict of native counters, or None."""
        if self.lib is None:
            return None
        c = MspCounters()
        try:
            if not self.lib.msp_counters(ctypes.byref(c)):
                return None
        except Exception:
            return None
        return {name: int(getattr(c, name)) for name, _ in MspCounters._fields_}

    def _string_call(self, fn):
        if self.lib is None:
            return ""
        try:
            cap = 4096
            for _ in range(4):
                buf = ctypes.create_string_buffer(cap)
                need = int(fn(buf, cap))
                if need < cap:
                    return buf.raw[:need].decode("utf-8", "replace")
                cap = need + 1
        except Exception:
            pass
        return ""

    def config(self):
        """The effective native config as a dict ({} without the library)."""
        text = self._string_call(self.lib.msp_config_json) if self.lib is not None else ""
        if not text:
            return {}
        try:
            v = json.loads(text)
            return v if isinstance(v, dict) else {}
        except ValueError:
            return {}

    def run_dir(self):
        return self._string_call(self.lib.msp_run_dir) if self.lib is not None else ""


def _noop_false(*_a, **_k):
    return False


native = Native()

# bit layout of the state word
ENABLED_BIT = 1
DOMAIN_FILTER_BIT = 2
