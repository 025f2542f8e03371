"""Property tests: random YAML documents into the space loader, random CSV files into the table reader.
Never a traceback: a space or dataset, or one ConfigError with one problem per thing wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuner.errors import ConfigError
from tuner.space import SearchSpace
from tuner.data import load_dataset

SMALL = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["relu", "mlp", "adam", "int", "float", "log", "choices"]))
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.text(max_size=10), st.sampled_from(
        ["parameters", "name", "type", "low", "high", "log", "step", "choices", "value", "units", "dropout",
         "learning_rate", "epochs", "optimizer"])), inner, max_size=5)), max_leaves=20)


def load_yaml_text(text: str) -> ConfigError | None:
    """Load ``text`` as a space file; the only exception allowed is ConfigError, with at least one problem
    (returned, for benchmarks/fuzz.py)."""
    try:
        SearchSpace.from_yaml(text, source="fuzz.yaml")
    except ConfigError as err:
        assert err.problems, str(err)
        assert all(str(p) for p in err.problems)
        return err
    return None


@SMALL
@given(documents)
def test_random_yaml_documents_never_raise_anything_but_a_space_error(doc):
    import yaml

    load_yaml_text(yaml.safe_dump({"parameters": doc} if isinstance(doc, dict) else doc))


@SMALL
@given(st.text(max_size=300))
def test_random_text_as_yaml_never_raises_anything_but_a_space_error(text):
    load_yaml_text(text)


cells = st.one_of(st.just(""), st.integers(-10**25, 10**25).map(str), st.floats(allow_nan=True).map(repr),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6),
                  st.sampled_from(["inf", "-inf", "nan", "NA", "true", "1e400", '"a,b"', "é", "\\N"]))


@st.composite
def csv_files(draw):
    n_cols = draw(st.integers(1, 5))
    header = draw(st.lists(st.sampled_from(["a", "b", "y", "x", "é", ""]), min_size=n_cols, max_size=n_cols))
    rows = draw(st.lists(st.lists(cells, min_size=n_cols, max_size=n_cols), max_size=8))
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    return text.encode(encoding, errors="replace")


def read_csv_bytes(data: bytes) -> ConfigError | None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.csv"
        path.write_bytes(data)
        try:
            load_dataset(str(path), target="y")
        except ConfigError as err:
            assert err.problems, str(err)
            subjects = [(p.source, p.path, p.rule.split(":")[0]) for p in err.problems]
            assert len(subjects) == len(set(subjects)), str(err)  # one error per problem
            return err
    return None


@SMALL
@given(csv_files())
def test_random_csv_files_never_raise_anything_but_a_data_error(data):
    read_csv_bytes(data)
