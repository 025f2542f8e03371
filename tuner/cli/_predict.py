"""Using a study's results: ``predict`` (its best model on a file of raw rows) and ``dashboard`` (optuna-dashboard).

Keras, Optuna, pandas and optuna-dashboard are imported inside the actions, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from tuner._store import default_storage, mask_secrets
from tuner.cli._base import EXIT_OK, Command, add_bind_options, add_store_options, check_bind
from tuner.errors import ConfigError, DataError, Problem

__all__ = ["DashboardCommand", "PredictCommand"]

_READABLE = (".csv", ".parquet", ".npz", ".npy")


class PredictCommand(Command):
    """Predict with a study's best model from a file of raw rows (the features as in the training file).

    FILE is a .csv or .parquet table with the training file's feature columns (extra columns, such as the
    target, are ignored), or a .npz (array x) / .npy file of examples. The output has one row per input
    row: the label in the training file's own values and one proba_<label> column per class, or
    prediction for regression. It goes to stdout as CSV, or to --output (.csv or .parquet).
    """

    name = "predict"
    needs_keras = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        parser.add_argument("file", metavar="FILE", help="raw rows: .csv, .parquet, .npz (array x) or .npy.")
        parser.add_argument("--output", "-o", metavar="FILE", help="write the predictions here (.csv or .parquet).")
        add_store_options(parser)

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import load_best_model

        output = Path(args.output) if args.output else None
        if output is not None and output.suffix.lower() not in (".csv", ".parquet"):
            raise ConfigError([Problem("--output", "output", "must end in .csv or .parquet", value=args.output)])
        inputs = read_inputs(args.file)
        model = load_best_model(args.study, storage=args.storage)
        frame = model.predict_frame(inputs)
        if output is None:
            frame.to_csv(sys.stdout, index=False)
        elif output.suffix.lower() == ".csv":
            frame.to_csv(output, index=False)
        else:
            frame.to_parquet(output, index=False)
        if output is not None:
            print(f"{len(frame)} predictions written to {output}", file=sys.stderr)
        return EXIT_OK


def read_inputs(spec: str) -> Any:
    """The raw rows of a file: a DataFrame for tables, an array for ``.npz`` (``x``) and ``.npy``."""
    import numpy as np
    import pandas as pd

    path = Path(spec)
    if path.suffix.lower() not in _READABLE:
        raise DataError(
            [Problem(spec, "file extension", f"must be one of {list(_READABLE)}", value=path.suffix or "(none)")]
        )
    if not path.is_file():
        raise DataError([Problem(spec, "", f"file not found (looked for {path.resolve()})", has_value=False)])
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as arrays:
            if "x" not in arrays.files:
                raise DataError(
                    [
                        Problem(
                            spec,
                            "x",
                            f"required array is missing; the file holds arrays {sorted(arrays.files)}",
                            has_value=False,
                        )
                    ]
                )
            return arrays["x"]
    except DataError:
        raise
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(
            [Problem(spec, "", f"cannot read the file ({type(exc).__name__}: {detail})", has_value=False)]
        ) from None


class DashboardCommand(Command):
    """Start optuna-dashboard on the study storage (bound to 127.0.0.1 by default) and print its URL.

    optuna-dashboard is optional: pip install optuna-dashboard (or honest-tuner[dashboard]). It has no login: a --host
    beyond loopback is refused unless --allow-unauthenticated says something in front of it asks for a password.
    """

    name = "dashboard"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", nargs="?", help="open on this study (default: the list).")
        add_store_options(parser)
        add_bind_options(parser, port=8080, what="optuna-dashboard")

    def take_action(self, args: argparse.Namespace) -> int:
        # optuna-dashboard has no login of its own: a --host beyond loopback needs --allow-unauthenticated
        check_bind(
            args,
            what="optuna-dashboard (which has no login)",
            credential=None,
            exposes="read the study storage and change it (trial states, notes, deleting studies)",
        )
        if importlib.util.find_spec("optuna_dashboard") is None:
            raise ConfigError(
                [
                    Problem(
                        "dashboard",
                        "optuna-dashboard",
                        "is not installed: pip install optuna-dashboard (or pip install 'honest-tuner[dashboard]')",
                        has_value=False,
                    )
                ]
            )
        import optuna
        from optuna_dashboard import run_server

        location = args.storage or default_storage()
        url = f"http://{args.host}:{args.port}/dashboard/"
        if args.study:
            from tuner.study import load_study_results

            load_study_results(args.study, storage=location)  # a missing store or study: one line, exit 2
        storage = optuna.storages.get_storage(location)
        if args.study:
            url += f"studies/{storage.get_study_id_from_name(args.study)}"
        print(f"optuna-dashboard for {mask_secrets(location)} at {url} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            run_server(storage, host=args.host, port=args.port)
        return EXIT_OK
