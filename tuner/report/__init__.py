"""tuner.report."""

from __future__ import annotations

from tuner.report._analysis import StudyReport, Importances, KnobEffect, GapAnalysis, build_report, param_importances, gap_analysis, select_trial, clear_selection, pareto_front, make_plots, print_report, write_html, report_json, resolve_tracking_uri, IMPORTANCE_EVALUATORS, SELECTION_RULES
from tuner.report._plots import PlotFile, PlotSet, VERDICT_COLORS, plot_learning_curves, metric_history, log_trial_plots, trial_plots, study_plots, log_plots, plot_gap_vs_knobs, regularization_knobs

__all__ = ['GapAnalysis', 'IMPORTANCE_EVALUATORS', 'Importances', 'KnobEffect', 'PlotFile', 'PlotSet', 'SELECTION_RULES', 'StudyReport', 'VERDICT_COLORS', 'build_report', 'clear_selection', 'gap_analysis', 'log_plots', 'log_trial_plots', 'make_plots', 'metric_history', 'param_importances', 'pareto_front', 'plot_gap_vs_knobs', 'plot_learning_curves', 'print_report', 'regularization_knobs', 'report_json', 'resolve_tracking_uri', 'select_trial', 'study_plots', 'trial_plots', 'write_html']
