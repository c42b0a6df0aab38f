"""The table drawn without Rich off a terminal is, byte for byte, what Rich draws there."""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runlab.cli import _format

CELL = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12) | st.sampled_from(
    [
        "",
        " ",
        "finished",
        "failed",
        "ünïcode",
        "日本",
        "tab\there",
        "two\nlines",
        "[bold]x",
        ":smile:",
    ]
)


def _drawn(columns: list[str], rows: list[list[str]], plain: bool) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        if plain:
            text = _format._plain_table(columns, rows)
            if text is None:
                return "<rich>"
            out.write(text)
        else:
            _format._plain_table, saved = (lambda c, r: None), _format._plain_table
            try:
                _format.write_table(columns, rows, status_col=min(1, len(columns) - 1))
            finally:
                _format._plain_table = saved
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    columns=st.lists(CELL, min_size=1, max_size=6),
    data=st.data(),
)
def test_plain_table_is_what_rich_draws(columns: list[str], data: st.DataObject) -> None:
    rows = data.draw(st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns))))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FORCE_COLOR", raising=False)
        mp.delenv("TTY_COMPATIBLE", raising=False)
        ours = _drawn(columns, rows, plain=True)
        theirs = _drawn(columns, rows, plain=False)
    if ours == "<rich>":  # not printable ASCII, or every cell empty: Rich draws it
        cells = [c for row in [columns, *rows] for c in row]
        assert not all(c.isascii() and c.isprintable() for c in cells) or not any(cells)
        return
    assert ours == theirs


def test_rich_draws_where_colors_are_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert _format._plain_table(["id"], [["a"]]) is None
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert _format._plain_table(["id"], [["a"]]) is None
    monkeypatch.delenv("TTY_COMPATIBLE")
    assert _format._plain_table(["id"], [["a"]]) == "id\na \n"
