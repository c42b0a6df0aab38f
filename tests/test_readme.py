"""The README's claims that can be checked by running them."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_quickstart_is_the_two_make_commands() -> None:
    block = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


def test_error_example_is_what_the_cli_prints(cli, root: Path) -> None:
    expr, message = re.search(
        r"\$ \.venv/bin/runlab ls --where '([^']*)'\n(runlab: error: .*)\n", README
    ).groups()
    code, _, err = cli("ls", root, "--where", expr)
    assert code == 2 and err.strip() == message


def test_linked_docs_exist() -> None:
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", README):
        assert (Path(__file__).resolve().parents[1] / link).is_file(), link
