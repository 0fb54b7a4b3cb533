"""A scenario's ``{name: ..., **params}`` block: a registry name plus validated parameters.

Validation happens in the scenario model itself, so an unknown name lists the known ones and a
bad parameter reports its full path (``choker.unchoke_slots``).
"""

from __future__ import annotations

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
        return {"name": self.name, **self.params.model_dump(mode="json")}

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
        try:
            params = cls.Params.model_validate(rest, context=info.context)
        except ValidationError as exc:
            subs = []
            for e in exc.errors():
                sub = ".".join(str(p) for p in e["loc"])
                if e["type"] == "extra_forbidden":
                    allowed = ", ".join(["name", *cls.Params.model_fields])
                    msg = f"unknown parameter of {registry.kind} {name!r}; allowed: {allowed}"
                elif e["type"] == "missing":
                    msg = f"required parameter of {registry.kind} {name!r} is missing"
                else:
                    msg = f"{e['msg']} (got {repr(e.get('input'))[:80]})"
                subs.append((sub, msg))
            raise PydanticCustomError(
                "policy_params",
                "invalid parameters for {kind} {name}",
                {"kind": registry.kind, "name": name, "subs": subs},
            ) from None
        return PolicySpec(registry.kind, name, params)

    return validate


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
