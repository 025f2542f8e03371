"""``KerasTuner``: KerasTuner's constructor and methods over a tuner study.

A KerasTuner script keeps its ``build_model(hp)`` (or ``HyperModel``), its data and its calls; only the tuner
line changes::

    tuner_ = tuner.KerasTuner(build_model, objective="val_accuracy", max_trials=10,
                              directory="my_dir", project_name="helloworld")
    tuner_.search(x_train, y_train, epochs=2, validation_data=(x_val, y_val))
    best_hp = tuner_.get_best_hyperparameters()[0]       # a keras_tuner.HyperParameters
    model = tuner_.hypermodel.build(best_hp)

Underneath, ``search`` creates (or resumes) a :class:`~tuner.study.Study` named ``project_name``: Optuna's
sampler and pruner choose the values, each trial measures the honest gap and gets a verdict, MLflow
records every run, and ``python -m tuner report <project_name>`` (``explain``, ``refine``) read it. A
model compiled in ``build`` keeps its loss, metrics and optimizer. Arguments that have no meaning here
are refused with one line that says what to do instead (:data:`REFUSED`).

Keras, KerasTuner and Optuna are imported inside the methods: importing tuner stays light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tuner._store import default_storage, default_tracking_uri, sqlite_path
from tuner.errors import ConfigError, Problem
from tuner.metrics import direction
from tuner.space import KNOBS

__all__ = ["KerasTuner", "REFUSED", "objective_of"]

_WHERE = "KerasTuner"

REFUSED = {
    "optimizer": "compile the model in build(hp) with it; tuner keeps the compile of the model build returns",
    "loss": "compile the model in build(hp) with it; tuner keeps the compile of the model build returns",
    "metrics": "compile the model in build(hp) with them; tuner keeps the compile of the model build returns",
    "distribution_strategy": "run trials in parallel processes instead: python -m tuner study --model FILE.py:build "
    "--workers N",
    "max_model_size": "no limit on a model's size is enforced; leave it out",
    "logger": "trials are recorded in MLflow; leave it out",
    "tuner_id": "leave it out; worker processes get their own ids",
    "max_epochs": "Hyperband's budget: pass pruner='hyperband' and search(epochs=...)",
    "factor": "Hyperband's budget: pass pruner='hyperband' and search(epochs=...)",
    "hyperband_iterations": "Hyperband's budget: pass pruner='hyperband' and search(epochs=...)",
    "num_initial_points": "Bayesian optimization: pass sampler='gp' (Optuna's Gaussian-process sampler)",
    "alpha": "Bayesian optimization: pass sampler='gp' (Optuna's Gaussian-process sampler)",
    "beta": "Bayesian optimization: pass sampler='gp' (Optuna's Gaussian-process sampler)",
}
"""KerasTuner arguments this door refuses, and what to do instead (the message each one gets)."""

_SEARCH_REFUSED = {
    "sample_weight": "weigh examples in a custom loss compiled in build(hp), or pass class_weight",
    "steps_per_epoch": "search takes arrays: every epoch sees every training row",
    "validation_steps": "the validation split is evaluated in full",
    "validation_freq": "the honest gap is measured every epoch",
    "initial_epoch": "every trial trains from its first epoch",
}


def _refused(field: str, rule: str, value: Any) -> ConfigError:
    return ConfigError([Problem(_WHERE, field, f"is not supported: {rule}", value=value)])


def _metric(name: str) -> str:
    """KerasTuner's objective name as tuner's: ``val_x`` stays, ``x`` (Keras's training figure) is ``train_x``."""
    if name.startswith(("val_", "train_", "gap_")):
        return name
    return f"train_{name}"


def objective_of(objective: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(names, directions)`` of a KerasTuner objective: a metric name, a ``keras_tuner.Objective``, or a list.

    A name's direction is inferred from it (:func:`tuner.metrics.direction`); an ``Objective`` says its own
    (``"max"`` or ``"min"``). ``None`` gives ``((), ())``: the study's default.

    Raises:
        ConfigError: for anything else, or an ``Objective`` whose direction is not ``max`` or ``min``.
    """
    if objective is None:
        return (), ()
    items = list(objective) if isinstance(objective, (list, tuple)) else [objective]
    names, directions = [], []
    for item in items:
        if isinstance(item, str):
            name = _metric(item)
            names.append(name)
            directions.append(direction(name))
            continue
        given, way = getattr(item, "name", None), getattr(item, "direction", None)
        if not isinstance(given, str) or way not in ("max", "min"):
            raise ConfigError(
                [
                    Problem(
                        _WHERE,
                        "objective",
                        "must be a metric name, a keras_tuner.Objective(name, "
                        "direction='max' or 'min') or a list of them",
                        value=item,
                    )
                ]
            )
        names.append(_metric(given))
        directions.append("maximize" if way == "max" else "minimize")
    return tuple(names), tuple(directions)


class KerasTuner:
    """A tuner with KerasTuner's constructor and methods; a tuner study underneath.

    Args:
        hypermodel: a ``build(hp)`` function or a ``keras_tuner.HyperModel`` (instance or class).
        objective: a metric name (``"val_accuracy"``, ``"val_auc"`` of a metric the model compiles), a
            ``keras_tuner.Objective`` or a list of them (a multi-objective study). ``"gap_loss"`` is the honest
            gap. Defaults to ``val_accuracy`` for classification, ``val_loss`` for regression.
        max_trials: finished trials the study holds when ``search`` returns. Defaults to `10`.
        executions_per_trial: models trained per trial (seeds differ); the trial's figures are their
            average. Defaults to `1`.
        max_retries_per_trial: times a trial that fails with an error is trained again before it counts as
            failed. Defaults to `0`.
        max_consecutive_failed_trials: only KerasTuner's default is accepted: a failed trial keeps its reason
            and the study goes on. Defaults to `3`.
        directory: the folder of the study's Optuna storage (``optuna.db``) and MLflow store
            (``mlflow.db``). Defaults to tuner's ``mlruns/``.
        project_name: the study's name (``python -m tuner report NAME``). Defaults to `"untitled_project"`.
        overwrite: delete a study of this name first; otherwise ``search`` resumes it. Defaults to `False`.
        seed: seeds the sampler and every trial. Defaults to `0`.
        hyperparameters: a ``keras_tuner.HyperParameters`` whose entries override what build declares.
            Defaults to `None`.
        tune_new_entries: tune hyperparameters ``hyperparameters`` leaves out (else their defaults).
            Defaults to `True`.
        allow_new_entries: allow hyperparameters ``hyperparameters`` leaves out. Defaults to `True`.
        sampler: Optuna's sampler, as ``--sampler``. Defaults to `"tpe"`.
        pruner: Optuna's pruner, as ``--pruner``. Defaults to `"median"`.
        tracking_uri: an MLflow tracking URI, or ``"none"``. Defaults to ``directory``'s ``mlflow.db``.

    Raises:
        ConfigError: for an argument in :data:`REFUSED`, an unknown one, or a hypermodel of another kind.
    """

    def __init__(
        self,
        hypermodel: Any = None,
        objective: Any = None,
        max_trials: int = 10,
        *,
        executions_per_trial: int = 1,
        max_retries_per_trial: int = 0,
        max_consecutive_failed_trials: int = 3,
        directory: str | Path | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        seed: int | None = None,
        hyperparameters: Any = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        sampler: str = "tpe",
        pruner: str = "median",
        tracking_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        from tuner.model import UserModel

        for name, value in kwargs.items():
            if name in REFUSED:
                raise _refused(name, REFUSED[name], value)
            raise ConfigError([Problem(_WHERE, name, "is not an argument of KerasTuner", value=value)])
        if hypermodel is None:
            raise ConfigError(
                [
                    Problem(
                        _WHERE,
                        "hypermodel",
                        "is required: a build(hp) function or a "
                        "keras_tuner.HyperModel (a Tuner subclass with its own run_trial is not "
                        "supported)",
                        value=None,
                    )
                ]
            )
        if max_consecutive_failed_trials != 3:
            raise _refused(
                "max_consecutive_failed_trials",
                "a failed trial keeps its reason and the study goes on; stop it with Ctrl-C (it resumes) or a timeout",
                max_consecutive_failed_trials,
            )
        self.objective_names, self.directions = objective_of(objective)
        self.max_trials = max_trials
        self.executions_per_trial = executions_per_trial
        self.max_retries_per_trial = max_retries_per_trial
        self.project_name = project_name or "untitled_project"
        self.directory = None if directory is None else Path(directory).resolve()
        self.seed = 0 if seed is None else seed
        self.sampler, self.pruner = sampler, pruner
        self.tracking_uri: str | None  # None: what tuner.Study's tracking_uri=None means
        if self.directory is not None:
            self.storage = f"sqlite:///{self.directory / 'optuna.db'}"
            self.tracking_uri = tracking_uri or f"sqlite:///{self.directory / 'mlflow.db'}"
        else:
            self.storage, self.tracking_uri = default_storage(), tracking_uri
        self._user = UserModel(hypermodel, source="hypermodel")
        if self._user.hypermodel is None:
            raise ConfigError(
                [
                    Problem(
                        _WHERE,
                        "hypermodel",
                        "must be a build(hp) function or a keras_tuner.HyperModel "
                        "(a builder(params, input_shape, ...) goes to tuner.Study)",
                        value=type(hypermodel).__name__,
                    )
                ]
            )
        self._user.hyperparameters = hyperparameters
        self._user.tune_new_entries = tune_new_entries
        self._user.allow_new_entries = allow_new_entries
        self.hypermodel = self._user.hypermodel  # KerasTuner's attribute: tuner_.hypermodel.build(best_hp)
        self.study: Any = None  # the tuner Study, once search() has run
        if overwrite:
            self._delete_study()

    # -- KerasTuner's methods ------------------------------------------------------------------------------
    def search_space_summary(self, extended: bool = False) -> None:
        """Print the hyperparameters build declares, as KerasTuner does."""
        hps = self._space()
        print("Search space summary")
        print(f"Default search space size: {len(hps.space)}")
        for hp in hps.space:
            config = {k: v for k, v in hp.get_config().items() if k != "name"}
            print(f"{hp.name} ({type(hp).__name__})")
            print(config)

    def search(
        self,
        x: Any = None,
        y: Any = None,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        validation_data: Any = None,
        validation_split: float | None = None,
        callbacks: Sequence[Any] | None = None,
        verbose: int | None = None,
        class_weight: Mapping[int, float] | None = None,
        shuffle: bool | None = None,
        test_data: Any = None,
        **fit_kwargs: Any,
    ) -> None:
        """Run trials until the study holds ``max_trials`` finished trials (a study of this name resumes).

        Args are ``model.fit``'s: ``x``, ``y`` (integer labels, one-hot rows, multi-label 0/1 rows or
        regression values), ``epochs`` (Defaults to `1`, as Keras), ``batch_size`` (Defaults to `32`),
        ``validation_data`` or ``validation_split`` (Defaults to 20% of ``x``), ``callbacks`` (a copy per
        trial), ``verbose``, ``class_weight``, ``shuffle``. ``test_data``: ``(x_test, y_test)`` scored once on
        the best model; Defaults to 20% of ``x`` held out.

        Raises:
            ConfigError: for data that is not arrays, an objective the model does not log, a build that
                returns no model, or a loss that does not fit the targets (before the study exists).
            KeyboardInterrupt: after Ctrl-C; finished trials are kept and the same call resumes.
        """
        from tuner.study import Study

        for name, value in fit_kwargs.items():
            if name in _SEARCH_REFUSED:
                raise _refused(f"search({name}=)", _SEARCH_REFUSED[name], value)
            raise ConfigError([Problem(_WHERE, f"search({name}=)", "is not an argument of search", value=value)])
        if y is None:
            raise ConfigError(
                [
                    Problem(
                        _WHERE,
                        "search(y=)",
                        "is required: x and y must be arrays (a tf.data.Dataset or a generator is not supported)",
                        value=type(x).__name__,
                    )
                ]
            )
        self._user.fit_options = {
            k: v
            for k, v in {
                "callbacks": list(callbacks or []),
                "verbose": verbose,
                "class_weight": class_weight,
                "shuffle": shuffle,
            }.items()
            if v is not None
        }
        fixed = {"epochs": int(epochs or 1), "batch_size": int(batch_size or 32), "patience": 0, "scaling": "none"}
        options = {
            "validation_data": validation_data,
            "test_data": test_data,
            "val_fraction": validation_split,
            "seed": self.seed,
        }
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.study = Study(
            dataset=(x, y),
            hypermodel=self._user,
            fixed=fixed,
            dataset_options=options,
            study_name=self.project_name,
            n_trials=int(self.max_trials),
            storage=self.storage,
            tracking_uri=self.tracking_uri,
            seed=int(self.seed),
            sampler=self.sampler,
            pruner=self.pruner,
            objective=self.objective_names,
            directions=self.directions,
            executions_per_trial=int(self.executions_per_trial),
            max_retries_per_trial=int(self.max_retries_per_trial),
        )
        self.study.run()

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[Any]:
        """The ``keras_tuner.HyperParameters`` of the ``num_trials`` best complete trials, best first."""
        from tuner.study import resolved_params, top_trials

        study = self._searched()
        out = []
        for number in top_trials(study.optuna_study, num_trials):
            values = resolved_params(study.optuna_study, number)
            hp = self._space().copy()
            hp.values.update({k: v for k, v in values.items() if k not in KNOBS})  # build's values, not tuner's knobs
            out.append(hp)
        return out

    def get_best_models(self, num_models: int = 1) -> list[Any]:
        """The trained Keras models of the ``num_models`` best complete trials, best first.

        The best one is the model the study kept (the one whose figures it reports); the others are trained
        again with their trial's values and seed.
        """
        from tuner.study import load_best_model, resolved_params, top_trials
        from tuner.training import train_model

        study = self._searched()
        best = study.best_trial().number
        models = []
        for number in top_trials(study.optuna_study, num_models):
            model = None
            if number == best:
                try:
                    model = load_best_model(study).keras_model
                except ConfigError:
                    model = None
            if model is None:
                params = resolved_params(study.optuna_study, number)
                values = {k: v for k, v in params.items() if k in study.space.model_names}
                _, builder, _ = self._user.for_trial(None, study.space.params, values)
                model = train_model(
                    params,
                    study.dataset,
                    seed=study.settings.seed + number,
                    builder=builder,
                    gap_subset=study.settings.gap_subset,
                ).model
            models.append(model)
        return models

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the ``num_trials`` best trials: values, score, the honest gap and the verdict."""
        from tuner.study import top_trials

        study = self._searched()
        reports = {t.number: t for t in study.trials()}
        name, way = study.settings.objective[0], study.directions[0]
        print("Results summary")
        print(f"Results in {self.directory or study.settings.storage} (study {self.project_name!r})")
        print(f"Showing {num_trials} best trials")
        print(f"Objective(name={name!r}, direction={'max' if way == 'maximize' else 'min'!r})")
        for number in top_trials(study.optuna_study, num_trials):
            t = reports[number]
            print(f"\nTrial {number} summary")
            print("Hyperparameters:")
            for k, v in t.params.items():
                if k not in KNOBS:
                    print(f"{k}: {v}")
            print(f"Score: {t.values[0] if t.values else None}")
            gaps = {k: round(v, 4) for k, v in t.metrics.items() if k.startswith("gap_")}
            print(f"Honest gap: {gaps}; verdict: {t.verdict} ({t.reason})")

    # -- helpers -------------------------------------------------------------------------------------------
    def _space(self) -> Any:
        if self._user.space_hps is None:
            self._user.declared()
        return self._user.space_hps

    def _searched(self) -> Any:
        if self.study is None:
            raise ConfigError(
                [Problem(_WHERE, "search", "must run first (results are read from the study it runs)", has_value=False)]
            )
        return self.study

    def _delete_study(self) -> None:
        """``overwrite=True``: the study of this name starts again from no trials, and its MLflow runs are
        deleted (MLflow's trash) so that the experiment shows this search alone."""
        import optuna

        from tuner.tracking import delete_study_runs

        path = sqlite_path(self.storage)
        if path is None or path.exists():  # a SQLite file not made yet holds no study
            with contextlib.suppress(KeyError):  # no such study yet
                optuna.delete_study(study_name=self.project_name, storage=self.storage)
        uri = self.tracking_uri or default_tracking_uri()
        store = sqlite_path(uri)
        if uri != "none" and (store is None or store.exists()):
            delete_study_runs(uri, self.project_name)
