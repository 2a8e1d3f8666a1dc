"""``JSONExtractor`` and ``StructuredExtractor``: a JSON value (or a pydantic model) out of a
model's answer, validated, with the validation error fed back on failure.

How the model is asked, best first:

1. **native** — ``response_format=ResponseFormat.json_schema(...)`` when the provider enforces
   a schema (capability ``json_schema``: OpenAI strict structured outputs, Anthropic forced tool
   use, Gemini response schema, Ollama ``format``, llama.cpp grammars, ...). OpenAI's strict
   flag is set only when the schema can be strict without changing its meaning.
2. **json_object** — the provider's JSON mode plus the schema in the instructions.
3. **prompt** — the schema in the instructions only.

Clients that are not HTTP clients (the in-process local model, routers, your own) get the
native request *and* the instructions: a codec that cannot enforce the schema ignores it.

A failed attempt is answered with the model's own answer (as plain assistant text: never a tool
call without its result) and a user message naming the problem; the next attempt is a fresh
call. Usage is summed over every attempt and travels with both results and errors.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, cast

from lexigram.ai.llm.exceptions import (
    ExtractionError,
    ExtractionMaxRetriesError,
    ExtractionParseError,
    ExtractionValidationError,
    LLMError,
)
from lexigram.ai.llm.structured._json import (
    JSONExtractionError,
    extract_json,
    parse_partial_json,
)
from lexigram.ai.llm.structured._schema import (
    Validator,
    compile_validator,
    pydantic_problem,
    relaxed_schema,
    schema_instructions,
    schema_name,
    strict_schema,
    wrap_root,
)
from lexigram.ai.llm.types import (
    ChatMessage,
    Completion,
    ResponseFormat,
    Role,
    TextPart,
    Usage,
    normalize_messages,
)
from lexigram.contracts.stream import AsyncStream
from lexigram.result import Err, Ok, Result

__all__ = ["Extraction", "ExtractionMode", "JSONExtractor", "StructuredExtractor"]

T = TypeVar("T")
ExtractionMode = Literal["auto", "native", "json_object", "prompt"]

_NATIVE_HINT = (
    "Respond with JSON in the requested format, filled from the user's text, and nothing else."
)


@dataclass(frozen=True, slots=True)
class Extraction(Generic[T]):
    """A successful extraction with how it went: the value, the model's raw answer, the usage
    summed over every attempt, how many attempts it took, and the mode used."""

    value: T
    raw_output: str
    usage: Usage
    attempts: int
    mode: str
    completion: Completion


@dataclass(frozen=True, slots=True)
class _Target:
    """What is being extracted: the schema to send, how to validate a whole or partial value."""

    name: str
    schema: Mapping[str, Any] | None
    validate: Callable[[Any], tuple[Any, list[str]]]
    validate_partial: Callable[[Any], Any | None]
    description: str

    @property
    def prefer(self) -> str:
        kind = (self.schema or {}).get("type")
        if self.schema is None or kind == "object":
            return "{"
        if kind == "array":
            return "["
        return "{["


@dataclass(frozen=True, slots=True)
class _Plan:
    """How one extraction asks the model."""

    mode: str
    response_format: ResponseFormat | None
    instructions: str | None
    wrapped: bool


class _Engine:
    """The attempt loop and the streaming loop, shared by both extractors."""

    def __init__(self, llm: Any, *, max_retries: int, mode: ExtractionMode) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if mode not in ("auto", "native", "json_object", "prompt"):
            raise ValueError(f"unknown extraction mode {mode!r}")
        self.llm = llm
        self.max_retries = max_retries
        self.mode = mode

    # -- planning --------------------------------------------------------------------------

    def _capabilities(self) -> frozenset[str] | None:
        profile = getattr(self.llm, "profile", None)
        caps = getattr(profile, "capabilities", None)
        if caps is None:
            caps = getattr(self.llm, "capabilities", None)
        return frozenset(caps) if caps is not None else None

    def plan(self, target: _Target) -> _Plan:
        """Choose native, JSON mode or instructions for this client and schema."""
        from lexigram.ai.llm.client import AbstractLLMClient

        caps = self._capabilities()
        mode = self.mode
        if mode == "auto":
            if caps is not None:
                if "json_schema" in caps:
                    mode = "native"
                elif "json_object" in caps:
                    mode = "json_object"
                else:
                    mode = "prompt"
            else:
                mode = "native" if isinstance(self.llm, AbstractLLMClient) else "prompt"
        schema = target.schema
        if mode == "native":
            wire = dict(schema) if schema is not None else None
            wrapped = False
            if wire is not None and wire.get("type") != "object":
                wire, wrapped = wrap_root(wire), True
            if wire is None:
                return _Plan(
                    "json_object", ResponseFormat("json_object"), schema_instructions(None), False
                )
            strict = strict_schema(wire)
            response_format = ResponseFormat.json_schema(
                strict if strict is not None else wire,
                schema_name(target.name),
                strict=strict is not None,
            )
            enforced = caps is not None and "json_schema" in caps
            instructions = _NATIVE_HINT if enforced else schema_instructions(wire)
            return _Plan("native", response_format, instructions, wrapped)
        if mode == "json_object":
            return _Plan(
                "json_object", ResponseFormat("json_object"), schema_instructions(schema), False
            )
        return _Plan("prompt", None, schema_instructions(schema), False)

    # -- one extraction --------------------------------------------------------------------

    async def run(
        self,
        prompt: str | Sequence[Any],
        target: _Target,
        *,
        system_prompt: str | None,
        max_retries: int | None,
        call_kwargs: dict[str, Any],
    ) -> Result[Extraction[Any], LLMError]:
        plan = self.plan(target)
        messages = _build_messages(prompt, plan.instructions, system_prompt)
        retries = self.max_retries if max_retries is None else max_retries
        attempts = retries + 1
        usage = Usage()
        errors: list[ExtractionError] = []
        raw = ""
        kwargs = dict(call_kwargs)
        if plan.response_format is not None:
            kwargs["response_format"] = plan.response_format
        for attempt in range(1, attempts + 1):
            result = await self.llm.complete(messages, **kwargs)
            if isinstance(result, Err):
                missed = result.error
                if not (isinstance(missed, ExtractionParseError) and missed.raw_output):
                    return result
                # The provider answered prose instead of its structured form (a server that
                # ignored the forced tool): a failed attempt, re-asked like any other.
                usage = usage + (missed.usage or Usage())
                raw = missed.raw_output
                errors.append(missed)
                if attempt < attempts:
                    messages = _reask(messages, raw, _feedback(missed, target))
                continue
            completion: Completion = result.value
            usage = usage + completion.usage
            raw = _raw_output(completion)
            error, value = self._check(raw, target, plan, completion)
            if error is None:
                return Ok(Extraction(value, raw, usage, attempt, plan.mode, completion))
            errors.append(error)
            if attempt < attempts:
                messages = _reask(messages, raw, _feedback(error, target))
        last = errors[-1]
        last.usage = usage
        if attempts == 1:
            return Err(last)
        failure = ExtractionMaxRetriesError(
            f"No answer matched the {target.description} in {attempts} attempts; last problem: "
            f"{last.message}",
            raw_output=raw,
            usage=usage,
            provider=last.provider,
            model=last.model,
            last_error=last,
            details={
                "attempts": attempts,
                "errors": [e.message for e in errors],
                "mode": plan.mode,
            },
        )
        return Err(failure)

    def _check(
        self, raw: str, target: _Target, plan: _Plan, completion: Completion
    ) -> tuple[ExtractionError | None, Any]:
        where = {"provider": completion.provider, "model": completion.model}
        try:
            parsed = extract_json(raw, prefer="{" if plan.wrapped else target.prefer)
        except JSONExtractionError as exc:
            return (
                ExtractionParseError(
                    f"The answer holds no parsable JSON: {exc}", raw_output=raw, **where
                ),
                None,
            )
        if plan.wrapped and isinstance(parsed, dict) and set(parsed) == {"value"}:
            parsed = parsed["value"]
        value, problems = target.validate(parsed)
        if problems:
            return (
                ExtractionValidationError(
                    f"The JSON does not match the {target.description}: " + "; ".join(problems),
                    raw_output=raw,
                    details={"problems": problems},
                    **where,
                ),
                None,
            )
        return None, value

    # -- streaming -------------------------------------------------------------------------

    def stream(
        self,
        prompt: str | Sequence[Any],
        target: _Target,
        *,
        system_prompt: str | None,
        call_kwargs: dict[str, Any],
    ) -> AsyncStream[Any, LLMError]:
        plan = self.plan(target)
        messages = _build_messages(prompt, plan.instructions, system_prompt)
        kwargs = dict(call_kwargs)
        if plan.response_format is not None:
            kwargs["response_format"] = plan.response_format

        async def partials() -> AsyncIterator[Any]:
            source = self.llm.stream_chat(messages, **kwargs)
            text: list[str] = []
            arguments: list[str] = []
            usage = Usage()
            last: Any = _NOTHING
            try:
                async for chunk in source:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for delta in chunk.tool_calls or ():
                        if delta.index == 0 and delta.arguments:
                            arguments.append(delta.arguments)
                    if not chunk.delta and not chunk.tool_calls:
                        continue
                    if chunk.delta:
                        text.append(chunk.delta)
                    raw = "".join(text) if text else "".join(arguments)
                    partial = parse_partial_json(raw, prefer="{" if plan.wrapped else target.prefer)
                    if partial is None:
                        continue
                    value = partial[0]
                    if plan.wrapped:
                        if not isinstance(value, dict) or "value" not in value:
                            continue
                        value = value["value"]
                    checked = target.validate_partial(value)
                    if checked is not None and checked != last:
                        last = checked
                        yield checked
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()
            raw = "".join(text).strip() or "".join(arguments)
            completion = Completion(
                content=raw,
                model=getattr(source, "model", ""),
                provider=getattr(source, "provider", ""),
                usage=usage,
            )
            error, final = self._check(raw, target, plan, completion)
            if error is not None:
                error.usage = usage
                raise error
            if final != last:
                yield final

        return AsyncStream(partials, error_type=LLMError)


_NOTHING: Any = object()


def _raw_output(completion: Completion) -> str:
    """The answer's text, or the first tool call's arguments when the text is empty (a model
    that answered through a tool)."""
    if completion.content and completion.content.strip():
        return completion.content
    if completion.tool_calls:
        return completion.tool_calls[0].arguments
    return completion.content or ""


def _build_messages(
    prompt: str | Sequence[Any], instructions: str | None, system_prompt: str | None
) -> list[ChatMessage]:
    messages = (
        [ChatMessage.user(prompt)] if isinstance(prompt, str) else list(normalize_messages(prompt))
    )
    if not messages:
        raise ValueError("nothing to extract from: the prompt is empty")
    extra = "\n\n".join(p for p in (system_prompt, instructions) if p)
    if not extra:
        return messages
    for i, message in enumerate(messages):
        if message.role is Role.SYSTEM:
            messages[i] = _with_text(message, extra)
            return messages
    return [ChatMessage.system(extra), *messages]


def _with_text(message: ChatMessage, text: str) -> ChatMessage:
    content = message.content
    if content is None or isinstance(content, str):
        joined = f"{content}\n\n{text}" if content else text
        return ChatMessage(message.role, joined, name=message.name)
    return ChatMessage(message.role, (*content, TextPart(text)), name=message.name)


def _reask(messages: list[ChatMessage], raw: str, feedback: str) -> list[ChatMessage]:
    """The conversation for the next attempt. The bad answer goes back as plain assistant text
    (tool calls and thinking dropped, so no tool call is left without its result); an empty
    answer is not sent back (providers reject empty assistant turns) and the feedback joins
    the last user message instead."""
    out = list(messages)
    if raw.strip():
        out.append(ChatMessage.assistant(raw))
        out.append(ChatMessage.user(feedback))
    elif out and out[-1].role is Role.USER:
        out[-1] = _with_text(out[-1], feedback)
    else:
        out.append(ChatMessage.user(feedback))
    return out


def _feedback(error: ExtractionError, target: _Target) -> str:
    if isinstance(error, ExtractionParseError):
        return (
            f"{error.message}. Reply again with only the JSON value for the "
            f"{target.description}, with no other text."
        )
    problems = error.details.get("problems") or [error.message]
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your JSON does not match the {target.description}:\n{listed}\n"
        "Reply again with only the corrected JSON, with no other text."
    )


# -- targets -------------------------------------------------------------------------------


def _schema_target(schema: Mapping[str, Any] | None, name: str) -> _Target:
    if schema is None:

        def any_object(value: Any) -> tuple[Any, list[str]]:
            if isinstance(value, dict):
                return value, []
            return value, [f"$: expected a JSON object, got {type(value).__name__}"]

        return _Target(
            name, None, any_object, lambda v: v if isinstance(v, dict) else None, "JSON object"
        )
    validator = _validator(schema)
    partial_validator = _validator(relaxed_schema(schema))

    def validate(value: Any) -> tuple[Any, list[str]]:
        return value, validator(value)

    def validate_partial(value: Any) -> Any | None:
        return None if partial_validator(value) else value

    return _Target(name, schema, validate, validate_partial, "JSON Schema")


def _validator(schema: Mapping[str, Any]) -> Validator:
    return compile_validator(schema)


@functools.lru_cache(maxsize=128)
def _type_target(output_type: Any) -> _Target:
    from pydantic import BaseModel, TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(output_type)
    schema = adapter.json_schema()
    name = getattr(output_type, "__name__", None) or schema.get("title") or "response"
    partial_adapter: TypeAdapter[Any] | None = None
    partial_check: Validator | None = None
    if isinstance(output_type, type) and issubclass(output_type, BaseModel):
        partial_adapter = TypeAdapter(_partial_model(output_type))
    else:
        partial_check = compile_validator(relaxed_schema(schema))

    def validate(value: Any) -> tuple[Any, list[str]]:
        try:
            return adapter.validate_python(value), []
        except ValidationError as exc:
            return None, [pydantic_problem(e) for e in exc.errors()[:8]]

    def validate_partial(value: Any) -> Any | None:
        if partial_adapter is not None:
            try:
                return partial_adapter.validate_python(value)
            except ValidationError:
                return None
        assert partial_check is not None
        return None if partial_check(value) else value

    return _Target(str(name), schema, validate, validate_partial, f"{name} schema")


@functools.lru_cache(maxsize=128)
def _partial_model(model: type[Any]) -> type[Any]:
    """A twin of ``model`` whose fields are all optional (``None`` until they arrive)."""
    from pydantic import ConfigDict, create_model

    fields: dict[str, Any] = {
        name: (field.annotation | None, None) for name, field in model.model_fields.items()
    }
    partial: type[Any] = create_model(
        f"Partial{model.__name__}",
        __config__=ConfigDict(extra="ignore"),
        **fields,
    )
    return partial


# -- public extractors ---------------------------------------------------------------------


class JSONExtractor:
    """JSON out of a model's answer, validated against a JSON Schema::

        extractor = JSONExtractor(llm_client=llm)
        result = await extractor.extract("Extract a name", schema=schema)   # Result[dict, ...]

    ``max_retries`` re-asks after a bad answer (3 attempts by default); ``mode`` forces
    ``"native"``, ``"json_object"`` or ``"prompt"`` instead of choosing per provider.
    """

    def __init__(
        self,
        llm_client: Any,
        *,
        max_retries: int = 2,
        mode: ExtractionMode = "auto",
        schema_name: str = "response",
    ) -> None:
        self._engine = _Engine(llm_client, max_retries=max_retries, mode=mode)
        self.schema_name = schema_name

    @property
    def llm_client(self) -> Any:
        return self._engine.llm

    async def extract(
        self,
        prompt: str | Sequence[Any],
        schema: Mapping[str, Any] | None = None,
        *,
        system_prompt: str | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> Result[Any, LLMError]:
        """The validated JSON value (``Ok``) or an ``ExtractionParseError``,
        ``ExtractionValidationError``, ``ExtractionMaxRetriesError`` or provider error
        (``Err``). Other keyword arguments go to ``llm.complete``."""
        detailed = await self.extract_detailed(
            prompt, schema, system_prompt=system_prompt, max_retries=max_retries, **kwargs
        )
        return detailed.map(lambda e: e.value)

    async def extract_detailed(
        self,
        prompt: str | Sequence[Any],
        schema: Mapping[str, Any] | None = None,
        *,
        system_prompt: str | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> Result[Extraction[Any], LLMError]:
        """Like ``extract``, with the raw answer, summed usage and attempt count."""
        target = _schema_target(schema, self.schema_name)
        return await self._engine.run(
            prompt,
            target,
            system_prompt=system_prompt,
            max_retries=max_retries,
            call_kwargs=kwargs,
        )

    def stream(
        self,
        prompt: str | Sequence[Any],
        schema: Mapping[str, Any] | None = None,
        *,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncStream[Any, LLMError]:
        """Validated partial values while the answer streams; the last item is the complete,
        fully validated value. A final answer that is not valid raises its extraction error
        (there is no re-ask while streaming)."""
        target = _schema_target(schema, self.schema_name)
        return self._engine.stream(prompt, target, system_prompt=system_prompt, call_kwargs=kwargs)


class StructuredExtractor:
    """A pydantic model (or any type pydantic validates) out of a model's answer::

    extractor = StructuredExtractor(llm)
    result = await extractor.extract("John is 30", output_model=Person)   # Result[Person, ...]
    """

    def __init__(
        self, llm_client: Any, *, max_retries: int = 2, mode: ExtractionMode = "auto"
    ) -> None:
        self._engine = _Engine(llm_client, max_retries=max_retries, mode=mode)

    @property
    def llm_client(self) -> Any:
        return self._engine.llm

    async def extract(
        self,
        prompt: str | Sequence[Any],
        output_model: type[T],
        *,
        system_prompt: str | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> Result[T, LLMError]:
        """An instance of ``output_model`` (``Ok``) or the typed error (``Err``)."""
        detailed = await self.extract_detailed(
            prompt,
            output_model,
            system_prompt=system_prompt,
            max_retries=max_retries,
            **kwargs,
        )
        return detailed.map(lambda e: e.value)

    async def extract_detailed(
        self,
        prompt: str | Sequence[Any],
        output_model: type[T],
        *,
        system_prompt: str | None = None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> Result[Extraction[T], LLMError]:
        """Like ``extract``, with the raw answer, summed usage and attempt count."""
        return await self._engine.run(
            prompt,
            _type_target(cast(Hashable, output_model)),
            system_prompt=system_prompt,
            max_retries=max_retries,
            call_kwargs=kwargs,
        )

    def stream(
        self,
        prompt: str | Sequence[Any],
        output_model: type[T],
        *,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncStream[Any, LLMError]:
        """Partial objects while the answer streams (for a pydantic model, instances of a twin
        whose fields are all optional); the last item is a complete ``output_model``."""
        return self._engine.stream(
            prompt,
            _type_target(cast(Hashable, output_model)),
            system_prompt=system_prompt,
            call_kwargs=kwargs,
        )
