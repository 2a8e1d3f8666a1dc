"""Middleware and OpenTelemetry GenAI spans/metrics, over real HTTP on loopback.

The OTel SDK's in-memory exporters record what the middleware emits; providers are passed to
``OpenTelemetryMiddleware`` so no test touches the process-wide OTel globals (the one test
of the zero-config path runs in a subprocess)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from harness.openai_server import OpenAIServer
from harness.server import Reply
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from lexigram import Application
from lexigram.ai.llm import (
    CallInfo,
    ClientConfig,
    LLMCache,
    LLMModule,
    Middleware,
    MiddlewareError,
    OpenTelemetryMiddleware,
    create_llm_client,
)
from lexigram.ai.llm.exceptions import LLMAuthenticationError
from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
from lexigram.ai.llm.types import ChatMessage, ChatRequest, Completion, StreamChunk
from lexigram.contracts.ai import LLMClientProtocol
from lexigram.result import Err, Ok

KEY = "sk-telemetry-secret-0123456789"


class Otel:
    def __init__(self, *, capture_content: bool | None = None) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.middleware = OpenTelemetryMiddleware(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.metrics]),
            capture_content=capture_content,
        )

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def metric_points(self, name: str) -> list[Any]:
        data = self.metrics.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    srv = OpenAIServer()
    await srv.start()
    yield srv
    await srv.stop()


def config(server: OpenAIServer, **overrides: Any) -> ClientConfig:
    values: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "api_key": KEY,
        "api_base": server.url + "/v1",
        "retry_base_delay": 0.001,
        "retry_max_delay": 0.002,
        "telemetry": False,  # only the middleware each test passes
        **overrides,
    }
    return ClientConfig(**values)


async def test_complete_span_attributes_and_metrics(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(text="hi there", prompt_tokens=11, completion_tokens=5))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        result = await llm.complete(
            [{"role": "user", "content": "hello"}],
            temperature=0.2,
            max_tokens=50,
            top_p=0.9,
            stop_sequences=["END"],
        )
    completion = result.unwrap()
    [span] = otel.finished()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    attrs = dict(span.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == completion.model
    assert attrs["gen_ai.response.id"] == completion.id
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 5
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.stop_sequences"] == ("END",)
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == int(server.url.rsplit(":", 1)[1])
    if completion.cost is not None:
        assert attrs["lexigram.cost.usd"] == completion.cost
    assert "error.type" not in attrs
    assert "gen_ai.input.messages" not in attrs  # content is off by default
    assert span.status.status_code is StatusCode.UNSET
    [duration] = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.attributes["gen_ai.provider.name"] == "openai"
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in otel.metric_points(
        "gen_ai.client.token.usage")}  # fmt: skip
    assert tokens == {"input": 11, "output": 5}
    assert KEY not in json.dumps({k: str(v) for k, v in attrs.items()})


async def test_stream_span_and_time_to_first_chunk(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(text="streamed answer here", prompt_tokens=9, completion_tokens=4))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        text = await llm.stream_chat([{"role": "user", "content": "go"}]).text()
    assert text.unwrap() == "streamed answer here"
    [span] = otel.finished()
    attrs = dict(span.attributes)
    assert span.name == "chat gpt-4o-mini"
    assert attrs["lexigram.stream"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 9
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["lexigram.time_to_first_chunk_s"] > 0
    [ttfc] = otel.metric_points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1


async def test_error_span(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(error="auth"))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        result = await llm.complete([{"role": "user", "content": "hello"}])
    assert isinstance(result, Err) and isinstance(result.error, LLMAuthenticationError)
    [span] = otel.finished()
    assert span.attributes["error.type"] == "LLMAuthenticationError"
    assert span.status.status_code is StatusCode.ERROR
    [duration] = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "LLMAuthenticationError"
    assert otel.metric_points("gen_ai.client.token.usage") == []


async def test_stream_error_span(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(text="cut short, never finished", cut_after=2))
    async with create_llm_client(
        config(server, max_retries=0), middleware=[otel.middleware]
    ) as llm:
        result = await llm.stream_chat([{"role": "user", "content": "go"}]).completion()
    assert isinstance(result, Err)
    [span] = otel.finished()
    assert span.attributes["error.type"] == type(result.error).__qualname__
    assert span.status.status_code is StatusCode.ERROR


async def test_retry_events(server: OpenAIServer) -> None:
    otel = Otel()
    seen: list[int] = []

    class Retries(Middleware):
        async def on_retry(self, call: CallInfo, attempt: int, error: Any, delay: float) -> None:
            seen.append(attempt)

    server.script(Reply(error="server"), Reply(error="overloaded"), Reply(text="third time"))
    async with create_llm_client(config(server), middleware=[otel.middleware, Retries()]) as llm:
        result = await llm.complete([{"role": "user", "content": "hello"}])
    assert result.unwrap().content == "third time"
    assert seen == [1, 2]
    [span] = otel.finished()
    events = [e for e in span.events if e.name == "gen_ai.client.retry"]
    assert [e.attributes["lexigram.retry.attempt"] for e in events] == [1, 2]
    assert events[0].attributes["error.type"] == "ProviderError"
    assert span.attributes["lexigram.attempts"] == 3
    assert "error.type" not in span.attributes


async def test_stream_retry_event(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(error="server"), Reply(text="ok now"))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        text = await llm.stream_chat([{"role": "user", "content": "go"}]).text()
    assert text.unwrap() == "ok now"
    [span] = otel.finished()
    assert [e.name for e in span.events] == ["gen_ai.client.retry"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_router_fallback_route_events(streamed: bool) -> None:
    otel = Otel()
    first, second = OpenAIServer(), OpenAIServer()
    await first.start()
    await second.start()
    try:
        first.script(Reply(error="server"))
        second.script(Reply(text="second answers"))
        routing = LLMConfig(
            providers=[
                ProviderRoute(
                    name=f"r{i}",
                    provider="openai",
                    model=f"model-{i}",
                    base_url=srv.url + "/v1",
                    api_key=KEY,
                )
                for i, srv in enumerate((first, second))
            ]
        )
        router = LLMRouter.from_config(
            routing,
            default=ClientConfig(provider="openai", telemetry=False, max_retries=0),
            middleware=[otel.middleware],
        )
        async with router:
            messages = [{"role": "user", "content": "hello"}]
            if streamed:
                result = await router.stream_chat(messages).completion()
            else:
                result = await router.complete(messages)
    finally:
        await first.stop()
        await second.stop()
    assert result.unwrap().content == "second answers"
    [span] = otel.finished()
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.response.model"] == "model-1"
    routes = [e for e in span.events if e.name == "gen_ai.client.route"]
    assert [(e.attributes["lexigram.route.route"], e.attributes["lexigram.route.outcome"])
            for e in routes] == [("r0", "error"), ("r1", "ok")]  # fmt: skip


async def test_cache_hit_marked(server: OpenAIServer) -> None:
    otel = Otel()
    server.script(Reply(text="cached answer"))
    async with create_llm_client(
        config(server), middleware=[otel.middleware], cache=LLMCache()
    ) as llm:
        messages = [{"role": "user", "content": "same question"}]
        first = await llm.complete(messages, temperature=0)
        second = await llm.complete(messages, temperature=0)
        streamed = await llm.stream_chat(messages, temperature=0).text()
    assert first.unwrap().content == second.unwrap().content == streamed.unwrap()
    assert len(server.requests) == 1
    spans = otel.finished()
    assert [s.attributes.get("lexigram.cache.hit", False) for s in spans] == [False, True, True]
    # Tokens of an answer served from the cache were not used again.
    tokens = otel.metric_points("gen_ai.client.token.usage")
    assert sum(p.count for p in tokens) == 2


@pytest.mark.parametrize("how", ["flag", "env", "off"])
async def test_content_captured_only_when_asked(
    server: OpenAIServer, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "env":
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    otel = Otel(capture_content=True if how == "flag" else None)
    server.script(Reply(text="the answer"))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        await llm.complete(
            [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "the question"},
            ]
        )
    [span] = otel.finished()
    attrs = dict(span.attributes)
    if how == "off":
        assert not any(k.startswith(("gen_ai.input", "gen_ai.output.messages")) for k in attrs)
        assert "gen_ai.system_instructions" not in attrs
        return
    assert json.loads(attrs["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "the question"}]}
    ]
    assert json.loads(attrs["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be brief"}
    ]
    [out] = json.loads(attrs["gen_ai.output.messages"])
    assert out["parts"] == [{"type": "text", "content": "the answer"}]
    assert out["finish_reason"] == "stop"
    assert KEY not in json.dumps({k: str(v) for k, v in attrs.items()})


async def test_captured_content_never_holds_the_clients_key(server: OpenAIServer) -> None:
    otel = Otel(capture_content=True)
    server.script(Reply(text=f"you said {KEY}"))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        await llm.complete([{"role": "user", "content": f"my key is {KEY}, keep it"}])
    [span] = otel.finished()
    captured = span.attributes["gen_ai.input.messages"] + span.attributes["gen_ai.output.messages"]
    assert KEY not in captured
    assert "my key is ***, keep it" in captured and "you said ***" in captured


async def test_semconv_opt_in_drops_deprecated_names(
    server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    otel = Otel()
    server.script(Reply(text="x"))
    async with create_llm_client(config(server), middleware=[otel.middleware]) as llm:
        await llm.complete([{"role": "user", "content": "q"}])
    assert otel.finished()[0].attributes["gen_ai.system"] == "openai"
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai_latest_experimental")
    latest = Otel()
    async with create_llm_client(config(server), middleware=[latest.middleware]) as llm:
        await llm.complete([{"role": "user", "content": "q"}])
    [span] = latest.finished()
    assert "gen_ai.system" not in span.attributes
    assert span.attributes["gen_ai.provider.name"] == "openai"


# -- middleware ------------------------------------------------------------------------------


class Rewrite(Middleware):
    """Redacts a word and prefixes a system prompt; records what it saw."""

    def __init__(self) -> None:
        self.chunks = 0
        self.streamed: list[Completion] = []
        self.completed: list[Completion] = []

    async def before_request(self, call: CallInfo, request: ChatRequest) -> ChatRequest:
        messages = tuple(
            replace(m, content=m.content.replace("secret-word", "[redacted]"))
            if isinstance(m.content, str)
            else m
            for m in request.messages
        )
        return replace(request, messages=(ChatMessage.system("prefix"), *messages))

    async def after_completion(self, call: CallInfo, completion: Completion) -> Completion:
        self.completed.append(completion)
        return replace(completion, content=completion.content.upper())

    def on_chunk(self, call: CallInfo, chunk: StreamChunk) -> None:
        self.chunks += 1

    async def after_stream(self, call: CallInfo, completion: Completion) -> None:
        self.streamed.append(completion)


async def test_middleware_rewrites_request_and_response(server: OpenAIServer) -> None:
    rewrite = Rewrite()
    server.script(Reply(text="fine"))
    async with create_llm_client(config(server), middleware=[rewrite]) as llm:
        result = await llm.complete([{"role": "user", "content": "my secret-word is here"}])
        stream = llm.stream_chat([{"role": "user", "content": "again secret-word"}])
        streamed = await stream.text()
    assert result.unwrap().content == "FINE"
    assert streamed.unwrap() == "fine"  # after_completion is for complete(); streams observe
    sent = [r.json["messages"] for r in server.requests]
    assert sent[0] == [
        {"role": "system", "content": "prefix"},
        {"role": "user", "content": "my [redacted] is here"},
    ]
    assert sent[1][1] == {"role": "user", "content": "again [redacted]"}
    assert rewrite.chunks >= 2
    [folded] = rewrite.streamed
    assert folded.content == "fine" and folded.usage.prompt_tokens == 12


async def test_middleware_order(server: OpenAIServer) -> None:
    order: list[str] = []

    class Tag(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def before_request(self, call: CallInfo, request: ChatRequest) -> None:
            order.append(f"before {self.name}")

        async def after_completion(self, call: CallInfo, completion: Completion) -> None:
            order.append(f"after {self.name}")

    async with create_llm_client(config(server), middleware=[Tag("a"), Tag("b")]) as llm:
        (await llm.complete([{"role": "user", "content": "q"}])).unwrap()
    assert order == ["before a", "before b", "after b", "after a"]


@pytest.mark.parametrize("hook", ["before_request", "after_completion", "on_chunk", "on_retry"])
async def test_raising_middleware_is_a_typed_error(server: OpenAIServer, hook: str) -> None:
    errors: list[Any] = []

    class Boom(Middleware):
        async def on_error(self, call: CallInfo, error: Any) -> None:
            errors.append(error)

    async def boom(*args: Any) -> None:
        raise RuntimeError("kaput")

    def boom_sync(*args: Any) -> None:
        raise RuntimeError("kaput")

    setattr(Boom, hook, boom_sync if hook == "on_chunk" else boom)
    server.script(Reply(error="server"), Reply(text="ok"))
    async with create_llm_client(config(server), middleware=[Boom()]) as llm:
        if hook == "on_chunk":
            result = await llm.stream_chat([{"role": "user", "content": "q"}]).completion()
        else:
            result = await llm.complete([{"role": "user", "content": "q"}])
    assert isinstance(result, Err), result
    error = result.error
    assert isinstance(error, MiddlewareError)
    assert error.details == {"middleware": "Boom", "hook": hook}
    assert "kaput" in str(error) and error.provider == "openai" and not error.retryable
    assert errors == [error]


async def test_not_a_middleware_is_refused(server: OpenAIServer) -> None:
    with pytest.raises(TypeError, match="not a middleware"):
        create_llm_client(config(server), middleware=[object()])


async def test_module_configures_middleware(server: OpenAIServer) -> None:
    rewrite = Rewrite()
    server.script(Reply(text="via module"))
    module = LLMModule.configure(config(server), middleware=[rewrite])
    async with Application.boot(modules=[module]) as app:
        llm = await app.container.resolve(LLMClientProtocol)
        result = await llm.complete([{"role": "user", "content": "q"}])
    assert result.unwrap().content == "VIA MODULE"
    assert server.requests[0].json["messages"][0] == {"role": "system", "content": "prefix"}


async def test_debug_call_log_one_line_per_call(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(Reply(text="logged", prompt_tokens=3, completion_tokens=2))
    with caplog.at_level(logging.DEBUG, logger="lexigram.ai.llm.calls"):
        async with create_llm_client(config(server)) as llm:
            (await llm.complete([{"role": "user", "content": "hello"}])).unwrap()
            (await llm.stream_chat([{"role": "user", "content": "hello"}]).text()).unwrap()
    lines = [r for r in caplog.records if r.name == "lexigram.ai.llm.calls"]
    assert len(lines) == 2
    assert lines[0].getMessage().startswith("openai gpt-4o-mini tokens=3+2 ")
    assert lines[0].llm["input_tokens"] == 3 and lines[1].llm["stream"] is True  # type: ignore[attr-defined]
    assert all(KEY not in r.getMessage() for r in caplog.records)
    assert all("hello" not in r.getMessage() for r in caplog.records)


# -- zero configuration / zero cost ------------------------------------------------------------


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_does_not_load_opentelemetry() -> None:
    out = _run(
        "import sys, lexigram.ai.llm as m\n"
        "m.Middleware, m.ClientConfig, m.create_llm_client\n"
        "import lexigram.ai.llm.client\n"
        "print(sorted(k for k in sys.modules if k.startswith('opentelemetry')))"
    )
    assert out.strip() == "[]"


def test_global_sdk_needs_no_configuration(tmp_path: Any) -> None:
    """With an SDK tracer provider set globally, a plain client emits spans; before it is
    set (opentelemetry imported, no provider), none and no middleware. A router's span is
    the parent of each route's span."""
    code = f"""
import asyncio, sys
sys.path.insert(0, {str(__import__("pathlib").Path(__file__).parent)!r})
from harness.openai_server import OpenAIServer
from harness.server import Reply
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from lexigram.ai.llm import create_llm_client
from lexigram.ai.llm.middleware import default_chain

async def main():
    server = OpenAIServer(); await server.start()
    server.script(Reply(text="x"))
    from lexigram.ai.llm import ClientConfig
    cfg = ClientConfig(provider="openai", model="m", api_key="sk-x", api_base=server.url + "/v1")
    async with create_llm_client(cfg) as llm:
        assert default_chain(llm) is None
        (await llm.complete([{{"role": "user", "content": "q"}}])).unwrap()
        exporter = InMemorySpanExporter()
        provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        (await llm.complete([{{"role": "user", "content": "q"}}])).unwrap()
        off = create_llm_client(cfg.model_copy(update={{"telemetry": False}}))
        (await off.complete([{{"role": "user", "content": "q"}}])).unwrap()
        await off.close()
    print([s.name for s in exporter.get_finished_spans()])
    exporter.clear()
    # A router: its span, and each route tried a child span of it.
    from lexigram.ai.llm.routing import LLMConfig, LLMRouter, ProviderRoute
    down = OpenAIServer(); await down.start(); down.script(Reply(error="server"))
    routes = [ProviderRoute(name=n, provider="openai", model=n, base_url=u + "/v1", api_key="sk-x")
              for n, u in (("r0", down.url), ("r1", server.url))]
    router = LLMRouter.from_config(LLMConfig(providers=routes),
                                   default=ClientConfig(provider="openai", max_retries=0))
    async with router:
        (await router.complete([{{"role": "user", "content": "q"}}])).unwrap()
    spans = {{s.name: s for s in exporter.get_finished_spans()}}
    parent = spans["chat"]
    children = [spans[n].parent.span_id == parent.context.span_id for n in ("chat r0", "chat r1")]
    print(sorted(spans), children,
          spans["chat r0"].attributes["error.type"], parent.attributes["gen_ai.response.model"])
    await down.stop()
    await server.stop()
asyncio.run(main())
"""
    first, second = _run(code).strip().splitlines()
    assert first == "['chat m']"
    assert second == "['chat', 'chat r0', 'chat r1'] [True, True] ProviderError r1"


async def test_no_middleware_no_chain(
    server: OpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry import trace

    from lexigram.ai.llm.middleware import default_chain

    # Another test (an in-process CLI -v) may have left the call log enabled for DEBUG,
    # which adds the logging middleware: this test is about a client with nothing set.
    caplog.set_level(logging.WARNING, logger="lexigram.ai.llm.calls")
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    async with create_llm_client(config(server, telemetry=None)) as llm:
        assert llm._middleware is None
        assert default_chain(llm) is None  # opentelemetry imported, no global provider
        assert isinstance(await llm.complete([{"role": "user", "content": "q"}]), Ok)


async def test_cli_verbose_prints_one_line_per_call(server: OpenAIServer, tmp_path: Any) -> None:
    import asyncio
    import os

    server.script(Reply(text="Paris.", prompt_tokens=8, completion_tokens=2))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LEX_", "OPENAI_", "ANTHROPIC_", "OTEL_"))
    }
    env.update(OPENAI_API_KEY=KEY, HOME=str(tmp_path))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lexigram.ai.llm",
        "-v",
        "chat",
        "--provider",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--api-base",
        server.url + "/v1",
        "capital of France?",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=str(tmp_path),
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    assert "Paris." in out.decode()
    lines = [line for line in err.decode().splitlines() if line.startswith("lexigram.ai.llm.calls")]
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("lexigram.ai.llm.calls: openai gpt-4o-mini tokens=8+2 cost=")
    assert "latency=" in lines[0]
    assert KEY not in err.decode()


async def test_embeddings_span() -> None:
    from harness.embedding_server import EmbeddingServer

    from lexigram.ai.llm import create_embedding_client

    otel = Otel()
    srv = EmbeddingServer()
    await srv.start()
    try:
        cfg = ClientConfig(
            provider="openai",
            api_key=KEY,
            api_base=f"{srv.url}/v1",
            telemetry=False,
            model="text-embedding-3-small",
        )
        async with create_embedding_client(
            cfg, middleware=[otel.middleware], cache=LLMCache()
        ) as embedder:
            vectors = (await embedder.embed(["hello world", "the cat sat"])).unwrap()
            again = (await embedder.embed(["hello world"])).unwrap()
    finally:
        await srv.stop()
    first, second = otel.finished()
    assert first.name == "embeddings text-embedding-3-small"
    attrs = dict(first.attributes)
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "text-embedding-3-small"
    assert attrs["gen_ai.usage.input_tokens"] == vectors.usage.prompt_tokens > 0
    assert attrs["gen_ai.embeddings.dimension.count"] == len(vectors[0])
    assert attrs["lexigram.embeddings.inputs"] == 2
    assert "lexigram.cache.hit" not in attrs
    assert second.attributes["lexigram.cache.hit"] is True and again.cached == 1
    assert {p.attributes["gen_ai.operation.name"] for p in otel.metric_points(
        "gen_ai.client.operation.duration")} == {"embeddings"}  # fmt: skip
