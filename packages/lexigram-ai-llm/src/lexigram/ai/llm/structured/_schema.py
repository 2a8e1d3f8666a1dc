"""JSON Schema helpers: validation (jsonschema), OpenAI strict-mode compatibility, the relaxed
schema partial objects are checked against, and the prompt text that describes a schema."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import MissingExtraError

__all__ = [
    "Validator",
    "compile_validator",
    "pydantic_problem",
    "relaxed_schema",
    "schema_instructions",
    "schema_name",
    "strict_schema",
    "wrap_root",
]

# Keywords OpenAI's strict mode rejects; a schema using any of them is sent non-strict.
_NOT_STRICT = frozenset(
    {
        "allOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        "prefixItems",
        "minLength",
        "maxLength",
    }
)
_SUBSCHEMA_MAPS = ("properties", "$defs", "definitions")
_SUBSCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")

# A validation function returns the list of problems (empty when valid).
Validator = Callable[[Any], list[str]]


def schema_name(name: str | None) -> str:
    """A name OpenAI accepts for a schema (``^[a-zA-Z0-9_-]{1,64}$``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name or "response")[:64]
    return cleaned or "response"


def compile_validator(schema: Mapping[str, Any]) -> Validator:
    """A validator for ``schema`` (checked first: an invalid schema raises ``ValueError``)."""
    try:
        import jsonschema
        from jsonschema.exceptions import SchemaError
    except ImportError:
        raise MissingExtraError(
            "Validating against a JSON schema needs jsonschema: pip install "
            "'lexigram-ai-llm[structured]'"
        ) from None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(dict(schema))
    except SchemaError as exc:
        raise ValueError(f"the schema is not a valid JSON Schema: {exc.message}") from None
    validator = cls(dict(schema))

    def validate(value: Any) -> list[str]:
        problems = []
        for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            problems.append(_problem(error.absolute_path, error.message))
            if len(problems) >= 8:
                break
        return problems

    return validate


def pydantic_problem(error: Mapping[str, Any]) -> str:
    """One entry of a pydantic ``ValidationError.errors()``, worded like a schema problem."""
    return _problem(error.get("loc", ()), error.get("msg", "invalid"))


def _problem(path: Iterable[Any], message: str) -> str:
    """``$.items[0].name: message``: one problem, as reported and fed back to the model."""
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) + f": {message}"


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of ``schema`` OpenAI's strict mode accepts with the same meaning, or ``None``.

    Objects get ``additionalProperties: false`` where it is not set (the model then simply
    adds no extra keys, which the original schema allows). A schema with an optional property,
    explicit additional properties, a non-object root or an unsupported keyword has no strict
    twin: making optional fields required would make the model invent values for them.
    """
    if schema.get("type") != "object":
        return None
    out = copy.deepcopy(dict(schema))
    return out if _make_strict(out) else None


def _make_strict(node: Any) -> bool:
    if isinstance(node, list):
        return all(_make_strict(item) for item in node)
    if not isinstance(node, dict):
        return True
    if _NOT_STRICT & node.keys():
        return False
    node.pop("default", None)
    is_object = node.get("type") == "object" or "properties" in node
    if is_object:
        properties = node.get("properties") or {}
        if set(node.get("required") or ()) != set(properties):
            return False
        extra = node.get("additionalProperties", False)
        if extra is not False:
            return False
        node["additionalProperties"] = False
        node.setdefault("properties", {})
        node["required"] = list(properties)
    for key in _SUBSCHEMA_MAPS:
        children = node.get(key)
        if isinstance(children, dict) and not all(_make_strict(c) for c in children.values()):
            return False
    for key in ("anyOf", "items"):
        child = node.get(key)
        if child is not None and not _make_strict(child):
            return False
    return True


def relaxed_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without the constraints a prefix of a valid value may break (required keys,
    minimum sizes), for checking partial objects while they stream."""
    out = copy.deepcopy(dict(schema))
    _relax(out)
    return out


def _relax(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _relax(item)
        return
    if not isinstance(node, dict):
        return
    for key in ("required", "minItems", "minProperties", "minLength", "minContains"):
        node.pop(key, None)
    for key in _SUBSCHEMA_MAPS:
        children = node.get(key)
        if isinstance(children, dict):
            for child in children.values():
                _relax(child)
    for key in (*_SUBSCHEMA_LISTS, *_SUBSCHEMA_ONE):
        if key in node:
            _relax(node[key])


def wrap_root(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An object schema holding ``schema`` under ``value`` (native JSON modes want an object
    at the root); the answer is unwrapped after parsing."""
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {"value": dict(schema)},
        "required": ["value"],
        "additionalProperties": False,
    }
    defs = schema.get("$defs")
    if isinstance(defs, Mapping):
        inner = dict(schema)
        inner.pop("$defs")
        wrapped["properties"]["value"] = inner
        wrapped["$defs"] = dict(defs)
    return wrapped


def schema_instructions(schema: Mapping[str, Any] | None) -> str:
    """The instruction that asks for JSON (matching ``schema`` when given)."""
    if schema is None:
        return "Respond with a single JSON object and nothing else: no explanation, no code fences."
    text = orjson.dumps(dict(schema)).decode()
    return (
        "Respond with a single JSON value that conforms to the JSON Schema below, and nothing "
        "else: no explanation, no code fences. Fill it from the user's text.\n"
        f"JSON Schema: {text}"
    )
