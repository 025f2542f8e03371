"""Learning curves of a trial: honest train and validation loss and metric per epoch, the chosen epoch marked,
the verdict's colour; drawn once here for the tracker (at the end of each trial) and the report (from the MLflow
histories). Matplotlib is imported inside, without pyplot: no backend is chosen for the caller.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["VERDICT_COLORS", "plot_learning_curves", "verdict_color"]

VERDICT_COLORS = {"overfitting": "#d62728", "underfitting": "#1f77b4", "good_fit": "#2ca02c"}
_OTHER_COLOR = "#7f7f7f"


def verdict_color(verdict: str | None) -> str:
    """The colour of a verdict in every plot (grey for none or another state)."""
    return VERDICT_COLORS.get(verdict or "", _OTHER_COLOR)


def plot_learning_curves(
    history: Mapping[str, Sequence[float]],
    *,
    best_epoch: int | None = None,
    verdict: str | None = None,
    metric: str | None = None,
    title: str | None = None,
    gaps: bool = False,
    compact: bool = False,
) -> Any:
    """Honest train and validation loss (and metric) per epoch, the chosen epoch marked.

    The one drawer of learning curves: the report draws them from the MLflow histories, the tracker at the end
    of each trial (``gaps=True, compact=True``).

    Args:
        history: per-epoch values by name: ``train_loss``, ``val_loss`` and, for the metric,
            ``train_<metric>`` and ``val_<metric>``; an optional ``epoch`` list gives the x values
            (else ``1..n``). Missing or non-finite values are left as gaps.
        best_epoch: the epoch whose weights were kept (1-based); drawn as a vertical line. Defaults to `None`.
        verdict: the trial's verdict, shown in the title and setting its colour. Defaults to `None`.
        metric: the metric panel's name (``accuracy``, ``mae``, ...); `None` picks the first
            ``val_<name>`` in ``history`` other than the loss. Defaults to `None`.
        title: the title's first part, e.g. ``"trial 3"``. Defaults to `None`.
        gaps: add a panel of the gaps (``gap_loss``, ``gap_<metric>``). Defaults to `False`.
        compact: a small figure with fixed margins, fast enough to draw after every trial (a constrained layout
            draws the figure once more to measure it). Defaults to `False`.

    Returns:
        A ``matplotlib.figure.Figure`` with one panel for the loss and one for the metric (when present).

    Examples:
        >>> fig = plot_learning_curves({"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7]},
        ...                            best_epoch=3, verdict="good_fit", title="trial 0")
        >>> [ax.get_title() for ax in fig.axes]
        ['loss']
    """
    if metric is None:
        metric = next(
            (k[4:] for k in history if k.startswith("val_") and k != "val_loss" and not k.startswith("val_keras")), None
        )
    panels = ["loss"] + ([metric] if metric and (f"train_{metric}" in history or f"val_{metric}" in history) else [])
    panels += ["gap"] if gaps and any(history.get(k) for k in ("gap_loss", f"gap_{metric}")) else []
    from matplotlib.figure import Figure  # drawn and saved without pyplot: no backend to choose

    if compact:
        fig = Figure(figsize=(3 * len(panels), 3), dpi=80)
        fig.subplots_adjust(left=0.08, right=0.99, bottom=0.16, top=0.82, wspace=0.3)
    else:
        fig = Figure(figsize=(5.2 * len(panels), 3.8), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    n = max((len(v) for k, v in history.items() if k != "epoch"), default=0)
    epochs = list(history.get("epoch") or range(1, n + 1))
    for ax, name in zip(axes, panels, strict=True):
        lines = (
            [("gap_loss", "-", "gap_loss", "#2ca02c"), (f"gap_{metric}", "--", f"gap_{metric}", "#9467bd")]
            if name == "gap"
            else [(f"train_{name}", "-", "train (honest)", "#1f77b4"), (f"val_{name}", "--", "validation", "#ff7f0e")]
        )
        for key, style, label, color in lines:
            values = history.get(key)
            if not values:
                continue
            ys = [float(v) if v is not None and math.isfinite(float(v)) else math.nan for v in values]
            ax.plot(epochs[: len(ys)], ys, style, marker="o", markersize=3, label=label, color=color)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="#555555", linestyle=":", linewidth=1.2, label=f"chosen epoch {best_epoch}")
        ax.set_title(name, y=1.0)  # placed, not measured: matplotlib would lay out the ticks to place it (~0.1 s)
        if compact:  # fewer ticks to make and draw
            ax.locator_params(nbins=4)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if epochs and len(epochs) <= 12:
            ax.set_xticks(epochs)
        ax.legend(fontsize=8)
    head = title or "learning curves"
    fig.suptitle(f"{head}: {verdict}" if verdict else head, color=verdict_color(verdict) if verdict else "black")
    return fig
