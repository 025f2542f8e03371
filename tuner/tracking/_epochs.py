"""A Keras callback that sends every epoch's logs to any :class:`~tuner.tracking.Tracker`."""

from __future__ import annotations

import time
from typing import Any

import keras

__all__ = ["EpochLogger"]


class EpochLogger(keras.callbacks.Callback):
    """Sends every epoch's logs to a trial's run with ``step`` = epoch (1-based).

    Rows are buffered and sent with one ``tracker.log_metrics`` call every ``flush_seconds`` and at the
    end, so the UI shows a running trial's curves without one call per metric.

    Args:
        tracker: any :class:`~tuner.tracking.Tracker`.
        run_id: the trial's run.
        flush_seconds: seconds between sends. Defaults to `10.0`.
    """

    def __init__(self, tracker: Any, run_id: str, *, flush_seconds: float = 10.0) -> None:
        super().__init__()
        self.tracker = tracker
        self.run_id = run_id
        self.flush_seconds = flush_seconds
        self.rows: list[tuple[str, float, int]] = []
        self.history: dict[str, list[float]] = {}  # every epoch's figures, for the learning-curve plot
        self._last = time.monotonic()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.rows, self.history, self._last = [], {}, time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.rows.extend((k, float(v), epoch + 1) for k, v in (logs or {}).items())
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(float(v))
        if time.monotonic() - self._last > self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        rows = self.take_rows()
        if rows:
            self.tracker.log_metrics(self.run_id, rows)

    def take_rows(self) -> list[tuple[str, float, int]]:
        """The rows not sent yet, for the caller to send (the tracker's last batch of the trial)."""
        rows, self.rows, self._last = self.rows, [], time.monotonic()
        return rows
