"""``python -m tuner sync STUDY``: write the tracking runs a study could not write while its server was away.

Optuna's storage holds every trial's result; this command writes the MLflow runs that are missing or
were left open (see :mod:`tuner.tracking._sync`). Optuna and MLflow are imported inside the action.
"""

from __future__ import annotations

import argparse

from tuner._store import default_storage, default_tracking_uri, mask_secrets, study_tracking_uri
from tuner.cli._base import EXIT_OK, Command, add_store_options, print_json

__all__ = ["SyncCommand"]


class SyncCommand(Command):
    """Write the MLflow runs of a study's trials that tracking missed (e.g. its server was down).

    Every finished trial of the study's Optuna storage that has no closed run in the study's MLflow
    experiment gets one (parameters, final metrics, verdict, per-epoch objective); a study run that its process
    ended while the server was away is closed with the status it ended with. Running it again writes nothing new.
    """

    name = "sync"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("study", metavar="STUDY", help="study name.")
        add_store_options(parser)
        parser.add_argument(
            "--tracking-uri", metavar="URI", help="MLflow tracking URI (default: the one the study was started with)."
        )
        parser.add_argument("--json", action="store_true", help="print the trials written as JSON.")

    def take_action(self, args: argparse.Namespace) -> int:
        from tuner.study import INTERRUPTED, StudyRecord, load_study_results, read_trial
        from tuner.tracking import TRACKING_OFF, probe_tracking, sync_trials

        storage = args.storage or default_storage()
        results = load_study_results(args.study, storage=storage)
        recorded = StudyRecord(results.study).recipe.tracking_uri
        if recorded == TRACKING_OFF:  # a study run with tracking off is synced to the store beside it
            recorded = None
        uri = study_tracking_uri(storage, given=args.tracking_uri, recorded=recorded) or default_tracking_uri()
        probe_tracking(uri)
        frozen = {t.number: t for t in results.study.get_trials(deepcopy=False)}
        objective = results.objective[0] if results.objective else "objective"
        trials = []
        for report in results.trials():
            if report.state not in ("complete", "pruned", "fail"):
                continue
            record = read_trial(frozen[report.number])  # the same metrics and tags a study's trial run ends with
            state = "interrupted" if report.fail_reason == INTERRUPTED else report.state
            curve = [(objective, float(v), int(step)) for step, v in frozen[report.number].intermediate_values.items()]
            trials.append(
                {
                    "number": report.number,
                    "state": state,
                    "params": record.resolved_params or report.params,
                    "metrics": record.tracking_metrics(),
                    "tags": record.tracking_tags(report.fail_reason),
                    "curve": curve,
                }
            )
        written = sync_trials(
            args.study, trials, tracking_uri=uri, study_runs=StudyRecord(results.study).unclosed_study_runs
        )
        if args.json:
            print_json({"study": args.study, "tracking_uri": mask_secrets(uri), "written": written})
        else:
            print(
                f"study {args.study!r}: wrote {len(written)} trial runs to {mask_secrets(uri)}"
                + (f" (trials {', '.join(map(str, written))})" if written else " (none were missing)")
            )
        return EXIT_OK
