"""Edges a user meets on the command line: what is refused before anything is written, names, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests import _forked


def _tuner(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return _forked.run(list(args), cwd=cwd, timeout=timeout)


def test_an_augmentation_the_data_cannot_take_is_refused_before_the_study_exists(tmp_path):
    proc = _tuner("study", "--dataset", "mnist1d", "--set", "family=cnn", "--set", "augment_rotation=0.05",
                  "--tracking-uri", "none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "augment_rotation: needs an image input (H, W, C) but the model's input has shape (40, 1)" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no study, no trial, no lock file


def test_studies_of_two_models_on_one_dataset_get_two_default_names(tmp_path):
    from tuner.study import Study

    models = Path(__file__).parent / "data" / "byo_models.py"
    storage = {"storage": f"sqlite:///{tmp_path}/optuna.db", "tracking_uri": "none"}
    by_function = Study(hypermodel=f"{models}:build_hp", dataset="digits", **storage)  # models of 64 inputs
    by_class = Study(hypermodel=f"{models}:ScopedHyperModel", dataset="digits", **storage)
    assert by_function.settings.study_name == "byo_models.build_hp-digits"
    assert by_class.settings.study_name == "byo_models.ScopedHyperModel-digits"
    assert list(tmp_path.iterdir()) == []  # naming a study writes nothing


def test_a_backend_that_is_not_installed_is_refused_with_what_to_install(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import pytest

        pytest.skip("PyTorch is installed here")
    proc = _tuner("study", "--backend", "torch", "--dataset", "iris", "--tracking-uri", "none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("error: --backend: backend: the torch backend needs PyTorch, which is not installed: "
                                   "pip install torch; got 'torch'")
    assert list(tmp_path.iterdir()) == []


def test_best_and_report_on_a_study_with_no_complete_trial_exit_1(tmp_path):
    """Both say why on one line and exit 1 (a runtime outcome), as the README says; bad input is 2."""
    from tuner.cli import main
    from tuner.study import Study

    storage = f"sqlite:///{tmp_path}/optuna.db"
    Study("default", "iris", study_name="empty", storage=storage, tracking_uri="none").optuna_study  # no trial
    assert main(["best", "empty", "--storage", storage]) == 1
    assert main(["report", "empty", "--storage", storage, "--tracking-uri", "none"]) == 1


def test_output_into_a_pipe_closed_early_stops_quietly(tmp_path):
    """`tuner ... | head`: no BrokenPipeError message; 141 (128 + SIGPIPE), as a Unix tool."""
    proc = subprocess.Popen([sys.executable, "-m", "tuner", "datasets"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader goes away before the output comes, as head does after its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert err == ""


def test_a_misspelt_option_is_refused_under_its_subcommand_with_a_suggestion(capsys):
    import pytest

    from tuner.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["study", "--n_trials", "2"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.startswith("usage: tuner study")
    assert "tuner study: error: unrecognized arguments: --n_trials 2 (did you mean '--n-trials'?)" in err


def test_the_non_numeric_column_message_names_the_command_line_option(tmp_path):
    (tmp_path / "pets.csv").write_text("colour,size,label\nred,1,0\nblue,2,1\n" * 20)
    proc = _tuner("study", "--dataset", "pets.csv", "--target", "label", "--tracking-uri", "none", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "pass --categorical onehot (categorical='onehot' in Python)" in proc.stderr


def test_readme_model_files_that_start_a_study_guard_it():
    """`--model FILE.py:NAME` imports the file again (workers, explain): a block of the README or the docs that
    defines a model and starts a study keeps the start under `if __name__ == "__main__":`."""
    import re

    root = Path(__file__).parents[1]
    text = "\n".join(p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
              if re.search(r"^def build\(", b, re.M) and ".run()" in b]
    assert blocks
    for block in blocks:
        assert re.search(r'^if __name__ == "__main__":.*(\n    .*)*\.run\(\)', block, re.M), block


@pytest.mark.slow
def test_a_multi_objective_study_says_what_runs(tmp_path):
    """The header says pruning is off, each trial line shows the objectives themselves, and the storage's folder
    holds one lock file, whatever the number of studies."""
    base = ["study", "--dataset", "iris", "--n-trials", "1", "--set", "epochs=1", "--set", "n_layers=1",
            "--tracking-uri", "none", "--no-progress"]
    proc = _tuner(*base, "--objective", "val_accuracy,gap_loss", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tpe sampler, no pruning" in proc.stderr and "median pruner" not in proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("trial   0  complete"))
    assert "val_accuracy=" in line and "gap_loss=" in line and "gap_accuracy=" in line
    assert _tuner(*base, "--study", "second", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in (tmp_path / "mlruns").iterdir() if p.suffix == ".lock") == ["optuna.db.lock"]


def test_predictions_of_digits_are_its_integer_classes_as_from_arrays():
    from sklearn.datasets import load_digits

    from tuner.data import in_memory_dataset, load_dataset

    assert load_dataset("digits").preprocessing.labels == tuple(range(10))
    assert in_memory_dataset(load_digits(return_X_y=True)).preprocessing.labels == tuple(range(10))


def test_a_wrong_shape_names_each_accepted_shape_once():
    import numpy as np
    import pytest

    from tuner.data import load_dataset
    from tuner.errors import DataError

    with pytest.raises(DataError, match=r"inputs must have shape \(n, 4\); got \(2, 3\)$"):
        load_dataset("iris").preprocessing.transform(np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"inputs must have shape \(n, 2, 2\) or \(n, 4\); got \(2, 3\)$"):
        from tuner.data import in_memory_dataset

        in_memory_dataset((np.random.rand(40, 2, 2), np.arange(40) % 2)).preprocessing.transform(np.zeros((2, 3)))
