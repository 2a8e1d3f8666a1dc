"""``ConversationManager``: a multi-turn history that always makes a valid request.

::

    manager = ConversationManager(config=ConversationConfig(max_turns=10), llm_client=llm)
    await manager.add_message({"role": "user", "content": "Hello"})
    response = await manager.get_response()          # Result[Completion, LLMError]

The history keeps assistant tool calls with their results and thinking blocks with their
signatures, so it can be sent back to any provider unchanged. Trimming (``max_turns``, and
``max_tokens`` as a token budget for the whole prompt) drops whole turns from the oldest: a
turn starts at a user message and holds everything up to the next one, so a tool call is never
separated from its result, and the system prompt is never dropped. The latest turn is always
kept, even when it alone is over the budget (the client's pre-flight then reports it).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.stream import ChatStream, StreamAccumulator
from lexigram.ai.llm.types import ChatMessage, Completion, Role, Usage, normalize_messages
from lexigram.result import Ok, Result

if TYPE_CHECKING:
    from lexigram.ai.llm.tools import ToolRun

__all__ = ["ConversationConfig", "ConversationManager"]

_FORMAT_VERSION = 1


class ConversationConfig(BaseModel):
    """How a conversation is kept.

    - ``max_turns``: keep at most this many turns (a turn is a user message and the answers,
      tool calls and tool results that follow it).
    - ``max_tokens``: token budget for the whole prompt sent (system prompt included); the
      oldest turns go first.
    - ``system_prompt``: always sent first, never trimmed.
    - ``model``: the model to ask (default: the client's) and to count tokens for.
    - ``response_max_tokens``: ``max_tokens`` passed to the client for each answer.
    """

    model_config = ConfigDict(extra="forbid")

    max_turns: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    system_prompt: str | None = None
    model: str | None = None
    response_max_tokens: int | None = Field(default=None, gt=0)


class ConversationManager:
    """A conversation with one client: add messages, get answers, trimmed to the config.

    ``tools`` are offered on every request (and count against the token budget); a history
    holding tool calls needs them on some providers (Bedrock rejects tool blocks without a
    ``toolConfig``)."""

    def __init__(
        self,
        config: ConversationConfig | None = None,
        llm_client: Any = None,
        *,
        token_counter: Any = None,
        tools: Sequence[Any] | None = None,
    ) -> None:
        self.config = config or ConversationConfig()
        self.llm_client = llm_client
        self.tools = list(tools) if tools else []
        self._token_counter = token_counter
        self._messages: list[ChatMessage] = []
        self._tokens: list[int | None] = []
        # (what was counted, its tokens): recounted when the system prompt, tools or model change
        self._system_tokens: tuple[Any, int] | None = None
        self._tool_tokens: tuple[Any, int] | None = None
        self.usage = Usage()
        self.cost: float | None = None
        self.responses = 0
        self.last_completion: Completion | None = None

    # -- history ---------------------------------------------------------------------------

    @property
    def history(self) -> tuple[ChatMessage, ...]:
        """The kept messages, without the configured system prompt."""
        return tuple(self._messages)

    @property
    def messages(self) -> list[ChatMessage]:
        """Exactly what the next request sends: the system prompt, then the kept history."""
        prompt = self.config.system_prompt
        system = [ChatMessage.system(prompt)] if prompt else []
        pinned = [m for m in self._messages if m.role is Role.SYSTEM]
        rest = [m for m in self._messages if m.role is not Role.SYSTEM]
        return [*system, *pinned, *rest]

    @property
    def turns(self) -> int:
        """How many turns are kept."""
        return len(self._turn_starts())

    def __len__(self) -> int:
        return len(self._messages)

    def pending_tool_calls(self) -> list[str]:
        """Ids of the last assistant message's tool calls that have no result yet."""
        for i in range(len(self._messages) - 1, -1, -1):
            message = self._messages[i]
            if message.role is Role.ASSISTANT:
                answered = {m.tool_call_id for m in self._messages[i + 1 :] if m.role is Role.TOOL}
                return [tc.id for tc in message.tool_calls if tc.id not in answered]
            if message.role is Role.USER:
                return []
        return []

    async def add_message(self, message: ChatMessage | Mapping[str, Any]) -> ChatMessage:
        """Append a message (a dict or ``ChatMessage``) and trim. Returns it as a
        ``ChatMessage``. A tool result must answer a pending tool call, and a new user or
        assistant message must wait until every pending tool call has its result."""
        (normalized,) = normalize_messages([message])
        self._check_order(normalized)
        self._append(normalized)
        self._trim()
        return normalized

    async def add_messages(self, messages: Iterable[ChatMessage | Mapping[str, Any]]) -> None:
        """``add_message`` for each message, in order."""
        for message in messages:
            await self.add_message(message)

    def clear(self) -> None:
        """Forget the history (the configured system prompt stays); usage totals stay."""
        self._messages.clear()
        self._tokens.clear()

    def _check_order(self, message: ChatMessage) -> None:
        pending = self.pending_tool_calls()
        if message.role is Role.TOOL:
            if message.tool_call_id not in pending:
                raise ValueError(
                    f"tool result for {message.tool_call_id!r} answers no pending tool call "
                    f"(pending: {pending or 'none'})"
                )
        elif message.role is not Role.SYSTEM and pending:
            raise ValueError(
                f"the assistant's tool calls {pending} have no results yet; add a "
                "{'role': 'tool', 'tool_call_id': ..., 'content': ...} message for each first"
            )

    def _append(self, message: ChatMessage) -> None:
        self._messages.append(message)
        self._tokens.append(None)

    # -- trimming --------------------------------------------------------------------------

    def _turn_starts(self) -> list[int]:
        """Indexes where a turn starts: each user message (and the first message if the
        history opens with something else)."""
        starts: list[int] = []
        for i, message in enumerate(self._messages):
            if message.role is Role.SYSTEM:
                continue
            if message.role is Role.USER or not starts:
                starts.append(i)
        return starts

    def _count_model(self) -> str | None:
        if self.config.model:
            return self.config.model
        client_config = getattr(self.llm_client, "config", None)
        model = getattr(client_config, "model", None)
        return model if isinstance(model, str) else None

    def _counter(self) -> Any:
        if self._token_counter is None:
            from lexigram.ai.llm.tokens import shared_registry

            self._token_counter = shared_registry()
        return self._token_counter

    def _message_tokens(self, index: int) -> int:
        cached = self._tokens[index]
        if cached is None:
            cached = int(self._counter().count_message(self._messages[index], self._count_model()))
            self._tokens[index] = cached
        return cached

    def prompt_tokens(self) -> int:
        """Tokens the next prompt costs, as counted for the trimming budget."""
        return self._fixed_tokens() + sum(
            self._message_tokens(i)
            for i, m in enumerate(self._messages)
            if m.role is not Role.SYSTEM
        )

    def _fixed_tokens(self) -> int:
        counter = self._counter()
        model = self._count_model()
        prompt = self.config.system_prompt
        if self._system_tokens is None or self._system_tokens[0] != (prompt, model):
            tokens = int(counter.count_message(ChatMessage.system(prompt), model)) if prompt else 0
            self._system_tokens = ((prompt, model), tokens)
        pinned = sum(
            self._message_tokens(i) for i, m in enumerate(self._messages) if m.role is Role.SYSTEM
        )
        tools = tuple(self.tools)
        if self._tool_tokens is None or self._tool_tokens[0] != (tools, model):
            tokens = (
                int(counter.count_messages([], model, tools=tools))
                - int(counter.count_messages([], model))
                if tools
                else 0
            )
            self._tool_tokens = ((tools, model), tokens)
        # 3: the reply priming every prompt pays
        return self._system_tokens[1] + self._tool_tokens[1] + pinned + 3

    def _trim(self) -> None:
        starts = self._turn_starts()
        if len(starts) <= 1:
            return
        keep_from = 0
        max_turns = self.config.max_turns
        if max_turns is not None and len(starts) > max_turns:
            keep_from = len(starts) - max_turns
        budget = self.config.max_tokens
        if budget is not None:
            total = self._fixed_tokens()
            bounds = [*starts, len(self._messages)]
            turn_cost = [
                sum(
                    self._message_tokens(i)
                    for i in range(bounds[t], bounds[t + 1])
                    if self._messages[i].role is not Role.SYSTEM
                )
                for t in range(len(starts))
            ]
            total += sum(turn_cost[keep_from:])
            while keep_from < len(starts) - 1 and total > budget:
                total -= turn_cost[keep_from]
                keep_from += 1
        if keep_from == 0:
            return
        cut = starts[keep_from]
        kept = [
            (m, t)
            for i, (m, t) in enumerate(zip(self._messages, self._tokens, strict=True))
            if i >= cut or m.role is Role.SYSTEM
        ]
        self._messages = [m for m, _ in kept]
        self._tokens = [t for _, t in kept]

    # -- answers ---------------------------------------------------------------------------

    def _call_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.llm_client is None:
            raise ValueError("this ConversationManager has no llm_client")
        if not any(m.role is not Role.SYSTEM for m in self._messages):
            raise ValueError("add a message before asking for a response")
        pending = self.pending_tool_calls()
        if pending:
            raise ValueError(f"the tool calls {pending} need their results before a response")
        call = dict(kwargs)
        if self.config.model and "model" not in call:
            call["model"] = self.config.model
        if self.tools and "tools" not in call:
            call["tools"] = self.tools
        if self.config.response_max_tokens and "max_tokens" not in call:
            call["max_tokens"] = self.config.response_max_tokens
        return call

    def _record(self, completion: Completion) -> None:
        self.last_completion = completion
        self.responses += 1
        self.usage = self.usage + completion.usage
        if completion.cost is not None:
            self.cost = (self.cost or 0.0) + completion.cost
        # An empty answer is not kept: providers reject empty assistant turns.
        if completion.content or completion.tool_calls:
            self._append(completion.to_message())
            self._trim()

    async def get_response(self, **kwargs: Any) -> Result[Completion, LLMError]:
        """Ask the client for the next answer; on ``Ok`` it is appended to the history (tool
        calls and thinking blocks included) and counted in ``usage``."""
        call = self._call_kwargs(kwargs)
        result: Result[Completion, LLMError] = await self.llm_client.complete(self.messages, **call)
        if isinstance(result, Ok):
            self._record(result.value)
        return result

    def stream_response(self, **kwargs: Any) -> ChatStream:
        """The next answer as a stream; once it finishes it is appended like ``get_response``'s.
        A stream that fails or is abandoned leaves the history unchanged."""
        call = self._call_kwargs(kwargs)
        messages = self.messages
        client = self.llm_client
        provider = str(getattr(client, "provider_name", "") or "")
        model = str(call.get("model") or self._count_model() or "")

        async def chunks() -> AsyncIterator[Any]:
            source = client.stream_chat(messages, **call)
            accumulator = StreamAccumulator()
            try:
                async for chunk in source:
                    accumulator.add(chunk)
                    yield chunk
            finally:
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await aclose()
            self._record(accumulator.to_completion(provider, model))

        return ChatStream(chunks, provider=provider, model=model)

    async def run_tools(
        self, tools: Sequence[Any] | None = None, **kwargs: Any
    ) -> Result[ToolRun, LLMError]:
        """A tool turn: ``lexigram.ai.llm.run_tools`` from the current history, with
        ``tools`` (default: ``manager.tools``, which must then be runnable: functions or
        ``Tool`` objects). Every message of the turn (calls, results, answer) is appended and
        every step counted in ``usage``; a loop that stopped early (step limit, failures, a
        provider error after some tools ran) keeps what ran, so the history stays valid."""
        from lexigram.ai.llm.exceptions import ToolLoopError
        from lexigram.ai.llm.tools import run_tools

        call = self._call_kwargs(kwargs)
        offered = call.pop("tools", None)
        runnable = list(tools) if tools is not None else list(offered or ())
        sent = self.messages
        result: Result[ToolRun, LLMError] = await run_tools(self.llm_client, sent, runnable, **call)
        if isinstance(result, Ok):
            run: ToolRun | None = result.value
        elif isinstance(result.error, ToolLoopError):
            run = result.error.run
        else:
            run = result.error.details.get("tool_run")
        if run is not None:
            self._record_run(run, len(sent))
        return result

    def _record_run(self, run: ToolRun, sent: int) -> None:
        for step in run.steps:
            self.last_completion = step.completion
            self.responses += 1
            self.usage = self.usage + step.completion.usage
            if step.completion.cost is not None:
                self.cost = (self.cost or 0.0) + step.completion.cost
        for message in run.messages[sent:]:
            # An empty answer is not kept: providers reject empty assistant turns.
            if message.role is Role.ASSISTANT and not (message.content or message.tool_calls):
                continue
            self._append(message)
        self._trim()  # once the whole turn is in: calls and results are never split

    # -- export / import -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready snapshot: config, kept messages, usage totals."""
        return {
            "version": _FORMAT_VERSION,
            "config": self.config.model_dump(),
            "messages": [m.to_dict() for m in self._messages],
            "usage": dataclasses.asdict(self.usage),
            "cost": self.cost,
            "responses": self.responses,
        }

    def to_json(self) -> str:
        """``to_dict`` as JSON text."""
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2).decode()

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        llm_client: Any = None,
        *,
        token_counter: Any = None,
    ) -> ConversationManager:
        """A manager restored from ``to_dict`` output."""
        version = data.get("version")
        if version != _FORMAT_VERSION:
            raise ValueError(f"unsupported conversation format version {version!r}")
        manager = cls(
            ConversationConfig.model_validate(data.get("config") or {}),
            llm_client,
            token_counter=token_counter,
        )
        try:
            messages = normalize_messages(data.get("messages") or ())
            usage = Usage(**(data.get("usage") or {}))
        except (TypeError, ValueError) as exc:  # a wrong shape in the export
            raise ValueError(f"not a conversation export: {exc}") from None
        for message in messages:
            manager._append(message)
        manager.usage = usage
        manager.cost = data.get("cost")
        manager.responses = int(data.get("responses") or 0)
        return manager

    @classmethod
    def from_json(
        cls, text: str | bytes, llm_client: Any = None, *, token_counter: Any = None
    ) -> ConversationManager:
        """A manager restored from ``to_json`` output."""
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not a conversation export: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValueError("not a conversation export: expected a JSON object")
        return cls.from_dict(data, llm_client, token_counter=token_counter)
