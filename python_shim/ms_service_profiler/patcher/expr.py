"""The attribute expression language of the symbol YAML (``attributes[].expr``).

Own tokenizer and recursive-descent parser; no ``eval``/``exec``.  Each expression is
compiled once into a tree of closures.  Grammar::

    pipeline := primary ( '|' pipe_op )*
    pipe_op  := 'attr' NAME | 'len' | 'str' | 'int' | 'float' | 'bool'
    primary  := atom ( '[' index ']' | '.' NAME )*
    atom     := NAME | 'return' | call | '(' pipeline ')' | literal
    call     := ('len'|'str'|'int'|'float'|'bool') '(' pipeline ')'
              | 'attr' '(' pipeline ',' (STRING | NAME) ')'
    index    := ['-'] INT | STRING
    literal  := ['-'] INT | STRING

Names: the target's parameter names (bound against its real signature, defaults applied),
``this``/``self`` (the instance, or the class for a classmethod), ``args`` (the positional
arguments as passed, the instance at ``args[0]`` for methods), ``kwargs`` (every bound
parameter by name, plus the extra keyword arguments), ``return``/``ret`` (the return value).
Names and attributes starting with ``__`` are rejected at compile time, and so are the
attributes that lead from an object to interpreter internals (frames, code objects, globals,
builtins: ``f_globals``, ``gi_frame``, ``tb_frame``, ``func_globals``, ...) and string indexes
that are dunders.  At run time, attributes of modules (which are their globals) are refused.
Only ``len``, ``str``, ``int``, ``float``, ``bool`` and ``attr`` can be called; there is no
other call syntax.  Expressions are limited to ``MAX_LEN`` characters and ``MAX_DEPTH`` levels
of nesting.
"""

import re
import types

__all__ = ["ExprError", "ExprRuntimeError", "compile_expr", "Compiled", "Env", "Binder"]

CONVERTERS = {"len": len, "str": str, "int": int, "float": float, "bool": bool}
SPECIAL_NAMES = ("this", "self", "args", "kwargs", "return", "ret")


MAX_LEN = 4096
MAX_DEPTH = 64

# Attributes that reach frames, code, globals or builtins without a dunder name.
FORBIDDEN_ATTRS = frozenset((
    "f_globals", "f_builtins", "f_locals", "f_back", "f_code", "f_trace", "f_lineno",
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_suspended",
    "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame", "ag_code", "ag_await",
    "tb_frame", "tb_next", "func_globals", "func_code", "func_closure", "func_dict",
    "im_func", "im_self", "mro", "cell_contents",
))


class ExprError(ValueError):
    """Compile-time error (syntax, forbidden name)."""


class ExprRuntimeError(RuntimeError):
    """Evaluation refused by the sandbox (e.g. reading a module's attributes)."""


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<int>\d+)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>[|\[\]().,\-])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}


def _unquote(s):
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(text):
    toks = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise ExprError("unexpected character %r at %d" % (text[pos], pos))
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "str":
            toks.append(("str", _unquote(val), pos))
        elif kind == "int":
            if len(val) > 40:
                raise ExprError("integer literal at %d is too long" % pos)
            toks.append(("int", int(val), pos))
        elif kind != "ws":
            toks.append((kind, val, pos))
        pos = m.end()
    toks.append(("end", None, n))
    return toks


def _check_name(name, pos, what):
    if name.startswith("__"):
        raise ExprError("%s %r at %d is not allowed (dunder names are rejected)" % (what, name, pos))
    if what == "attribute" and (name in FORBIDDEN_ATTRS or name.startswith("co_")):
        raise ExprError("attribute %r at %d is not allowed (it leads to interpreter internals: "
                        "frames, code, globals or builtins)" % (name, pos))


class _Missing(Exception):
    pass


_EMPTY = object()


class Binder:
    """Resolves parameter names of one target from ``(args, kwargs)`` without building a
    BoundArguments: one small getter per parameter, defaults applied."""

    __slots__ = ("getters", "names", "varkw", "sig")

    def __init__(self, sig):
        import inspect
        P = inspect.Parameter
        self.sig = sig
        self.getters = {}
        self.varkw = None
        named = set()
        npos = 0
        for p in sig.parameters.values():
            default = p.default if p.default is not P.empty else _EMPTY
            if p.kind in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
                self.getters[p.name] = self._positional(p.name, npos, default,
                                                        p.kind == P.POSITIONAL_ONLY)
                npos += 1
                named.add(p.name)
            elif p.kind == P.VAR_POSITIONAL:
                self.getters[p.name] = self._varpos(npos)
            elif p.kind == P.KEYWORD_ONLY:
                self.getters[p.name] = self._keyword(p.name, default)
                named.add(p.name)
            elif p.kind == P.VAR_KEYWORD:
                self.varkw = p.name
        if self.varkw is not None:
            self.getters[self.varkw] = self._varkw(frozenset(named))
        self.names = frozenset(self.getters)

    @staticmethod
    def _positional(name, i, default, posonly):
        def get(args, kwargs):
            if i < len(args):
                return args[i]
            if not posonly and name in kwargs:
                return kwargs[name]
            if default is not _EMPTY:
                return default
            raise _Missing(name)
        return get

    @staticmethod
    def _varpos(n):
        def get(args, kwargs):
            return tuple(args[n:])
        return get

    @staticmethod
    def _keyword(name, default):
        def get(args, kwargs):
            if name in kwargs:
                return kwargs[name]
            if default is not _EMPTY:
                return default
            raise _Missing(name)
        return get

    @staticmethod
    def _varkw(named):
        def get(args, kwargs):
            return {k: v for k, v in kwargs.items() if k not in named}
        return get

    def get(self, name, args, kwargs):
        g = self.getters.get(name)
        if g is not None:
            return g(args, kwargs)
        if self.varkw is not None and name in kwargs:
            return kwargs[name]
        raise _Missing(name)

    def all(self, args, kwargs):
        """Every parameter by name, extra keyword arguments by their own names too."""
        d = {}
        for name, g in self.getters.items():
            try:
                d[name] = g(args, kwargs)
            except _Missing:
                pass
        for k, v in kwargs.items():
            d.setdefault(k, v)
        return d


def Env(args, kwargs, ret=None, has_this=False, binder=None):
    """The evaluation environment of one call (a tuple: cheap to build on every call).
    ``binder`` is a :class:`Binder` for the target's signature, or None (then only
    ``kwargs`` names resolve)."""
    return (args, kwargs, ret, has_this, binder)


def _lookup(env, name):
    args, kwargs, _ret, _has_this, binder = env
    if binder is not None:
        return binder.get(name, args, kwargs)
    if name in kwargs:
        return kwargs[name]
    raise _Missing(name)


class Compiled:
    """A compiled expression: ``value(env)``; raises on evaluation failure."""

    __slots__ = ("text", "fn", "uses_return", "names")

    def __init__(self, text, fn, uses_return, names):
        self.text = text
        self.fn = fn
        self.uses_return = uses_return
        self.names = names

    def __call__(self, env):
        return self.fn(env)

    def __repr__(self):
        return "Compiled(%r)" % self.text


class _Parser:
    def __init__(self, text):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.names = set()

    def peek(self):
        return self.toks[self.i]

    def next(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind, val=None):
        t = self.next()
        if t[0] != kind or (val is not None and t[1] != val):
            want = val if val is not None else kind
            got = t[1] if t[1] is not None else "end of expression"
            raise ExprError("expected %r at %d, got %r" % (want, t[2], got))
        return t

    def parse(self):
        fn = self.pipeline()
        t = self.peek()
        if t[0] != "end":
            raise ExprError("unexpected %r at %d" % (t[1], t[2]))
        return fn

    def pipeline(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError("expression nested deeper than %d levels at %d" % (MAX_DEPTH, self.peek()[2]))
        try:
            return self._pipeline()
        finally:
            self.depth -= 1

    def _pipeline(self):
        fn = self.primary()
        while self.peek()[0] == "op" and self.peek()[1] == "|":
            self.next()
            t = self.expect("name")
            op = t[1]
            if op == "attr":
                nt = self.next()
                if nt[0] == "name":
                    attr = nt[1]
                elif nt[0] == "str":
                    attr = nt[1]
                else:
                    raise ExprError("'attr' needs a name at %d" % nt[2])
                _check_name(attr, nt[2], "attribute")
                fn = _getattr_op(fn, attr)
            elif op in CONVERTERS:
                fn = _conv_op(fn, CONVERTERS[op])
            else:
                raise ExprError("unknown pipe operation %r at %d (allowed: attr NAME, %s)"
                                % (op, t[2], ", ".join(CONVERTERS)))
        return fn

    def primary(self):
        fn = self.atom()
        while True:
            t = self.peek()
            if t[0] == "op" and t[1] == "[":
                self.next()
                idx = self.index()
                self.expect("op", "]")
                fn = _index_op(fn, idx)
            elif t[0] == "op" and t[1] == ".":
                self.next()
                nt = self.expect("name")
                _check_name(nt[1], nt[2], "attribute")
                fn = _getattr_op(fn, nt[1])
            else:
                return fn

    def index(self):
        t = self.next()
        if t[0] == "op" and t[1] == "-":
            n = self.expect("int")
            return -n[1]
        if t[0] == "int":
            return t[1]
        if t[0] == "str":
            if t[1].startswith("__"):
                raise ExprError("index %r at %d is not allowed (dunder names are rejected)" % (t[1], t[2]))
            return t[1]
        raise ExprError("index must be an integer or a string at %d" % t[2])

    def atom(self):
        t = self.next()
        kind, val, pos = t
        if kind == "name":
            nxt = self.peek()
            if nxt[0] == "op" and nxt[1] == "(":
                if val in CONVERTERS:
                    self.next()
                    arg = self.pipeline()
                    self.expect("op", ")")
                    return _conv_op(arg, CONVERTERS[val])
                if val == "attr":
                    self.next()
                    arg = self.pipeline()
                    self.expect("op", ",")
                    nt = self.next()
                    if nt[0] not in ("str", "name"):
                        raise ExprError("attr(obj, 'name'): name expected at %d" % nt[2])
                    _check_name(nt[1], nt[2], "attribute")
                    self.expect("op", ")")
                    return _getattr_op(arg, nt[1])
                raise ExprError("call of %r at %d is not allowed (allowed: len, str, int, float, "
                                "bool, attr)" % (val, pos))
            _check_name(val, pos, "name")
            self.names.add(val)
            return _name_op(val)
        if kind == "op" and val == "(":
            fn = self.pipeline()
            self.expect("op", ")")
            return fn
        if kind == "op" and val == "-":
            n = self.expect("int")
            v = -n[1]
            return lambda env: v
        if kind in ("int", "str"):
            return lambda env: val
        got = val if val is not None else "end of expression"
        raise ExprError("unexpected %r at %d" % (got, pos))


def _name_op(name):
    if name == "return":
        return lambda env: env[2]
    if name == "args":
        return lambda env: env[0]
    if name == "ret":
        def ret(env):
            binder = env[4]
            if binder is not None and "ret" in binder.names:
                return binder.get("ret", env[0], env[1])
            return env[2]
        return ret
    if name in ("this", "self"):
        def this(env):
            if env[3] and env[0]:
                return env[0][0]
            return _lookup(env, name)
        return this
    if name == "kwargs":
        def kw(env):
            binder = env[4]
            if binder is None:
                return dict(env[1])
            return binder.all(env[0], env[1])
        return kw
    def param(env):
        b = env[4]
        if b is not None:
            g = b.getters.get(name)
            if g is not None:
                return g(env[0], env[1])
        return _lookup(env, name)
    return param


def _getattr_op(inner, attr):
    def f(env):
        obj = inner(env)
        if isinstance(obj, types.ModuleType):
            raise ExprRuntimeError("reading attribute %r of module %r is not allowed (module "
                                   "attributes are its globals)" % (attr, obj.__name__))
        return getattr(obj, attr)
    return f


def _index_op(inner, idx):
    def f(env):
        return inner(env)[idx]
    return f


def _conv_op(inner, conv):
    def f(env):
        return conv(inner(env))
    return f


def compile_expr(text):
    """Compile ``text``; raises :class:`ExprError` with a clear message on bad input."""
    if not isinstance(text, str):
        raise ExprError("expression must be a string, got %s" % type(text).__name__)
    if not text.strip():
        raise ExprError("empty expression")
    if len(text) > MAX_LEN:
        raise ExprError("expression longer than %d characters" % MAX_LEN)
    p = _Parser(text)
    fn = p.parse()
    uses_return = bool(p.names & {"return", "ret"})
    return Compiled(text, fn, uses_return, frozenset(p.names))
