"""Errors raised by tuner.

Two levels, as in KerasTuner: configuration errors stop the run before any trial starts
(:class:`ConfigError` and its subclasses, exit code 2 from the CLI); trial errors fail one trial and
the study goes on (:class:`TrialFailed`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "SpaceError",
    "DataError",
    "NoCompleteTrial",
    "TrialFailed",
    "NonFiniteLoss",
    "Problem",
    "did_you_mean",
]


class Problem:
    """One thing wrong with an input: where it is, which rule it breaks and the value received."""

    __slots__ = ("source", "path", "rule", "value", "has_value")

    def __init__(self, source: str, path: str, rule: str, *, value: object = None, has_value: bool = True) -> None:
        self.source = source
        self.path = path
        self.rule = rule
        self.value = value
        self.has_value = has_value

    def __str__(self) -> str:
        where = f"{self.source}: {self.path}" if self.path else self.source
        got = f"; got {self.value!r}" if self.has_value else ""
        return f"{where}: {self.rule}{got}"

    def __repr__(self) -> str:
        return f"Problem({str(self)!r})"


class ConfigError(ValueError):
    """A problem with the user's input; the run stops before anything is written."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems, "", "", has_value=False)]
            self.problems = []
            self._text = str(problems[0]).rstrip(": ")
        else:
            self.problems = list(problems)
            self._text = "\n".join(str(p) for p in self.problems)
        super().__init__(self._text)

    def __str__(self) -> str:
        return self._text


class SpaceError(ConfigError):
    """A search-space file (or an override of it) is malformed."""


class DataError(ConfigError):
    """A dataset cannot be loaded or is unusable for training."""


class NoCompleteTrial(ConfigError):
    """A study has no complete trial yet (nothing to show, select or retrain): exit code 1 from the CLI, as a
    runtime outcome rather than bad input."""


class TrialFailed(Exception):
    """Fails the current trial with a reason; the study goes on."""


class NonFiniteLoss(TrialFailed):
    """The training loss became NaN or infinite."""


def did_you_mean(name: object, options: Iterable[object], *, n: int = 1, cutoff: float = 0.6, note: str = "") -> str:
    """A hint for a misspelt name, to append to a message: ``" (did you mean 'dropout'?)"``, with up to ``n``
    close ``options`` (``'a' or 'b'``) and an optional ``note`` after the question; ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), [str(o) for o in options], n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?{' ' + note if note else ''})"
