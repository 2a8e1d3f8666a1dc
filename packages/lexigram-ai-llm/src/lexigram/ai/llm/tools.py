"""Tools that run: the loop call → run the tools → send the results → repeat.

::

    def get_weather(city: str) -> dict:
        \"\"\"Current weather for a city.\"\"\"
        return {"city": city, "temp_c": 21}

    result = await run_tools(llm, [{"role": "user", "content": "Weather in Paris?"}],
                             tools=[get_weather])
    run = result.unwrap()            # ToolRun: final completion, steps, messages, usage, cost

Tools are plain functions (sync ones run in a worker thread, async ones are awaited), ``Tool``
objects (a ``ToolDefinition`` with a handler) or MCP tools (``lexigram.ai.llm.mcp``). Their
arguments are validated with a pydantic model built from the handler's signature. A call with
invalid arguments, an unknown tool or a tool that raises is answered with an error message the
model can correct itself from; ``max_tool_errors`` failures in a row stop the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import typing
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import orjson

from lexigram.ai.llm.exceptions import (
    LLMError,
    MaxStepsExceededError,
    StreamError,
    ToolFailureLimitError,
    ToolLoopError,
)
from lexigram.ai.llm.stream import StreamAccumulator
from lexigram.ai.llm.types import (
    ChatMessage,
    Completion,
    StreamChunk,
    ToolCall,
    ToolDefinition,
    Usage,
    normalize_messages,
)
from lexigram.contracts.stream import AsyncStream
from lexigram.result import Err, Ok, Result

__all__ = [
    "Tool",
    "ToolError",
    "ToolEvent",
    "ToolResult",
    "ToolRun",
    "ToolStep",
    "ToolStream",
    "run_tools",
    "stream_tools",
]

ToolErrorKind: TypeAlias = Literal[
    "invalid_arguments", "unknown_tool", "raised", "refused", "timeout", "unserializable"
]
#: ``approve(call)`` returns True to run the call, False (or a reason string) to refuse it.
Approver: TypeAlias = Callable[[ToolCall], bool | str | Awaitable[bool | str]]

DEFAULT_REFUSAL = "The user declined this tool call."


class ToolError(Exception):
    """Raise from a tool to send ``message`` back to the model as the tool's error, without
    the exception's type name (MCP tools that report ``isError`` become one)."""


class _InvalidArguments(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# -- tools ---------------------------------------------------------------------------------


class Tool:
    """A tool the loop can run: its ``definition`` (what the model sees) and a ``handler``
    called with the arguments as keywords (sync or async).

    ``Tool.from_function(fn)`` builds both from a typed function; ``Tool(definition,
    handler)`` pairs a hand-written schema with any callable. When the handler has named
    parameters, arguments are validated (and converted) by a pydantic model of its signature.
    """

    __slots__ = ("_is_async", "_model", "_pass_kwargs", "definition", "handler")

    def __init__(
        self,
        definition: ToolDefinition,
        handler: Callable[..., Any],
        *,
        validate: bool = True,
    ) -> None:
        if not callable(handler):
            raise TypeError(f"the handler of tool {definition.name!r} is not callable")
        self.definition = definition
        self.handler = handler
        self._is_async = _is_async_callable(handler)
        self._model: Any
        self._pass_kwargs: bool
        self._model, self._pass_kwargs = (
            _arguments_model(handler, definition.name) if validate else (None, True)
        )

    @classmethod
    def from_function(
        cls, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> Tool:
        """From a typed function: schema from its type hints, description from its
        docstring (``Args:`` entries describe the parameters)."""
        definition = ToolDefinition.from_function(fn, name=name)
        if description is not None:
            definition = ToolDefinition(definition.name, description, definition.parameters)
        return cls(definition, fn)

    @property
    def name(self) -> str:
        return self.definition.name

    def __repr__(self) -> str:
        return f"Tool({self.definition.name!r})"

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the handler; raises on arguments that do not fit."""
        if self._model is None:
            return dict(arguments)
        from pydantic import ValidationError

        from lexigram.ai.llm.structured._schema import pydantic_problem

        try:
            model = self._model.model_validate(dict(arguments))
        except ValidationError as exc:
            raise _InvalidArguments([pydantic_problem(e) for e in exc.errors()]) from None
        values = {name: getattr(model, name) for name in type(model).model_fields}
        if self._pass_kwargs and model.model_extra:
            values.update(model.model_extra)
        return values

    async def call(self, arguments: Mapping[str, Any]) -> Any:
        """Validate ``arguments`` and run the handler (a sync one in a worker thread)."""
        kwargs = self.validate(arguments)
        if self._is_async:
            return await self.handler(**kwargs)
        value = await asyncio.to_thread(self.handler, **kwargs)
        if inspect.isawaitable(value):
            value = await value
        return value


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


def _arguments_model(fn: Callable[..., Any], name: str) -> tuple[Any, bool]:
    """A pydantic model of ``fn``'s named parameters (``None`` when it takes none by name),
    and whether extra arguments pass through (it takes ``**kwargs``)."""
    from pydantic import ConfigDict, create_model

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, True
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable annotations: validate names and presence only
        hints = {}
    fields: dict[str, Any] = {}
    var_keyword = False
    for pname, param in signature.parameters.items():
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    if not fields:
        return None, True
    config = ConfigDict(
        extra="allow" if var_keyword else "forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
    )
    model = create_model(f"{name}_arguments", __config__=config, **fields)
    return model, var_keyword


def _toolbox(tools: Iterable[Any]) -> dict[str, Tool]:
    """Tools by name, from functions, ``Tool`` objects, ``(ToolDefinition, handler)`` pairs
    and tool sources (anything with a ``tools`` attribute, such as an MCP connection)."""
    box: dict[str, Tool] = {}
    for item in tools:
        for tool in _as_tools(item):
            if tool.name in box:
                raise ValueError(f"two tools are named {tool.name!r}; tool names must be unique")
            box[tool.name] = tool
    return box


def _as_tools(item: Any) -> list[Tool]:
    if isinstance(item, Tool):
        return [item]
    if isinstance(item, tuple) and len(item) == 2 and callable(item[1]):
        return [Tool(ToolDefinition.coerce(item[0]), item[1])]
    if isinstance(item, ToolDefinition):
        raise TypeError(
            f"tool {item.name!r} is a ToolDefinition without a handler; pass "
            "Tool(definition, handler) or the function itself"
        )
    source = getattr(item, "tools", None)
    if source is not None and not callable(item):
        return _as_tool_list(source)
    if callable(item) and not isinstance(item, type):
        return [_function_tool(item)]
    raise TypeError(f"cannot run {type(item).__name__} as a tool; pass a function or a Tool")


# A function's Tool (schema and pydantic model) is built once: building costs far more than
# a loopback model call. Weak keys: a function that goes away takes its Tool with it.
_FUNCTION_TOOLS: weakref.WeakKeyDictionary[Callable[..., Any], Tool] = weakref.WeakKeyDictionary()


def _function_tool(fn: Callable[..., Any]) -> Tool:
    try:
        tool = _FUNCTION_TOOLS.get(fn)
    except TypeError:  # not weak-referenceable or not hashable: build it every time
        return Tool.from_function(fn)
    if tool is None:
        tool = Tool.from_function(fn)
        with contextlib.suppress(TypeError):
            _FUNCTION_TOOLS[fn] = tool
    return tool


def _as_tool_list(source: Iterable[Any]) -> list[Tool]:
    out: list[Tool] = []
    for item in source:
        out.extend(_as_tools(item))
    return out


# -- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolResult:
    """One tool call and how it went: ``value`` is what the tool returned, ``content`` the
    text sent back to the model (the JSON of a non-string value, or the error message)."""

    call: ToolCall
    step: int
    content: str
    value: Any = None
    error: str | None = None
    error_kind: ToolErrorKind | None = None
    duration: float = 0.0
    arguments: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def name(self) -> str:
        return self.call.name

    def to_message(self) -> ChatMessage:
        """The ``tool`` message answering the call (``is_error`` when the tool failed)."""
        return ChatMessage.tool(
            self.content, tool_call_id=self.call.id, name=self.call.name, is_error=not self.ok
        )


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One model call and the tools it asked for (none on the final step)."""

    index: int
    completion: Completion
    results: tuple[ToolResult, ...] = ()
    duration: float = 0.0

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.completion.tool_calls


@dataclass(frozen=True, slots=True)
class ToolRun:
    """A finished (or, inside a ``ToolLoopError``, partial) tool loop.

    ``completion`` is the last answer, ``steps`` every model call with its tool results,
    ``messages`` the whole history (input included) to continue from, ``usage`` and ``cost``
    summed over the steps (``cost`` is ``None`` when no step had a price)."""

    completion: Completion
    steps: tuple[ToolStep, ...]
    messages: tuple[ChatMessage, ...]
    usage: Usage
    cost: float | None

    @property
    def content(self) -> str:
        return self.completion.content

    @property
    def results(self) -> tuple[ToolResult, ...]:
        """Every tool result, in order."""
        return tuple(r for step in self.steps for r in step.results)


ToolEvent: TypeAlias = StreamChunk | ToolResult | ToolStep


def _fold_run(steps: Sequence[ToolStep], history: Sequence[ChatMessage]) -> ToolRun:
    usage = Usage()
    cost: float | None = None
    for step in steps:
        usage = usage + step.completion.usage
        if step.completion.cost is not None:
            cost = (cost or 0.0) + step.completion.cost
    return ToolRun(steps[-1].completion, tuple(steps), tuple(history), usage, cost)


# -- running calls -------------------------------------------------------------------------


def _serialise(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass(slots=True)
class _Settings:
    box: dict[str, Tool]
    approve: Approver | None
    tool_timeout: float | None
    limit: asyncio.Semaphore


async def _run_call(call: ToolCall, step: int, settings: _Settings) -> ToolResult:
    started = time.perf_counter()

    def failed(kind: ToolErrorKind, message: str, arguments: Any = None) -> ToolResult:
        return ToolResult(
            call,
            step,
            f"Error: {message}",
            error=message,
            error_kind=kind,
            duration=time.perf_counter() - started,
            arguments=arguments,
        )

    tool = settings.box.get(call.name)
    if tool is None:
        known = ", ".join(sorted(settings.box)) or "none"
        return failed("unknown_tool", f"there is no tool named {call.name!r} (tools: {known})")
    try:
        arguments = call.parsed_arguments()
    except ValueError as exc:
        return failed("invalid_arguments", f"the arguments are not a JSON object: {exc}")
    if settings.approve is not None:
        verdict = settings.approve(call)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict is not True:
            reason = verdict if isinstance(verdict, str) and verdict else DEFAULT_REFUSAL
            return ToolResult(
                call,
                step,
                reason,
                error=reason,
                error_kind="refused",
                duration=time.perf_counter() - started,
                arguments=arguments,
            )
    async with settings.limit:
        deadline = asyncio.timeout(settings.tool_timeout)
        try:
            async with deadline:
                value = await tool.call(arguments)
        except _InvalidArguments as exc:
            return failed(
                "invalid_arguments",
                f"invalid arguments for {call.name}: {'; '.join(exc.problems)}",
                arguments,
            )
        except ToolError as exc:
            return failed("raised", str(exc) or f"{call.name} failed", arguments)
        except TimeoutError as exc:
            if not deadline.expired():  # the tool's own TimeoutError, not our deadline
                return failed("raised", f"{call.name} raised TimeoutError: {exc}", arguments)
            return failed(
                "timeout", f"{call.name} did not finish within {settings.tool_timeout}s", arguments
            )
        except Exception as exc:
            return failed("raised", f"{call.name} raised {type(exc).__name__}: {exc}", arguments)
    try:
        content = _serialise(value)
    except TypeError as exc:
        return failed("unserializable", f"the result of {call.name} is not JSON: {exc}", arguments)
    return ToolResult(
        call,
        step,
        content,
        value=value,
        duration=time.perf_counter() - started,
        arguments=arguments,
    )


async def _run_calls(
    calls: Sequence[ToolCall], step: int, settings: _Settings, *, parallel: bool
) -> AsyncGenerator[tuple[int, ToolResult], None]:
    """Results as the calls finish, with their position. Leaving early (an error, a
    cancellation, the consumer closing) cancels the calls still running and waits for them."""
    if not parallel:
        for i, call in enumerate(calls):
            yield i, await _run_call(call, step, settings)
        return
    tasks = {
        asyncio.ensure_future(_run_call(call, step, settings)): i for i, call in enumerate(calls)
    }
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in sorted(done, key=tasks.__getitem__):
                yield tasks[task], task.result()
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _notify(on_step: Callable[[ToolStep], Any] | None, step: ToolStep) -> None:
    if on_step is not None:
        outcome = on_step(step)
        if inspect.isawaitable(outcome):
            await outcome


def _consecutive_failures(previous: int, results: Sequence[ToolResult]) -> int:
    count = previous
    for result in results:
        if result.error is None:
            count = 0
        elif result.error_kind != "refused":  # a refusal is the user's decision, not a failure
            count += 1
    return count


def _check_limits(max_steps: int, max_tool_errors: int | None, max_concurrency: int) -> None:
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, got {max_steps}")
    if max_tool_errors is not None and max_tool_errors < 1:
        raise ValueError(f"max_tool_errors must be at least 1 or None, got {max_tool_errors}")
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")


def _with_partial_run(
    error: LLMError, steps: Sequence[ToolStep], history: Sequence[ChatMessage]
) -> LLMError:
    """A provider error mid-loop keeps the steps already run (their side effects happened)."""
    if steps:
        error.details = {**error.details, "tool_run": _fold_run(steps, history)}
    return error


class _Loop:
    """State shared by ``run_tools`` and ``stream_tools``."""

    def __init__(
        self,
        messages: Sequence[Any],
        tools: Iterable[Any],
        *,
        max_steps: int,
        tool_choice: str | Mapping[str, Any] | None,
        parallel: bool,
        max_concurrency: int,
        max_tool_errors: int | None,
        tool_timeout: float | None,
        approve: Approver | None,
        kwargs: dict[str, Any],
    ) -> None:
        _check_limits(max_steps, max_tool_errors, max_concurrency)
        box = _toolbox(tools)
        self.history: list[ChatMessage] = list(normalize_messages(messages))
        self.steps: list[ToolStep] = []
        self.max_steps = max_steps
        self.parallel = parallel
        self.max_tool_errors = max_tool_errors
        self.failures = 0
        self.settings = _Settings(box, approve, tool_timeout, asyncio.Semaphore(max_concurrency))
        self.call_kwargs = {**kwargs, "tools": [t.definition for t in box.values()]}
        self.tool_choice = tool_choice

    def request_kwargs(self) -> dict[str, Any]:
        # ``tool_choice`` applies to the first step only: a forced call on every step would
        # never let the model answer.
        if self.steps or self.tool_choice is None:
            return self.call_kwargs
        return {**self.call_kwargs, "tool_choice": self.tool_choice}

    def finish_step(
        self, completion: Completion, results: Sequence[ToolResult], started: float
    ) -> ToolStep:
        step = ToolStep(len(self.steps), completion, tuple(results), time.perf_counter() - started)
        self.steps.append(step)
        self.history.extend(r.to_message() for r in results)
        self.failures = _consecutive_failures(self.failures, results)
        return step

    def run(self) -> ToolRun:
        return _fold_run(self.steps, self.history)

    def stop_error(self) -> ToolLoopError | None:
        """Why the loop must stop after the step just finished, if it must."""
        if self.max_tool_errors is not None and self.failures >= self.max_tool_errors:
            last = self.steps[-1].results
            errors = [r.error for r in last if r.error is not None]
            return ToolFailureLimitError(
                f"{self.failures} tool calls failed in a row (last: {errors[-1]})",
                run=self.run(),
                **self._where(),
            )
        if len(self.steps) >= self.max_steps:
            return MaxStepsExceededError(
                f"the model still asked for tools after max_steps={self.max_steps} steps",
                run=self.run(),
                **self._where(),
            )
        return None

    def _where(self) -> dict[str, Any]:
        completion = self.steps[-1].completion
        return {"provider": completion.provider, "model": completion.model}


# -- the loop ------------------------------------------------------------------------------


async def run_tools(
    llm: Any,
    messages: Sequence[Any],
    tools: Iterable[Any] = (),
    *,
    max_steps: int = 10,
    tool_choice: str | Mapping[str, Any] | None = None,
    parallel: bool = True,
    max_concurrency: int = 8,
    max_tool_errors: int | None = 3,
    tool_timeout: float | None = None,
    approve: Approver | None = None,
    on_step: Callable[[ToolStep], Any] | None = None,
    **kwargs: Any,
) -> Result[ToolRun, LLMError]:
    """Ask ``llm``, run the tools it calls, send the results back, until it answers.

    - ``max_steps``: model calls allowed; still asking for tools after the last one ends
      with ``Err(MaxStepsExceededError)`` whose ``run`` is the partial ``ToolRun`` (its
      last tools ran, so ``run.messages`` can be sent again).
    - ``tool_choice``: for the first step only (``"required"``, a tool's name...).
    - ``parallel``: the calls of one step run concurrently, at most ``max_concurrency``.
    - ``max_tool_errors``: that many failed calls in a row end with
      ``Err(ToolFailureLimitError)`` (``None``: never).
    - ``tool_timeout``: seconds a call may take before it fails with a timeout message.
    - ``approve(call)``: ``True`` runs the call; ``False`` or a reason string refuses it and
      the refusal goes back to the model.
    - ``on_step(step)``: called (or awaited) after each step.

    Other keyword arguments go to every ``llm.complete`` call (``model``, ``temperature``...).
    A provider error ends the loop with that error; when steps had already run, the partial
    run is in ``error.details["tool_run"]``. Cancelling the call cancels the running tools
    and waits for them to end (a sync tool already running in its worker thread cannot be
    interrupted: it finishes there and its result is dropped).
    """
    loop = _Loop(
        messages,
        tools,
        max_steps=max_steps,
        tool_choice=tool_choice,
        parallel=parallel,
        max_concurrency=max_concurrency,
        max_tool_errors=max_tool_errors,
        tool_timeout=tool_timeout,
        approve=approve,
        kwargs=kwargs,
    )
    while True:
        started = time.perf_counter()
        result: Result[Completion, LLMError] = await llm.complete(
            loop.history, **loop.request_kwargs()
        )
        if isinstance(result, Err):
            return Err(_with_partial_run(result.error, loop.steps, loop.history))
        completion = result.unwrap()
        loop.history.append(completion.to_message())
        calls = completion.tool_calls
        results: list[ToolResult | None] = [None] * len(calls)
        runner = _run_calls(calls, len(loop.steps), loop.settings, parallel=loop.parallel)
        try:
            async for index, tool_result in runner:
                results[index] = tool_result
        finally:
            await runner.aclose()
        step = loop.finish_step(completion, [r for r in results if r is not None], started)
        await _notify(on_step, step)
        if not calls:
            return Ok(loop.run())
        stop = loop.stop_error()
        if stop is not None:
            return Err(stop)


class ToolStream(AsyncStream[ToolEvent, LLMError]):
    """``stream_tools``: yields each step's ``StreamChunk``s as they arrive, each
    ``ToolResult`` as its call finishes and each ``ToolStep`` once it is done; a failure is
    raised as the typed ``LLMError``. ``run()`` consumes it and folds to the ``ToolRun``."""

    __slots__ = ("_loop",)

    def __init__(self, source: Callable[[], AsyncIterator[ToolEvent]], loop: _Loop) -> None:
        super().__init__(source, error_type=LLMError, wrap_error=_as_stream_error)
        self._loop = loop

    async def run(self) -> Result[ToolRun, LLMError]:
        """Consume the stream: ``Ok(ToolRun)`` (the same ``run_tools`` returns) or ``Err``."""
        try:
            async for _ in self:
                pass
        except LLMError as exc:
            return Err(exc)
        return Ok(self._loop.run())


def _as_stream_error(exc: BaseException) -> LLMError:
    return StreamError(f"The tool stream failed unexpectedly: {type(exc).__name__}: {exc}")


def stream_tools(
    llm: Any,
    messages: Sequence[Any],
    tools: Iterable[Any] = (),
    *,
    max_steps: int = 10,
    tool_choice: str | Mapping[str, Any] | None = None,
    parallel: bool = True,
    max_concurrency: int = 8,
    max_tool_errors: int | None = 3,
    tool_timeout: float | None = None,
    approve: Approver | None = None,
    on_step: Callable[[ToolStep], Any] | None = None,
    **kwargs: Any,
) -> ToolStream:
    """``run_tools`` streamed: returned at once, it starts on first iteration. Options are
    ``run_tools``'s; a loop error (``MaxStepsExceededError``...) is raised by the iteration
    after the last step's events, or returned by ``run()``."""
    loop = _Loop(
        messages,
        tools,
        max_steps=max_steps,
        tool_choice=tool_choice,
        parallel=parallel,
        max_concurrency=max_concurrency,
        max_tool_errors=max_tool_errors,
        tool_timeout=tool_timeout,
        approve=approve,
        kwargs=kwargs,
    )

    async def events() -> AsyncIterator[ToolEvent]:
        from lexigram.ai.llm.pricing import usage_cost

        while True:
            started = time.perf_counter()
            stream = llm.stream_chat(loop.history, **loop.request_kwargs())
            accumulator = StreamAccumulator()
            try:
                async for chunk in stream:
                    accumulator.add(chunk)
                    yield chunk
            except LLMError as error:
                raise _with_partial_run(error, loop.steps, loop.history) from None
            finally:
                await stream.aclose()
            provider = str(getattr(stream, "provider", "") or "")
            model = str(getattr(stream, "model", "") or "")
            completion = accumulator.to_completion(provider, model)
            if completion.cost is None:
                cost = usage_cost(completion.usage, completion.model, model, provider=provider)
                if cost is not None:
                    completion = completion.with_cost(cost)
            loop.history.append(completion.to_message())
            calls = completion.tool_calls
            results: list[ToolResult | None] = [None] * len(calls)
            runner = _run_calls(calls, len(loop.steps), loop.settings, parallel=loop.parallel)
            try:
                async for index, tool_result in runner:
                    results[index] = tool_result
                    yield tool_result
            finally:
                await runner.aclose()
            step = loop.finish_step(completion, [r for r in results if r is not None], started)
            await _notify(on_step, step)
            yield step
            if not calls:
                return
            stop = loop.stop_error()
            if stop is not None:
                raise stop

    return ToolStream(events, loop)
