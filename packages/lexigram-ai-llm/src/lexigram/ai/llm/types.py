"""Provider-neutral value types: messages, tools, requests, completions and stream chunks.

Everything on the hot path is a frozen, slotted dataclass. Plain dict messages are accepted
wherever a ``ChatMessage`` is (``normalize_messages``).
"""

from __future__ import annotations

import base64
import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, TypeAlias

import orjson

from lexigram.ai.llm.exceptions import InvalidInputError, ToolArgumentsError
from lexigram.contracts.ai.thinking import ThinkingBlock, ThinkingConfig, ThinkingResult

__all__ = [
    "CachePointPart",
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "ContentPart",
    "DocumentPart",
    "FinishReason",
    "FunctionCall",
    "ImageDataPart",
    "ImageURLPart",
    "MessageInput",
    "ResponseFormat",
    "Role",
    "StreamChunk",
    "TextPart",
    "ThinkingBlock",
    "ThinkingConfig",
    "ThinkingResult",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
    "Usage",
    "normalize_messages",
]


_C = typing.TypeVar("_C")


def _fast_init(cls: type[_C]) -> type[_C]:
    """``cls`` (a frozen, slotted dataclass) with an ``__init__`` of the same signature that
    sets the fields by plain attribute stores: CPython runs a frozen dataclass's generated
    ``object.__setattr__`` per field through a slow wrapper-descriptor call (about 1,400
    instructions a field under callgrind, against ~120 for a store into a slot).

    The instance is moved to a mutable twin class (same layout, ``object``'s own
    ``__setattr__``) while the fields are stored, then back before ``__post_init__``; a
    subclass that inherits this ``__init__`` is built by the dataclass one, unchanged."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if any(not f.init or f.kw_only for f in fields) or "__slots__" not in cls.__dict__:
        return cls
    original = cls.__init__
    mutable = type(
        f"_Mutable{cls.__name__}",
        (cls,),
        {"__slots__": (), "__setattr__": object.__setattr__, "__delattr__": object.__delattr__},
    )
    namespace: dict[str, Any] = {
        "_cls": cls,
        "_mutable": mutable,
        "_original": original,
        "_set": object.__setattr__,
        "_type": type,
        "_factory_default": _FACTORY_DEFAULT,
    }
    params, body = [], []
    for f in fields:
        name = f.name
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            params.append(f"{name}=_default_{name}")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            params.append(f"{name}=_factory_default")
            body.append(f"    if {name} is _factory_default: {name} = _factory_{name}()")
        else:
            params.append(name)
        body.append(f"    self.{name} = {name}")
    passed = ", ".join(f"{f.name}={f.name}" for f in fields)
    post_init = "    self.__post_init__()\n" if hasattr(cls, "__post_init__") else ""
    source = (
        f"def __init__(self, {', '.join(params)}):\n"
        f"    if _type(self) is not _cls:\n"
        f"        return _original(self, {passed})\n"
        f"    _set(self, '__class__', _mutable)\n" + "\n".join(body) + "\n"
        "    self.__class__ = _cls\n" + post_init
    )
    exec(source, namespace)  # built from the dataclass's own field names
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = original.__doc__
    init.__annotations__ = dict(original.__annotations__)
    setattr(cls, "__init__", init)  # noqa: B010 - mypy keeps the dataclass signature
    _MUTABLE[cls] = mutable
    names = [f.name for f in fields]
    source = (
        f"def build({', '.join(names)}):\n"
        "    self = _new_object(_mutable)\n"
        + "".join(f"    self.{name} = {name}\n" for name in names)
        + "    self.__class__ = _cls\n    return self\n"
    )
    namespace["_new_object"] = _new_object
    exec(source, namespace)  # as above
    _BUILDERS[cls] = namespace["build"]
    return cls


# The mutable twin of each class ``_fast_init`` sped up (for copies built slot by slot).
_MUTABLE: dict[type, type] = {}
# For each: a function taking every field positionally that builds an instance without the
# checks of ``__post_init__``, for internal callers whose values are of the checked shape.
_BUILDERS: dict[type, Callable[..., Any]] = {}
_new_object = object.__new__


class _FactoryDefault:
    """The default of a field with a ``default_factory`` (shown as the dataclass shows it)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY_DEFAULT: Any = _FactoryDefault()


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(StrEnum):
    """Why a model stopped, normalised across providers (the raw value is kept beside it)."""

    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    ERROR = "error"


# -- content parts -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    """Plain text inside a multi-part message."""

    text: str
    type: Literal["text"] = "text"

    def __post_init__(self) -> None:
        if type(self.text) is not str:
            raise _FieldError("TextPart", "text", f"expected a string, got {_kind(self.text)}")


@dataclass(frozen=True, slots=True)
class ImageURLPart:
    """An image the provider fetches (or a ``data:`` URL)."""

    url: str
    detail: str | None = None
    type: Literal["image_url"] = "image_url"

    def __post_init__(self) -> None:
        if type(self.url) is not str:
            raise _FieldError("ImageURLPart", "url", f"expected a string, got {_kind(self.url)}")
        if not (self.detail is None or type(self.detail) is str):
            raise _FieldError(
                "ImageURLPart", "detail", f"expected a string, got {_kind(self.detail)}"
            )


@dataclass(frozen=True, slots=True)
class ImageDataPart:
    """An image sent inline; ``data`` is raw bytes (use ``from_base64`` for encoded text)."""

    data: bytes
    media_type: str = "image/png"
    type: Literal["image"] = "image"

    def __post_init__(self) -> None:
        if type(self.data) is not bytes:
            if not isinstance(self.data, bytes | bytearray | memoryview):
                raise _FieldError(
                    "ImageDataPart", "data", f"expected bytes, got {_kind(self.data)}"
                )
            object.__setattr__(self, "data", bytes(self.data))
        if type(self.media_type) is not str:
            raise _FieldError(
                "ImageDataPart", "media_type", f"expected a string, got {_kind(self.media_type)}"
            )

    @classmethod
    def from_base64(cls, data: str, media_type: str = "image/png") -> ImageDataPart:
        """Build from base64 text."""
        return cls(base64.b64decode(data), media_type)

    @property
    def base64(self) -> str:
        """The bytes as base64 text, as most wire protocols want them."""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_url(self) -> str:
        """A ``data:`` URL for protocols that only take URLs."""
        return f"data:{self.media_type};base64,{self.base64}"


@dataclass(frozen=True, slots=True)
class DocumentPart:
    """A document (for example a PDF) sent inline as bytes, or by URL."""

    data: bytes | None = None
    url: str | None = None
    media_type: str = "application/pdf"
    name: str | None = None
    type: Literal["document"] = "document"

    def __post_init__(self) -> None:
        if self.data is not None and type(self.data) is not bytes:
            if not isinstance(self.data, bytes | bytearray | memoryview):
                raise _FieldError("DocumentPart", "data", f"expected bytes, got {_kind(self.data)}")
            object.__setattr__(self, "data", bytes(self.data))
        if not (self.url is None or type(self.url) is str):
            raise _FieldError("DocumentPart", "url", f"expected a string, got {_kind(self.url)}")

    @property
    def base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data or b"").decode("ascii")


@dataclass(frozen=True, slots=True)
class CachePointPart:
    """Where the provider may cache the prompt up to (``{"type": "cache_point"}``).

    Sent as ``cache_control`` (Anthropic) or ``cachePoint`` (Bedrock) on the content before it;
    ignored by providers without explicit markers. ``ttl`` is ``"5m"`` or ``"1h"``."""

    ttl: str | None = None
    type: Literal["cache_point"] = "cache_point"

    def __post_init__(self) -> None:
        if self.ttl not in (None, "5m", "1h"):
            raise _FieldError("CachePointPart", "ttl", f"expected '5m' or '1h', got {self.ttl!r}")


ContentPart: TypeAlias = TextPart | ImageURLPart | ImageDataPart | DocumentPart | CachePointPart


# -- tools ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """The function a model asked to call, with its arguments as JSON text.

    Arguments given as a JSON value (some providers send an object, not its text) are kept
    as their JSON text, so every consumer reads one form; ``None`` is ``"{}"``."""

    name: str
    arguments: str = "{}"

    def __post_init__(self) -> None:
        if type(self.name) is not str:
            raise TypeError(f"FunctionCall.name: expected a string, got {_kind(self.name)}")
        if type(self.arguments) is not str:
            object.__setattr__(self, "arguments", _arguments_text(self.arguments, "{}"))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call in an assistant message. ``signature`` keeps Gemini's thought signature."""

    id: str
    function: FunctionCall
    type: Literal["function"] = "function"
    signature: str | None = None

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def arguments(self) -> str:
        return self.function.arguments

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments decoded from JSON (``{}`` when empty).

        Raises ``ToolArgumentsError`` (an ``LLMError`` and a ``ValueError``) when they are not
        a JSON object: broken JSON from the model, or an answer cut short."""
        text = self.function.arguments
        if not text.strip():
            return {}
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise self._arguments_error("are not valid JSON") from exc
        if not isinstance(value, dict):
            raise self._arguments_error(f"are JSON {type(value).__name__}, not an object")
        return value

    def _arguments_error(self, problem: str) -> ToolArgumentsError:
        text = self.function.arguments
        shown = text if len(text) <= 80 else text[:80] + "..."
        return ToolArgumentsError(
            f"The arguments of tool call {self.id!r} ({self.name}) {problem}: {shown!r}",
            details={"tool_call_id": self.id, "tool_name": self.name},
        )

    @classmethod
    def create(cls, id: str, name: str, arguments: str | Mapping[str, Any] = "{}") -> ToolCall:
        """Build from a name and arguments given as JSON text or a mapping."""
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
        return cls(id=id, function=FunctionCall(name=name, arguments=text))


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    signature: str | None = None

    def __post_init__(self) -> None:
        # A fragment sent as a JSON value (not text) is kept as its JSON text, as in
        # ``FunctionCall``, so the fragments of one call always join into text.
        if type(self.arguments) is not str:
            object.__setattr__(self, "arguments", _arguments_text(self.arguments, ""))
        if not (self.name is None or type(self.name) is str):
            raise TypeError(f"ToolCallDelta.name: expected a string, got {_kind(self.name)}")


def _kind(value: Any) -> str:
    """How an error message names the type of a wrong value."""
    return "None" if value is None else type(value).__name__


class _FieldError(TypeError):
    """A value object built with a wrong value: ``Owner.field: problem``. Code that builds
    the object from caller input reads ``field`` and ``problem`` to name the place in the
    input instead (``messages[1].content``)."""

    def __init__(self, owner: str, field: str, problem: str) -> None:
        super().__init__(f"{owner}.{field}: {problem}")
        self.field = field
        self.problem = problem


def _arguments_text(value: Any, empty: str) -> str:
    """Tool-call arguments given as a JSON value, as JSON text (``empty`` for ``None``)."""
    if value is None:
        return empty
    if isinstance(value, str):
        return str(value)
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError as exc:
        raise TypeError(
            f"tool-call arguments must be JSON text or a JSON value, got {_kind(value)}"
        ) from exc


_PY_TO_JSON: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}


def _json_type(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _PY_TO_JSON:
        return {"type": _PY_TO_JSON[annotation]}
    if origin in (list, Sequence, tuple) and args:
        return {"type": "array", "items": _json_type(args[0])}
    if origin in (dict, Mapping):
        return {"type": "object"}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _json_type(options[0])
        return {"anyOf": [_json_type(a) for a in options]}
    if isinstance(annotation, type) and hasattr(annotation, "model_json_schema"):
        schema: dict[str, Any] = annotation.model_json_schema()
        return schema
    return {}


_PARAM_DOC = re.compile(r"^\s*(?::param\s+)?(\w+)\s*(?:\([^)]*\))?\s*:\s*(.+)$")


def _param_docs(doc: str) -> dict[str, str]:
    """Parameter descriptions from a Google-style ``Args:`` section or ``:param x:`` lines."""
    found: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in {"args:", "arguments:", "parameters:"}:
            in_args = True
            continue
        if in_args and stripped.endswith(":") and " " not in stripped:
            in_args = False
        if in_args or stripped.startswith(":param"):
            match = _PARAM_DOC.match(stripped)
            if match:
                found[match.group(1)] = match.group(2).strip()
    return found


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool the model may call: a name, a description and a JSON schema for its arguments."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    strict: bool = False

    def __post_init__(self) -> None:
        if type(self.name) is not str or not self.name:
            raise _FieldError(
                "ToolDefinition", "name", f"expected a non-empty string, got {self.name!r}"
            )
        if type(self.description) is not str:
            raise _FieldError(
                "ToolDefinition", "description", f"expected a string, got {_kind(self.description)}"
            )
        if not isinstance(self.parameters, Mapping):
            raise _FieldError(
                "ToolDefinition",
                "parameters",
                f"expected a JSON-schema object (a dict), got {_kind(self.parameters)}",
            )

    @classmethod
    def from_schema(
        cls,
        name: str,
        parameters: Mapping[str, Any],
        description: str = "",
        *,
        strict: bool = False,
    ) -> ToolDefinition:
        """From a JSON-schema dict describing the arguments object."""
        return cls(name=name, description=description, parameters=dict(parameters), strict=strict)

    @classmethod
    def from_model(
        cls, model: type[Any], *, name: str | None = None, description: str | None = None
    ) -> ToolDefinition:
        """From a pydantic model class: its JSON schema becomes the arguments schema."""
        schema = model.model_json_schema()
        doc = description if description is not None else schema.pop("description", "")
        schema.pop("title", None)
        return cls(name=name or model.__name__, description=doc or "", parameters=schema)

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, name: str | None = None) -> ToolDefinition:
        """From a typed Python function; its docstring gives the description and arguments."""
        doc = inspect.getdoc(fn) or ""
        summary = doc.split("\n\n", 1)[0].strip()
        arg_docs = _param_docs(doc)
        hints = typing.get_type_hints(fn)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for pname, param in inspect.signature(fn).parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            schema = _json_type(hints.get(pname, Any))
            if pname in arg_docs:
                schema = {**schema, "description": arg_docs[pname]}
            properties[pname] = schema
            if param.default is inspect.Parameter.empty:
                required.append(pname)
        parameters: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            parameters["required"] = required
        return cls(name=name or fn.__name__, description=summary, parameters=parameters)

    @classmethod
    def coerce(cls, tool: Any) -> ToolDefinition:
        """Accept a ``ToolDefinition``, an OpenAI-style tool dict, a pydantic model or function."""
        if isinstance(tool, ToolDefinition):
            return tool
        if isinstance(tool, Mapping):
            spec = tool.get("function", tool)
            if not isinstance(spec, Mapping):
                raise _FieldError("tool", "function", f"expected a dict, got {_kind(spec)}")
            if "name" not in spec:
                raise _FieldError("tool", "name", "a tool needs a 'name'")
            return cls(
                name=spec["name"],
                description=spec.get("description") or "",
                parameters=spec.get("parameters")
                or spec.get("input_schema")
                or {"type": "object", "properties": {}},
                strict=bool(spec.get("strict", False)),
            )
        if isinstance(tool, type) and hasattr(tool, "model_json_schema"):
            return cls.from_model(tool)
        if callable(tool):
            return cls.from_function(tool)
        raise TypeError(
            f"cannot make a tool definition from {type(tool).__name__}; use a ToolDefinition, "
            "a tool dict, a pydantic model class or a typed function"
        )


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation.

    Assistant messages carry ``tool_calls`` and the provider's ``thinking`` blocks (with
    signatures), so a history can be sent back unchanged. Tool results use role ``tool`` with
    ``tool_call_id`` (and ``name``, which Gemini matches on); ``is_error`` marks a tool result
    that reports a failure (sent as Anthropic's ``is_error``, Bedrock's ``status: "error"`` and
    Gemini's ``error`` response key; the other wires have no flag and carry the text only).
    """

    role: Role
    content: str | tuple[ContentPart, ...] | None = ""
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    thinking: tuple[ThinkingBlock, ...] = ()
    is_error: bool = False

    def __post_init__(self) -> None:
        # One cheap test for the common message (a Role and a string, nothing else); any
        # other shape is checked field by field (a wrong one is a TypeError naming it).
        if (
            type(self.role) is not Role
            or type(self.content) is not str
            or self.tool_calls != ()
            or self.thinking != ()
            or self.name is not None
            or self.tool_call_id is not None
            or self.is_error is not False
        ):
            _check_message(self)

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls(Role.SYSTEM, content)

    @classmethod
    def user(cls, content: str | Sequence[ContentPart]) -> ChatMessage:
        if not isinstance(content, str | list | tuple | Mapping) and isinstance(content, Iterable):
            content = tuple(content)
        # A list becomes a tuple and a wrong value a TypeError naming it (``__post_init__``).
        return cls(Role.USER, content)  # type: ignore[arg-type]

    @classmethod
    def assistant(
        cls,
        content: str | None = "",
        *,
        tool_calls: Sequence[ToolCall] = (),
        thinking: Sequence[ThinkingBlock] = (),
    ) -> ChatMessage:
        return cls(Role.ASSISTANT, content, tool_calls=tuple(tool_calls), thinking=tuple(thinking))

    @classmethod
    def tool(
        cls, content: str, *, tool_call_id: str, name: str | None = None, is_error: bool = False
    ) -> ChatMessage:
        return cls(Role.TOOL, content, name=name, tool_call_id=tool_call_id, is_error=is_error)

    @property
    def text(self) -> str:
        """The text of the message, joining text parts."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """Accept OpenAI-style dicts (``tool_calls`` as OpenAI sends them) and our own.

        A value of the wrong shape raises ``InvalidInputError`` (a ``ValueError``) naming it,
        as ``message.content: expected a string or a list of parts, got int``."""
        return _message_from_mapping(data, "message")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (OpenAI shape plus ``thinking``) that ``from_dict`` reads back."""
        out: dict[str, Any] = {"role": self.role.value}
        if self.content is None or isinstance(self.content, str):
            out["content"] = self.content
        else:
            out["content"] = [_part_to_dict(p) for p in self.content]
        if self.name is not None:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                    **({"signature": tc.signature} if tc.signature else {}),
                }
                for tc in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.is_error:
            out["is_error"] = True
        if self.thinking:
            out["thinking"] = [
                {
                    "content": b.content,
                    "signature": b.signature,
                    "redacted": b.redacted,
                    "data": b.data,
                    **({"origin": b.origin} if b.origin else {}),
                }
                for b in self.thinking
            ]
        return out


MessageInput: TypeAlias = "ChatMessage | Mapping[str, Any]"


def _part_from_any(part: Any, path: str = "part") -> ContentPart:
    """A content part from a part object, a string or a part dict; ``InvalidInputError``
    naming ``path`` (``messages[0].content[1]``) and the field for anything else."""
    if isinstance(part, TextPart | ImageURLPart | ImageDataPart | DocumentPart | CachePointPart):
        return part
    if isinstance(part, str):
        return TextPart(part)
    if not isinstance(part, Mapping):
        raise InvalidInputError.at(
            path, f"expected a string, a part dict or a content part, got {_kind(part)}"
        )
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if type(text) is not str:
            raise InvalidInputError.at(
                f"{path}.text", f"a text part needs 'text' as a string, got {_kind(text)}"
            )
        return TextPart(text)
    if kind == "image_url":
        spec = part.get("image_url")
        if isinstance(spec, str):
            return ImageURLPart(spec)
        if not isinstance(spec, Mapping) or type(spec.get("url")) is not str:
            raise InvalidInputError.at(
                f"{path}.image_url",
                "an image_url part needs 'image_url' as a URL string or {'url': ...}",
            )
        return _built(ImageURLPart, path, spec["url"], spec.get("detail"))
    if kind == "image":
        data = part.get("data")
        media_type = part.get("media_type", "image/png")
        if isinstance(data, bytes | bytearray):
            return _built(ImageDataPart, path, bytes(data), media_type)
        return _built(ImageDataPart, path, _base64_bytes(data, f"{path}.data"), media_type)
    if kind == "document":
        data = part.get("data")
        raw = (
            bytes(data)
            if isinstance(data, bytes | bytearray)
            else (_base64_bytes(data, f"{path}.data") if data else None)
        )
        return _built(
            DocumentPart,
            path,
            raw,
            part.get("url"),
            part.get("media_type", "application/pdf"),
            part.get("name"),
        )
    if kind == "cache_point":
        return _built(CachePointPart, path, part.get("ttl"))
    raise InvalidInputError.at(f"{path}.type", f"unknown content part type {kind!r}")


def _base64_bytes(data: Any, path: str) -> bytes:
    if not isinstance(data, str):
        raise InvalidInputError.at(path, f"expected bytes or base64 text, got {_kind(data)}")
    try:
        return base64.b64decode(data)
    except ValueError as exc:  # binascii.Error
        raise InvalidInputError.at(path, f"not valid base64 ({exc})") from None


_T = typing.TypeVar("_T")


def _built(kind: Callable[..., _T], path: str, *args: Any, **kwargs: Any) -> _T:
    """``kind(*args, **kwargs)``, a ``_FieldError`` of its checks re-raised as
    ``InvalidInputError`` at ``path.field``."""
    try:
        return kind(*args, **kwargs)
    except _FieldError as exc:
        raise InvalidInputError.at(f"{path}.{exc.field}", exc.problem) from None


def _part_to_dict(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImageURLPart):
        spec: dict[str, Any] = {"url": part.url}
        if part.detail:
            spec["detail"] = part.detail
        return {"type": "image_url", "image_url": spec}
    if isinstance(part, ImageDataPart):
        return {"type": "image", "data": part.base64, "media_type": part.media_type}
    if isinstance(part, CachePointPart):
        return (
            {"type": "cache_point"}
            if part.ttl is None
            else {"type": "cache_point", "ttl": part.ttl}
        )
    return {
        "type": "document",
        "data": part.base64 if part.data is not None else None,
        "url": part.url,
        "media_type": part.media_type,
        "name": part.name,
    }


def _tool_call_from_any(tc: Any, path: str = "tool_call") -> ToolCall:
    if isinstance(tc, ToolCall):
        return tc
    if not isinstance(tc, Mapping):
        raise InvalidInputError.at(path, f"expected a ToolCall or a dict, got {_kind(tc)}")
    fn = tc.get("function", tc)
    if not isinstance(fn, Mapping):
        raise InvalidInputError.at(f"{path}.function", f"expected a dict, got {_kind(fn)}")
    name = fn.get("name")
    if type(name) is not str or not name:
        raise InvalidInputError.at(
            f"{path}.function.name", f"a tool call needs a name, got {name!r}"
        )
    signature = tc.get("signature")
    if not (signature is None or type(signature) is str):
        raise InvalidInputError.at(
            f"{path}.signature", f"expected a string, got {_kind(signature)}"
        )
    try:
        function = FunctionCall(name=name, arguments=fn.get("arguments", "{}"))
    except TypeError as exc:
        raise InvalidInputError.at(f"{path}.function.arguments", str(exc)) from None
    return ToolCall(id=str(tc.get("id", "")), function=function, signature=signature)


def _thinking_from_any(block: Any, path: str = "thinking") -> ThinkingBlock:
    if isinstance(block, ThinkingBlock):
        return block
    if not isinstance(block, Mapping):
        raise InvalidInputError.at(path, f"expected a ThinkingBlock or a dict, got {_kind(block)}")
    for key in ("content", "signature", "data"):
        value = block.get(key)
        if not (value is None or isinstance(value, str)):
            raise InvalidInputError.at(f"{path}.{key}", f"expected a string, got {_kind(value)}")
    return ThinkingBlock(
        content=block.get("content", "") or "",
        signature=block.get("signature"),
        redacted=bool(block.get("redacted", False)),
        data=block.get("data"),
        origin=block.get("origin") if isinstance(block.get("origin"), str) else None,
    )


_ROLES: dict[Any, Role] = {role.value: role for role in Role}
_ROLE_NAMES = ", ".join(role.value for role in Role)
_PART_TYPES = (TextPart, ImageURLPart, ImageDataPart, DocumentPart, CachePointPart)


def _unknown_role(role: Any) -> str:
    if isinstance(role, str):
        return f"unknown message role {role!r}; use one of {_ROLE_NAMES}"
    return f"expected a role name ({_ROLE_NAMES}), got {_kind(role)}"


def _check_message(message: ChatMessage) -> None:
    """The field-by-field check of a ``ChatMessage`` of an uncommon shape: a role given as
    text becomes a ``Role``, lists become tuples, a wrong value is a ``TypeError`` naming it."""
    role = message.role
    if type(role) is not Role:
        known = _ROLES.get(role) if isinstance(role, str) else None
        if known is None:
            raise _FieldError("ChatMessage", "role", _unknown_role(role))
        object.__setattr__(message, "role", known)
    content = message.content
    if content is not None and not isinstance(content, str):
        if not isinstance(content, list | tuple):
            raise _FieldError(
                "ChatMessage",
                "content",
                f"expected a string, a list of content parts or None, got {_kind(content)}",
            )
        for index, part in enumerate(content):
            if not isinstance(part, _PART_TYPES):
                raise _FieldError(
                    "ChatMessage",
                    f"content[{index}]",
                    f"expected a content part (TextPart, ImageURLPart, ImageDataPart, "
                    f"DocumentPart), got {_kind(part)}; ChatMessage.from_dict reads part dicts",
                )
        object.__setattr__(message, "content", tuple(content))
    for name in ("name", "tool_call_id"):
        value = getattr(message, name)
        if not (value is None or isinstance(value, str)):
            raise _FieldError("ChatMessage", name, f"expected a string, got {_kind(value)}")
    for name, item_type in (("tool_calls", ToolCall), ("thinking", ThinkingBlock)):
        items = getattr(message, name)
        if not isinstance(items, list | tuple):
            raise _FieldError(
                "ChatMessage", name, f"expected a tuple of {item_type.__name__}, got {_kind(items)}"
            )
        for index, item in enumerate(items):
            if not isinstance(item, item_type):
                raise _FieldError(
                    "ChatMessage",
                    f"{name}[{index}]",
                    f"expected a {item_type.__name__}, got {_kind(item)}",
                )
        object.__setattr__(message, name, tuple(items))
    if type(message.is_error) is not bool:
        raise _FieldError(
            "ChatMessage", "is_error", f"expected a bool, got {_kind(message.is_error)}"
        )
    if message.is_error and message.role is not Role.TOOL:
        raise _FieldError(
            "ChatMessage",
            "is_error",
            f"only a tool result can be an error, not a {message.role.value} message",
        )


def _listed(data: Mapping[str, Any], key: str, path: str) -> Sequence[Any]:
    value = data.get(key) or ()
    if not isinstance(value, list | tuple):
        raise InvalidInputError.at(f"{path}.{key}", f"expected a list, got {_kind(value)}")
    return value


def _message_from_mapping(data: Mapping[str, Any], path: str) -> ChatMessage:
    """A message from a dict, every field checked; ``InvalidInputError`` naming ``path`` and
    the field otherwise."""
    if "role" not in data:
        raise InvalidInputError.at(
            f"{path}.role", f"message has no 'role' (keys: {sorted(map(str, data))})"
        )
    raw_role = data["role"]
    role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
    if role is None:
        raise InvalidInputError.at(f"{path}.role", _unknown_role(raw_role))
    content = data.get("content", "")
    if content is not None and not isinstance(content, str):
        if not isinstance(content, list | tuple):
            raise InvalidInputError.at(
                f"{path}.content", f"expected a string or a list of parts, got {_kind(content)}"
            )
        content = tuple(
            _part_from_any(part, f"{path}.content[{index}]") for index, part in enumerate(content)
        )
    tool_calls = tuple(
        _tool_call_from_any(call, f"{path}.tool_calls[{index}]")
        for index, call in enumerate(_listed(data, "tool_calls", path))
    )
    thinking = tuple(
        _thinking_from_any(block, f"{path}.thinking[{index}]")
        for index, block in enumerate(_listed(data, "thinking", path))
    )
    return _built(
        ChatMessage,
        path,
        role=role,
        content=content,
        name=data.get("name"),
        tool_calls=tool_calls,
        tool_call_id=data.get("tool_call_id"),
        thinking=thinking,
        is_error=data.get("is_error", False),
    )


def normalize_messages(messages: Iterable[Any]) -> tuple[ChatMessage, ...]:
    """Turn dicts and ``ChatMessage`` objects (or anything with role/content) into messages.

    Anything else raises ``InvalidInputError`` (an ``InvalidRequestError`` and a
    ``ValueError``) naming the place: ``messages[1].content: expected a string or a list of
    parts, got int``."""
    if (
        type(messages) is not list
        and type(messages) is not tuple
        and (
            messages is None
            or isinstance(messages, str | bytes | Mapping)
            or not isinstance(messages, Iterable)
        )
    ):
        raise InvalidInputError.at(
            "messages",
            f"expected a list of messages, got {_kind(messages)} "
            "(for one message: [{'role': 'user', 'content': '...'}])",
        )
    out: list[ChatMessage] = []
    for message in messages:
        if type(message) is dict and len(message) == 2:
            # The common case on the hot path: {"role": "...", "content": "text"}.
            content = message.get("content")
            if type(content) is str:
                raw_role = message.get("role")
                role = _ROLES.get(raw_role) if type(raw_role) is str else None
                if role is not None:  # of the shape ``ChatMessage`` checks: built as is
                    out.append(raw_message(role, content, None, (), None, (), False))
                    continue
        if isinstance(message, ChatMessage):
            out.append(message)  # checked when it was built
            continue
        path = f"messages[{len(out)}]"
        if isinstance(message, Mapping):
            out.append(_message_from_mapping(message, path))
        elif hasattr(message, "role") and hasattr(message, "content"):
            role_value = getattr(message.role, "value", message.role)
            out.append(
                _message_from_mapping({"role": role_value, "content": message.content}, path)
            )
        else:
            raise InvalidInputError.at(
                path, f"expected a dict or a ChatMessage, got {_kind(message)}"
            )
    return tuple(out)


def normalize_tools(tools: Any) -> tuple[ToolDefinition, ...]:
    """The tools of a call (``None``, or a list of anything ``ToolDefinition.coerce`` takes);
    ``InvalidInputError`` naming ``tools[i]`` (and its field) otherwise."""
    if not tools:
        return ()
    if isinstance(tools, str | bytes | Mapping | ToolDefinition) or not isinstance(tools, Iterable):
        raise InvalidInputError.at("tools", f"expected a list of tools, got {_kind(tools)}")
    out: list[ToolDefinition] = []
    for index, tool in enumerate(tools):
        try:
            out.append(ToolDefinition.coerce(tool))
        except _FieldError as exc:
            raise InvalidInputError.at(f"tools[{index}].{exc.field}", exc.problem) from None
        except (TypeError, ValueError, NameError) as exc:  # NameError: unresolvable hints
            raise InvalidInputError.at(f"tools[{index}]", str(exc)) from None
    return tuple(out)


def normalize_stop(stop: Any) -> tuple[str, ...]:
    """Stop sequences: ``None``, one string (one sequence, never split into characters) or a
    list of strings."""
    if stop is None:
        return ()
    if type(stop) is list or type(stop) is tuple:  # the common case, without ABC checks
        for sequence in stop:
            if type(sequence) is not str or not sequence:
                break
        else:
            return tuple(stop)
    if isinstance(stop, str):
        return (stop,) if stop else ()
    if isinstance(stop, bytes | Mapping) or not isinstance(stop, Iterable):
        raise InvalidInputError.at(
            "stop_sequences", f"expected a string or a list of strings, got {_kind(stop)}"
        )
    out = tuple(stop)
    for index, sequence in enumerate(out):
        if not isinstance(sequence, str) or not sequence:
            raise InvalidInputError.at(
                f"stop_sequences[{index}]", f"expected a non-empty string, got {sequence!r}"
            )
    return out


def _number_in(name: str, value: Any, low: float, high: float) -> None:
    if (type(value) is float or type(value) is int) and low <= value <= high:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError.at(name, f"expected a number, got {_kind(value)}")
    if not low <= value <= high:  # also refuses NaN
        raise InvalidInputError.at(name, f"must be between {low:g} and {high:g}, got {value!r}")


def _whole_number(name: str, value: Any, low: int | None) -> None:
    if type(value) is int and (low is None or value >= low):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError.at(name, f"expected an integer, got {_kind(value)}")
    if low is not None and value < low:
        raise InvalidInputError.at(name, f"must be at least {low}, got {value}")


def check_call_options(
    model: Any = None,
    temperature: Any = None,
    max_tokens: Any = None,
    options: Mapping[str, Any] | None = None,
) -> None:
    """Refuse a call's options before any network call, with ``InvalidInputError`` naming
    the option: ``model`` a string, ``temperature`` 0–2, ``max_tokens`` at least 1, ``top_p``
    0–1, ``seed`` an integer, ``tool_choice`` a string or a dict. ``None`` means unset."""
    if model is not None and type(model) is not str and not isinstance(model, str):
        raise InvalidInputError.at("model", f"expected a string, got {_kind(model)}")
    if temperature is not None:
        _number_in("temperature", temperature, 0.0, 2.0)
    if max_tokens is not None:
        _whole_number("max_tokens", max_tokens, 1)
    if options:
        top_p = options.get("top_p")
        if top_p is not None:
            _number_in("top_p", top_p, 0.0, 1.0)
        seed = options.get("seed")
        if seed is not None:
            _whole_number("seed", seed, None)
        choice = options.get("tool_choice")
        if not (choice is None or isinstance(choice, str | Mapping)):
            raise InvalidInputError.at(
                "tool_choice", f"expected a string or a dict, got {_kind(choice)}"
            )


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured-output request: free text, any JSON object, or JSON matching ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool = True

    @classmethod
    def json_schema(
        cls, schema: Mapping[str, Any], name: str = "response", *, strict: bool = True
    ) -> ResponseFormat:
        return cls("json_schema", dict(schema), name, strict)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """Everything a provider needs for one call, provider-neutral and frozen."""

    messages: tuple[ChatMessage, ...]
    model: str
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    response_format: ResponseFormat | None = None
    thinking: ThinkingConfig | None = None
    seed: int | None = None
    # Ask the provider to cache the prompt prefix ("auto": system, tools, conversation so far;
    # ttl "5m"/"1h"). Not in equality nor the response-cache key: it changes the price only.
    prompt_cache: str | None = field(default=None, compare=False)
    prompt_cache_ttl: str | None = field(default=None, compare=False)
    # Not in the repr: extra may carry headers such as Authorization.
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    # Bounds of this call on the transport, never sent to the provider and left out of
    # equality and the cache key: ``timeout`` replaces ``ClientConfig.timeout``; ``deadline``
    # is absolute (``time.monotonic()`` clock) and ends the call, retries and sleeps included.
    timeout: float | None = field(default=None, compare=False)
    deadline: float | None = field(default=None, compare=False)

    def with_messages(self, messages: Sequence[ChatMessage]) -> ChatRequest:
        return replace(self, messages=tuple(messages))


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage. ``cached_tokens`` are prompt tokens served from the provider's cache;
    ``cache_creation_tokens`` were written to it; ``reasoning_tokens`` are part of completion."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0

    @classmethod
    def of(
        cls,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        *,
        total_tokens: int | None = None,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        cache_creation_tokens: int = 0,
    ) -> Usage:
        """Build, computing ``total_tokens`` when the provider did not send it."""
        total = prompt_tokens + completion_tokens if total_tokens is None else total_tokens
        return cls(
            prompt_tokens,
            completion_tokens,
            total,
            cached_tokens,
            reasoning_tokens,
            cache_creation_tokens,
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
        )


EMPTY_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer, the same shape whatever the provider.

    ``finish_reason`` is normalised (``stop``, ``length``, ``tool_calls``, ``content_filter``);
    ``raw_finish_reason`` is what the provider said. ``attempts`` records every provider tried
    when a router produced the answer.
    """

    content: str
    model: str
    provider: str
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = EMPTY_USAGE
    thinking: ThinkingResult | None = None
    cost: float | None = None
    id: str | None = None
    request_id: str | None = None
    cached: bool = False
    attempts: tuple[Mapping[str, Any], ...] = ()

    def with_cost(self, cost: float | None) -> Completion:
        """A copy with ``cost`` set (a ``Completion``, as ``Completion(...)`` with every other
        field of this one would build it; stored straight into a new instance's slots)."""
        new: Any = _new_object(_MutableCompletion)
        new.content = self.content
        new.model = self.model
        new.provider = self.provider
        new.finish_reason = self.finish_reason
        new.raw_finish_reason = self.raw_finish_reason
        new.tool_calls = self.tool_calls
        new.usage = self.usage
        new.thinking = self.thinking
        new.cost = cost
        new.id = self.id
        new.request_id = self.request_id
        new.cached = self.cached
        new.attempts = self.attempts
        new.__class__ = Completion
        completion: Completion = new
        return completion

    def to_message(self) -> ChatMessage:
        """The assistant message to append to a history (tool calls and thinking kept)."""
        return ChatMessage(
            Role.ASSISTANT,
            self.content,
            tool_calls=self.tool_calls,
            thinking=self.thinking.blocks if self.thinking else (),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that ``from_dict`` reads back (used by caches)."""
        thinking = None
        if self.thinking is not None:
            thinking = {
                "content": self.thinking.content,
                "signature": self.thinking.signature,
                "tokens": self.thinking.tokens,
                "blocks": [
                    [b.content, b.signature, b.redacted, b.data] for b in self.thinking.blocks
                ],
                # Beside the blocks, not in them: entries stay readable by older versions.
                "origins": [b.origin for b in self.thinking.blocks],
            }
        return {
            "content": self.content,
            "model": self.model,
            "provider": self.provider,
            "finish_reason": self.finish_reason,
            "raw_finish_reason": self.raw_finish_reason,
            "tool_calls": [[tc.id, tc.name, tc.arguments, tc.signature] for tc in self.tool_calls],
            "usage": [
                self.usage.prompt_tokens,
                self.usage.completion_tokens,
                self.usage.total_tokens,
                self.usage.cached_tokens,
                self.usage.reasoning_tokens,
                self.usage.cache_creation_tokens,
            ],
            "thinking": thinking,
            "cost": self.cost,
            "id": self.id,
            "request_id": self.request_id,
            "attempts": [dict(a) for a in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Completion:
        """Inverse of ``to_dict``."""
        thinking = None
        if data.get("thinking") is not None:
            t = data["thinking"]
            origins = t.get("origins") or ()  # absent in entries written before origins
            thinking = ThinkingResult(
                content=t["content"],
                signature=t["signature"],
                tokens=t["tokens"],
                blocks=tuple(
                    ThinkingBlock(b[0], b[1], b[2], b[3], origins[i] if i < len(origins) else None)
                    for i, b in enumerate(t["blocks"])
                ),
            )
        return cls(
            content=data["content"],
            model=data["model"],
            provider=data["provider"],
            finish_reason=data.get("finish_reason"),
            raw_finish_reason=data.get("raw_finish_reason"),
            tool_calls=tuple(
                ToolCall(id=i, function=FunctionCall(n, a), signature=s)
                for i, n, a, s in data.get("tool_calls", ())
            ),
            usage=Usage(*data.get("usage", ())),
            thinking=thinking,
            cost=data.get("cost"),
            id=data.get("id"),
            request_id=data.get("request_id"),
            attempts=tuple(data.get("attempts", ())),
        )


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One piece of a streamed answer.

    ``thinking_block`` carries a finished reasoning block (with its signature) when the
    provider closes one; ``usage`` and ``finish_reason`` come on the last chunks.
    """

    delta: str = ""
    thinking_delta: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    raw_finish_reason: str | None = None
    usage: Usage | None = None
    thinking_block: ThinkingBlock | None = None
    model: str | None = None
    id: str | None = None

    @property
    def content(self) -> str:
        """The text delta: ``delta`` under the name the original library documented."""
        return self.delta


for _hot in (ChatMessage, ChatRequest, Usage, Completion, StreamChunk, ToolCall, FunctionCall):
    _fast_init(_hot)
del _hot
_MutableCompletion = _MUTABLE[Completion]
# Unchecked builders (every field positional, in declaration order; see ``_fast_init``).
raw_message: Callable[
    [Role, Any, str | None, tuple[ToolCall, ...], str | None, tuple[ThinkingBlock, ...], bool],
    ChatMessage,
] = _BUILDERS[ChatMessage]
raw_request: Callable[..., ChatRequest] = _BUILDERS[ChatRequest]
raw_usage: Callable[[int, int, int, int, int, int], Usage] = _BUILDERS[Usage]
raw_completion: Callable[..., Completion] = _BUILDERS[Completion]
raw_chunk: Callable[..., StreamChunk] = _BUILDERS[StreamChunk]
