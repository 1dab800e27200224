"""Process meta (CONTRACT §4.4 ``init_data_parallel`` / ``init_data_parallel_worker``).

Meta ``dpRankId`` (and ``processRole``) is written once per process through
``service_profiler.add_meta_info``; the library keeps meta for the life of the process and writes
it into every file set, so it is not lost when capture was off at the first call (CONTRACT §6
item 14).  The built-in schedule / model-runner handlers also write it, so these two are only
needed for custom symbol files.
"""

from . import common


def init_data_parallel(original_func, this, *args, **kwargs):
    """``DPEngineCoreProc.add_request`` (EngineCore, data parallel > 1)."""
    common.set_role("engine_core")
    common.set_dp_rank(this)
    return original_func(this, *args, **kwargs)


def init_data_parallel_worker(original_func, this, *args, **kwargs):
    """``*ModelRunner.execute_model`` (worker)."""
    common.set_role("worker")
    common.set_dp_rank(this)
    return original_func(this, *args, **kwargs)
