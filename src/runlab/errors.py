"""One exception root for everything runlab raises on purpose.

Messages state the fact and the fix in one line; the CLI prints them without a traceback
(``--debug`` shows it) and exits with :attr:`RunlabError.exit_code`.
"""

from __future__ import annotations


def exception_text(err: BaseException) -> str:
    """``Type: message``, even for an exception whose ``__str__`` raises (the run's end and the
    CLI's one line must not fail on the error they report)."""
    try:
        text = str(err)
    except Exception as inner:  # any failure of a user's __str__
        text = f"<message unprintable: {type(inner).__name__} in __str__>"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class RunlabError(Exception):
    """Base of every error runlab raises deliberately."""

    exit_code = 2


class ConfigError(RunlabError):
    """A config (or a value given on the command line) is invalid."""


class ExpressionError(RunlabError):
    """A ``--where`` / gate expression cannot be parsed or evaluated."""

    def __init__(self, message: str, text: str = "", position: int | None = None) -> None:
        self.text = text
        self.position = position
        if position is not None and text:
            message = f"{message} at column {position + 1} of {text!r}"
        super().__init__(message)


class RunNotFoundError(RunlabError):
    """No run matches the id, prefix, name or path given."""


class AmbiguousRunError(RunlabError):
    """A run reference matches several runs."""

    def __init__(self, ref: str, candidates: list[str]) -> None:
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        super().__init__(
            f"run reference {ref!r} matches {len(candidates)} runs ({shown}); "
            "give a longer id prefix or the full id"
        )
        self.candidates = candidates


class CorruptRunError(RunlabError):
    """A run directory's files cannot be read (missing or malformed run.json)."""


class MissingDependencyError(RunlabError):
    """An optional integration is used but its package is not installed."""
