"""YAML loading that remembers where every value came from, so errors can name file, line and column,
and that is safe on hostile input.

We read PyYAML's event stream (its scanner and parser are state machines, not recursive) and build
plain Python data with an explicit stack, plus a side table of positions keyed by path
(`("scenario", "flow", 3, "next")`). Nothing here recurses on user data, so a 20,000-deep nesting or
a 10,000-step chain cannot exhaust the interpreter's stack. Limits, each a clear error with
file:line:column instead of a hang or a traceback:

* nodes after alias expansion (`MAX_NODES`): an alias costs as much as what it repeats, so a
  "billion laughs" file is refused after a few hundred thousand nodes, not after gigabytes;
* nesting depth (`MAX_DEPTH`), aliases included;
* file size (`MAX_BYTES`) and scalar length (`MAX_SCALAR`);
* merge keys (`<<`) and complex (mapping or sequence) keys are refused: call flows need neither,
  and both hide what a key really is; NUL and other non-printable characters are refused;
* only the plain YAML types (null, bool, int, float, str, timestamp); other tags are refused.

Duplicate keys are errors, not silent overwrites (a silent overwrite is how a flow loses a branch).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    StreamEndEvent,
)

PathKey = tuple[str | int, ...]

MAX_BYTES = 2_000_000  # a scenario file is a few KB; 2 MB holds a 10,000-step flow
MAX_NODES = 250_000  # after alias expansion
MAX_DEPTH = 64
MAX_SCALAR = 100_000  # characters in one value

_MERGE_TAG = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:timestamp",
}
_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
# Escapes in double-quoted scalars can produce what the reader refuses in raw text.
_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")


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
    """The file cannot be read as (safe) YAML at all; `error` says where and why."""

    def __init__(self, error: FlowError) -> None:
        super().__init__(str(error))
        self.error = error


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
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _pos(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark is not None else Position(1, 1)


def _position_at(text: str, index: int) -> Position:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return Position(line, column)


class _Fatal(Exception):
    def __init__(self, pos: Position, rule: str, message: str, fix: str) -> None:
        super().__init__(message)
        self.pos, self.rule, self.message, self.fix = pos, rule, message, fix


@dataclass(slots=True)
class _Frame:
    """A mapping or sequence being built."""

    value: dict[Any, Any] | list[Any]
    path: PathKey
    anchor: str | None
    size: int = 1  # nodes, aliases expanded
    height: int = 1  # levels below and including this one, aliases expanded
    key: Any = None  # mappings: the key waiting for its value
    key_pos: Position | None = None
    has_key: bool = False


@dataclass(slots=True)
class _Anchored:
    value: Any
    size: int
    height: int


class _Builder:
    """Builds data + positions from parser events; every step is a loop iteration, none recurse."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.positions: dict[PathKey, Position] = {}
        self.errors: list[FlowError] = []
        self.anchors: dict[str, _Anchored] = {}
        self.open_anchors: set[str] = set()
        self.nodes = 0
        self.loader = _Loader(text)  # reader (checks for non-printable characters), scanner, parser
        self.constructor = SafeConstructor()

    def build(self) -> Any:
        loader = self.loader
        stack: list[_Frame] = []
        result: Any = None
        documents = 0
        while True:
            event = loader.get_event()
            if isinstance(event, StreamEndEvent):
                return result
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _Fatal(_pos(event.start_mark), "multiple-documents",
                                 "the file holds more than one YAML document (a second `---`)",
                                 "keep one document per file")
                continue
            if not isinstance(event, (NodeEvent, MappingEndEvent, SequenceEndEvent)):
                continue  # stream/document end
            if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                frame = stack.pop()
                if frame.anchor is not None:
                    self.open_anchors.discard(frame.anchor)
                    self.anchors[frame.anchor] = _Anchored(frame.value, frame.size, frame.height)
                if stack:
                    self._grow(stack[-1], frame.size, frame.height)
                    self._attach(stack[-1], frame.value)
                else:
                    result = frame.value
                continue
            # A node: scalar, alias or the start of a collection.
            parent = stack[-1] if stack else None
            pos = _pos(event.start_mark)
            if parent is not None and isinstance(parent.value, dict) and not parent.has_key:
                self._key(parent, event, pos)
                continue
            path = self._child_path(parent, pos)
            if isinstance(event, AliasEvent):
                target = self._alias(event, pos)
                self._count(target.size, pos)
                self._check_depth(len(stack) + target.height, pos)
                self.positions[path] = pos
                if parent is None:
                    result = target.value
                else:
                    self._grow(parent, target.size, target.height)
                    self._attach(parent, target.value)
                continue
            self._count(1, pos)
            self.positions[path] = pos
            if isinstance(event, CollectionStartEvent):
                self._check_depth(len(stack) + 1, pos)
                if event.tag not in _COLLECTION_TAGS:
                    raise _Fatal(pos, "unsupported-tag", f"tag {event.tag!r} is not supported",
                                 "remove the tag; write plain mappings and lists")
                anchor = event.anchor
                if anchor is not None:
                    self.open_anchors.add(anchor)
                value: dict[Any, Any] | list[Any] = {} if isinstance(event, MappingStartEvent) else []
                stack.append(_Frame(value, path, anchor))
                continue
            assert isinstance(event, ScalarEvent)
            value = self._scalar(event, pos)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchored(value, 1, 0)
            if parent is None:
                result = value
            else:
                self._grow(parent, 1, 0)
                self._attach(parent, value)

    # --- pieces ---------------------------------------------------------------------------------
    @staticmethod
    def _grow(frame: _Frame, size: int, height: int) -> None:
        frame.size += size
        frame.height = max(frame.height, height + 1)

    def _count(self, n: int, pos: Position) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise _Fatal(pos, "too-large", f"the document expands to more than {MAX_NODES:,} values "
                         "(aliases count as what they repeat)",
                         "split the file or use fewer aliases")

    @staticmethod
    def _check_depth(depth: int, pos: Position) -> None:
        if depth > MAX_DEPTH:
            raise _Fatal(pos, "too-deep", f"values are nested more than {MAX_DEPTH} levels deep",
                         "flatten the structure")

    def _alias(self, event: AliasEvent, pos: Position) -> _Anchored:
        name = event.anchor
        if name in self.open_anchors:
            raise _Fatal(pos, "recursive-alias", f"alias *{name} refers to a node that contains it",
                         "an alias may only repeat a finished node")
        target = self.anchors.get(name or "")
        if target is None:
            raise _Fatal(pos, "unknown-alias", f"alias *{name} has no anchor &{name} before it",
                         f"define &{name} first or remove the alias")
        return target

    def _child_path(self, parent: _Frame | None, pos: Position) -> PathKey:
        """The path of the node starting at `pos`; a mapping value's start is also its `__value__`."""
        if parent is None:
            return ()
        if isinstance(parent.value, list):
            return (*parent.path, len(parent.value))
        path = (*parent.path, parent.key)
        self.positions[(*path, "__value__")] = pos
        return path

    def _attach(self, parent: _Frame, value: Any) -> None:
        if isinstance(parent.value, list):
            parent.value.append(value)
            return
        key = parent.key
        if key in parent.value:
            kp = parent.key_pos or Position(1, 1)
            self.errors.append(FlowError(self.file, kp.line, kp.column, "duplicate-key",
                                         f"key {key!r} appears twice in the same mapping",
                                         "remove or rename one of them"))
        parent.value[key] = value
        parent.has_key = False
        parent.key = None

    def _key(self, parent: _Frame, event: Any, pos: Position) -> None:
        if isinstance(event, CollectionStartEvent):
            raise _Fatal(pos, "complex-key", "a mapping key must be a plain value, not a list or mapping",
                         "write the key as text")
        if isinstance(event, AliasEvent):
            target = self._alias(event, pos)
            if isinstance(target.value, (dict, list)):
                raise _Fatal(pos, "complex-key", "a mapping key must be a plain value, not a list or mapping",
                             "write the key as text")
            key = target.value
        else:
            tag = self._scalar_tag(event)
            if tag == _MERGE_TAG:
                raise _Fatal(pos, "merge-key", "merge keys (`<<`) are not supported",
                             "write the keys out in full")
            key = self._scalar(event, pos)
            if event.anchor is not None:
                self.anchors[event.anchor] = _Anchored(key, 1, 0)
        self._count(1, pos)
        if isinstance(key, bool):
            key = str(key).lower()
        elif not isinstance(key, str):
            key = "null" if key is None else str(key)
        parent.key = key
        parent.key_pos = pos
        parent.has_key = True

    def _scalar_tag(self, event: ScalarEvent) -> str:
        if event.tag is None or event.tag == "!":
            return self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        return event.tag

    def _scalar(self, event: ScalarEvent, pos: Position) -> Any:
        if len(event.value) > MAX_SCALAR:
            raise _Fatal(pos, "too-long", f"a value is longer than {MAX_SCALAR:,} characters",
                         "shorten it")
        if _UNSAFE_CHARS.search(event.value):
            raise _Fatal(pos, "invalid-character", "a value holds a NUL character or half of a surrogate pair",
                         "remove the escaped character (\\0, \\x00, \\ud800 ...)")
        tag = self._scalar_tag(event)
        if tag not in _SCALAR_TAGS:
            raise _Fatal(pos, "unsupported-tag", f"tag {tag!r} is not supported",
                         "remove the tag; use plain text, numbers, true/false or null")
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self.constructor.yaml_constructors[tag](self.constructor, node)
        except (ConstructorError, ValueError, OverflowError) as exc:
            detail = str(exc).splitlines()[0].split(";")[0][:160]
            raise _Fatal(pos, "invalid-value", f"cannot read {event.value[:40]!r} as {tag.rsplit(':', 1)[-1]}: "
                         f"{detail}", "quote it to keep it as text") from None


def load_yaml_text(text: str, file: str) -> tuple[LoadedYaml, list[FlowError]]:
    """Parse YAML text into data + positions; anything that is not safe YAML raises
    `YamlSyntaxError` naming file, line, column and the rule."""
    if len(text) > MAX_BYTES:
        raise YamlSyntaxError(FlowError(file, 1, 1, "too-large", f"the file is larger than {MAX_BYTES:,} bytes",
                                        "split it into several scenario files"))
    try:
        builder = _Builder(text, file)
        data = builder.build()
    except _Fatal as exc:
        raise YamlSyntaxError(FlowError(file, exc.pos.line, exc.pos.column, exc.rule, exc.message, exc.fix)) from None
    except yaml.reader.ReaderError as exc:
        pos = _position_at(text, exc.position)
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YamlSyntaxError(FlowError(file, pos.line, pos.column, "invalid-character",
                                        f"character {char} is not allowed in YAML",
                                        "remove it (NUL and control characters cannot appear in scenarios)")) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = _pos(mark)
        raise YamlSyntaxError(FlowError(file, pos.line, pos.column, "yaml-syntax", str(exc.problem or exc),
                                        "fix the YAML syntax at this position")) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(FlowError(file, 1, 1, "yaml-syntax", str(exc).splitlines()[0][:300],
                                        "fix the YAML syntax")) from None
    return LoadedYaml(file, data, builder.positions), builder.errors


def load_yaml_file(path: Path) -> tuple[LoadedYaml, list[FlowError]]:
    """Read and parse one file; a file too large, unreadable or not UTF-8 is a `YamlSyntaxError`."""
    return load_yaml_text(read_text_limited(path), str(path))


def read_text_limited(path: Path, limit: int = MAX_BYTES) -> str:
    """The file's text, refusing (with a `YamlSyntaxError`) files over `limit` bytes before reading them."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise YamlSyntaxError(FlowError(str(path), 1, 1, "too-large", f"the file is larger than {limit:,} bytes",
                                            "split it into several files"))
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        pos = Position(1, 1)
        try:
            pos = _position_at(path.read_bytes()[: exc.start].decode("utf-8", "replace"), exc.start)
        except OSError:
            pass
        raise YamlSyntaxError(FlowError(str(path), pos.line, pos.column, "unreadable",
                                        f"the file is not UTF-8 text ({exc.reason})",
                                        "save it as UTF-8")) from None
    except OSError as exc:
        raise YamlSyntaxError(FlowError(str(path), 1, 1, "unreadable", exc.strerror or str(exc),
                                        "make the file readable")) from None


def safe_load(text: str, file: str = "<text>") -> Any:
    """Plain data from YAML text with every limit above (for caller scripts, flow tests, personas:
    any YAML a user hands us). Raises `YamlSyntaxError` on anything unsafe or malformed,
    and also on a duplicate key."""
    doc, errors = load_yaml_text(text, file)
    if errors:
        raise YamlSyntaxError(errors[0])
    return doc.data
