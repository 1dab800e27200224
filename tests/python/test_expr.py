"""The attribute expression language: every example of the user guide, and the rejections."""
import inspect

import pytest

from ms_service_profiler.patcher.expr import Env, ExprError, compile_expr
from ms_service_profiler.patcher.expr import Binder as _FastBinder


class Batch:
    _req_ids = ["a", "b", "c"]


class Runner:
    device = "cpu"
    dp_rank = 1
    input_batch = Batch()


class Tensor:
    shape = (2, 3)


class Out:
    input_ids = [1, 2, 3, 4]


def target(self, input_ids, input_tensor=None, training=False, data=None, request_id="r0",
           *rest, batch_size=8, **extra):
    pass


def env(args, kwargs=None, ret=None, has_this=True, func=target):
    return Env(tuple(args), kwargs or {}, ret, has_this, _FastBinder(inspect.signature(func)))


@pytest.fixture
def e():
    r = Runner()
    return env([r, [1, 2, 3], Tensor(), True, {"k": 1, "j": 2}], {"batch_size": 4},
               ret=[Out(), "x"])


GUIDE = [
    ("len(input_ids)", 3),
    ("len(return) | str", "2"),
    ("return[0] | attr input_ids | len", 4),
    ("args[0] | attr device | str", "cpu"),
    ("args[0] | attr dp_rank | str", "1"),
    ("args[0] | attr input_batch | attr _req_ids | len", 3),
    ("kwargs['batch_size']", 4),
    ("training | bool", True),
    ("input_tensor | attr shape | str", "(2, 3)"),
    ("request_id", "r0"),
    ("args[-1] | len", 2),
]


@pytest.mark.parametrize("text,value", GUIDE)
def test_guide_examples(e, text, value):
    assert compile_expr(text)(e) == value


def test_dict_method_len_fails(e):
    # `items` of a dict is a method; len() of it fails -> the caller drops the attribute
    with pytest.raises(TypeError):
        compile_expr("data | attr items | len | str")(e)


def test_data_items_len_when_attribute_is_sized():
    class D:
        items = [1, 2, 3]
    ev = env([None, [], None, False, D()])
    assert compile_expr("data | attr items | len | str")(ev) == "3"


def test_names_this_self_ret_kwargs(e):
    assert compile_expr("this.device")(e) == "cpu"
    assert compile_expr("self | attr dp_rank")(e) == 1
    assert compile_expr("ret[1]")(e) == "x"
    assert compile_expr("kwargs['input_ids'] | len")(e) == 3   # bound parameters by name too
    assert compile_expr("kwargs[\"batch_size\"] | str")(e) == "4"
    assert compile_expr("attr(this, 'device')")(e) == "cpu"
    assert compile_expr("attr(args[0], device) | str")(e) == "cpu"
    assert compile_expr("int(str(len(input_ids)))")(e) == 3
    assert compile_expr("float(args[0].dp_rank)")(e) == 1.0
    assert compile_expr("(return[0] | attr input_ids)[-1]")(e) == 4
    assert compile_expr("data['k']")(e) == 1
    assert compile_expr("batch_size")(e) == 4


def test_defaults_applied_and_var_keyword():
    ev = env([Runner(), [9]], {"extra_key": 5})
    assert compile_expr("request_id")(ev) == "r0"
    assert compile_expr("batch_size")(ev) == 8
    assert compile_expr("extra_key")(ev) == 5
    assert compile_expr("kwargs['extra_key']")(ev) == 5


def test_module_function_binding():
    def f(a, b=2):
        pass
    ev = Env((1,), {}, None, False, _FastBinder(inspect.signature(f)))
    assert compile_expr("b")(ev) == 2
    assert compile_expr("args[0]")(ev) == 1
    with pytest.raises(Exception):
        compile_expr("this")(ev)


def test_positional_only_falls_back_to_signature_bind():
    def f(a, /, b):
        pass
    ev = Env((1, 2), {}, None, False, _FastBinder(inspect.signature(f)))
    assert compile_expr("a")(ev) == 1 and compile_expr("b")(ev) == 2


def test_ret_parameter_wins_over_alias():
    def f(ret):
        pass
    ev = Env((5,), {}, "RV", False, _FastBinder(inspect.signature(f)))
    assert compile_expr("ret")(ev) == 5
    assert compile_expr("return")(ev) == "RV"


def test_unknown_name_fails_at_run_time(e):
    c = compile_expr("no_such_param")
    with pytest.raises(Exception):
        c(e)


@pytest.mark.parametrize("text", [
    "__import__('os')", "a.__class__", "a | attr __dict__", "attr(a, '__class__')", "__x",
    "eval('1')", "open('f')", "getattr(a, 'b')", "a | foo", "a + 1", "a * 2", "a[", "a[1",
    "len(a", "", "   ", "a b", "a | attr", "a[1.5]", "lambda: 1", "a; b", "a[b]", "a | len()",
])
def test_rejected_at_compile_time(text):
    with pytest.raises(ExprError):
        compile_expr(text)


def test_dunder_message_is_clear():
    with pytest.raises(ExprError, match="dunder"):
        compile_expr("this | attr __class__")


def test_compiled_metadata():
    c = compile_expr("len(return) | str")
    assert c.uses_return
    assert not compile_expr("args[0]").uses_return
    assert "input_ids" in compile_expr("len(input_ids)").names


def test_no_eval_used():
    import ms_service_profiler.patcher.expr as m
    src = inspect.getsource(m)
    assert "eval(" not in src.replace("no ``eval``", "") and "exec(" not in src
