"""What every plot file shares: :class:`PlotFile` and :class:`PlotSet`, and drawing with matplotlib without
pyplot's global state (:func:`new_figure`), saving PNG and plotly HTML.

Matplotlib draws with the ``Agg`` backend unless pyplot was already set up by the caller; it is imported
inside the functions, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

__all__ = ["ARTIFACT_DIR", "PlotFile", "PlotSet", "new_figure", "pyplot", "save_png", "write_html"]

ARTIFACT_DIR = "plots"


@dataclasses.dataclass
class PlotFile:
    """One plot written to disk, and where it was logged in MLflow.

    Attributes:
        name: the plot's file stem (``optimization_history``, ``learning_curves``, ...).
        title: a human title.
        png: the PNG file.
        html: the interactive HTML file, for Optuna's plotly plots; else `None`.
        trial: the trial number for a per-trial plot; `None` for a study plot.
        run_id: the MLflow run the plot belongs to (the trial's child run, or the study's parent run).
        artifacts: artifact paths on ``run_id`` once logged.
        figure: the plotly figure (not serialized), for the HTML report.
    """

    name: str
    title: str
    png: Path
    html: Path | None = None
    trial: int | None = None
    run_id: str | None = None
    artifacts: list[str] = dataclasses.field(default_factory=list)
    figure: Any = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "png": str(self.png),
            "html": None if self.html is None else str(self.html),
            "trial": self.trial,
            "run_id": self.run_id,
            "artifacts": list(self.artifacts),
        }


@dataclasses.dataclass
class PlotSet:
    """Plots written, and the plots left out with the reason (too few trials, nothing varies, ...)."""

    files: list[PlotFile] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)

    def extend(self, other: PlotSet) -> None:
        self.files.extend(other.files)
        self.skipped.update(other.skipped)


# -- matplotlib ------------------------------------------------------------------------------------


def pyplot() -> Any:
    """pyplot on the Agg backend, unless the caller already chose a backend by importing pyplot."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(**kwargs: Any) -> Any:
    """A matplotlib Figure that pyplot does not track (no global state, any backend)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def save_png(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight")
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)
    return path


def write_html(fig: Any, path: Path, plotlyjs: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True if plotlyjs == "inline" else "cdn", full_html=True)
    return path
