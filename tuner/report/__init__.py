"""Reports on a study, read back from its Optuna storage and its MLflow store alone.

:func:`build_report` gathers a :class:`StudyReport`: the top trials (the parameters that vary, the
objective, honest train and validation metrics, the gap, verdict and state), the counts of complete,
pruned and failed trials with their reasons, the best trial and its test-split score, parameter
importances from an Optuna importance evaluator (:func:`param_importances`), and a gap analysis
(:func:`gap_analysis`: per knob, a Spearman rank correlation with the gap and with validation
performance, phrased as one sentence). :func:`make_plots` draws the plots and logs them to MLflow;
:func:`print_report`, :func:`report_json` and :func:`write_html` render the report for a terminal, a
script and a browser (a self-contained page: images inline, plotly.js inline, no network needed).

For multi-objective studies, :func:`select_trial` picks one trial on the Pareto front by a rule (the knee
point, or the best validation figure with the gap under a bound) and stores it as the study's
``selected_trial``, which :meth:`tuner.study.StudyResults.best` returns from then on.

Modules: ``_analysis`` (importances, gap statistics), ``_selection`` (Pareto front and selection),
``_build`` (the report and its plots), ``_explain`` (the ablation of the winner, the top trials confirmed over
seeds), ``_refine`` (where to search next, as a space file), ``_lessons`` (storing and logging those),
``_figures`` (plot files, drawing and saving), ``_curves`` (trials' learning curves), ``_plots`` (study plots),
``_render_text`` and ``_render_html``. MLflow is reached
through :mod:`tuner.tracking` only. Nothing here imports Keras or TensorFlow (``explain`` and ``confirm``
retrain through :mod:`tuner.study`, which imports them when it trains).
"""

from __future__ import annotations

from tuner.report._analysis import (
    IMPORTANCE_EVALUATORS,
    GapAnalysis,
    Importances,
    KnobEffect,
    gap_analysis,
    param_importances,
)
from tuner.report._build import StudyReport, build_report, make_plots
from tuner.report._curves import trial_plots
from tuner.report._explain import ablate, ablation_table, confirm, confirmation_table, explain, lesson_sections
from tuner.report._figures import PlotFile, PlotSet
from tuner.report._plots import log_plots, plot_gap_vs_knobs, study_plots
from tuner.report._refine import refine
from tuner.report._render_html import write_html
from tuner.report._render_text import print_report, report_json
from tuner.report._selection import SELECTION_RULES, clear_selection, pareto_front, select_trial
from tuner.study import regularization_knobs  # re-exported: where tuner.report has always offered them
from tuner.tracking import VERDICT_COLORS, metric_history, plot_learning_curves

__all__ = [
    "ablate",
    "ablation_table",
    "confirm",
    "confirmation_table",
    "explain",
    "lesson_sections",
    "refine",
    "GapAnalysis",
    "IMPORTANCE_EVALUATORS",
    "Importances",
    "KnobEffect",
    "PlotFile",
    "PlotSet",
    "SELECTION_RULES",
    "StudyReport",
    "VERDICT_COLORS",
    "build_report",
    "clear_selection",
    "gap_analysis",
    "log_plots",
    "make_plots",
    "metric_history",
    "param_importances",
    "pareto_front",
    "plot_gap_vs_knobs",
    "plot_learning_curves",
    "print_report",
    "regularization_knobs",
    "report_json",
    "select_trial",
    "study_plots",
    "trial_plots",
    "write_html",
]
