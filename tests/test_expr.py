"""The expression language shared by --where and gates."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlab.errors import ExpressionError
from runlab.tracking.expr import parse

RUN = {
    "status": "finished",
    "metrics": {"val_loss": 0.8, "sharpe": 1.2, "nan": math.nan, "val/loss": 0.5},
    "config": {"optim": {"lr": 3e-4}, "layers": [64, 32], "name": "mlp"},
    "tags": {"pair": "AAPL_AMZN", "seed": 3},
    "epoch": 5,
}


def ev(text: str, data: dict = RUN) -> object:
    return parse(text).matches_mapping(data)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('status == "finished" and metrics.val_loss < 0.9 and config.optim.lr >= 1e-4', True),
        ("tags.pair == 'AAPL_AMZN'", True),
        ('status == "failed" or metrics.sharpe > 1', True),
        ("not (epoch > 3)", False),
        ("not epoch > 3", False),  # not binds looser than comparison
        ('tags.pair in ["AAPL_AMZN", "AMZN_MSFT"]', True),
        ('tags.pair not in ["AAPL_AMZN"]', False),
        ("epoch in [1, 2, 5.0]", True),  # int and float compare as numbers
        ("0 < metrics.val_loss < 1", True),  # chained comparison
        ("0 < metrics.val_loss < 0.5", False),
        ("metrics.sharpe > 1 + 0.1 * 2", False),  # * before +: 1.2 > 1.2 is false
        ("metrics.sharpe >= (1 + 0.1) * 1", True),
        ("-metrics.sharpe < -1", True),
        ("config.layers.0 == 64", True),  # list index
        ("metrics.`val/loss` == 0.5", True),  # backtick-quoted segment
        ('"ml" in config.name', True),  # substring of a string
        ('config.name in "resmlp"', True),
        ('"x" in config.name', False),
        ("TRUE and true", True),  # keywords are case-insensitive
        ("status == 'finished' AND epoch == 5", True),
    ],
)
def test_evaluates(text: str, expected: bool) -> None:
    assert ev(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "metrics.missing < 1",  # missing name is null: ordering with null is false
        "metrics.missing > 1",
        "metrics.nan > 0",  # NaN orders with nothing
        "metrics.nan < 0",
        "status > 3",  # a string and a number do not order
        "tags.seed == '3'",  # no string/number coercion
        "metrics.missing + 1 > 0",  # arithmetic on null is null
    ],
)
def test_forgiving_semantics_give_false(text: str) -> None:
    assert ev(text) is False


def test_null_equality() -> None:
    assert ev("metrics.missing == null") is True
    assert ev("metrics.val_loss != null") is True
    assert ev("config.optim == null") is False


def test_names_are_collected() -> None:
    expr = parse("val.sharpe > baseline.val.sharpe and epoch in [1, x.y]")
    assert expr.names == {("val", "sharpe"), ("baseline", "val", "sharpe"), ("epoch",), ("x", "y")}


def test_division_by_zero_is_nan_not_an_error() -> None:
    assert math.isnan(parse("1 / 0").evaluate(lambda p: None))


def test_string_escapes() -> None:
    assert parse(r'"a\"b"').evaluate(lambda p: None) == 'a"b'


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("status == ", 11, "expected a value"),
        ("status = 'x'", 8, "unexpected character '='"),
        ("(a < 1", 7, "expected ')'"),
        ("a < 1)", 6, "unexpected ')'"),
        ("a in [1, 2", 11, "expected ',' or ']'"),
        (" ", 2, "empty expression"),
        ("a. < 1", 4, "expected a name after '.'"),
        ("import os", 8, "unexpected 'os'"),
        ("__import__('os').system('x')", 11, "unexpected '('"),  # no calls at all
    ],
)
def test_syntax_errors_name_the_column(text: str, column: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    message = str(info.value)
    assert fragment in message
    assert f"at column {column} of" in message
    assert info.value.position == column - 1


def test_long_flat_chains_work() -> None:
    """A filter built by a script: 1,000 (and 20,000) alternatives overflowed the stack."""
    for n in (1_000, 20_000):
        text = " or ".join(f"epoch == {i}" for i in range(n, 0, -1))
        assert parse(text).matches_mapping({"epoch": 1})
        assert not parse(text).matches_mapping({"epoch": 0})
        assert parse(" + ".join(["1"] * n) + f" == {n}").matches_mapping({})


@pytest.mark.parametrize(
    "text", ["(" * 200 + "1" + ")" * 200, "not " * 200 + "true", "-" * 200 + "1", "[" * 200]
)
def test_deep_nesting_is_one_error(text: str) -> None:
    with pytest.raises(ExpressionError, match="nests deeper than 64 levels"):
        parse(text)


def test_deep_nesting_in_the_cli_and_the_dashboard(cli, tmp_path) -> None:
    import runlab

    root = tmp_path / "runs"
    with runlab.start_run({}, root=root):
        pass
    deep = "(" * 500 + "epoch > 1" + ")" * 500
    code, _, err = cli("ls", root, "--where", deep)
    assert code == 2 and err.count("\n") == 1 and "nests deeper" in err, err
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from runlab.web.app import create_app

    response = TestClient(create_app(root, "t" * 20)).get("/api/runs", params={"where": deep})
    assert response.status_code == 400 and "nests deeper" in response.json()["detail"]


_numbers = st.integers(-50, 50).map(str)
_arith = st.recursive(
    _numbers,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(" ".join),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"-{e}" if not e.startswith("-") else f"({e})"),
    ),
    max_leaves=6,
)
_compare = st.tuples(
    _arith,
    st.lists(
        st.tuples(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _arith),
        min_size=1,
        max_size=2,
    ),
).map(lambda t: " ".join([t[0], *(f"{op} {e}" for op, e in t[1])]))
_logic = st.recursive(
    _compare,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=4).map(" and ".join),
        st.lists(inner, min_size=2, max_size=4).map(" or ".join),
        inner.map(lambda e: f"not ({e})"),
        inner.map(lambda e: f"({e})"),
    ),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(_logic)
def test_arithmetic_and_logic_agree_with_python(text: str) -> None:
    """Python's own evaluation of the same text is the reference (precedence, chained
    comparisons, left-associative - and *, and/or/not)."""
    assert parse(text).evaluate(lambda _: None) == bool(eval(text))
