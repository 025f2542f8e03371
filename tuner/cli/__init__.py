"""tuner.cli."""

from __future__ import annotations

from tuner.cli._commands import main
from tuner.cli._report import ReportCommand, SelectCommand

__all__ = ['ReportCommand', 'SelectCommand', 'main']
