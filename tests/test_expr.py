"""The expression language shared by --where and gates."""

from __future__ import annotations

import math

import pytest

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
