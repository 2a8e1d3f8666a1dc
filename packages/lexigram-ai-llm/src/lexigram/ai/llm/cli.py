"""``lexigram-llm``: chat with any configured provider, list providers and models.

    lexigram-llm chat "What is the capital of France?"        # streamed, embedded local model
    lexigram-llm chat                                         # interactive (/help lists commands)
    echo "Explain GGUF" | lexigram-llm chat - --provider openai --model gpt-4o-mini
    lexigram-llm chat --provider openai_compatible --api-base http://127.0.0.1:8080/v1 "Hi"
    lexigram-llm chat --model gpt-4o-mini -a photo.png -a paper.pdf "What do these show?"
    lexigram-llm chat --json "Hi" | jq .usage                # one JSON object, for scripts
    lexigram-llm providers
    lexigram-llm models

Configuration is resolved exactly as the library does (``application.yaml``, ``LEX_AI_LLM__*``
variables, the provider's key variable); flags override only what they name. Sampling is greedy
(temperature 0) unless ``--temperature``, ``LEX_AI_LLM__TEMPERATURE`` or the YAML sets one, so
the same question gets the same answer. On a terminal, with ``rich`` installed (the ``cli``
extra), answers get a spinner and are rendered as Markdown once complete (``cli_render``);
piped, with ``--plain`` or without ``rich`` they are the model's text as it is. A failure
prints one line, ``error: <ErrorClass>: <message>``, to stderr and exits non-zero (1 for a
provider error, 2 for a usage or configuration error, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from lexigram.ai.llm.client import AbstractLLMClient
from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import LLMError
from lexigram.ai.llm.types import ChatMessage, ResponseFormat, StreamChunk
from lexigram.result import Err

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_PROVIDER_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: The longest answer asked of the embedded local model when no max_tokens is configured: a
#: small model that loops stops within a few hundred tokens, not the whole context window.
LOCAL_MAX_TOKENS = 512
#: The largest file ``-a/--attach`` sends: providers take about this much per image or PDF
#: (OpenAI 20 MB per image, Anthropic 32 MB per request), and it is read into memory.
MAX_ATTACHMENT_BYTES = 20 * 2**20


class _UsageError(Exception):
    """A bad flag or input file; reported like any other failure."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="lexigram-llm",
        description="Talk to LLM providers through lexigram-ai-llm.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log what the library does to stderr"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = commands.add_parser(
        "chat",
        help="ask one question; the answer streams to stdout",
        description="Ask one question; the answer streams to stdout.",
        epilog=(
            f"With the embedded local model an answer is at most {LOCAL_MAX_TOKENS} tokens "
            "unless --max-tokens or the configuration says otherwise, and an answer that falls "
            "into a loop (the same words repeated back to back) is ended there, with a note on "
            "stderr (finish reason 'length', raw finish reason 'repetition')."
        ),
    )
    chat.add_argument(
        "prompt",
        nargs="?",
        metavar="PROMPT",
        help="the question, or - to read it from stdin; none on a terminal: an interactive "
        "chat (/help there lists its commands)",
    )
    chat.add_argument("--provider", help="a registered provider name (default: configured)")
    chat.add_argument("--model", help="the model (for 'local': a name or a .gguf path)")
    chat.add_argument("--api-base", help="the provider's base URL (OpenAI-style: up to /v1)")
    chat.add_argument("--system", help="a system prompt")
    chat.add_argument("--temperature", type=float, help="sampling temperature (default: 0)")
    chat.add_argument("--max-tokens", type=int, help="the longest answer, in tokens")
    chat.add_argument(
        "--json-schema",
        type=Path,
        metavar="FILE",
        help="answer with JSON matching the schema in FILE",
    )
    chat.add_argument(
        "-a",
        "--attach",
        action="append",
        metavar="FILE",
        help="send FILE with the question: an image (PNG, JPEG, GIF, WebP) or a PDF, at most "
        f"{MAX_ATTACHMENT_BYTES // 2**20} MB (repeatable; the model must take images or PDFs)",
    )
    chat.add_argument(
        "--no-stream", action="store_true", help="wait for the whole answer, then print it"
    )
    chat.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (content, model, provider, usage, cost, finish reason, "
        "conversation id) once the answer is complete, for scripts",
    )
    chat.add_argument(
        "--plain",
        "--no-rich",
        dest="plain",
        action="store_true",
        help="plain text on a terminal too (no spinner, no Markdown rendering)",
    )
    chat.add_argument(
        "--tool",
        action="append",
        metavar="MODULE:FUNCTION",
        help="offer a Python function as a tool and run the calls (repeatable; MODULE may be "
        "a file.py); each call is printed to stderr",
    )
    chat.add_argument(
        "--mcp",
        action="append",
        metavar="COMMAND",
        help="offer the tools of an MCP server run as COMMAND over stdio (repeatable)",
    )
    chat.add_argument(
        "--max-steps", type=int, default=10, help="model calls allowed with tools (default: 10)"
    )
    from lexigram.ai.llm.cli_store import add_log_flags, add_logs_parser

    add_log_flags(chat)

    commands.add_parser("providers", help="list providers and whether their key is set")

    from lexigram.ai.llm.cli_models import add_models_parser

    add_models_parser(commands)

    from lexigram.ai.llm.cli_keys import add_keys_parser

    add_keys_parser(commands)
    add_logs_parser(commands)

    embed = commands.add_parser(
        "embed",
        help="print the embedding vector of each text",
        description="Print the embedding vector of each text, one JSON array per line.",
    )
    embed.add_argument("texts", nargs="+", metavar="TEXT", help="a text (- reads one from stdin)")
    embed.add_argument("--provider", help="a registered provider name (default: configured)")
    embed.add_argument("--model", help="the embedding model (default: the provider's usual one)")
    embed.add_argument("--api-base", help="the provider's base URL (OpenAI-style: up to /v1)")
    embed.add_argument("--dimensions", type=int, help="ask for vectors of this length")
    embed.add_argument(
        "--input-type",
        choices=("search_document", "search_query", "classification", "clustering"),
        help="what the texts are for (Cohere, Gemini)",
    )
    embed.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: one vector per line; json: one object with vectors, model, usage and cost",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        library_logger = logging.getLogger("lexigram")
        library_logger.addHandler(handler)
        library_logger.setLevel(logging.INFO)
        # One line per call (provider, model, tokens, cost, latency), not the detail events.
        logging.getLogger("lexigram.ai.llm.calls").setLevel(logging.DEBUG)
        logging.getLogger("lexigram.ai.llm.calls.detail").setLevel(logging.INFO)
    try:
        if args.command == "chat" and args.prompt is None and sys.stdin.isatty():
            from lexigram.ai.llm.cli_chat import run_interactive

            return run_interactive(args)
        if args.command == "chat":
            return asyncio.run(_chat(args))
        if args.command == "providers":
            return _providers()
        if args.command == "keys":
            from lexigram.ai.llm.cli_keys import run_keys

            return run_keys(args)
        if args.command == "logs":
            from lexigram.ai.llm.cli_store import run_logs

            return run_logs(args)
        if args.command == "embed":
            return asyncio.run(_embed(args))
        return asyncio.run(_models(args))
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        with contextlib.suppress(OSError):  # keep the interpreter's final flush quiet
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except LLMError as error:
        _fail(f"{type(error).__name__}: {error}")
        return EXIT_PROVIDER_ERROR
    except (_UsageError, ValueError, ImportError) as error:
        # ConfigurationError, ConfigError, UnknownProviderError and MissingExtraError land
        # here: each message says how to fix it.
        _fail(f"{type(error).__name__}: {error}")
        return EXIT_USAGE


def _fail(message: str) -> None:
    sys.stderr.write("error: " + " ".join(message.split()) + "\n")
    sys.stderr.flush()


# -- chat ----------------------------------------------------------------------------------


async def _chat(args: argparse.Namespace) -> int:
    if args.prompt is None:  # and stdin is not a terminal (that is the interactive chat)
        raise _UsageError("chat needs a PROMPT (or - to read it from stdin)")
    # Piped text ends with a newline the user did not mean as part of the question.
    prompt = sys.stdin.read().strip() if args.prompt == "-" else args.prompt
    args.prompt_text = prompt
    if not prompt.strip():
        raise _UsageError("the prompt is empty")
    response_format = _load_schema(args.json_schema) if args.json_schema else None
    attachments = [load_attachment(path) for path in args.attach or ()]
    config = _client_config(args)
    from lexigram.ai.llm.registry import create_llm_client

    client = create_llm_client(config)
    served = await _model_for_server(client)
    if served is not None:
        await client.close()
        config = config.model_copy(update={"model": served})
        client = create_llm_client(config)
    stack = contextlib.ExitStack()
    try:
        from lexigram.ai.llm.providers.local import LocalLLMClient

        messages: list[ChatMessage] = []
        if args.system:
            messages.append(ChatMessage.system(args.system))
        from lexigram.ai.llm.cli_store import LoggedChat  # -c/--cid history, the log

        logged = stack.enter_context(contextlib.closing(LoggedChat.open(args)))
        messages.extend(logged.messages())
        messages.append(user_message(prompt, attachments))
        options: dict[str, Any] = {"cache": False}
        if response_format is not None:
            options["response_format"] = response_format
        from lexigram.ai.llm.cli_render import rich_console

        console = rich_console(args)
        if isinstance(client, LocalLLMClient):
            label = f"Loading {client.model_path.name}"
            await _with_progress(client.load(), label, console)
            if client.config.max_tokens is None:
                options["max_tokens"] = LOCAL_MAX_TOKENS
        if args.tool or args.mcp:
            return await _chat_with_tools(client, messages, args, options, logged)
        if args.no_stream or args.json:
            started = time.monotonic()
            request = client.complete(messages, **options)
            if console is not None:
                result = await _with_progress(request, "Waiting for the answer", console)
            else:
                result = await request
            if isinstance(result, Err):
                raise result.error
            completion = result.value
            logged.record_completion(completion, prompt=prompt, system=args.system, started=started)
            if args.json:
                _write(sys.stdout, json.dumps(_answer_document(completion, logged)) + "\n")
                return EXIT_OK
            _show_answer(completion.content, console)
            _note_repetition(completion.raw_finish_reason)
            return EXIT_OK
        chunks = client.stream_chat(messages, **options)
        await _stream(
            logged.watch(
                chunks,
                provider=client.provider_name,
                model=client.config.model,
                prompt=prompt,
                system=args.system,
            ),
            console,
        )
        return EXIT_OK
    finally:
        stack.close()
        await client.close()


async def _stream(chunks: AsyncIterator[Any], console: Any = None) -> None:
    if console is not None:
        await _stream_rich(chunks, console)
        return
    wrote = ""
    raw_finish_reason = None
    async for chunk in chunks:
        if chunk.thinking_delta:
            _write(sys.stderr, chunk.thinking_delta)
        if chunk.delta:
            _write(sys.stdout, chunk.delta)
            wrote = chunk.delta
        if chunk.finish_reason is not None:
            raw_finish_reason = chunk.raw_finish_reason
    if not wrote.endswith("\n"):
        _write(sys.stdout, "\n")
    _note_repetition(raw_finish_reason)


async def _stream_rich(chunks: AsyncIterator[Any], console: Any) -> None:
    """The answer on a terminal: spinner, live text, then Markdown (see cli_render)."""
    from lexigram.ai.llm.cli_render import RichAnswer

    view = RichAnswer(console)
    view.start()
    raw_finish_reason = None
    try:
        async for chunk in chunks:
            if chunk.thinking_delta:
                view.thinking(chunk.thinking_delta)
            if chunk.delta:
                view.text(chunk.delta)
            if chunk.finish_reason is not None:
                raw_finish_reason = chunk.raw_finish_reason
    except BaseException:
        view.stop()
        raise
    view.finish()
    _note_repetition(raw_finish_reason)


def _show_answer(content: str, console: Any) -> None:
    """A whole answer: Markdown on a terminal (with rich), else the text as it came."""
    if console is None:
        _write(sys.stdout, content + "\n")
        return
    from lexigram.ai.llm.cli_render import RichAnswer

    view = RichAnswer(console)
    view.text(content)
    view.finish()


def _answer_document(
    completion: Any,
    logged: Any,
    *,
    usage: Any = None,
    cost: float | None = None,
    tool_calls: int | None = None,
) -> dict[str, Any]:
    """``chat --json``: the answer and what it cost, one JSON object. ``usage``/``cost``
    replace the completion's (a tool loop's sums over its steps)."""
    if usage is None:
        usage, cost = completion.usage, completion.cost
    document: dict[str, Any] = {
        "content": completion.content,
        "model": completion.model,
        "provider": completion.provider,
        "finish_reason": completion.finish_reason,
        "raw_finish_reason": completion.raw_finish_reason,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "cached_tokens": usage.cached_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "cache_creation_tokens": usage.cache_creation_tokens,
        },
        "cost": cost,
        "thinking": completion.thinking.content if completion.thinking else None,
        "conversation_id": logged.conversation_id,
        "logged": logged.log is not None,
    }
    if tool_calls is not None:
        document["tool_calls_run"] = tool_calls
    return document


#: What ``-a/--attach`` sends, by the file's first bytes (not its name): (media type, kind).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)


def _media_type(head: bytes) -> str | None:
    for signature, media_type in _SIGNATURES:
        if head.startswith(signature):
            return media_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def load_attachment(path: str) -> Any:
    """The content part for ``-a FILE``: an image part (PNG, JPEG, GIF, WebP) or a PDF
    document part, told apart by the file's content; anything else is a usage error."""
    from lexigram.ai.llm.types import DocumentPart, ImageDataPart

    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise _UsageError(f"--attach {path!r}: not a file")
        if size > MAX_ATTACHMENT_BYTES:
            raise _UsageError(
                f"--attach {path!r}: {size / 2**20:.1f} MB is more than the "
                f"{MAX_ATTACHMENT_BYTES // 2**20} MB an attachment may be"
            )
        data = file.read_bytes()
    except OSError as exc:
        raise _UsageError(f"--attach {path!r}: cannot read it: {exc.strerror}") from None
    media_type = _media_type(data[:16])
    if media_type is None:
        raise _UsageError(
            f"--attach {path!r}: not an image (PNG, JPEG, GIF, WebP) or a PDF; "
            "other files cannot be attached (paste text into the prompt instead)"
        )
    if media_type == "application/pdf":
        return DocumentPart(data=data, media_type=media_type, name=file.name)
    return ImageDataPart(data, media_type)


def user_message(prompt: str, attachments: Sequence[Any] = ()) -> ChatMessage:
    """The user's message: the prompt, then the attached files as content parts."""
    if not attachments:
        return ChatMessage.user(prompt)
    from lexigram.ai.llm.types import TextPart

    return ChatMessage.user([TextPart(prompt), *attachments])


def _note_repetition(raw_finish_reason: str | None) -> None:
    from lexigram.ai.llm.providers.local import REPETITION_FINISH

    if raw_finish_reason == REPETITION_FINISH:
        _write(sys.stderr, "note: the answer was ended because it began repeating itself\n")


async def _chat_with_tools(
    client: AbstractLLMClient,
    messages: list[ChatMessage],
    args: argparse.Namespace,
    options: dict[str, Any],
    logged: Any,
) -> int:
    """``chat --tool/--mcp``: the tool loop, each call printed to stderr as it finishes."""
    from lexigram.ai.llm.tools import ToolResult, run_tools, stream_tools

    tools: list[Any] = [_load_tool(spec) for spec in args.tool or ()]
    async with contextlib.AsyncExitStack() as stack:
        if args.mcp:
            from lexigram.ai.llm.mcp import MCPConnectionError, MCPTools

            for command in args.mcp:
                try:
                    tools.append(await stack.enter_async_context(MCPTools.stdio(command)))
                except MCPConnectionError as exc:
                    raise _UsageError(f"--mcp: {exc}") from None
        settings: dict[str, Any] = {"max_steps": args.max_steps, **options}
        if args.no_stream or args.json:
            started = time.monotonic()
            result = await run_tools(client, messages, tools, on_step=_print_step, **settings)
            if isinstance(result, Err):
                raise result.error
            run = result.value
            logged.record(
                provider=run.completion.provider,
                model=run.completion.model,
                system=args.system,
                prompt=args.prompt_text,
                answer=run.content,
                usage=run.usage,
                cost=run.cost,
                started=started,
            )
            if args.json:
                document = _answer_document(
                    run.completion,
                    logged,
                    usage=run.usage,
                    cost=run.cost,
                    tool_calls=len(run.results),
                )
                _write(sys.stdout, json.dumps(document) + "\n")
                return EXIT_OK
            _write(sys.stdout, run.content + "\n")
            return EXIT_OK
        wrote = ""
        async for event in stream_tools(client, messages, tools, **settings):
            if isinstance(event, ToolResult):
                _print_call(event)
            elif isinstance(event, StreamChunk) and event.delta:
                _write(sys.stdout, event.delta)
                wrote = event.delta
        if not wrote.endswith("\n"):
            _write(sys.stdout, "\n")
        return EXIT_OK


def _print_step(step: Any) -> None:
    for result in step.results:
        _print_call(result)


def _print_call(result: Any) -> None:
    outcome = result.content if result.ok else f"error: {result.error}"
    _write(sys.stderr, f"[tool] {result.name}({result.call.arguments}) -> {outcome}\n")


def _load_tool(spec: str) -> Any:
    """The function named by ``module:function`` (or ``path/file.py:function``)."""
    import importlib
    import importlib.util

    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise _UsageError(f"--tool {spec!r}: use MODULE:FUNCTION, e.g. mytools:get_weather")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            loader_spec = importlib.util.spec_from_file_location(path.stem, path)
            if loader_spec is None or loader_spec.loader is None or not path.is_file():
                raise _UsageError(f"--tool {spec!r}: no such file {module_name}")
            module = importlib.util.module_from_spec(loader_spec)
            loader_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # as 'python -m' does: the working directory
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise _UsageError(f"--tool {spec!r}: cannot import {module_name}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise _UsageError(f"--tool {spec!r}: {module_name} has no {attribute}")
    if not callable(target):
        raise _UsageError(f"--tool {spec!r}: {attribute} is not a function")
    return target


def _write(stream: TextIO, text: str) -> None:
    stream.write(text)
    stream.flush()


def _client_config(args: argparse.Namespace) -> ClientConfig:
    """The library's config (YAML, environment) with only the given flags on top."""
    from lexigram.config import ConfigSource

    overrides: dict[str, Any] = {}
    if args.provider:
        overrides["provider"] = args.provider
    if args.model:
        overrides["model"] = args.model
    if args.api_base:
        overrides["api_base"] = args.api_base
    if args.max_tokens is not None:
        overrides["max_tokens"] = args.max_tokens
    if args.temperature is not None:
        overrides["temperature"] = args.temperature
    elif "temperature" not in ConfigSource().section(ClientConfig.__section__):
        overrides["temperature"] = 0.0  # reproducible answers unless configured otherwise
    return ClientConfig(**overrides)


def _load_schema(path: Path) -> ResponseFormat:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _UsageError(f"cannot read --json-schema file {str(path)!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise _UsageError(f"--json-schema file {str(path)!r} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise _UsageError(f"--json-schema file {str(path)!r} must hold a JSON object")
    return ResponseFormat.json_schema(schema, name=path.stem or "response")


async def _model_for_server(client: AbstractLLMClient) -> str | None:
    """For an OpenAI-compatible server given no model: the first id of ``GET {base}/models``
    (llama.cpp, vLLM and LM Studio serve one model and accept its id)."""
    from lexigram.ai.llm.providers.http import HTTPLLMClient

    if client.config.model or not isinstance(client, HTTPLLMClient):
        return None
    if client.profile.codec != "openai" or client.profile.default_model:
        return None
    from lexigram.ai.llm.providers.base import HTTPRequest

    # Through the client's own transport and auth headers (whatever its profile sends).
    request = HTTPRequest("GET", client.base_url + "/models", client.auth_headers())
    try:
        response = await client.transport.send(request)
    except LLMError:
        return None  # the chat request itself will report what is wrong
    if response.status != 200:
        return None
    try:
        data = json.loads(response.body)
    except ValueError:
        return None
    models = data.get("data") if isinstance(data, dict) else None
    if models and isinstance(models[0], dict) and models[0].get("id"):
        return str(models[0]["id"])
    return None


async def _with_progress(work: Any, label: str, console: Any = None) -> Any:
    """Await ``work`` with a spinner (erased after): rich's on ``console`` when given, else a
    plain one on stderr when stderr is a terminal."""
    if console is not None:
        from lexigram.ai.llm.cli_render import with_status

        return await with_status(console, work, label)
    if not sys.stderr.isatty():
        return await work
    task = asyncio.ensure_future(work)
    frames = itertools.cycle("|/-\\")
    try:
        while not task.done():
            sys.stderr.write(f"\r{label} {next(frames)}")
            sys.stderr.flush()
            await asyncio.wait({task}, timeout=0.1)
    finally:
        sys.stderr.write("\r" + " " * (len(label) + 2) + "\r")
        sys.stderr.flush()
        if not task.done():
            task.cancel()
    return task.result()


# -- providers and models ------------------------------------------------------------------


def _providers() -> int:
    from lexigram.ai.llm.registry import default_registry

    rows = [("PROVIDER", "FAMILY", "KEY VARIABLE", "KEY")]
    for info in default_registry.list():
        key = "set" if info.key_set else "not set"
        if not info.requires_key:
            key = "not needed"
        rows.append((info.name, info.family, ", ".join(info.api_key_env) or "-", key))
    _table(rows)
    return EXIT_OK


async def _models(args: argparse.Namespace) -> int:
    from lexigram.ai.llm.cli_models import run_models  # every provider's list, in parallel

    return await run_models(args)


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


# -- embed ---------------------------------------------------------------------------------


async def _embed(args: argparse.Namespace) -> int:
    from lexigram.ai.llm.embeddings import create_embedding_client

    texts = [sys.stdin.read() if text == "-" else text for text in args.texts]
    overrides: dict[str, Any] = {"model": args.model}  # never the configured chat model
    if args.provider:
        overrides["provider"] = args.provider
    if args.api_base:
        overrides["api_base"] = args.api_base
    async with create_embedding_client(ClientConfig(**overrides)) as client:
        result = await client.embed(texts, dimensions=args.dimensions, input_type=args.input_type)
    vectors = result.unwrap_or_else(_raise)
    if args.format == "json":
        payload = {
            "provider": vectors.provider,
            "model": vectors.model,
            "dimensions": vectors.dimensions,
            "usage": {"prompt_tokens": vectors.usage.prompt_tokens},
            "cost": vectors.cost,
            "vectors": vectors.vectors,
        }
        _write(sys.stdout, json.dumps(payload) + "\n")
    else:
        for vector in vectors:
            _write(sys.stdout, json.dumps(vector) + "\n")
    return EXIT_OK


def _raise(error: LLMError) -> Any:
    raise error
