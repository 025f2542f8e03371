"""One ranking of trials by their first objective, whatever the spelling of its direction."""

from __future__ import annotations

from types import SimpleNamespace

import optuna

from tuner.metrics import maximizes, ranked


def test_every_spelling_of_a_direction_ranks_alike_and_ties_go_to_the_earlier_trial():
    trials = [SimpleNamespace(number=n, values=[v, 0.0]) for n, v in enumerate([0.5, 0.9, 0.1, 0.9])]
    for up in ("maximize", "MAXIMIZE", optuna.study.StudyDirection.MAXIMIZE):
        assert maximizes(up) and [t.number for t in ranked(trials, up)] == [1, 3, 0, 2]
    for down in ("minimize", "MINIMIZE", optuna.study.StudyDirection.MINIMIZE):
        assert not maximizes(down) and [t.number for t in ranked(trials, down)] == [2, 0, 1, 3]
    assert [t.number for t in ranked(trials, "minimize", objective=1)] == [0, 1, 2, 3]
