"""A small, safe expression language for ``--where`` filters and gates (no ``eval``).

::

    status == "finished" and metrics.val_loss < 0.9 and config.optim.lr >= 1e-4
    tags.pair in ["AAPL_AMZN", "AMZN_MSFT"] or not (epoch > 3)
    val.sharpe > baseline.val.sharpe * 1.1

Values: numbers (``1``, ``-2.5``, ``1e-4``), strings in single or double quotes, ``true``,
``false``, ``null``, lists ``[a, b]`` and dotted names. A name segment with other characters is
quoted with backticks: ``metrics.`val/loss```. Operators, loosest first: ``or``, ``and``,
``not``, comparisons (``== != < <= > >=``, chains like ``0 < x < 1``, ``in``, ``not in``),
``+ -``, ``* /``, unary ``-``.

Semantics are forgiving, as a filter should be: a missing name is ``null``; an ordering
comparison involving ``null`` or values of different kinds (a number and a string) is false;
arithmetic on ``null`` gives ``null``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runlab.errors import ExpressionError

Lookup = Callable[[tuple[str, ...]], Any]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.|\+|-|\*|/)
  | (?P<bad>.)
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null", "none"}
_CONSTANTS = {"true": True, "false": False, "null": None, "none": None}
_COMPARE = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number | string | name | kw | op | end
    text: str
    pos: int
    value: Any = None


def _tokenize(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        kind, raw = m.lastgroup or "bad", m.group()
        if kind == "ws":
            continue
        if kind == "bad":
            raise ExpressionError(f"unexpected character {raw!r}", text, m.start())
        if kind == "number" and raw[0] == "." and raw[1:].isdigit() and _after_name(out):
            # `layers.0` is a name path with a list index, not `layers` then the number .0
            out.append(_Tok("op", ".", m.start()))
            out.append(_Tok(kind, raw[1:], m.start() + 1, int(raw[1:])))
        elif kind == "number":
            value = float(raw) if re.search("[.eE]", raw) else int(raw)
            out.append(_Tok(kind, raw, m.start(), value))
        elif kind == "string":
            out.append(_Tok(kind, raw, m.start(), _unquote(raw)))
        elif kind == "name" and raw.lower() in _KEYWORDS:
            out.append(_Tok("kw", raw.lower(), m.start()))
        elif kind == "name":
            out.append(_Tok(kind, raw, m.start(), raw.strip("`")))
        else:
            out.append(_Tok(kind, raw, m.start()))
    out.append(_Tok("end", "", len(text)))
    return out


def _after_name(out: list[_Tok]) -> bool:
    return bool(out) and out[-1].kind == "name"


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


# AST nodes are tuples: ("const", v) ("name", path) ("list", items) ("not", x) ("and", a, b)
# ("or", a, b) ("cmp", [ops], [operands]) ("in", negated, x, container) ("arith", op, a, b)
# ("neg", x)
Node = tuple[Any, ...]


MAX_DEPTH = 64  # nested parentheses, brackets, not and minus signs


class _Parser:
    """Recursive descent; chains (``a or b or ...``, ``x + y + ...``) are flat lists, so their
    length is limited by nothing, and nesting by MAX_DEPTH, never by Python's stack."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self._error(f"the expression nests deeper than {MAX_DEPTH} levels")

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def _error(self, message: str, tok: _Tok | None = None) -> ExpressionError:
        tok = tok or self.tok
        return ExpressionError(message, self.text, tok.pos)

    def _take(self, kind: str, text: str | None = None) -> _Tok | None:
        tok = self.tok
        if tok.kind == kind and (text is None or tok.text == text):
            self.i += 1
            return tok
        return None

    def _expect(self, kind: str, text: str, what: str) -> None:
        if self._take(kind, text) is None:
            found = self.tok.text or "end of expression"
            raise self._error(f"expected {what}, found {found!r}")

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise self._error("empty expression")
        node = self._or()
        if self.tok.kind != "end":
            raise self._error(f"unexpected {self.tok.text!r}")
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self._take("kw", "or"):
            items.append(self._and())
        return ("or", items) if len(items) > 1 else items[0]

    def _and(self) -> Node:
        items = [self._not()]
        while self._take("kw", "and"):
            items.append(self._not())
        return ("and", items) if len(items) > 1 else items[0]

    def _not(self) -> Node:
        if self._take("kw", "not"):
            self._deeper()
            node = ("not", self._not())
            self.depth -= 1
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        left = self._sum()
        if self._take("kw", "in"):
            return ("in", False, left, self._sum())
        if self.tok.kind == "kw" and self.tok.text == "not" and self.toks[self.i + 1].text == "in":
            self.i += 2
            return ("in", True, left, self._sum())
        ops: list[str] = []
        operands = [left]
        while self.tok.kind == "op" and self.tok.text in _COMPARE:
            ops.append(self.tok.text)
            self.i += 1
            operands.append(self._sum())
        return ("cmp", ops, operands) if ops else left

    def _sum(self) -> Node:
        first, rest = self._term(), []
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.tok.text
            self.i += 1
            rest.append((op, self._term()))
        return ("arith", first, rest) if rest else first

    def _term(self) -> Node:
        first, rest = self._unary(), []
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.tok.text
            self.i += 1
            rest.append((op, self._unary()))
        return ("arith", first, rest) if rest else first

    def _unary(self) -> Node:
        if self._take("op", "-"):
            self._deeper()
            node = ("neg", self._unary())
            self.depth -= 1
            return node
        return self._atom()

    def _atom(self) -> Node:
        tok = self.tok
        if tok.kind in ("number", "string"):
            self.i += 1
            return ("const", tok.value)
        if tok.kind == "kw" and tok.text in _CONSTANTS:
            self.i += 1
            return ("const", _CONSTANTS[tok.text])
        if tok.kind == "name":
            return self._name()
        if self._take("op", "("):
            self._deeper()
            node = self._or()
            self._expect("op", ")", "')'")
            self.depth -= 1
            return node
        if self._take("op", "["):
            self._deeper()
            items: list[Node] = []
            if not self._take("op", "]"):
                items.append(self._or())
                while self._take("op", ","):
                    items.append(self._or())
                self._expect("op", "]", "',' or ']'")
            self.depth -= 1
            return ("list", items)
        found = tok.text or "end of expression"
        raise self._error(f"expected a value, found {found!r}")

    def _name(self) -> Node:
        parts = [self.toks[self.i].value]
        self.i += 1
        while self._take("op", "."):
            tok = self.tok
            if tok.kind == "name" or tok.kind == "kw":
                parts.append(tok.value if tok.kind == "name" else tok.text)
            elif tok.kind == "number" and isinstance(tok.value, int):
                parts.append(tok.text)  # list index: config.layers.0
            else:
                raise self._error("expected a name after '.'")
            self.i += 1
        return ("name", tuple(parts))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _compare(op: str, a: Any, b: Any) -> bool:
    if op in ("==", "!="):
        if _is_number(a) and _is_number(b):
            equal = a == b
        else:
            equal = type(a) is type(b) and a == b if not (a is None or b is None) else a is b
        return equal if op == "==" else not equal
    if a is None or b is None:
        return False
    if not ((_is_number(a) and _is_number(b)) or (isinstance(a, str) and isinstance(b, str))):
        return False
    if _is_number(a) and (math.isnan(a) or math.isnan(b)):
        return False
    return bool(_COMPARE[op](a, b))


def _arith(op: str, a: Any, b: Any) -> Any:
    if not (_is_number(a) and _is_number(b)):
        return None
    if op == "/" and b == 0:
        return math.nan
    return _ARITH[op](a, b)


class Expression:
    """A parsed expression; evaluate it against a lookup of dotted names."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._ast = _Parser(text).parse()
        self.names: frozenset[tuple[str, ...]] = frozenset(_names(self._ast))
        for name in self.names:
            refuse_secret(name)

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    @property
    def ast(self) -> Node:
        """The parsed tree (tuples; see the comment above ``Node``), for translators."""
        return self._ast

    def evaluate(self, lookup: Lookup) -> Any:
        """The expression's value; ``lookup(("metrics", "val_loss"))`` resolves names."""
        return self._eval(self._ast, lookup)

    def matches(self, lookup: Lookup) -> bool:
        return bool(self.evaluate(lookup))

    def matches_mapping(self, data: Mapping[str, Any]) -> bool:
        return self.matches(mapping_lookup(data))

    def _eval(self, node: Node, lookup: Lookup) -> Any:
        kind = node[0]
        if kind == "const":
            return node[1]
        if kind == "name":
            return lookup(node[1])
        if kind == "and":
            return all(bool(self._eval(item, lookup)) for item in node[1])
        if kind == "or":
            return any(bool(self._eval(item, lookup)) for item in node[1])
        if kind == "not":
            return not self._eval(node[1], lookup)
        if kind == "list":
            return [self._eval(item, lookup) for item in node[1]]
        if kind == "neg":
            value = self._eval(node[1], lookup)
            return -value if _is_number(value) else None
        if kind == "arith":
            value = self._eval(node[1], lookup)
            for op, operand in node[2]:
                value = _arith(op, value, self._eval(operand, lookup))
            return value
        if kind == "in":
            item, container = self._eval(node[2], lookup), self._eval(node[3], lookup)
            found = _contains(container, item)
            return not found if node[1] else found
        if kind == "cmp":
            values = [self._eval(n, lookup) for n in node[2]]
            return all(_compare(op, values[i], values[i + 1]) for i, op in enumerate(node[1]))
        raise AssertionError(kind)


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, str):
        return isinstance(item, str) and item in container
    if isinstance(container, Sequence):
        return any(_compare("==", item, c) for c in container)
    if isinstance(container, Mapping):
        return item in container
    return False


def _names(node: Node) -> list[tuple[str, ...]]:
    if node[0] == "name":
        return [node[1]]
    out: list[tuple[str, ...]] = []
    for child in node[1:]:
        if isinstance(child, tuple) and child and isinstance(child[0], str):
            out.extend(_names(child))
        elif isinstance(child, list):
            for c in child:
                if isinstance(c, tuple):
                    out.extend(_names(c))
    return out


def refuse_secret(path: Sequence[str]) -> None:
    """A name that reaches into a secret (``config.db.password``) can be neither filtered nor
    sorted on: its value is redacted everywhere, and a filter would confirm a guess."""
    from runlab._secrets import is_secret_path

    if is_secret_path(path):
        name = ".".join(path)
        raise ExpressionError(
            f"{name!r} is a secret: it is redacted and cannot be filtered or sorted on"
        )


def get_path(data: Any, path: Sequence[str]) -> Any:
    """``data["a"]["b"]`` for ``("a", "b")``; list items by index; None when absent. A key
    that holds dots is found too: ``("val", "ret_h20", "rank_ic")`` reads
    ``data["val"]["ret_h20.rank_ic"]`` (a metric per target)."""
    i = 0
    while i < len(path):
        part = path[i]
        if isinstance(data, Mapping):
            if part not in data:
                for j in range(len(path), i + 1, -1):
                    joined = ".".join(path[i:j])
                    if joined in data:
                        part, i = joined, j - 1
                        break
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
        i += 1
    return data


def mapping_lookup(data: Mapping[str, Any]) -> Lookup:
    return lambda path: get_path(data, path)


def parse(text: str) -> Expression:
    """Parse ``text``; a syntax error raises :class:`ExpressionError` naming the column."""
    return Expression(text)
