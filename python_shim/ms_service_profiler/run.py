"""``python -m ms_service_profiler.run [-m module | script.py] [args...]``

Activates the profiler (like ``import ms_service_profiler.activate``), then runs the module
or script as ``__main__`` with the remaining arguments, e.g.::

    SERVICE_PROF_CONFIG_PATH=prof.json python -m ms_service_profiler.run -m vllm.entrypoints.cli.main serve MODEL
"""

import runpy
import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    from . import activate  # noqa: F401  (side effect: activation)
    if argv[0] == "-m":
        if len(argv) < 2:
            print("ms_service_profiler.run: -m needs a module name", file=sys.stderr)
            return 2
        mod = argv[1]
        sys.argv = [mod] + argv[2:]
        runpy.run_module(mod, run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
