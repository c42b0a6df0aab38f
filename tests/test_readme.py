"""The README's claims that can be checked by running them."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_quickstart_is_the_two_make_commands() -> None:
    block = README.split("## Quickstart", 1)[1].split("```", 2)[1]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [
        ["make", "run"],
        ["make", "test"],
    ]


def test_error_examples_are_what_the_cli_prints(cli, root: Path) -> None:
    examples = re.findall(r"\$ \.venv/bin/runlab (run [^\n]*)\n(runlab: error: [^\n]*)\n", README)
    assert len(examples) >= 2
    for command, message in examples:
        args = [str(REPO / a) if a.startswith("examples/") else a for a in command.split()]
        code, _, err = cli(*args, "-o", root)
        assert code == 2 and err.strip() == message


def test_linked_docs_exist() -> None:
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.md)\)", README):
        assert (Path(__file__).resolve().parents[1] / link).is_file(), link
