"""What runs inside Ray for ``--ray``: the study's host on the driver's node, and the trial runners.

:class:`StudyHost` is a Ray actor pinned to the driver's node. It owns the study's Optuna storage (the
user's URL: SQLite on the driver's disk, or PostgreSQL with its password, which reaches this actor in its
creation arguments, kept by Ray's control store behind its token, and no trial runner) and,
for a local MLflow store, the tracker that writes the trials' runs. :class:`TrialRunner` actors run the
trials: each builds the study once (its space, its data, the user's model), then runs one trial per call
with a real ``optuna.trial.Trial`` whose storage calls (suggest, report, should_prune, the trial record)
are Ray actor calls to the host (:func:`relay_storage`), and whose tracking goes to the host too
(:class:`RelayTracker`) or, for a tracking server, straight to that server. Every byte between them rides
on Ray's own connections, authenticated by Ray's token when ``RAY_AUTH_MODE=token``: no port of ours.

Ray, Optuna and Keras are imported inside the functions: only Ray workers and ``--ray`` import this module.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner._logging import get_logger

__all__ = ["StudyHost", "TrialRunner", "RayRecipe", "relay_storage", "RelayTracker", "tracks_directly"]

_logger = get_logger(__name__)


def tracks_directly(tracking_uri: str) -> bool:
    """Whether a Ray trial logs to the tracking store itself (a server every node reaches) rather than
    through the host (a local store, e.g. ``sqlite:///mlruns/mlflow.db``, which only the driver's disk holds)."""
    return tracking_uri.startswith(("http://", "https://", "databricks"))


class StudyHost:
    """The Ray actor, on the driver's node, that owns the study's storage and (for a local store) its tracker.

    Args:
        settings: the study's :class:`~tuner.study.StudySettings` (the storage URL as the user gave it).
        tracking_uri: where the trials' runs go, or ``"none"``; written here unless :func:`tracks_directly`.
        parent_run_id: the study run the trials are nested under.
    """

    def __init__(
        self, settings: Any, tracking_uri: str, parent_run_id: str | None, secrets: Mapping[str, str] | None = None
    ) -> None:
        from tuner.study._storage import open_storage

        os.environ.update(secrets or {})  # MLflow's credentials: this actor's process serves this study alone
        from tuner.tracking import NullTracker, make_tracker

        self.tracker: Any = NullTracker()
        if parent_run_id and tracking_uri != "none" and not tracks_directly(tracking_uri):
            self.tracker = make_tracker(tracking_uri, settings.study_name, joining=True)
            self.tracker.join_study(parent_run_id)
        self.storage = open_storage(settings, lambda: self.tracker)
        self.loggers: dict[str, list[Any]] = {}
        self.runs: dict[int, str] = {}  # trial number -> its run, known here before the trial's record has it

    def storage_call(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        return getattr(self.storage, name)(*args, **kwargs)

    def track(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        result = getattr(self.tracker, name)(*args, **kwargs)
        if name == "start_trial" and result is not None:  # its epoch logger lives here, where end_trial flushes it
            self.loggers[result] = self.tracker.trial_callbacks(result)
            self.runs[args[0]] = result
        if name == "end_trial":
            run_id = args[0] if args else kwargs.get("run_id")
            if run_id is not None:  # a trial without a tracking run (tracking off) has no logger here
                self.loggers.pop(run_id, None)
        return result

    def run_of(self, number: int) -> str | None:
        """The run this host started for trial ``number``: a runner killed between starting the run and
        recording its id on the trial leaves the driver only this to close it by."""
        return self.runs.get(number)

    def epoch(self, run_id: str, hook: str, epoch: int | None, logs: Mapping[str, float] | None) -> None:
        """A trial's Keras epoch event, replayed on the logger that :meth:`track` made for its run."""
        for callback in self.loggers.get(run_id, []):
            if hook == "on_train_begin":
                callback.on_train_begin(logs)
            else:
                callback.on_epoch_end(epoch, logs)


def relay_storage(host: Any) -> Any:
    """An Optuna storage whose every call is a Ray actor call to ``host`` (a :class:`StudyHost`).

    It is not a ``BaseHeartbeat``: a Ray trial sends no heartbeats, Ray itself reports a dead worker to the
    driver, which fails and retries its trial (:mod:`tuner.study._ray`).
    """
    import optuna
    import ray

    def forward(name: str) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            return ray.get(host.storage_call.remote(name, args, kwargs))

        call.__name__ = name
        return call

    names = [n for n in dir(optuna.storages.BaseStorage) if not n.startswith("_")]
    relay = type("RayRelayStorage", (optuna.storages.BaseStorage,), {n: forward(n) for n in names})
    return relay()


class RelayTracker:
    """The :class:`~tuner.tracking.Tracker` of a Ray trial whose runs the driver's node writes (a local MLflow
    store): every call, and every epoch's logs (per epoch, with their step), go to the host as they happen."""

    experiment_id: str | None = None

    def __init__(self, host: Any, parent_run_id: str | None) -> None:
        self.host = host
        self.parent_run_id = parent_run_id

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        import ray

        return ray.get(self.host.track.remote(name, args, kwargs))

    def start_study(self, **kwargs: Any) -> None:
        return None

    def join_study(self, parent_run_id: str) -> None:
        self.parent_run_id = parent_run_id

    def end_study(self, *, status: str, best: Mapping[str, Any] | None = None) -> None:
        return None

    def start_trial(self, number: int, params: Mapping[str, Any], *, study_name: str) -> str | None:
        return self._call("start_trial", number, dict(params), study_name=study_name)

    def trial_callbacks(self, run_id: str | None) -> list[Any]:
        if run_id is None:
            return []
        import keras

        host = self.host

        class _Relay(keras.callbacks.Callback):  # fire and forget: Ray keeps one caller's calls in order
            def on_train_begin(self, logs: dict | None = None) -> None:
                host.epoch.remote(run_id, "on_train_begin", None, None)

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                host.epoch.remote(run_id, "on_epoch_end", epoch, {k: float(v) for k, v in (logs or {}).items()})

        return [_Relay()]

    def log_metrics(self, run_id: str, rows: Sequence[tuple[str, float, int]]) -> None:
        self._call("log_metrics", run_id, list(rows))

    def end_trial(
        self,
        run_id: str | None,
        *,
        state: str,
        metrics: Mapping[str, float] | None = None,
        tags: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self._call("end_trial", run_id, state=state, metrics=metrics, tags=tags, params=params)

    def log_model(self, run_id: str, model: Any, *, example: Any = None) -> dict[str, str] | None:
        return None  # the best model travels back to the driver, which logs it

    def fail_dead_trial(self, run_id: str, reason: str) -> None:
        self._call("fail_dead_trial", run_id, reason)


class RayRecipe:
    """What a :class:`TrialRunner` builds its study from (pickled by Ray; an in-memory dataset is an object
    reference, fetched once per node from Ray's object store).

    Args:
        space: the study's :class:`~tuner.SearchSpace`.
        dataset: a built-in name or a file path (loaded on the trial's node), or a :class:`~tuner.Dataset`.
        dataset_options: as for :class:`~tuner.study.Study`.
        settings: the worker's settings: the storage URL without its password, the parent run.
        model: the user's model reference, or None.
        model_file: ``(file name, source)`` of a ``file.py:name`` model, written on the trial's node.
        model_object: a model or builder with no importable reference (pickled by value).
        tracking_uri: as :func:`tracks_directly` decides; ``"none"`` for no tracking.
        study_class: the driver's study class (:class:`~tuner.study.Study`), which builds the runner's study.
    """

    def __init__(
        self,
        *,
        space: Any,
        dataset: Any,
        dataset_options: Mapping[str, Any] | None,
        settings: Any,
        model: str | None,
        model_file: tuple[str, str] | None,
        model_object: Any,
        builder: Any,
        tracking_uri: str,
        study_class: type,
    ) -> None:
        self.space, self.dataset, self.dataset_options = space, dataset, dict(dataset_options or {})
        self.settings, self.model, self.model_file = settings, model, model_file
        self.model_object, self.builder, self.tracking_uri = model_object, builder, tracking_uri
        self.study_class = study_class


class TrialRunner:
    """A Ray actor that runs trials of one study, one per :meth:`run_trial` call.

    The actor imports Keras as it starts (the driver starts runners early, so that this overlaps its own
    work); :meth:`setup` then builds its study once (data loaded, the user's model loaded).
    """

    def __init__(self) -> None:
        from tuner._backend import import_keras_for_api

        import_keras_for_api()
        self.study: Any = None

    def setup(
        self, host: Any, recipe: RayRecipe, dataset: Any = None, secrets: Mapping[str, str] | None = None
    ) -> tuple[str | None, int]:
        """Build the study; returns ``(error, pid)``: why it could not be built here (one line; None: ready),
        and this process's id. The driver stops on an error before any trial runs. ``secrets``: MLflow's
        credentials, set in this actor's environment (its process serves this study alone)."""
        os.environ.update(secrets or {})
        try:
            self.study = _build_study(host, recipe, dataset)
        except Exception as err:
            return (str(err).splitlines()[0] if str(err) else type(err).__name__), os.getpid()
        return None, os.getpid()

    def run_trial(self, trial_id: int) -> dict[str, Any]:
        """Run the trial ``trial_id`` (created by the driver) and say how it ended; the driver tells Optuna.

        Returns:
            ``state`` (``complete``, ``pruned``, ``fail``, ``config``, ``interrupted``), ``values``,
            ``reason``, ``pid``, and ``model``: the ``.keras`` file's bytes when this trial is the best so far.
        """
        import optuna

        from tuner.errors import ConfigError, TrialFailed
        from tuner.study._objective import Objective

        study = self.study
        trial = optuna.trial.Trial(study.optuna_study, trial_id)
        out: dict[str, Any] = {"state": "complete", "values": None, "reason": None, "pid": os.getpid(), "model": None}
        try:
            values = Objective(study, on_start=lambda: None)(trial)
            out["values"] = [values] if isinstance(values, float) else list(values)
        except optuna.TrialPruned as err:
            out.update(state="pruned", reason=str(err))
        except TrialFailed as err:
            out.update(state="fail", reason=str(err))
        except ConfigError as err:
            out.update(state="config", reason=str(err))
        except KeyboardInterrupt:
            out.update(state="interrupted")
        kept = study.best_kept
        if kept.trial == trial.number and kept.path:
            out["model"] = Path(kept.path).read_bytes()
            kept.discard()
        return out


def _build_study(host: Any, recipe: RayRecipe, dataset: Any) -> Any:
    import optuna

    from tuner.tracking import make_tracker

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a Ray worker's process: the driver tells each trial

    hypermodel = recipe.model_object
    if recipe.model_file is not None:  # the user's file, as the driver read it, beside this process
        name, source = recipe.model_file
        if recipe.model is None:  # the driver sends a model's file only with its reference (RayCluster._recipe)
            raise RuntimeError("a Ray recipe with a model file names no model (file.py:name)")
        folder = Path(tempfile.mkdtemp(prefix="tuner-model-"))
        (folder / name).write_text(source)
        hypermodel = f"{folder / name}:{recipe.model.rsplit(':', 1)[1]}"
    elif hypermodel is None and recipe.model is not None and recipe.builder is None:
        hypermodel = recipe.model  # an importable module:name
    data = dataset if dataset is not None else recipe.dataset
    study = recipe.study_class(
        recipe.space,
        data,
        recipe.settings,
        builder=recipe.builder,
        hypermodel=hypermodel,
        dataset_options=recipe.dataset_options if isinstance(data, str) else None,
    )
    study.open_with_storage(relay_storage(host))
    # each runner draws its own random numbers (as each worker process does): the same seed everywhere
    # would propose the same configurations in every runner
    study.optuna_study.sampler.reseed_rng()
    s = recipe.settings
    if recipe.tracking_uri == "none" or not s.parent_run_id:
        return study
    if tracks_directly(recipe.tracking_uri):
        study.tracker = make_tracker(recipe.tracking_uri, s.study_name, dataset=study.dataset, joining=True)
        study.tracker.join_study(s.parent_run_id)
    else:
        study.tracker = RelayTracker(host, s.parent_run_id)
    return study
