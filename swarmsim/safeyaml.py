"""Reading scenario, sweep and override YAML so that any input is a value or a named error.

``yaml.safe_load`` runs no code, but it hands back what the document says as it says it: the
last of two equal keys, a ``date`` for ``2026-01-01``, a list that contains itself, or a
kilobyte of aliases that expands to billions of values once anything copies it. Here a
document is composed first and its node graph walked with a budget (every alias expanded,
at most ``MAX_VALUES`` values, ``MAX_DEPTH`` levels, no alias inside itself, no key twice),
and only then constructed and turned into plain data: dicts with string keys, lists, strings,
numbers, booleans and None. Dates stay strings, and ``1e6`` is a float (as in YAML 1.2).
Every fault is a ``ScenarioError`` with the path of the value (``peers[1].count``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from swarmsim.errors import ScenarioError

MAX_FILE_BYTES = 4 * 1024 * 1024  # a scenario or sweep file
MAX_VALUES = 100_000  # values in one document, every alias expanded
MAX_DEPTH = 32  # levels of nesting (a scenario needs about 5)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MERGE = "tag:yaml.org,2002:merge"


def format_loc(loc: tuple) -> str:
    """('peers', 1, 'upload_bps') -> 'peers[1].upload_bps'; odd keys are quoted: ['a.b']."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(str(part)):
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader that leaves dates as strings and reads ``1e6`` as a float."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _Walk:
    """One bounded pass over a node graph or a data tree."""

    def __init__(self, source: str | None):
        self.source = source
        self.seen = 0
        self.problems: list[tuple[str, str]] = []

    def fail(self, loc: tuple, message: str) -> ScenarioError:
        return ScenarioError([*self.problems, (format_loc(loc), message)], self.source)

    def count(self, loc: tuple, depth: int) -> None:
        self.seen += 1
        if self.seen > MAX_VALUES:
            raise self.fail(
                (),
                f"the document expands to more than {MAX_VALUES:,} values (each *alias "
                "copies its &anchor, so nested aliases multiply); write the values out",
            )
        if depth > MAX_DEPTH:
            raise self.fail(loc, f"nested more than {MAX_DEPTH} levels deep")

    def nodes(self, node: yaml.Node, loc: tuple, depth: int, path: set[int]) -> None:
        """Check the composed node graph before anything is constructed."""
        self.count(loc, depth)
        if id(node) in path:
            raise self.fail(loc, "an alias refers to a collection that contains it (recursive)")
        if isinstance(node, yaml.ScalarNode):
            return
        path.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.nodes(item, (*loc, i), depth + 1, path)
        else:
            keys: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    raise self.fail(loc, f"line {key.start_mark.line + 1}: a key must be a name")
                here = (*loc, key.value)
                line = key.start_mark.line + 1
                if key.tag != _MERGE:
                    if (key.tag, key.value) in keys:
                        self.problems.append(
                            (
                                format_loc(here),
                                f"duplicate key {key.value!r} (lines {keys[key.tag, key.value]} "
                                f"and {line}); a key appears once in a mapping",
                            )
                        )
                    keys.setdefault((key.tag, key.value), line)
                self.nodes(value, here, depth + 1, path)
        path.discard(id(node))

    def data(self, value: Any, loc: tuple, depth: int, path: set[int]) -> Any:
        """A plain copy of ``value``: dicts with string keys, lists, scalars."""
        self.count(loc, depth)
        if value is None or isinstance(value, bool | str):
            return value
        if isinstance(value, int | float):
            return float(value) if isinstance(value, float) else int(value)
        if hasattr(value, "dtype") and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            return self.data(value.item(), loc, depth, path)  # a numpy scalar
        if isinstance(value, dict | list | tuple):
            if id(value) in path:
                raise self.fail(loc, "a collection contains itself (recursive)")
            path.add(id(value))
            if isinstance(value, dict):
                out: Any = {}
                for k, v in value.items():
                    if not isinstance(k, str):
                        raise self.fail(
                            loc,
                            f"key {k!r} is not a name (YAML reads yes/no/on/off/true/false "
                            "as booleans and digits as numbers; quote the key)",
                        )
                    out[k] = self.data(v, (*loc, k), depth + 1, path)
            else:
                out = [self.data(v, (*loc, i), depth + 1, path) for i, v in enumerate(value)]
            path.discard(id(value))
            return out
        raise self.fail(
            loc,
            f"a {type(value).__name__} is not a scenario value (got {short(value)}); "
            "values are numbers, strings, booleans, lists and mappings (quote dates)",
        )


def short(value: Any) -> str:
    """``repr`` cut to 80 characters."""
    try:
        text = repr(value)
    except Exception:  # a user's object with a broken repr
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def plain(value: Any, loc: tuple = (), source: str | None = None) -> Any:
    """A plain-data deep copy of ``value``, within the value, depth and cycle limits."""
    return _Walk(source).data(value, loc, 0, set())


def parse_yaml(text: str, source: str | None = None, loc: tuple = ()) -> Any:
    """One YAML document as plain data; ``loc`` prefixes error paths (an override's path)."""
    where = format_loc(loc)
    walk = _Walk(source)
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ScenarioError(
                [(where, f"nested more than {MAX_DEPTH} levels deep")], source
            ) from None
        except yaml.YAMLError as exc:
            raise ScenarioError([(where, f"not valid YAML: {exc}")], source) from None
        if node is None:
            return None
        walk.nodes(node, loc, 0, set())
        if walk.problems:
            raise ScenarioError(walk.problems, source)
        walk.seen = 0
        try:
            data = loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise ScenarioError([(where, f"not valid YAML: {exc}")], source) from None
        except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a 5,000-digit int
            raise ScenarioError([(where, f"a value cannot be read: {exc}")], source) from None
    finally:
        loader.dispose()
    return walk.data(data, loc, 0, set())


def read_yaml(path: str | Path, what: str = "scenario") -> Any:
    """A YAML file as plain data: at most ``MAX_FILE_BYTES``, UTF-8, every check above."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ScenarioError([("", f"{what} file {source!r} does not exist")], source)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ScenarioError([("", f"cannot read it: {exc.strerror or exc}")], source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ScenarioError(
            [("", f"the file is larger than {MAX_FILE_BYTES:,} bytes; a {what} file is smaller")],
            source,
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            [
                (
                    "",
                    f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                    "(save the file as UTF-8)",
                )
            ],
            source,
        ) from None
    return parse_yaml(text, source)
