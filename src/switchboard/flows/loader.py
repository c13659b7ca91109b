"""YAML loading that remembers where every value came from, so errors can name file, line and column.

PyYAML's composer gives nodes with marks; we build plain Python data from them and a side table of
positions keyed by path (`("scenario", "flow", 3, "next")`). Duplicate keys are errors, not silent
overwrites (a silent overwrite is how a flow loses a branch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PathKey = tuple[str | int, ...]


@dataclass(slots=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass(slots=True)
class FlowError:
    """One problem in one file, with where it is and how to fix it."""

    file: str
    line: int
    column: int
    rule: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: [{self.rule}] {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


@dataclass(slots=True)
class LoadedYaml:
    file: str
    data: Any
    positions: dict[PathKey, Position] = field(default_factory=dict)

    def where(self, path: PathKey) -> Position:
        """Position of `path`, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            pos = self.positions.get(probe)
            if pos is not None:
                return pos
            probe = probe[:-1]
        return self.positions.get((), Position(1, 1))

    def error(self, path: PathKey, rule: str, message: str, fix: str = "") -> FlowError:
        pos = self.where(path)
        return FlowError(self.file, pos.line, pos.column, rule, message, fix)


class YamlSyntaxError(Exception):
    def __init__(self, error: FlowError) -> None:
        super().__init__(str(error))
        self.error = error


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: PathKey, out: dict[PathKey, Position], file: str,
           errors: list[FlowError]) -> Any:
    out[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.SafeLoader.construct_object(_KEY_LOADER, key_node, deep=True)  # type: ignore[arg-type]
            if isinstance(key, (int, float, bool)) or key is None:
                key = str(key).lower() if isinstance(key, bool) else str(key)
            if key in result:
                p = _pos(key_node)
                errors.append(FlowError(file, p.line, p.column, "duplicate-key",
                                        f"key {key!r} appears twice in the same mapping",
                                        "remove or rename one of them"))
            child = (*path, key)
            out[child] = _pos(key_node)
            result[key] = _build(value_node, child, out, file, errors)
            out[(*child, "__value__")] = _pos(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, file, errors) for i, item in enumerate(node.value)]
    return yaml.SafeLoader.construct_object(_KEY_LOADER, node, deep=True)  # type: ignore[arg-type]


class _Loader(yaml.SafeLoader):
    pass


# YAML 1.1 turns bare yes/no/on/off into booleans; call-flow authors write `yes:` as an intent
# name, so only true/false are booleans here.
_Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_KEY_LOADER = _Loader("")


def load_yaml_text(text: str, file: str) -> tuple[LoadedYaml, list[FlowError]]:
    """Parse YAML text into data + positions; syntax errors raise YamlSyntaxError."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        col = mark.column + 1 if mark else 1
        raise YamlSyntaxError(FlowError(file, line, col, "yaml-syntax", str(exc.problem or exc),
                                        "fix the YAML syntax at this position")) from exc
    positions: dict[PathKey, Position] = {}
    errors: list[FlowError] = []
    data = None if node is None else _build(node, (), positions, file, errors)
    return LoadedYaml(file, data, positions), errors


def load_yaml_file(path: Path) -> tuple[LoadedYaml, list[FlowError]]:
    return load_yaml_text(path.read_text(encoding="utf-8"), str(path))
