"""A scenario's ``{name: ..., **params}`` block: a registry name plus validated parameters.

Validation happens in the scenario model itself, so an unknown name lists the known ones and a
bad parameter reports its full path (``choker.unchoke_slots``).
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from swarmsim.errors import RegistryError
from swarmsim.registry import Registry


@dataclass(frozen=True)
class PolicySpec:
    kind: str
    name: str
    params: BaseModel

    @classmethod
    def default(cls, registry: Registry, name: str) -> PolicySpec:
        return cls(registry.kind, name, registry.params_of(name)())

    def to_dict(self) -> dict[str, Any]:
        """``{name, **params}`` as JSON data. A parameter left at an infinite default (``max_s``:
        no limit) is left out: JSON has no infinity, and leaving it out reads back the same."""
        data = self.params.model_dump(mode="json")
        for key, field in type(self.params).model_fields.items():
            value = getattr(self.params, key, None)
            if isinstance(value, float) and math.isinf(value) and value == field.default:
                data.pop(field.alias or key, None)
        return {"name": self.name, **data}

    def build(self, registry: Registry) -> Any:
        return registry.build(self.name, self.params)


def _validator(registry: Registry, default_name: str | None):
    def validate(value: Any, info: ValidationInfo) -> PolicySpec:
        if isinstance(value, PolicySpec):
            return value
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise PydanticCustomError(
                "policy_type",
                "expected a plug-in name or a mapping with a 'name' key "
                "(known {kind}s: {known}); got {got}",
                {
                    "kind": registry.kind,
                    "known": ", ".join(registry.names()),
                    "got": repr(value)[:80],
                },
            )
        name = value.get("name", default_name)
        if not isinstance(name, str):
            raise PydanticCustomError(
                "policy_name",
                "missing 'name'; known {kind}s: {known}",
                {"kind": registry.kind, "known": ", ".join(registry.names())},
            )
        try:
            cls = registry.get(name)
        except RegistryError as exc:
            raise PydanticCustomError("policy_unknown", "{detail}", {"detail": str(exc)}) from None
        rest = {k: v for k, v in value.items() if k != "name"}
        model = getattr(cls, "Params", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise PydanticCustomError(
                "policy_unknown",
                "{kind} '{name}': its Params is not a pydantic model (a BaseModel subclass)",
                {"kind": registry.kind, "name": name},
            )
        subs = _strict_problems(model, rest)
        try:
            params = model.model_validate(rest, context=info.context)
        except ValidationError as exc:
            flagged = {sub for sub, _ in subs}
            for e in exc.errors():
                sub = ".".join(str(p) for p in e["loc"])
                if sub in flagged:
                    continue
                if e["type"] == "extra_forbidden":
                    allowed = ", ".join(["name", *cls.Params.model_fields])
                    msg = f"unknown parameter of {registry.kind} {name!r}; allowed: {allowed}"
                elif e["type"] == "missing":
                    msg = f"required parameter of {registry.kind} {name!r} is missing"
                else:
                    msg = f"{e['msg']} (got {repr(e.get('input'))[:80]})"
                subs.append((sub, msg))
            params = None
        except Exception as exc:  # a user's validator may raise anything
            subs.append(("", f"{registry.kind} {name!r}: its Params raised {_what(exc)}"))
            params = None
        if params is not None and not subs:
            subs.extend(_finite_problems(params))
        if params is not None and not subs:
            try:
                json.dumps(PolicySpec(registry.kind, name, params).to_dict(), allow_nan=False)
            except Exception as exc:
                subs.append(("", f"its parameters cannot be stored as JSON: {_what(exc)}"))
        if subs:
            raise PydanticCustomError(
                "policy_params",
                "invalid parameters for {kind} {name}",
                {"kind": registry.kind, "name": name, "subs": subs},
            ) from None
        return PolicySpec(registry.kind, name, params)

    return validate


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


_NUMBERS = (int, float)
_NONE = type(None)


def is_number_type(tp: Any) -> bool:
    """Whether a field's type is a number: ``int`` or ``float``, maybe optional, never bool."""
    if tp in _NUMBERS:
        return True
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        return any(a in _NUMBERS for a in args) and all(a in (*_NUMBERS, _NONE) for a in args)
    return False


def number_problem(tp: Any, value: Any) -> str | None:
    """Why ``value`` is not a number for a field of type ``tp`` (None: no objection).

    Strict where pydantic is lax: YAML's ``true`` is no count, and a quoted ``"5"`` is a
    string (YAML reads ``1e6`` as a number here, see ``swarmsim.safeyaml``)."""
    if not is_number_type(tp):
        return None
    if isinstance(value, bool):
        return "a number is required, not a boolean"
    if isinstance(value, str):
        return "a number is required, not text"
    return None


# ints beyond 2**53 overflow the engine's int64 and float64 arithmetic
MAX_INT = 2**53


def _strict_problems(model: type[BaseModel], raw: dict) -> list[tuple[str, str]]:
    """Booleans or strings given for numbers, and ints too large to compute with."""
    subs = []
    for key, field in model.model_fields.items():
        name = field.alias or key
        if name not in raw:
            continue
        value = raw[name]
        problem = number_problem(field.annotation, value)
        too_big = isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT
        if problem is None and too_big and is_number_type(field.annotation):
            problem = f"at most {MAX_INT:,} in size"
        if problem:
            subs.append((name, f"{problem} (got {repr(value)[:80]})"))
    return subs


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list | tuple | set | frozenset):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


def _finite_problems(params: BaseModel) -> list[tuple[str, str]]:
    """Every float a user set is finite; infinity only where it is the default (no limit)."""
    subs = []
    for key, field in type(params).model_fields.items():
        if key not in params.model_fields_set:
            continue
        value = getattr(params, key, None)
        if not _non_finite(value):
            continue
        default = field.default
        if isinstance(default, float) and math.isinf(default) and value == default:
            continue  # the parameter's own 'no limit'
        subs.append((field.alias or key, f"Input should be a finite number (got {value!r})"))
    return subs


def _schema(registry: Registry) -> dict[str, Any]:
    variants = []
    for name, cls in registry:
        schema = cls.Params.model_json_schema()
        props = {"name": {"const": name}, **schema.get("properties", {})}
        variant = {
            "type": "object",
            "title": name,
            "description": (cls.__doc__ or "").strip().split("\n")[0],
            "properties": props,
            "required": ["name", *schema.get("required", [])],
            "additionalProperties": False,
        }
        if "$defs" in schema:
            variant["$defs"] = schema["$defs"]
        variants.append(variant)
    variants.append(
        {
            "type": "object",
            "title": "user plug-in",
            "properties": {"name": {"type": "string", "pattern": r"^[\w.]+:\w+$"}},
            "required": ["name"],
        }
    )
    return {
        "oneOf": [{"type": "string", "enum": registry.names()}, *variants],
        "description": f"{registry.kind}: {registry.doc}",
    }


def policy_field(registry: Registry, default_name: str | None = None):
    """The annotated type of a scenario field that names a plug-in of ``registry``; a block
    without ``name`` means ``default_name`` (so ``--set choker.unchoke_slots=6`` works)."""
    return Annotated[
        PolicySpec,
        PlainValidator(_validator(registry, default_name)),
        PlainSerializer(lambda spec: spec.to_dict(), return_type=dict),
        WithJsonSchema(_schema(registry)),
    ]


def policy_problems(path: str, err: dict) -> list[tuple[str, str]]:
    """Turn a policy validation error into (path, message) pairs with the parameter path."""
    ctx = err.get("ctx") or {}
    if err["type"] == "policy_params":
        return [(f"{path}.{sub}" if sub else path, msg) for sub, msg in ctx["subs"]]
    return [(path, err["msg"])]
