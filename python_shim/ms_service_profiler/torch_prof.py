"""``acl_task_time: 3``: the framework profiler (torch_npu.profiler on Ascend, torch.profiler
elsewhere), driven from the framework step counter (``prof_step``, called once per
``execute_model`` in the worker).

* While capture is on and ``acl_task_time`` is 3, the first step starts a profiler in the
  calling thread (CPU activity, plus CUDA when available, or NPU under torch_npu), honouring
  ``torch_prof_stack`` (``with_stack``), ``torch_prof_modules`` (``with_modules``) and
  ``torch_prof_step_num`` (N > 0: ``schedule(wait=0, warmup=0, active=N, repeat=1)``; 0: every
  step until capture stops). Each later step calls ``profiler.step()``; each step is wrapped in a
  span ``torch_profiler`` (domain ``Execute``, attribute ``step``).
* The profiler is stopped, and its trace written, on its own thread (torch's profiler can only
  be stopped on the thread that started it) at the first of: the next step after capture is
  turned off; the next module forward after capture is turned off (a global
  ``nn.Module`` forward pre-hook, installed only while the profiler runs: the service hooks
  themselves are bypassed while capture is off, so an idle worker would otherwise never notice);
  the stop callback, when it runs on that thread; process exit.
* Output: ``<run_dir>/torch_prof/<host>-<pid>/trace_<n>.json`` (torch's chrome trace; under
  torch_npu, an ``*_ascend_pt`` directory from ``tensorboard_trace_handler`` in the same folder)
  and ``clock_<n>.json``, the clock anchors the parser aligns the trace with: right after start
  and right before stop, a ``record_function`` named ``ms_service_profiler::clock_anchor#<k>``
  is entered between two readings of ``time.monotonic_ns()`` (the capture clock) and
  ``time.time_ns()``. The anchor's own trace event lies inside that window, so
  ``monotonic = torch_ts + offset`` with an error of at most half the window minus the event's
  duration; two anchors also give the drift.

Never raises into the host: a failure logs one warning and turns the mode off for the process.
"""

import atexit
import json
import logging
import os
import socket
import threading
import time
import warnings

from ._native import native

logger = logging.getLogger("ms_service_profiler")

ANCHOR = "ms_service_profiler::clock_anchor#%d"
STEP_SPAN = "torch_profiler"


class _State:
    def __init__(self):
        self.gen = None          # generation the cached mode belongs to
        self.mode = False        # acl_task_time == 3
        self.prof = None         # running profiler
        self.owner = None        # thread ident that started it
        self.dir = None
        self.session = 0
        self.anchors = []
        self.step = 0
        self.span = None
        self.exported = False
        self.failed = False
        self.npu = False
        self.hook = None         # global forward pre-hook handle


_s = _State()
_lock = threading.Lock()


def settings():
    """The torch-mode config values: (mode on, with_stack, with_modules, step_num, run_dir)."""
    cfg = native.config()
    try:
        mode = int(cfg.get("acl_task_time", 0)) == 3
    except (TypeError, ValueError):
        mode = False
    try:
        steps = max(int(cfg.get("torch_prof_step_num", 0) or 0), 0)
    except (TypeError, ValueError):
        steps = 0
    run_dir = native.run_dir() or str(cfg.get("prof_dir", "") or "")
    return mode, cfg.get("torch_prof_stack") is True, cfg.get("torch_prof_modules") is True, steps, run_dir


def _enabled():
    return bool(native.state.value & 1)


def _anchor(torch_mod):
    k = len(_s.anchors)
    m0, r0 = time.monotonic_ns(), time.time_ns()
    with torch_mod.profiler.record_function(ANCHOR % k):
        pass
    m1, r1 = time.monotonic_ns(), time.time_ns()
    _s.anchors.append({"name": ANCHOR % k, "mono_before": m0, "mono_after": m1, "real_before": r0, "real_after": r1})


def _write_anchors():
    path = os.path.join(_s.dir, "clock_%d.json" % _s.session)
    doc = {"pid": os.getpid(), "hostname": socket.gethostname(), "trace": "trace_%d.json" % _s.session,
           "profiler": "torch_npu" if _s.npu else "torch", "anchors": _s.anchors}
    with open(path, "w") as f:
        json.dump(doc, f)


def _export(prof):
    if _s.exported:
        return
    _s.exported = True
    if not _s.npu:
        prof.export_chrome_trace(os.path.join(_s.dir, "trace_%d.json" % _s.session))
    _write_anchors()


def _step_span():
    from .profiler import Profiler, Level
    if _s.span is not None:
        _s.span.span_end()
        _s.span = None
    p = Profiler(Level.INFO).domain("Execute")
    if p.enable:
        _s.span = p.span_start(STEP_SPAN).attr("step", _s.step)


def _start(stack, modules, steps, run_dir):
    import torch
    npu = False
    try:
        import torch_npu  # noqa: F401  (Ascend)
        prof_mod = torch_npu.profiler
        npu = True
    except ImportError:
        prof_mod = torch.profiler
    acts = [prof_mod.ProfilerActivity.CPU]
    if npu:
        acts.append(prof_mod.ProfilerActivity.NPU)
    elif torch.cuda.is_available():
        acts.append(prof_mod.ProfilerActivity.CUDA)
    host = socket.gethostname()
    _s.dir = os.path.join(run_dir, "torch_prof", "%s-%d" % (host, os.getpid()))
    os.makedirs(_s.dir, mode=0o750, exist_ok=True)
    _s.npu = npu
    _s.anchors = []
    _s.exported = False
    _s.step = 0
    kw = {"activities": acts, "with_stack": stack, "with_modules": modules}
    if npu:
        handler = prof_mod.tensorboard_trace_handler(_s.dir)
        kw["on_trace_ready"] = lambda p: (handler(p), _export(p))
    else:
        kw["on_trace_ready"] = _export
    if steps > 0:
        with warnings.catch_warnings():     # "won't be using warmup": recording starts at once
            warnings.simplefilter("ignore")
            kw["schedule"] = prof_mod.schedule(wait=0, warmup=0, active=steps, repeat=1)
    prof = prof_mod.profile(**kw)
    prof.start()
    with torch.profiler.record_function("ms_service_profiler::warmup"):
        pass
    _anchor(torch)
    _s.prof = prof
    _s.owner = threading.get_ident()
    try:
        _s.hook = torch.nn.modules.module.register_module_forward_pre_hook(_forward_check)
    except Exception as exc:   # older torch: the step / stop callback / exit paths remain
        logger.warning("ms_service_profiler: no global forward pre-hook (%s); the torch trace is written at the next step or at exit", exc)
    from . import _control
    if on_stop not in _control.stop_callbacks:
        _control.stop_callbacks.append(on_stop)
    logger.info("ms_service_profiler: %s profiler started, trace under %s", "torch_npu" if npu else "torch", _s.dir)


def _forward_check(_module, _args):
    if _s.prof is not None and not native.state.value & 1 and threading.get_ident() == _s.owner:
        on_stop()
    return None


def _stop():
    prof, _s.prof = _s.prof, None
    if _s.hook is not None:
        try:
            _s.hook.remove()
        except Exception:
            pass
        _s.hook = None
    if _s.span is not None:
        _s.span.span_end()
        _s.span = None
    if prof is None:
        return
    try:
        import torch
        _anchor(torch)
        prof.stop()
        if not _s.exported:
            _export(prof)
        else:           # the schedule already wrote the trace: add the stop anchor to the list
            _write_anchors()
        logger.info("ms_service_profiler: torch profiler stopped, trace in %s", _s.dir)
    finally:
        _s.session += 1


def _fail(what, exc):
    _s.failed = True
    _s.prof = None
    logger.warning("ms_service_profiler: torch profiler %s failed, framework profiling off for this process: %s", what, exc)


def on_step():
    """Called by ``prof_step`` once per framework step (never raises)."""
    if _s.failed:
        return
    try:
        gen = native.state.value >> 32
        if gen != _s.gen:
            _s.gen = gen
            _s.mode, *_ = settings()
        running = _s.prof is not None
        if not running and not _s.mode:
            return
        with _lock:
            if _s.prof is not None and threading.get_ident() != _s.owner:
                return
            if _s.prof is not None and (not _enabled() or not _s.mode):
                _stop()
                return
            if _s.prof is None:
                if not (_s.mode and _enabled()):
                    return
                mode, stack, modules, steps, run_dir = settings()
                if not run_dir:
                    return
                _start(stack, modules, steps, run_dir)
            else:
                _s.step += 1
                _s.prof.step()
            _step_span()
    except Exception as exc:
        _fail("step", exc)


def on_stop():
    """Stop callback: stops the profiler when called on its thread (else the next step does)."""
    if _s.prof is None or threading.get_ident() != _s.owner:
        return
    try:
        with _lock:
            _stop()
    except Exception as exc:
        _fail("stop", exc)


def _at_exit():
    if _s.prof is not None and threading.get_ident() == _s.owner:
        try:
            _stop()
        except Exception as exc:
            _fail("stop at exit", exc)


atexit.register(_at_exit)
