"""Tests of the search-space language: loading, validation messages, round trips, sampling and grids.

Every malformed file in ``tests/data/bad_spaces/`` carries its expected error in header comments::

    # expect: <parameter path> | <rule> | <repr of the value received, or - when there is none>

and the test checks that ``load_space`` reports exactly those lines, each naming the file, the path,
the rule and the value.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import optuna
import pytest
import yaml

from tuner.errors import ConfigError, SpaceError
from tuner.space import KNOBS
from tuner.space import SPACES_DIR, SearchSpace, load_space, shipped_spaces

optuna.logging.set_verbosity(optuna.logging.WARNING)

BAD_DIR = Path(__file__).parent / "data" / "bad_spaces"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))
SHIPPED = sorted(shipped_spaces())


def expected_problems(file: Path) -> list[tuple[str, str, str | None]]:
    """The ``(path, rule, value repr or None)`` triples a bad file declares in its header."""
    out = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect: "):
            path, rule, value = (part.strip() for part in line.removeprefix("# expect: ").split(" | "))
            out.append((path, rule, None if value == "-" else value))
    return out


def check_line(line: str, source: str, path: str, rule: str, value: str | None) -> None:
    """One message line: ``<source>: <path>: <rule ...>[; got <value>]``."""
    prefix = f"{source}: {path}: "
    assert line.startswith(prefix), f"{line!r} does not start with {prefix!r}"
    rest = line[len(prefix):]
    assert rest.startswith(rule), f"{line!r}: rule {rule!r} expected after the path"
    if value is None:
        assert "; got " not in rest, line
    else:
        assert rest.endswith(f"; got {value}"), f"{line!r} does not end with the value {value!r}"


FEATURES_YAML = """\
name: every-feature
description: uses every feature of the space language
parameters:
  n_layers: {type: int, low: 0, high: 3}
  units: {type: int, low: 8, high: 128, log: true, per_layer: true}
  activation: {type: categorical, choices: [relu, tanh, gelu], per_layer: true}
  dropout: {type: float, low: 0.0, high: 0.5, step: 0.1, per_layer: true}
  batch_norm: {type: categorical, choices: [off, before, after]}
  bn_momentum: {type: float, low: 0.8, high: 0.99, condition: {batch_norm: [before, after]}}
  bn_epsilon: {type: float, low: 1.0e-5, high: 1.0e-2, log: true, condition: {batch_norm: [before, after]}}
  kernel_regularizer: {type: categorical, choices: [none, l2, l1_l2]}
  kernel_l2: {value: 0.001, condition: {kernel_regularizer: [l2, l1_l2]}}
  kernel_l1: {type: float, low: 1.0e-6, high: 1.0e-3, log: true, condition: {kernel_regularizer: l1_l2}}
  input_dropout: {value: 0.1}
  batch_size: {type: int, low: 16, high: 128, step: 16}
  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-1, log: true}
  optimizer: sgd
  momentum: {type: float, low: 0.0, high: 0.9, step: 0.3}
  nesterov: {type: categorical, choices: [true, false]}
  weight_decay: null
  epochs: 5
"""
PER_LAYER = ("units", "activation", "dropout")


@pytest.fixture(scope="module")
def features() -> SearchSpace:
    return SearchSpace.from_yaml(FEATURES_YAML, source="features.yaml")


def sample(space: SearchSpace, n: int, seed: int = 0) -> list[tuple[optuna.trial.Trial, dict]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append((trial, space.suggest(trial)))
        study.tell(trial, 0.0)
    return out


# -- malformed files ---------------------------------------------------------------------------
def test_bad_space_collection_is_complete() -> None:
    assert len(BAD_FILES) >= 18
    for file in BAD_FILES:
        assert expected_problems(file), f"{file.name} declares no '# expect:' line"
    assert len(expected_problems(BAD_DIR / "two_problems.yaml")) == 2


@pytest.mark.parametrize("file", BAD_FILES, ids=[f.stem for f in BAD_FILES])
def test_bad_space_reports_file_path_rule_and_value(file: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # python_tag.yaml would create a file here if its tag were executed
    expected = expected_problems(file)
    with pytest.raises(SpaceError, match=rf"^{_escape(str(file))}: ") as info:
        load_space(file)
    err = info.value
    assert isinstance(err, ConfigError)
    lines = str(err).splitlines()
    assert len(lines) == len(expected) == len(err.problems), lines
    for line, problem, (path, rule, value) in zip(lines, err.problems, expected):
        check_line(line, str(file), path, rule, value)
        assert (problem.source, problem.path) == (str(file), path)
    assert list(tmp_path.iterdir()) == []


def _escape(text: str) -> str:
    return re.escape(text)


def test_python_tag_is_refused_and_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpaceError, match=r"could not determine a constructor for the tag "
                                         r"'tag:yaml.org,2002:python/object/apply:os.system'"):
        load_space(BAD_DIR / "python_tag.yaml")
    with pytest.raises(SpaceError, match="no Python tags"):
        SearchSpace.from_yaml(f"parameters:\n  epochs: !!python/object/apply:os.system ['touch {tmp_path}/x']\n")
    assert not (tmp_path / "pwned_by_yaml_tag").exists()
    assert not (tmp_path / "x").exists()


def test_two_problems_are_reported_on_two_lines() -> None:
    file = BAD_DIR / "two_problems.yaml"
    with pytest.raises(SpaceError) as info:
        load_space(file)
    assert [p.path for p in info.value.problems] == ["parameters.dropout", "parameters.activation"]
    assert str(info.value) == (f"{file}: parameters.dropout: must be in [0.0, 1.0); got 1.5\n"
                               f"{file}: parameters.activation: must be a name that keras.activations.get() "
                               "knows; got 'rellu'")


def test_missing_file_names_the_shipped_spaces(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpaceError, match=rf"^{_escape(str(missing))}: no such file \(shipped spaces: .*default"):
        load_space(missing)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(SpaceError, match=r"^s.yaml: \(top level\): must be a mapping with a 'parameters' key; "
                                         r"got \['n_layers'\]$"):
        SearchSpace.from_yaml("- n_layers\n", source="s.yaml")


def test_knob_kind_is_checked_for_ranges_of_string_knobs() -> None:
    with pytest.raises(SpaceError, match=r"parameters.activation.type: activation is a str knob; use type "
                                         r"categorical; got 'int'"):
        SearchSpace.from_dict({"parameters": {"activation": {"type": "int", "low": 1, "high": 2}}})


def test_non_finite_bounds_are_refused() -> None:
    with pytest.raises(SpaceError, match=r"parameters.dropout.high: must be a finite number; got nan"):
        SearchSpace.from_yaml("parameters:\n  dropout: {type: float, low: 0.0, high: .nan}\n")


# -- shipped spaces and round trips --------------------------------------------------------------
def test_default_space_is_shipped() -> None:
    assert "default" in SHIPPED
    assert shipped_spaces()["default"] == SPACES_DIR / "default.yaml"
    assert load_space("default") == load_space(SPACES_DIR / "default.yaml")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_loads(name: str) -> None:
    space = load_space(name)
    assert space.name
    assert space.searched, f"{name} searches nothing"
    assert set(space.params) <= set(KNOBS)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_space_round_trips(name: str) -> None:
    space = load_space(name)
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert SearchSpace.from_yaml(space.to_yaml()) == space
    assert SearchSpace.from_yaml(space.to_yaml()).to_yaml() == space.to_yaml()


def test_every_feature_round_trips(features: SearchSpace) -> None:
    assert SearchSpace.from_dict(features.to_dict()) == features
    assert SearchSpace.from_yaml(features.to_yaml()) == features
    assert SearchSpace.from_config(features.get_config()) == features
    params = SearchSpace.from_yaml(features.to_yaml()).params
    assert params["units"].per_layer and params["units"].log
    assert params["dropout"].step == 0.1
    assert params["kernel_l2"].is_fixed and params["kernel_l2"].condition == {"kernel_regularizer": ["l2", "l1_l2"]}
    assert params["bn_momentum"].condition == {"batch_norm": ["before", "after"]}
    assert params["batch_norm"].choices == ["off", "before", "after"]
    assert params["weight_decay"].is_fixed and params["weight_decay"].value is None


def test_equality_sees_a_changed_value(features: SearchSpace) -> None:
    data = features.to_dict()
    data["parameters"]["epochs"] = 6
    assert SearchSpace.from_dict(data) != features
    assert features != features.to_dict()


# -- YAML 1.2 -----------------------------------------------------------------------------------
def test_yaml_1_2_booleans_keep_off_a_string() -> None:
    assert yaml.safe_load("batch_norm: off") == {"batch_norm": False}  # what YAML 1.1 would do
    space = SearchSpace.from_yaml("parameters:\n  batch_norm: off\n  nesterov: true\n"
                                  "  scaling: {type: categorical, choices: [none, standard]}\n")
    assert space.params["batch_norm"].value == "off"
    assert space.params["nesterov"].value is True
    assert SearchSpace.from_yaml(space.to_yaml()).params["batch_norm"].value == "off"
    # `on` is no boolean either: it reaches the knob's check as the string 'on'
    with pytest.raises(SpaceError, match=r"parameters.batch_norm.choices\[1\]: must be one of "
                                         r"\['off', 'before', 'after'\]; got 'on'$"):
        SearchSpace.from_yaml("parameters:\n  batch_norm: {type: categorical, choices: [off, on]}\n")


def test_yaml_1_1_booleans_are_not_booleans() -> None:
    with pytest.raises(SpaceError, match=r"parameters.nesterov: must be true or false; got 'yes'"):
        SearchSpace.from_yaml("parameters:\n  nesterov: yes\n")


# -- sampling ------------------------------------------------------------------------------------
def test_suggest_default_space_conditions() -> None:
    space = load_space("default")
    with_bn = without_bn = with_l2 = without_l2 = 0
    for trial, params in sample(space, 100):
        if params["batch_norm"] == "off":
            assert "bn_momentum" not in params
            without_bn += 1
        else:
            assert params["batch_norm"] == "after"
            assert 0.8 <= params["bn_momentum"] <= 0.99
            assert trial.params["bn_momentum"] == params["bn_momentum"]
            with_bn += 1
        if params["kernel_regularizer"] == "l2":
            assert 1e-6 <= params["kernel_l2"] <= 1e-2
            with_l2 += 1
        else:
            assert "kernel_l2" not in params
            assert "kernel_l2" not in trial.params
            without_l2 += 1
        assert isinstance(params["n_layers"], int) and 1 <= params["n_layers"] <= 3
        assert params["units"] in (32, 64, 128, 256)  # a grid of powers of two: few programs (issue 24)
        assert 0.0 <= params["dropout"] <= 0.5
        assert 1e-3 <= params["learning_rate"] <= 3e-2
        assert (params["optimizer"], params["batch_size"], params["epochs"]) == ("adam", 64, 30)
        assert params["bn_epsilon"] == KNOBS["bn_epsilon"].default  # not in the space: the default
    assert with_bn and without_bn and with_l2 and without_l2
    assert trial.distributions["learning_rate"].log
    assert trial.distributions["units"].choices == (32, 64, 128, 256)


def test_suggest_resolves_per_layer_and_conditions(features: SearchSpace) -> None:
    depths = set()
    bn_on = bn_off = 0
    for trial, params in sample(features, 100, seed=1):
        n = params["n_layers"]
        depths.add(n)
        for name in PER_LAYER:
            assert name not in params
            assert f"{name}_{n + 1}" not in params
        for i in range(1, n + 1):
            assert isinstance(params[f"units_{i}"], int) and 8 <= params[f"units_{i}"] <= 128
            assert params[f"activation_{i}"] in ("relu", "tanh", "gelu")
            rate = params[f"dropout_{i}"]
            assert 0.0 <= rate <= 0.5 and math.isclose(rate * 10, round(rate * 10), abs_tol=1e-9)
            assert trial.distributions[f"units_{i}"].log
            assert trial.distributions[f"dropout_{i}"].step == 0.1
        active = {"bn_momentum", "bn_epsilon"} if params["batch_norm"] != "off" else set()
        if params["kernel_regularizer"] in ("l2", "l1_l2"):
            active.add("kernel_l2")
            assert params["kernel_l2"] == 0.001
        if params["kernel_regularizer"] == "l1_l2":
            active.add("kernel_l1")
            assert 1e-6 <= params["kernel_l1"] <= 1e-3
        inactive = {"bn_momentum", "bn_epsilon", "kernel_l2", "kernel_l1"} - active
        per_layer = {f"{name}_{i}" for name in PER_LAYER for i in range(1, n + 1)}
        assert set(params) == (set(KNOBS) - set(PER_LAYER) - inactive) | per_layer
        if active & {"bn_momentum"}:
            bn_on += 1
            assert 0.8 <= params["bn_momentum"] <= 0.99 and 1e-5 <= params["bn_epsilon"] <= 1e-2
        else:
            bn_off += 1
        assert params["batch_size"] in range(16, 129, 16)
        assert any(math.isclose(params["momentum"], m) for m in (0.0, 0.3, 0.6, 0.9))
        assert params["nesterov"] in (True, False)
        assert (params["optimizer"], params["epochs"], params["weight_decay"], params["input_dropout"]) == \
            ("sgd", 5, None, 0.1)
        assert params["patience"] == KNOBS["patience"].default
        assert {k: v for k, v in params.items() if k in trial.params} == trial.params
    assert depths == {0, 1, 2, 3}
    assert bn_on and bn_off


def test_per_layer_without_n_layers_uses_the_default_depth() -> None:
    space = SearchSpace.from_dict({"parameters": {"units": {"type": "int", "low": 4, "high": 8, "per_layer": True}}})
    (_, params), = sample(space, 1)
    assert params["n_layers"] == KNOBS["n_layers"].default == 2
    assert {k for k in params if k.startswith("units")} == {"units_1", "units_2"}


def test_fixed_per_layer_value_is_repeated() -> None:
    space = SearchSpace.from_dict({"parameters": {"n_layers": 3, "dropout": {"value": 0.25, "per_layer": True}}})
    (_, params), = sample(space, 1)
    assert [params[f"dropout_{i}"] for i in (1, 2, 3)] == [0.25] * 3
    assert "dropout" not in params


def test_searched_lists_sampled_parameters(features: SearchSpace) -> None:
    assert "epochs" not in features.searched and "optimizer" not in features.searched
    assert {"n_layers", "units", "bn_momentum", "kernel_l1"} <= set(features.searched)


def test_varying_knobs_name_the_knobs_of_the_sampled_parameters() -> None:
    space = SearchSpace.from_dict({"parameters": {"n_layers": 2, "dropout": {"type": "float", "low": 0.0, "high": 0.5,
                                                                            "per_layer": True},
                                                  "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2},
                                                  "batch_norm": "after", "epochs": 3}})
    assert space.varying_knobs == {"dropout", "learning_rate"}  # batch_norm and epochs are fixed


# -- overrides -------------------------------------------------------------------------------------
def test_with_fixed_fixes_values() -> None:
    space = load_space("default")
    fixed = space.with_fixed({"n_layers": 2, "dropout": 0.2, "epochs": 3, "activation": "tanh"})
    assert "n_layers" not in fixed.searched and "dropout" not in fixed.searched
    assert "n_layers" in space.searched  # the original is untouched
    for _, params in sample(fixed, 20):
        assert (params["n_layers"], params["dropout"], params["epochs"], params["activation"]) == (2, 0.2, 3, "tanh")


def test_with_fixed_keeps_the_condition_of_a_conditional_parameter() -> None:
    fixed = load_space("default").with_fixed({"bn_momentum": 0.9})
    assert fixed.params["bn_momentum"].is_fixed
    assert fixed.params["bn_momentum"].condition == {"batch_norm": ["after"]}
    for _, params in sample(fixed, 30):
        assert ("bn_momentum" in params) == (params["batch_norm"] == "after")
        if "bn_momentum" in params:
            assert params["bn_momentum"] == 0.9


def test_with_fixed_rejects_unknown_names() -> None:
    with pytest.raises(SpaceError, match=r"^--set: dropuot: unknown parameter \(did you mean 'dropout'\?\); "
                                         r"got 0.2$"):
        load_space("default").with_fixed({"dropuot": 0.2})


def test_with_fixed_rejects_bad_values() -> None:
    with pytest.raises(SpaceError, match=r"^--set: dropout: must be in \[0.0, 1.0\); got 1.5$"):
        load_space("default").with_fixed({"dropout": 1.5})
    with pytest.raises(SpaceError, match=r"^--set: activation: must be a name that keras.activations.get\(\) knows; "
                                         r"got 'rellu'$"):
        load_space("default").with_fixed({"activation": "rellu"})
    with pytest.raises(SpaceError, match=r"^--set: epochs: must be an integer; got 'three'$"):
        load_space("default").with_fixed({"epochs": "three"})


# -- grids -----------------------------------------------------------------------------------------
GRID_YAML = """\
parameters:
  activation: {type: categorical, choices: [relu, tanh]}
  n_layers: {type: int, low: 1, high: 3}
  units: {type: int, low: 16, high: 64, step: 16}
  dropout: {type: float, low: 0.0, high: 0.4, step: 0.2}
  epochs: 3
"""


def test_grid_lists_every_value() -> None:
    space = SearchSpace.from_yaml(GRID_YAML)
    grid = space.grid()
    assert grid == {"activation": ["relu", "tanh"], "n_layers": [1, 2, 3], "units": [16, 32, 48, 64],
                    "dropout": [0.0, 0.2, 0.4]}
    seen = []

    def objective(trial: optuna.trial.Trial) -> float:
        p = space.suggest(trial)
        seen.append((p["activation"], p["n_layers"], p["units"], p["dropout"]))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    study.optimize(objective, n_trials=100)
    assert len(seen) == 2 * 3 * 4 * 3  # the sampler stops the study when the grid is done
    assert set(seen) == set(itertools.product(*grid.values()))


def test_grid_float_steps_are_exact() -> None:
    space = SearchSpace.from_yaml("parameters:\n  dropout: {type: float, low: 0.0, high: 0.3, step: 0.1}\n")
    values = space.grid()["dropout"]
    assert max(values) <= 0.3
    assert values == [0.0, 0.1, 0.2, 0.3]


def test_grid_refuses_continuous_ranges() -> None:
    space = SearchSpace.from_yaml("parameters:\n  activation: {type: categorical, choices: [relu, tanh]}\n"
                                  "  learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n",
                                  source="g.yaml")
    with pytest.raises(SpaceError, match=r"^g.yaml: parameters.learning_rate: the grid sampler needs categorical or "
                                         r"stepped ranges; got \{'type': 'float', 'low': 0.0001, 'high': 0.01, "
                                         r"'log': True\}$"):
        space.grid()


def test_grid_refuses_conditional_parameters() -> None:
    with pytest.raises(SpaceError, match=r"parameters.bn_momentum: the grid sampler needs unconditional, shared "
                                         r"parameters"):
        load_space("default").grid()


# -- known bugs --------------------------------------------------------------------------------------
def test_unhashable_key_is_a_space_error() -> None:
    with pytest.raises(SpaceError, match=r"^s.yaml: line 2, column \d+: must be valid YAML"):
        SearchSpace.from_yaml("parameters:\n  ? [a, b]\n  : 1\n", source="s.yaml")


def test_exponent_without_dot_is_a_float() -> None:
    # YAML 1.2 reads 1e-4 as a float; YAML 1.1 (PyYAML's default) needs 1.0e-4 and reads 1e-4 as a string.
    space = SearchSpace.from_yaml("parameters:\n  learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}\n")
    assert (space.params["learning_rate"].low, space.params["learning_rate"].high) == (1e-4, 1e-2)


def test_with_fixed_on_the_parent_of_a_conditional_parameter() -> None:
    # the children (bn_momentum, kernel_l2) can no longer be active: fixing their parent is not an error
    fixed = load_space("default").with_fixed({"batch_norm": "off", "kernel_regularizer": "none"})
    assert "bn_momentum" not in fixed.searched and "kernel_l2" not in fixed.searched
    for trial, params in sample(fixed, 10):
        assert (params["batch_norm"], params["kernel_regularizer"]) == ("off", "none")
        assert "bn_momentum" not in trial.params and "kernel_l2" not in trial.params


def test_condition_outside_a_range_can_never_hold() -> None:
    with pytest.raises(SpaceError, match=r"parameters.units.condition.n_layers: can never hold"):
        SearchSpace.from_yaml("parameters:\n  n_layers: {type: int, low: 1, high: 3}\n"
                              "  units: {type: int, low: 8, high: 16, condition: {n_layers: 5}}\n")


def test_an_invalid_parent_does_not_cascade() -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_yaml("parameters:\n  batch_norm: {type: categorical, choices: [off, after], log: true}\n"
                              "  bn_momentum: {type: float, low: 0.8, high: 0.9, condition: {batch_norm: after}}\n")
    assert [p.path for p in info.value.problems] == ["parameters.batch_norm.log"]


def test_per_layer_parameters_with_an_inactive_conditional_depth() -> None:
    space = SearchSpace.from_yaml("parameters:\n  batch_norm: {type: categorical, choices: [off, after]}\n"
                                  "  n_layers: {type: int, low: 1, high: 3, condition: {batch_norm: after}}\n"
                                  "  units: {type: int, low: 8, high: 16, per_layer: true}\n")
    depths = set()
    for _, params in sample(space, 30):
        n = params.get("n_layers", KNOBS["n_layers"].default)  # the builder's depth when n_layers is inactive
        depths.add(n)
        assert {k for k in params if k.startswith("units")} == {f"units_{i}" for i in range(1, n + 1)}
    assert KNOBS["n_layers"].default in depths
