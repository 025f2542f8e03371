"""Reading YAML as search spaces want it: a safe loader with YAML 1.2 booleans and floats, no duplicate keys."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tuner.errors import Problem, SpaceError


class _NoDuplicatesSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (a silent overwrite hides mistakes)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found unhashable key", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_NoDuplicatesSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.2 booleans: only true/false. YAML 1.1 also reads off/on/yes/no as booleans, which would turn
# `batch_norm: off` into False.
_NoDuplicatesSafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_NoDuplicatesSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 floats: 1e-3 is a number (YAML 1.1 needs a dot, 1.0e-3, and reads 1e-3 as a string).
_NoDuplicatesSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def safe_load(text: str, source: str) -> Any:
    """The YAML document of a space file, read safely.

    Raises:
        SpaceError: naming the line and column of a YAML error, or when the file is empty or holds only
            comments (a space of nothing would run a study of nothing).
    """
    try:
        data = yaml.load(text, Loader=_NoDuplicatesSafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "document"
        problem = getattr(err, "problem", None) or str(err)
        context = getattr(err, "context", None)
        rule = "must be valid YAML readable by a safe loader (no Python tags)"
        detail = f"{context + ' ' if context else ''}{problem}".strip()
        raise SpaceError([Problem(source, where, rule, value=detail)]) from None
    if data is None:
        what = "is empty" if not text.strip() else "holds no YAML content (only comments)"
        raise SpaceError(
            [
                Problem(
                    source,
                    "",
                    f"{what}; a space file needs a `parameters:` mapping, e.g. "
                    "`parameters: {learning_rate: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}`",
                    has_value=False,
                )
            ]
        )
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``PARAM=VALUE`` (the value read as YAML: ``0.2``, ``true``, ``relu``, ``null``)."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise SpaceError([Problem("--set", text, "must be PARAM=VALUE", value=text)])
    try:
        value = yaml.load(raw, Loader=_NoDuplicatesSafeLoader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return name, value
