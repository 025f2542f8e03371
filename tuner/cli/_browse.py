"""Looking around: ``best`` (a study's best trial), ``spaces`` (search spaces), ``datasets`` and ``ui`` (MLflow's UI).

What each command needs (Optuna, Keras, MLflow) is imported inside its action, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from tuner._store import default_storage, default_tracking_uri, mask_secrets, study_tracking_uri
from tuner.cli._base import (
    EXIT_OK,
    EXIT_USAGE,
    Command,
    add_bind_options,
    add_store_options,
    check_bind,
    fmt,
    print_json,
    table,
)
from tuner.errors import ConfigError, Problem

__all__ = ["BestCommand", "SpacesCommand", "DatasetsCommand", "UiCommand"]


class BestCommand(Command):
    """Show the best trial of a study: parameters, honest metrics, gap, verdict and test score."""

    name = "best"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import load_study_results

        results = load_study_results(args.study, storage=args.storage)
        best = results.best()
        data = {"study": args.study, **best.to_dict(), "test": results.best_test()}
        if args.json:
            print_json(data)
            return EXIT_OK
        print(
            f"best trial {best.number} of study {args.study!r} ({', '.join(results.objective)}: "
            f"{', '.join(fmt(v) for v in best.values or [])})"
        )
        print(f"  verdict: {best.verdict} - {best.reason}")
        for k, v in best.metrics.items():
            print(f"  {k}: {fmt(v)}")
        for k, v in (results.best_test() or {}).items():
            print(f"  {k}: {fmt(v)}")
        print("  params: " + ", ".join(f"{k}={fmt(v)}" for k, v in best.params.items()))
        return EXIT_OK


class SpacesCommand(Command):
    """List, validate or show search spaces."""

    name = "spaces"
    needs_keras = True  # validating a space asks Keras for its activations, initializers, ...

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="{list,validate,show}", required=True)
        sub.add_parser("list", help="list the shipped spaces.")
        v = sub.add_parser("validate", help="validate space files (exit 2 on any problem).")
        v.add_argument("files", nargs="+", metavar="FILE")
        s = sub.add_parser("show", help="print a space in canonical form.")
        s.add_argument("file", metavar="FILE")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.space import load_space, shipped_spaces

        if args.action == "list":
            for name, path in shipped_spaces().items():
                space = load_space(path)
                print(f"{name:<28} {len(space.searched):>2} searched  {space.description}")
            return EXIT_OK
        if args.action == "show":
            print(load_space(args.file).to_yaml(), end="")
            return EXIT_OK
        code = EXIT_OK
        for f in args.files:
            try:
                space = load_space(f)
            except ConfigError as err:
                print(f"error: {err}".replace("\n", "\nerror: "), file=sys.stderr)
                code = EXIT_USAGE
            else:
                print(f"{f}: ok ({len(space.searched)} searched parameters: {', '.join(space.searched)})")
        return code


class DatasetsCommand(Command):
    """List the built-in datasets with their size, task and source, and the keras.datasets names (cache only)."""

    name = "datasets"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="print JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.data import list_datasets

        rows = list_datasets(keras_datasets=True)
        if args.json:
            print_json(rows)
        else:
            print(table(rows, list(rows[0])))
        return EXIT_OK


class UiCommand(Command):
    """Start the MLflow UI on this store (bound to 127.0.0.1 by default) and print its URL.

    With STUDY, the URL opens on the study's runs: one run per invocation, its trials nested under it.
    A --host beyond loopback needs --app-name basic-auth (MLflow's users and passwords; pip install
    'mlflow[auth]', MLFLOW_FLASK_SERVER_SECRET_KEY set, the first admin's password in MLFLOW_AUTH_ADMIN_PASSWORD)
    or --allow-unauthenticated.
    """

    name = "ui"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", nargs="?", help="open on this study's runs.")
        add_store_options(parser)
        parser.add_argument(
            "--tracking-uri",
            metavar="URI",
            help="MLflow store (default: with STUDY, the one it ran "
            "with; else $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db).",
        )
        add_bind_options(parser, port=5000, what="the MLflow UI")
        parser.add_argument(
            "--app-name",
            metavar="NAME",
            help="MLflow's server app: basic-auth asks every visitor "
            "for a user and password (MLflow's own authentication).",
        )

    def take_action(self, args: argparse.Namespace) -> int:
        _check_app(args.app_name)
        check_bind(
            args,
            what="the MLflow UI",
            credential="add --app-name basic-auth (MLflow's users and passwords)",
            authenticated=args.app_name is not None,
            exposes="read every run and artifact, delete experiments and replace registered models",
        )
        uri = args.tracking_uri or default_tracking_uri()
        url = f"http://{args.host}:{args.port}"
        if args.study:
            from tuner.study import StudyRecord, load_study_results

            storage = args.storage or default_storage()
            record = StudyRecord(load_study_results(args.study, storage=storage).study)
            experiment = record.mlflow_experiment_id
            if experiment is None:
                raise ConfigError(
                    [
                        Problem(
                            f"study {args.study!r}",
                            "tracking",
                            "has no MLflow runs (it ran with tracking off)",
                            has_value=False,
                        )
                    ]
                )
            recorded = record.recipe.tracking_uri
            uri = study_tracking_uri(storage, given=args.tracking_uri, recorded=recorded) or uri  # where it ran
            # MLflow 3.17's UI follows its GenAI/model-training switch (GenAI by default) over the experiment's kind
            url += f"/#/experiments/{experiment}/runs?workflowType=machine_learning"
        # the store URI (a password in it) goes through the environment, not the command line that `ps` shows
        cmd = [sys.executable, "-m", "mlflow", "ui", "--host", args.host, "--port", str(args.port)]
        if args.app_name:
            cmd += ["--app-name", args.app_name]
        env = dict(os.environ, MLFLOW_BACKEND_STORE_URI=uri)
        print(f"MLflow UI for {mask_secrets(uri)} at {url} (Ctrl-C stops it)", flush=True)
        sys.stderr.flush()
        # this process becomes the MLflow server, so a signal to it (Ctrl-C, SIGTERM) stops the server too
        os.execve(sys.executable, cmd, env)  # does not return


def _check_app(name: str | None) -> None:
    """An MLflow server app (``--app-name``) that is installed and can start: basic-auth needs Flask-WTF (the
    ``mlflow[auth]`` extra) and a fixed secret key for its CSRF protection."""
    if name is None:
        return
    from importlib.metadata import entry_points

    apps = sorted({e.name for e in entry_points(group="mlflow.app")})
    if name not in apps:
        raise ConfigError(
            [
                Problem(
                    "--app-name",
                    "",
                    f"is not an MLflow server app installed here (one of: {', '.join(apps) or 'none'})",
                    value=name,
                )
            ]
        )
    if name == "basic-auth":
        import importlib.util

        if importlib.util.find_spec("flask_wtf") is None:
            raise ConfigError(
                [
                    Problem(
                        "--app-name", "", "MLflow's basic-auth needs Flask-WTF: pip install 'mlflow[auth]'", value=name
                    )
                ]
            )
        if not os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY"):
            raise ConfigError(
                [
                    Problem(
                        "--app-name",
                        "",
                        "MLflow's basic-auth needs MLFLOW_FLASK_SERVER_SECRET_KEY "
                        "set to a random secret (its CSRF protection signs with it)",
                        value=name,
                    )
                ]
            )
