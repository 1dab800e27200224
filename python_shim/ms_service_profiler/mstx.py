"""``ms_service_profiler.mstx.service_profiler``: the reference's low-level singleton.

Span handles are start timestamps (CLOCK_MONOTONIC ns), so a span may end on any thread.
Without the native library every call is a no-op: ``is_enable`` is False,
``get_acl_task_time_level`` is ``"L0"`` and ``get_acl_prof_aicore_metrics`` is -1.
"""

import logging
from time import monotonic_ns as _now

from . import _control
from ._native import native
from .profiler import _domain_ok, is_enabled as _is_enabled

logger = logging.getLogger("ms_service_profiler")


class _CallbackHandle:
    def __init__(self, dynamic=True):
        self._dynamic = dynamic

    def is_dynamic(self):
        return self._dynamic

    def is_legacy(self):
        return not self._dynamic


def _b(s):
    return s.encode("utf-8", "replace") if isinstance(s, str) else (s or b"")


class ServiceProfiler:
    # -- capture control ----------------------------------------------------------------------
    def is_enable(self, level=20):
        try:
            _control.poll()
            return _is_enabled(level)
        except Exception:
            return False

    def is_domain_enable(self, domain):
        try:
            return _domain_ok(20, str(domain))
        except Exception:
            return False

    def start_profiler(self):
        native.start()

    def stop_profiler(self):
        native.stop()

    def add_meta_info(self, key, value):
        native.meta(key, str(value))

    # -- records ------------------------------------------------------------------------------
    def start_span(self, name=None):
        return _now()

    def span_end_ex(self, name, domain, msg, handle):
        try:
            native.span_json(native.intern(str(domain)), native.intern(str(name)), int(handle or _now()),
                             _now(), _b(msg) or None)
        except Exception:
            pass

    def mark_event_ex(self, name, domain, msg):
        try:
            native.event_json(native.intern(str(domain)), native.intern(str(name)), 0, _b(msg) or None)
        except Exception:
            pass

    def mark_event(self, msg):
        self.mark_event_ex("", "", msg)

    # -- config values ------------------------------------------------------------------------
    def _cfg(self, keys, default):
        try:
            cfg = native.config()
        except Exception:
            return default
        for k in keys:
            if k in cfg and cfg[k] is not None:
                return cfg[k]
        return default

    def get_prof_path(self):
        if not native.available:
            return ""
        return native.run_dir() or str(self._cfg(("prof_dir",), ""))

    def get_acl_task_time_level(self):
        if not native.available:
            return "L0"
        v = self._cfg(("acl_level", "acl_prof_task_time_level"), "L0")
        return str(v).split(";")[0] or "L0"

    def get_acl_prof_aicore_metrics(self):
        if not native.available:
            return -1
        v = self._cfg(("aicore_metrics", "aclprofAicoreMetrics"), -1)
        try:
            return int(v)
        except (TypeError, ValueError):
            return -1

    def get_torch_prof_step_num(self):
        try:
            return int(self._cfg(("torch_prof_step_num",), 0))
        except (TypeError, ValueError):
            return 0

    def is_torch_prof_stack(self):
        return bool(self._cfg(("torch_prof_stack",), False))

    def is_torch_prof_modules(self):
        return bool(self._cfg(("torch_prof_modules",), False))

    def _acl_task_time(self):
        try:
            return int(self._cfg(("acl_task_time",), 0))
        except (TypeError, ValueError):
            return 0

    def is_torch_profiler_enable(self, level=20):
        return self._acl_task_time() == 3 and self.is_enable(level)

    def is_torch_profiler_register(self):
        return self._acl_task_time() == 3

    # -- steps --------------------------------------------------------------------------------
    def set_profiler_current_step(self, n):
        from .profiler import set_step
        set_step(n)

    def get_profiler_current_step(self):
        return native.get_step()

    # -- callbacks (run from the generation poll on the thread that observes the change) -------
    def _register(self, lst, cb, fire_now):
        if not callable(cb):
            return _CallbackHandle()
        lst.append(cb)
        if fire_now:
            try:
                cb()
            except Exception as exc:
                logger.warning("ms_service_profiler: callback %r failed: %s", cb, exc)
        return _CallbackHandle()

    def register_profiler_start_callback(self, cb):
        return self._register(_control.start_callbacks, cb, _is_enabled(0))

    def register_profiler_stop_callback(self, cb):
        return self._register(_control.stop_callbacks, cb, False)

    def register_profiler_start_metric_callback(self, cb):
        return self._register(_control.start_callbacks, cb, _is_enabled(0))

    def register_profiler_stop_metric_callback(self, cb):
        return self._register(_control.stop_callbacks, cb, False)


service_profiler = ServiceProfiler()
