"""One trial: suggest parameters, train, record the result on the trial, and track it.

Keras, Optuna and the training stage are imported inside the functions, so that importing tuner stays light.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from tuner._logging import get_logger
from tuner.errors import ConfigError, TrialFailed
from tuner.study._callbacks import _PruningCallback
from tuner.study._interrupts import check_stop, deferring_interrupts, stop_callback
from tuner.study._record import INTERRUPTED, TrialRecord
from tuner.study._settings import completed_name
from tuner.study._storage import first_prunable_step
from tuner.study._types import RunningStudy

__all__ = ["Objective"]

_logger = get_logger(__name__)

_FIT_KNOBS = frozenset({"batch_size", "epochs"})  # what a hypermodel's own fit() may choose over tuner's knobs


def _device() -> str:
    """The device this process trains on, e.g. ``cpu:0`` or ``gpu:0 (CUDA_VISIBLE_DEVICES=1)``."""
    import keras

    try:
        devices = keras.distribution.list_devices()
    except Exception:
        devices = []
    name = str(devices[0]).lower() if devices else "cpu"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{name} (CUDA_VISIBLE_DEVICES={visible})" if visible and "gpu" in name else name


def _record_programs(trial: Any, record: TrialRecord, before: dict[str, int]) -> None:
    """Store what the backend traced or compiled for this trial (counted from the backend, every state)."""
    from tuner.training import programs_so_far

    now = programs_so_far()
    record.programs_compiled = now["compiled"] - before["compiled"]
    cached = now["cached"] - before["cached"]
    record.programs_cached = cached or None
    try:
        TrialRecord.write(trial, programs_compiled=record.programs_compiled)
        if cached:
            TrialRecord.write(trial, programs_cached=cached)
    except Exception as err:  # the count must not lose the trial's result
        _logger.warning("could not store the program count of trial %d: %s", trial.number, err)


def _train(study: RunningStudy, number: int, params: dict[str, Any], builder: Any, callbacks: list[Any]) -> Any:
    """Train trial ``number``: ``executions_per_trial`` times (averaged; the first execution carries the tracking
    and pruning callbacks), each retried up to ``max_retries_per_trial`` times after an error of its own."""
    import keras
    import optuna

    from tuner.training import average_results, train_model

    s = study.settings
    results = []
    for execution in range(s.executions_per_trial):
        for attempt in range(s.max_retries_per_trial + 1):
            try:
                results.append(
                    train_model(
                        params,
                        study.dataset,
                        seed=s.seed + number + 100_003 * execution,
                        callbacks=callbacks if execution == 0 else [stop_callback()],
                        builder=builder,
                        gap_subset=s.gap_subset,
                        varying=study.space.varying_knobs,
                    )
                )
                break
            except (ConfigError, TrialFailed, optuna.TrialPruned):
                raise
            except Exception as err:
                if attempt == s.max_retries_per_trial:
                    raise
                _logger.warning(
                    "trial %d: %s: %s; training it again (retry %d of %d)",
                    number,
                    type(err).__name__,
                    err,
                    attempt + 1,
                    s.max_retries_per_trial,
                )
                keras.backend.clear_session()
    return average_results(results, study.dataset)


class Objective:
    """The Optuna objective of a :class:`~tuner.study.Study`: one real training run per trial.

    A trial that fails on its own (a diverging loss, an error in training) raises
    :class:`~tuner.errors.TrialFailed` and the study goes on; a :class:`~tuner.errors.ConfigError` fails the
    trial with its reason and stops the run.

    Args:
        study: the :class:`~tuner.study.Study` (its settings, space, dataset, builder and open tracker).
        on_start: called once the trial exists (it then holds its place in the budget).
    """

    def __init__(self, study: RunningStudy, *, on_start: Callable[[], None]) -> None:
        self.study = study
        self.on_start = on_start

    def __call__(self, trial: Any) -> float | list[float]:
        import optuna

        from tuner.training import clear_after_trial, programs_so_far

        study, s = self.study, self.study.settings
        tracker = study.tracker
        self.on_start()
        # from here on, whatever stops the trial (Ctrl-C, a bad parameter) is recorded with its reason
        state, reason, result, run_id, hp, params, fitted = "failed", None, None, None, None, {}, {}
        record = TrialRecord()  # what the trial's run ends with: its result, once there is one
        programs_before = programs_so_far()  # what the backend traced or compiled before this trial
        late_names: frozenset[str] = frozenset()  # knobs a user's fit() may set itself: logged once known
        try:
            check_stop()
            params = study.space.suggest(trial)
            builder, train_params = study.builder, params
            if study.user_model is not None and study.user_model.hypermodel is not None:  # build(hp) or a HyperModel
                model_values = {k: v for k, v in params.items() if k in study.space.model_names}
                hp, builder, fitted = study.user_model.for_trial(trial, study.space.params, model_values)
                train_params = {**params, "data_pipeline": "arrays"}  # a user's fit() may pass its own batch_size
                late_names = _FIT_KNOBS
            TrialRecord.write(trial, resolved_params=params, device=_device(), worker_pid=os.getpid())
            with deferring_interrupts():  # a Ctrl-C here arrives once run_id is known, so the run gets closed
                run_id = tracker.start_trial(
                    trial.number, {k: v for k, v in params.items() if k not in late_names}, study_name=completed_name(s)
                )
                if run_id is not None:
                    TrialRecord.write(trial, mlflow_run_id=run_id)
            if s.cv:
                result = self._cross_validate(trial, train_params, builder, tracker.trial_callbacks(run_id))
            else:
                callbacks = [*tracker.trial_callbacks(run_id), stop_callback()]
                if not study.multi_objective:
                    callbacks.append(
                        _PruningCallback(trial, s.objective[0], first_prunable_step(study.opened)).callback
                    )
                result = _train(study, trial.number, train_params, builder, callbacks)
            record = TrialRecord.from_result(result)
            values = [float(result.metrics[m]) for m in s.objective]
            if not all(math.isfinite(v) for v in values):
                raise TrialFailed(f"non-finite objective {dict(zip(s.objective, values, strict=True))}")
            record.write_result(trial, metric=result.metric)
            state = "complete"
            if study.best_kept.is_best(
                study.optuna_study, study.directions, values
            ):  # scored on the test split at the end
                study.best_kept.keep(trial.number, result.model)  # cross-validated: no model, refitted at the end
            return values[0] if len(values) == 1 else values
        except optuna.TrialPruned as err:
            state, reason = "pruned", str(err)
            TrialRecord.write(trial, prune_reason=reason)
            raise
        except KeyboardInterrupt:
            state, reason = "interrupted", INTERRUPTED
            TrialRecord.write(trial, fail_reason=reason)
            raise
        except TrialFailed as err:
            reason = str(err)
            TrialRecord.write(trial, fail_reason=reason)
            raise
        except ConfigError as err:  # the trial keeps its reason; the run stops
            reason = str(err)
            TrialRecord.write(trial, fail_reason=reason, config_error=True)
            raise
        except Exception as err:
            reason = f"{type(err).__name__}: {err}".strip()[:1000]
            TrialRecord.write(trial, fail_reason=reason)
            raise TrialFailed(reason) from err
        finally:
            with deferring_interrupts(raise_after=False):  # the loop stops after this trial is told
                _record_programs(trial, record, programs_before)
                resolved = params if hp is None else {**params, **hp.values, **fitted}  # with what fit() chose
                try:
                    late = {k: v for k, v in resolved.items() if k in late_names or k not in params}
                    tracker.end_trial(
                        run_id,
                        state=state,
                        metrics=record.tracking_metrics(),
                        tags=record.tracking_tags(reason),
                        params=late,
                    )
                except Exception as err:  # tracking must not lose the Optuna result
                    _logger.warning("could not close the tracking run of trial %d: %s", trial.number, err)
                if resolved != params:
                    TrialRecord.write(trial, resolved_params=resolved)
            if result is not None:
                result.model = None
            clear_after_trial()  # clear_session, which collects garbage too (a second collection cost 0.1 s a trial)

    def _cross_validate(self, trial: Any, params: Any, builder: Any, epoch_callbacks: Any) -> Any:
        """The trial scored over ``settings.cv`` folds (:func:`tuner.training.cross_validate`), pruned on the running
        mean after each fold; the tracker's per-epoch curves are the first fold's."""
        import optuna

        from tuner.training import cross_validate

        study, s = self.study, self.study.settings
        folds = s.cv
        if folds is None:  # Study.__init__ sets it (0: off); the trial cross-validates only when it is on
            raise RuntimeError("StudySettings.cv is unset: Study() sets the number of folds first")
        first_step = None if study.multi_objective else first_prunable_step(study.opened)
        start = study.opened.pruner_start
        stride = max(1, start[1]) if start else 1  # fold f reports at step f * stride: past the pruner's warm-up
        monitor = s.objective[0]

        def after_fold(fold: int, means: dict[str, float]) -> None:
            value = means.get(monitor)
            if first_step is None or fold >= folds or value is None or not math.isfinite(value):
                return
            trial.report(float(value), step=fold * stride)
            if fold * stride >= first_step and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after fold {fold} of {folds} (mean {monitor}={value:.4g})")

        return cross_validate(
            params,
            study.dataset,
            folds,
            seed=s.seed + trial.number,
            fold_seed=s.seed,
            builder=builder,
            gap_subset=s.gap_subset,
            after_fold=after_fold,
            callbacks=lambda i: [*(epoch_callbacks if i == 0 else ()), stop_callback()],
        )
