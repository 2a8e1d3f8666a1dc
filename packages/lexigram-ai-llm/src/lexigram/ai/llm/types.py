"""Provider-neutral value types: messages, tools, requests, completions and stream chunks.

Everything on the hot path is a frozen, slotted dataclass. Plain dict messages are accepted
wherever a ``ChatMessage`` is (``normalize_messages``).
"""

from __future__ import annotations

import base64
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal, TypeAlias

import orjson

from lexigram.ai.llm.exceptions import ToolArgumentsError
from lexigram.contracts.ai.thinking import ThinkingBlock, ThinkingConfig, ThinkingResult

__all__ = [
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


@dataclass(frozen=True, slots=True)
class ImageURLPart:
    """An image the provider fetches (or a ``data:`` URL)."""

    url: str
    detail: str | None = None
    type: Literal["image_url"] = "image_url"


@dataclass(frozen=True, slots=True)
class ImageDataPart:
    """An image sent inline; ``data`` is raw bytes (use ``from_base64`` for encoded text)."""

    data: bytes
    media_type: str = "image/png"
    type: Literal["image"] = "image"

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

    @property
    def base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data or b"").decode("ascii")


ContentPart: TypeAlias = TextPart | ImageURLPart | ImageDataPart | DocumentPart


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
            return cls(
                name=spec["name"],
                description=spec.get("description", ""),
                parameters=spec.get("parameters")
                or spec.get("input_schema")
                or {"type": "object", "properties": {}},
                strict=bool(spec.get("strict", False)),
            )
        if isinstance(tool, type) and hasattr(tool, "model_json_schema"):
            return cls.from_model(tool)
        if callable(tool):
            return cls.from_function(tool)
        raise TypeError(f"cannot make a tool definition from {type(tool).__name__}")


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a conversation.

    Assistant messages carry ``tool_calls`` and the provider's ``thinking`` blocks (with
    signatures), so a history can be sent back unchanged. Tool results use role ``tool`` with
    ``tool_call_id`` (and ``name``, which Gemini matches on).
    """

    role: Role
    content: str | tuple[ContentPart, ...] | None = ""
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    thinking: tuple[ThinkingBlock, ...] = ()

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        return cls(Role.SYSTEM, content)

    @classmethod
    def user(cls, content: str | Sequence[ContentPart]) -> ChatMessage:
        return cls(Role.USER, content if isinstance(content, str) else tuple(content))

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
    def tool(cls, content: str, *, tool_call_id: str, name: str | None = None) -> ChatMessage:
        return cls(Role.TOOL, content, name=name, tool_call_id=tool_call_id)

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
        """Accept OpenAI-style dicts (``tool_calls`` as OpenAI sends them) and our own."""
        try:
            role = Role(data["role"])
        except KeyError:
            raise ValueError(f"message has no 'role': {sorted(data)}") from None
        except ValueError:
            raise ValueError(
                f"unknown message role {data['role']!r}; use one of "
                f"{', '.join(r.value for r in Role)}"
            ) from None
        content = data.get("content", "")
        if content is not None and not isinstance(content, str):
            content = tuple(_part_from_any(p) for p in content)
        tool_calls = tuple(_tool_call_from_any(tc) for tc in data.get("tool_calls") or ())
        thinking = tuple(_thinking_from_any(t) for t in data.get("thinking") or ())
        return cls(
            role=role,
            content=content,
            name=data.get("name"),
            tool_calls=tool_calls,
            tool_call_id=data.get("tool_call_id"),
            thinking=thinking,
        )

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


def _part_from_any(part: Any) -> ContentPart:
    if isinstance(part, TextPart | ImageURLPart | ImageDataPart | DocumentPart):
        return part
    if isinstance(part, str):
        return TextPart(part)
    if not isinstance(part, Mapping):
        raise TypeError(f"unsupported content part {type(part).__name__}")
    kind = part.get("type")
    if kind == "text":
        return TextPart(part["text"])
    if kind == "image_url":
        spec = part["image_url"]
        if isinstance(spec, str):
            return ImageURLPart(spec)
        return ImageURLPart(spec["url"], spec.get("detail"))
    if kind == "image":
        data = part.get("data")
        if isinstance(data, bytes):
            return ImageDataPart(data, part.get("media_type", "image/png"))
        return ImageDataPart.from_base64(str(data), part.get("media_type", "image/png"))
    if kind == "document":
        data = part.get("data")
        raw = data if isinstance(data, bytes) else (base64.b64decode(data) if data else None)
        return DocumentPart(
            data=raw,
            url=part.get("url"),
            media_type=part.get("media_type", "application/pdf"),
            name=part.get("name"),
        )
    raise ValueError(f"unknown content part type {kind!r}")


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
    return {
        "type": "document",
        "data": part.base64 if part.data is not None else None,
        "url": part.url,
        "media_type": part.media_type,
        "name": part.name,
    }


def _tool_call_from_any(tc: Any) -> ToolCall:
    if isinstance(tc, ToolCall):
        return tc
    fn = tc.get("function", tc)
    args = fn.get("arguments", "{}")
    if not isinstance(args, str):
        args = orjson.dumps(args).decode()
    return ToolCall(
        id=str(tc.get("id", "")),
        function=FunctionCall(name=fn["name"], arguments=args),
        signature=tc.get("signature"),
    )


def _thinking_from_any(block: Any) -> ThinkingBlock:
    if isinstance(block, ThinkingBlock):
        return block
    return ThinkingBlock(
        content=block.get("content", "") or "",
        signature=block.get("signature"),
        redacted=bool(block.get("redacted", False)),
        data=block.get("data"),
        origin=block.get("origin") if isinstance(block.get("origin"), str) else None,
    )


_ROLES: dict[Any, Role] = {role.value: role for role in Role}


def normalize_messages(messages: Iterable[Any]) -> tuple[ChatMessage, ...]:
    """Turn dicts and ``ChatMessage`` objects (or anything with role/content) into messages."""
    out: list[ChatMessage] = []
    for message in messages:
        if isinstance(message, ChatMessage):
            out.append(message)
            continue
        if type(message) is dict and len(message) == 2:
            # The common case on the hot path: {"role": "...", "content": "text"}.
            role = _ROLES.get(message.get("role"))
            content = message.get("content")
            if role is not None and type(content) is str:
                out.append(ChatMessage(role, content))
                continue
        if isinstance(message, Mapping):
            out.append(ChatMessage.from_dict(message))
        elif hasattr(message, "role") and hasattr(message, "content"):
            out.append(
                ChatMessage.from_dict({"role": str(message.role), "content": message.content})
            )
        else:
            raise TypeError(
                f"a message must be a dict or ChatMessage, not {type(message).__name__}"
            )
    return tuple(out)


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
        """A copy with ``cost`` set (a direct constructor call: cheaper than ``replace``)."""
        return Completion(
            self.content,
            self.model,
            self.provider,
            self.finish_reason,
            self.raw_finish_reason,
            self.tool_calls,
            self.usage,
            self.thinking,
            cost,
            self.id,
            self.request_id,
            self.cached,
            self.attempts,
        )

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
