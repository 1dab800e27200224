"""Build: the Rust cdylib (shipped inside the package as libms_service_profiler.so), the
`msserviceprofiler` CLI (installed as a console command), and the optional C hot-path
extension ms_service_profiler._fast.  Metadata lives in pyproject.toml.

Environment:
  CARGO_TARGET_DIR      honoured by cargo (share one target dir between builds)
  MSP_SKIP_RUST=1       build only the Python package and the C extension (no cargo);
                        the library is then found through MS_SERVICE_PROFILER_LIB etc.
  MSP_RUST_DEBUG=1      debug cargo profile
"""
import os

from setuptools import Extension, setup

ext_modules = [
    Extension(
        "ms_service_profiler._fast",
        sources=[f"python_shim/ms_service_profiler/{f}.c" for f in ("_fast", "_fast_timer", "_fast_handler", "_fast_phase", "_fast_json",
                                                                   "_fast_batch")],
        depends=["python_shim/ms_service_profiler/_fast.h"],
        extra_compile_args=["-O2", "-fvisibility=hidden"],
        optional=True,  # pure-Python fallback when no C compiler is available
    )
]

kwargs = {}
if os.environ.get("MSP_SKIP_RUST", "") not in ("1", "true", "yes"):
    from setuptools_rust import Binding, RustBin, RustExtension
    from setuptools_rust.build import build_rust as _build_rust

    LIB_TARGET = "ms_service_profiler.libms_service_profiler"

    class build_rust(_build_rust):
        """Install the cdylib under its soname, libms_service_profiler.so, inside the package."""

        def get_dylib_ext_path(self, ext, target_fname):
            if target_fname == LIB_TARGET:
                build_ext = self.get_finalized_command("build_ext")
                path = build_ext.get_ext_fullpath(target_fname)
                return os.path.join(os.path.dirname(path), "libms_service_profiler.so")
            return super().get_dylib_ext_path(ext, target_fname)

    debug = True if os.environ.get("MSP_RUST_DEBUG") else None
    kwargs["rust_extensions"] = [
        RustExtension(LIB_TARGET, path="Cargo.toml", binding=Binding.NoBinding, debug=debug),
        RustBin("msserviceprofiler", path="Cargo.toml", debug=debug),
    ]
    kwargs["cmdclass"] = {"build_rust": build_rust}

setup(ext_modules=ext_modules, **kwargs)
