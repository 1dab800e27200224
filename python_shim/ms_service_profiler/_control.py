"""Generation polling: how the shim notices capture state changes without native callbacks.

The native state word carries a generation counter (bits 32..63) bumped on every config or
state change.  Hooks and the Profiler API compare it with ``last_gen`` (one integer compare);
on a difference, :func:`changed` runs once per generation: it fires the registered
start/stop callbacks on enable transitions and, while capture is on, asks the patcher to
re-read the symbol YAML (entries are diffed whole, so an unchanged file changes nothing).
"""

import logging
import threading

from ._native import native

logger = logging.getLogger("ms_service_profiler")

_state = native.state
last_gen = _state.value >> 32
_handled_gen = last_gen
_last_enabled = bool(_state.value & 1)
_lock = threading.Lock()

start_callbacks = []
stop_callbacks = []
# set by the patcher: called (no args) on each observed generation change while enabled
reload_hook = None


def _run(cbs, what):
    for cb in list(cbs):
        try:
            cb()
        except Exception as exc:  # never raise into the host
            logger.warning("ms_service_profiler: %s callback %r failed: %s", what, cb, exc)


def changed():
    """Handle a generation change (idempotent per generation, never raises)."""
    global last_gen, _handled_gen, _last_enabled
    try:
        w = _state.value
        gen = w >> 32
        last_gen = gen
        if gen == _handled_gen:
            return
        if not _lock.acquire(blocking=False):
            return  # another thread is handling it
        try:
            if gen == _handled_gen:
                return
            _handled_gen = gen
            enabled = bool(w & 1)
            was = _last_enabled
            _last_enabled = enabled
            if enabled and not was:
                _run(start_callbacks, "start")
            elif was and not enabled:
                _run(stop_callbacks, "stop")
            if enabled and reload_hook is not None:
                try:
                    reload_hook()
                except Exception as exc:
                    logger.warning("ms_service_profiler: symbol reload failed: %s", exc)
        finally:
            _lock.release()
    except Exception:  # pragma: no cover
        pass


def poll():
    """Cheap check usable anywhere."""
    if (_state.value >> 32) != last_gen:
        changed()


def _after_fork_child():
    global _lock
    _lock = threading.Lock()


try:
    import os as _os
    _os.register_at_fork(after_in_child=_after_fork_child)
except Exception:  # pragma: no cover
    pass

if native.fast is not None:
    try:
        native.fast.set_generation_callback(changed)
        native.fast.set_last_generation(last_gen)
    except Exception:  # pragma: no cover
        pass
