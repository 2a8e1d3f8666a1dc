"""The clients under test, each driven the way its own documentation shows.

Every adapter does the same three things with its library's native loop, so no shared wrapper
adds cost to one client and not another:

* ``complete()`` one non-streamed answer, returned as text;
* ``stream_text(on_first)`` one streamed answer, joined from its content deltas, calling
  ``on_first()`` when the first content arrives;
* ``stream_hold(opened, release)`` open a stream, read to its first content, call ``opened()``,
  keep it open until ``release`` is set, then close it.

Libraries are imported in ``start`` so that building the list costs nothing. Each client uses
its library's default connection pool unless ``pool`` is given (the memory probe opens 1,000
streams at once and gives every client room for them).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

from bench.payloads import ANTHROPIC_MODEL, HOLD_MODEL, OPENAI_MODEL, PROMPT

__all__ = ["ADAPTERS", "Adapter", "available_adapters"]

_SYSTEM = PROMPT[0]["content"]
_USER_ONLY = PROMPT[1:]
_MAX_TOKENS = 1024
_KEY = "sk-bench-not-a-real-key"


class Adapter:
    """Base: a name, the wire it speaks, and the three operations."""

    #: Short id used on the command line and in JSON output.
    id: str = ""
    #: Column title in the tables.
    title: str = ""
    #: ``openai``, ``anthropic`` or ``responses``: which fake route it talks to, and which raw
    #: baseline it is compared with.
    wire: str = "openai"
    #: Modules that must be importable for this adapter to run.
    requires: tuple[str, ...] = ()
    #: The model asked for (a real name on each wire).
    model: str = OPENAI_MODEL

    def __init__(self, base_url: str, *, pool: int | None = None) -> None:
        self.base_url = base_url
        self.pool = pool

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this adapter cannot run here, or ``None``."""
        for module in cls.requires:
            try:
                if importlib.util.find_spec(module) is None:
                    return f"{module} is not installed"
            except ModuleNotFoundError:
                return f"{module} is not installed"
        return None

    async def start(self) -> None:
        """Import the library and build the client (not measured)."""

    async def close(self) -> None:
        """Release connections."""

    async def complete(self) -> str:
        raise NotImplementedError

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        raise NotImplementedError

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        raise NotImplementedError


# -- lexigram --------------------------------------------------------------------------------


class Lexigram(Adapter):
    """Our client, built the way the guide shows (``create_llm_client(ClientConfig(...))``)."""

    id = "lexigram"
    title = "lexigram"
    wire = "openai"
    provider = "openai"
    requires: tuple[str, ...] = ("lexigram.ai.llm",)

    def _api_base(self) -> str:
        return self.base_url + "/v1"

    async def start(self) -> None:
        from pydantic import SecretStr

        from lexigram.ai.llm import ClientConfig, create_llm_client

        extra: dict[str, Any] = {}
        if self.pool is not None:
            extra["max_connections"] = self.pool
        self.llm = create_llm_client(
            ClientConfig(
                provider=self.provider,
                model=self.model,
                api_key=SecretStr(_KEY),
                api_base=self._api_base(),
                max_tokens=_MAX_TOKENS,
                **extra,
            )
        )

    async def close(self) -> None:
        await self.llm.close()

    async def complete(self) -> str:
        result = await self.llm.complete(PROMPT, model=self.model)
        return result.unwrap().content

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        async for chunk in self.llm.stream_chat(PROMPT, model=self.model):
            if chunk.delta:
                if not pieces:
                    on_first()
                pieces.append(chunk.delta)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        stream = self.llm.stream_chat(PROMPT, model=HOLD_MODEL)
        try:
            async for chunk in stream:
                if chunk.delta:
                    break
            opened()
            await release.wait()
        finally:
            await stream.aclose()


class LexigramAnthropic(Lexigram):
    """Our client on the Anthropic Messages wire."""

    id = "lexigram-anthropic"
    title = "lexigram"
    wire = "anthropic"
    model = ANTHROPIC_MODEL
    provider = "anthropic"
    requires = ("lexigram.ai.llm", "lexigram.ai.llm.providers.anthropic")

    def _api_base(self) -> str:
        return self.base_url  # Anthropic's base URL is the host root, as in its SDK


# -- raw aiohttp + orjson --------------------------------------------------------------------


class RawAiohttp(Adapter):
    """The floor: one ``aiohttp.ClientSession``, ``orjson``, and a line loop over the SSE body.
    No types, no policies, no error mapping."""

    id = "aiohttp"
    title = "raw aiohttp+orjson"
    wire = "openai"
    requires = ("aiohttp", "orjson")

    async def start(self) -> None:
        import aiohttp
        import orjson

        self._dumps = orjson.dumps
        self._loads = orjson.loads
        connector = aiohttp.TCPConnector(limit=self.pool if self.pool is not None else 100)
        self.session = aiohttp.ClientSession(connector=connector)
        self.url = self.base_url + "/v1/chat/completions"
        self.headers = {"Authorization": f"Bearer {_KEY}", "Content-Type": "application/json"}

    async def close(self) -> None:
        await self.session.close()

    def _body(self, model: str, stream: bool) -> bytes:
        body: dict[str, Any] = {"model": model, "messages": PROMPT, "max_tokens": _MAX_TOKENS}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return self._dumps(body)

    async def complete(self) -> str:
        async with self.session.post(
            self.url, data=self._body(self.model, False), headers=self.headers
        ) as response:
            data = self._loads(await response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        content: str = data["choices"][0]["message"]["content"]
        return content

    @staticmethod
    def _piece(event: Any) -> str | None:
        choices = event.get("choices")
        if choices:
            content: str | None = choices[0]["delta"].get("content")
            return content
        return None

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        loads = self._loads
        async with self.session.post(
            self.url, data=self._body(self.model, True), headers=self.headers
        ) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                data = line[6:].rstrip()
                if data == b"[DONE]":
                    break
                piece = self._piece(loads(data))
                if piece:
                    if not pieces:
                        on_first()
                    pieces.append(piece)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        async with self.session.post(
            self.url, data=self._body(HOLD_MODEL, True), headers=self.headers
        ) as response:
            async for line in response.content:
                if line.startswith(b"data: ") and self._piece(self._loads(line[6:].rstrip())):
                    break
            opened()
            await release.wait()
            response.close()


class RawAiohttpAnthropic(RawAiohttp):
    """The floor on the Anthropic wire."""

    id = "aiohttp-anthropic"
    wire = "anthropic"
    model = ANTHROPIC_MODEL

    async def start(self) -> None:
        await super().start()
        self.url = self.base_url + "/v1/messages"
        self.headers = {
            "x-api-key": _KEY,
            "anthropic-version": "2023-06-01",
            "Content-Type": "application/json",
        }

    def _body(self, model: str, stream: bool) -> bytes:
        body: dict[str, Any] = {
            "model": model,
            "system": _SYSTEM,
            "messages": _USER_ONLY,
            "max_tokens": _MAX_TOKENS,
        }
        if stream:
            body["stream"] = True
        return self._dumps(body)

    async def complete(self) -> str:
        async with self.session.post(
            self.url, data=self._body(self.model, False), headers=self.headers
        ) as response:
            data = self._loads(await response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return "".join(b["text"] for b in data["content"] if b["type"] == "text")

    @staticmethod
    def _piece(event: Any) -> str | None:
        if event.get("type") == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                text: str = delta["text"]
                return text
        return None

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        loads = self._loads
        async with self.session.post(
            self.url, data=self._body(self.model, True), headers=self.headers
        ) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                event = loads(line[6:])
                piece = self._piece(event)
                if piece:
                    if not pieces:
                        on_first()
                    pieces.append(piece)
                elif event.get("type") == "message_stop":
                    break
        return "".join(pieces)


# -- official SDKs ---------------------------------------------------------------------------


class OpenAISDK(Adapter):
    """``openai.AsyncOpenAI`` with its defaults."""

    id = "openai-sdk"
    title = "openai SDK"
    wire = "openai"
    requires = ("openai",)

    async def start(self) -> None:
        import openai

        # Typed as Any: the SDK's overloads are not what this file is about.
        self.client: Any = openai.AsyncOpenAI(api_key=_KEY, base_url=self.base_url + "/v1")

    async def close(self) -> None:
        await self.client.close()

    async def complete(self) -> str:
        response = await self.client.chat.completions.create(
            model=self.model,
            messages=PROMPT,
            max_tokens=_MAX_TOKENS,
        )
        return response.choices[0].message.content or ""

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=PROMPT,
            max_tokens=_MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not pieces:
                    on_first()
                pieces.append(chunk.choices[0].delta.content)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        stream = await self.client.chat.completions.create(
            model=HOLD_MODEL,
            messages=PROMPT,
            max_tokens=_MAX_TOKENS,
            stream=True,
        )
        try:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            opened()
            await release.wait()
        finally:
            await stream.close()


class AnthropicSDK(Adapter):
    """``anthropic.AsyncAnthropic`` with its defaults."""

    id = "anthropic-sdk"
    title = "anthropic SDK"
    wire = "anthropic"
    model = ANTHROPIC_MODEL
    requires = ("anthropic",)

    async def start(self) -> None:
        import anthropic

        self.client: Any = anthropic.AsyncAnthropic(api_key=_KEY, base_url=self.base_url)

    async def close(self) -> None:
        await self.client.close()

    async def complete(self) -> str:
        message = await self.client.messages.create(
            model=self.model,
            system=_SYSTEM,
            messages=_USER_ONLY,
            max_tokens=_MAX_TOKENS,
        )
        return "".join(b.text for b in message.content if b.type == "text")

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        stream = await self.client.messages.create(
            model=self.model,
            system=_SYSTEM,
            messages=_USER_ONLY,
            max_tokens=_MAX_TOKENS,
            stream=True,
        )
        async for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                if not pieces:
                    on_first()
                pieces.append(event.delta.text)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        stream = await self.client.messages.create(
            model=HOLD_MODEL,
            system=_SYSTEM,
            messages=_USER_ONLY,
            max_tokens=_MAX_TOKENS,
            stream=True,
        )
        try:
            async for event in stream:
                if event.type == "content_block_delta":
                    break
            opened()
            await release.wait()
        finally:
            await stream.close()


class LiteLLM(Adapter):
    """``litellm.acompletion`` against the OpenAI route (``openai/<model>``, ``api_base``)."""

    id = "litellm"
    title = "LiteLLM"
    wire = "openai"
    requires = ("litellm",)

    async def start(self) -> None:
        import litellm

        self._acompletion = litellm.acompletion
        self._api_base = self.base_url + "/v1"

    async def complete(self) -> str:
        response = await self._acompletion(
            model=f"openai/{self.model}",
            messages=PROMPT,
            api_base=self._api_base,
            api_key=_KEY,
            max_tokens=_MAX_TOKENS,
        )
        content: str = response.choices[0].message.content or ""
        return content

    async def _open(self, model: str) -> Any:
        return await self._acompletion(
            model=f"openai/{model}",
            messages=PROMPT,
            api_base=self._api_base,
            api_key=_KEY,
            max_tokens=_MAX_TOKENS,
            stream=True,
        )

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        async for chunk in await self._open(self.model):
            if chunk.choices and chunk.choices[0].delta.content:
                if not pieces:
                    on_first()
                pieces.append(chunk.choices[0].delta.content)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        stream = await self._open(HOLD_MODEL)
        iterator = stream.__aiter__()
        while True:
            chunk = await iterator.__anext__()
            if chunk.choices and chunk.choices[0].delta.content:
                break
        opened()
        await release.wait()
        close = getattr(stream, "aclose", None) or getattr(stream, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                await result


# -- the OpenAI Responses wire ---------------------------------------------------------------


class LexigramResponses(Lexigram):
    """Our client on the OpenAI Responses wire (provider ``openai_responses``)."""

    id = "lexigram-responses"
    wire = "responses"
    provider = "openai_responses"
    requires = ("lexigram.ai.llm", "lexigram.ai.llm.providers.responses")


class RawAiohttpResponses(RawAiohttp):
    """The floor on the Responses wire."""

    id = "aiohttp-responses"
    wire = "responses"

    async def start(self) -> None:
        await super().start()
        self.url = self.base_url + "/v1/responses"

    def _body(self, model: str, stream: bool) -> bytes:
        body: dict[str, Any] = {
            "model": model,
            "instructions": _SYSTEM,
            "input": _USER_ONLY,
            "max_output_tokens": _MAX_TOKENS,
            "store": False,
        }
        if stream:
            body["stream"] = True
        return self._dumps(body)

    async def complete(self) -> str:
        async with self.session.post(
            self.url, data=self._body(self.model, False), headers=self.headers
        ) as response:
            data = self._loads(await response.read())
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return "".join(
            part["text"]
            for item in data["output"]
            if item["type"] == "message"
            for part in item["content"]
            if part["type"] == "output_text"
        )

    @staticmethod
    def _piece(event: Any) -> str | None:
        if event.get("type") == "response.output_text.delta":
            delta: str = event["delta"]
            return delta
        return None

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        loads = self._loads
        async with self.session.post(
            self.url, data=self._body(self.model, True), headers=self.headers
        ) as response:
            async for line in response.content:
                if not line.startswith(b"data: "):
                    continue
                event = loads(line[6:])
                piece = self._piece(event)
                if piece:
                    if not pieces:
                        on_first()
                    pieces.append(piece)
                elif event.get("type") == "response.completed":
                    break
        return "".join(pieces)


class OpenAISDKResponses(OpenAISDK):
    """``openai.AsyncOpenAI().responses.create`` with its defaults."""

    id = "openai-sdk-responses"
    wire = "responses"

    async def complete(self) -> str:
        response = await self.client.responses.create(
            model=self.model,
            instructions=_SYSTEM,
            input=_USER_ONLY,
            max_output_tokens=_MAX_TOKENS,
            store=False,
        )
        text: str = response.output_text
        return text

    async def _events(self, model: str) -> Any:
        return await self.client.responses.create(
            model=model,
            instructions=_SYSTEM,
            input=_USER_ONLY,
            max_output_tokens=_MAX_TOKENS,
            store=False,
            stream=True,
        )

    async def stream_text(self, on_first: Callable[[], None]) -> str:
        pieces: list[str] = []
        async for event in await self._events(self.model):
            if event.type == "response.output_text.delta" and event.delta:
                if not pieces:
                    on_first()
                pieces.append(event.delta)
        return "".join(pieces)

    async def stream_hold(self, opened: Callable[[], None], release: asyncio.Event) -> None:
        stream = await self._events(HOLD_MODEL)
        try:
            async for event in stream:
                if event.type == "response.output_text.delta" and event.delta:
                    break
            opened()
            await release.wait()
        finally:
            await stream.close()


#: Every adapter, in table column order.
ADAPTERS: tuple[type[Adapter], ...] = (
    Lexigram,
    RawAiohttp,
    OpenAISDK,
    LiteLLM,
    LexigramAnthropic,
    RawAiohttpAnthropic,
    AnthropicSDK,
    LexigramResponses,
    RawAiohttpResponses,
    OpenAISDKResponses,
)


def available_adapters(
    wanted: set[str] | None = None,
) -> tuple[list[type[Adapter]], dict[str, str]]:
    """The adapters that can run here, and a note for each one skipped."""
    runnable: list[type[Adapter]] = []
    skipped: dict[str, str] = {}
    for adapter in ADAPTERS:
        if wanted is not None and adapter.id not in wanted:
            continue
        reason = adapter.unavailable()
        if reason is None:
            runnable.append(adapter)
        else:
            skipped[adapter.id] = reason
    return runnable, skipped
