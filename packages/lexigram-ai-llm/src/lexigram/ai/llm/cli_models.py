"""``lexigram-llm models``: every model a configured provider serves, with what the table knows.

    lexigram-llm models                          # local GGUF, Ollama, every provider with a key
    lexigram-llm models --provider anthropic --provider gemini --timeout 5
    lexigram-llm models --api-base http://127.0.0.1:8080/v1     # one OpenAI-compatible server
    lexigram-llm models --json | jq '.models[].model'

A provider counts as configured when its key is found (the environment, then the keys stored
by ``lexigram-llm keys set``), or it needs none (Ollama, the local model, an ``--api-base``),
or it is the configured provider (``LEX_AI_LLM__PROVIDER``, ``application.yaml``). They are
asked at once, each within ``--timeout`` seconds; one that fails or is slow is one line,
``PROVIDER: unavailable (ErrorClass: reason)``, and never holds up the others. Context window,
prices (USD per million tokens, input and output) and capabilities come from the model table
(``lexigram.ai.llm.pricing``), else from what the provider reports; ``-`` is unknown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lexigram.ai.llm.config import ClientConfig
from lexigram.ai.llm.exceptions import (
    ConfigurationError,
    LLMError,
    LLMTimeoutError,
    ProviderError,
)

__all__ = ["DEFAULT_TIMEOUT", "add_models_parser", "run_models"]

#: Seconds each provider has to list its models.
DEFAULT_TIMEOUT = 10.0
_LOCAL = "local"
_OLLAMA = "ollama"
# Needing no key, these are asked only by name (or as the configured provider): Vertex has no
# listing here, and an OpenAI-compatible server has no default address.
_HIDDEN_WITHOUT_KEY = frozenset({"vertex", "openai_compatible"})


def add_models_parser(commands: Any) -> None:
    """Add ``models`` to the CLI's subparsers."""
    models = commands.add_parser(
        "models",
        help="list the models of the configured providers, local and Ollama models",
        description="List the models of every configured provider (asked in parallel), the "
        "local GGUF models and Ollama's, with context window, price per million tokens and "
        "capabilities from the model table ('-': unknown).",
    )
    models.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="only this provider (repeatable; 'local' and 'ollama' included)",
    )
    models.add_argument(
        "--api-base", help="list the server at this base URL (with one --provider, or alone)"
    )
    models.add_argument("--ollama-url", help="Ollama's address (default: OLLAMA_HOST or :11434)")
    models.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"how long each provider may take (default: {DEFAULT_TIMEOUT:g})",
    )
    models.add_argument(
        "--json", action="store_true", help="one JSON document: {models: [...], errors: [...]}"
    )


@dataclass(slots=True)
class _Row:
    provider: str
    model: str
    source: str  # api | local | ollama
    context_window: int | None = None
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    capabilities: list[str] = field(default_factory=list)
    note: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "source": self.source,
            "context_window": self.context_window,
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
            "capabilities": self.capabilities,
            **self.note,
        }


@dataclass(slots=True)
class _Failure:
    provider: str
    error: BaseException
    where: str | None = None  # shown after the name: Ollama's URL

    @property
    def reason(self) -> str:
        error = self.error
        text = error.message if isinstance(error, LLMError) else str(error)
        text = " ".join(text.split())
        return text if len(text) <= 160 else text[:157] + "..."

    def line(self) -> str:
        name = f"{self.provider} ({self.where})" if self.where else self.provider
        return f"{name}: unavailable ({type(self.error).__name__}: {self.reason})"

    def as_json(self) -> dict[str, Any]:
        code = self.error.code if isinstance(self.error, LLMError) else None
        status = self.error.status if isinstance(self.error, LLMError) else None
        return {
            "provider": self.provider,
            "error": type(self.error).__name__,
            "code": code,
            "status": status,
            "message": self.reason,
            **({"url": self.where} if self.where else {}),
        }


@dataclass(slots=True)
class _Outcome:
    rows: list[_Row] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)


async def run_models(args: argparse.Namespace) -> int:
    """Run ``models``; returns the exit status (1 when every provider asked for by name
    failed, else 0)."""
    timeout = args.timeout
    if not timeout > 0:
        raise ConfigurationError(f"--timeout must be positive seconds, got {timeout:g}")
    from lexigram.ai.llm.registry import default_registry

    wanted: list[str] = []
    for name in args.provider or ():
        if name not in default_registry:
            raise ConfigurationError(
                f"unknown provider {name!r}; 'lexigram-llm providers' lists them: "
                + ", ".join(default_registry.names())
            )
        wanted.append(default_registry.canonical_name(name))
    # Everything the requests need is imported before the first clock starts: an import on
    # the event loop (or in a thread, holding the GIL) would eat into every provider's time.
    import lexigram.ai.llm._transport
    import lexigram.ai.llm.model_manager
    import lexigram.ai.llm.pricing
    import lexigram.ai.llm.providers._listing  # noqa: F401

    outcomes: list[_Outcome] = []
    if not args.api_base and (not wanted or _LOCAL in wanted):
        # Files on this machine, found before the network clocks start (finding them may
        # import llama.cpp, which holds the interpreter for a while).
        outcomes.append(_local())
    sources: list[Awaitable[_Outcome]] = []
    if not args.api_base and (not wanted or _OLLAMA in wanted):
        sources.append(_ollama(args.ollama_url or _configured_ollama(), timeout))
    clients, failures = _remote_clients(args.api_base, wanted)
    sources.extend(_remote(name, client, timeout) for name, client in clients)
    outcomes += await asyncio.gather(*sources)
    rows = [row for outcome in outcomes for row in outcome.rows]
    failures += [failure for outcome in outcomes for failure in outcome.failures]
    if args.json:
        document = {
            "models": [row.as_json() for row in rows],
            "errors": [failure.as_json() for failure in failures],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        _print_table(rows)
        for failure in failures:
            print(failure.line())
    sys.stdout.flush()
    return 1 if wanted and failures and not rows else 0


# -- the sources ---------------------------------------------------------------------------


def _local() -> _Outcome:
    from lexigram.ai.llm.model_manager import LLMModelManager

    outcome = _Outcome()
    manager = LLMModelManager(idle_timeout=None, models_dir=ClientConfig().extra.get("models_dir"))
    try:
        local = manager.list_local()
    except ImportError as exc:
        outcome.failures.append(_Failure(_LOCAL, exc))
        return outcome
    for info in local:
        state = "loaded" if info.loaded else ("bundled" if info.bundled else "on disk")
        row = _joined(_LOCAL, info.name, "local", info.n_ctx, ())
        row.note = {"size_bytes": info.size_bytes, "state": state}
        outcome.rows.append(row)
    return outcome


async def _ollama(url: str | None, timeout: float) -> _Outcome:
    from lexigram.ai.llm.model_manager import LLMModelManager

    outcome = _Outcome()
    async with LLMModelManager(idle_timeout=None, ollama_url=url, timeout=timeout) as manager:
        try:
            async with asyncio.timeout(timeout):
                pulled, running = await asyncio.gather(manager.list_ollama(), manager.running())
        except (LLMError, TimeoutError) as exc:
            error = exc if isinstance(exc, LLMError) else _timed_out(timeout)
            outcome.failures.append(_Failure(_OLLAMA, error, where=manager.ollama_url))
            return outcome
    names = {m.name for m in running}
    for model in pulled:
        row = _joined(_OLLAMA, model.name, "ollama", None, ())
        row.note = {
            "size_bytes": model.size,
            "state": "running" if model.name in names else "pulled",
        }
        outcome.rows.append(row)
    return outcome


def _configured_ollama() -> str | None:
    """The config's ``api_base`` when Ollama is the configured provider."""
    config = ClientConfig()
    return config.api_base if config.provider == _OLLAMA else None


def _remote_clients(api_base: str | None, wanted: list[str]) -> tuple[list[Any], list[_Failure]]:
    """A client for each provider to ask, and the failures of those that cannot be built."""
    from lexigram.ai.llm.registry import create_llm_client, default_registry

    base = ClientConfig()
    configured = default_registry.canonical_name(base.provider) if base.provider else None
    targets: list[tuple[str, dict[str, Any]]] = []
    if api_base:
        names = [n for n in wanted if n != _LOCAL] or [configured or "openai_compatible"]
        if len(names) != 1:
            raise ConfigurationError("--api-base needs exactly one --provider (or none)")
        targets = [(names[0], {"provider": names[0], "api_base": api_base})]
    else:
        for name in default_registry.names():
            if name in (_LOCAL, _OLLAMA) or (wanted and name not in wanted):
                continue
            if name == configured:
                targets.append((name, {"provider": name}))
            elif name in wanted or _configured(name):
                # The config's key, base URL, model and extra are the configured provider's.
                targets.append(
                    (name, {"provider": name, "api_key": None, "api_base": None, "extra": {}})
                )
    clients: list[tuple[str, Any]] = []
    failures: list[_Failure] = []
    seen: dict[tuple[Any, ...], str] = {}
    for name, update in targets:
        try:
            client = create_llm_client(base.model_copy(update=update))
        except (LLMError, ValueError, ImportError) as exc:
            failures.append(_Failure(name, exc))
            continue
        same = _listing_identity(client)
        if same is not None and same in seen and name not in wanted:
            continue  # openai_responses lists what openai lists, with the same key
        if same is not None:
            seen[same] = name
        clients.append((name, client))
    return clients, failures


def _configured(name: str) -> bool:
    """Whether ``name`` can be asked without being named: its key is found, or it needs none
    and has a default address (a registered profile of a local server)."""
    from lexigram.ai.llm._userfiles import stored_key
    from lexigram.ai.llm.exceptions import MissingExtraError
    from lexigram.ai.llm.registry import default_registry

    if name in _HIDDEN_WITHOUT_KEY:
        return False
    try:
        profile = default_registry.profile(name)
    except MissingExtraError:
        return False
    if profile is None:  # a custom client: asked only by name
        return False
    if any(os.environ.get(v) for v in profile.api_key_env) or stored_key(name, profile.api_key_env):
        return True
    if name == "bedrock":  # the AWS credential chain, as far as the environment shows it
        return bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE"))
    return not profile.requires_key and profile.auth != "custom" and profile.base_url is not None


def _listing_identity(client: Any) -> tuple[Any, ...] | None:
    from lexigram.ai.llm.providers.http import HTTPLLMClient

    if not isinstance(client, HTTPLLMClient):
        return None
    family = "openai" if client.profile.codec == "responses" else client.profile.codec
    headers = tuple(sorted(client.auth_headers().items()))
    return (family, client.base_url, headers, client.profile.signer_factory)


async def _remote(name: str, client: Any, timeout: float) -> _Outcome:
    outcome = _Outcome()
    try:
        async with asyncio.timeout(timeout):
            result = await client.list_models(timeout=timeout)
    except TimeoutError:
        outcome.failures.append(_Failure(name, _timed_out(timeout)))
        return outcome
    except (ValueError, ImportError) as exc:  # configuration found wanting at first use
        outcome.failures.append(_Failure(name, exc))
        return outcome
    except Exception as exc:  # a bug in one provider's client must not hide the others
        error = ProviderError(f"{type(exc).__name__}: {exc}", provider=name)
        redact = getattr(client, "redact", None)
        outcome.failures.append(_Failure(name, redact(error) if redact else error))
        return outcome
    finally:
        await client.close()
    if result.is_err():
        outcome.failures.append(_Failure(name, result.unwrap_err()))
        return outcome
    for listing in result.unwrap():
        outcome.rows.append(
            _joined(name, listing.id, "api", listing.context_window, listing.capabilities)
        )
    return outcome


def _timed_out(timeout: float) -> LLMTimeoutError:
    return LLMTimeoutError(f"No answer within {timeout:g}s")


# -- the model table -----------------------------------------------------------------------


def _joined(
    provider: str,
    model: str,
    source: str,
    reported_context: int | None,
    reported: Sequence[str] | frozenset[str],
) -> _Row:
    """A row with what the model table knows of ``model``, else what the provider said."""
    from lexigram.ai.llm.pricing import CAPABILITIES, lookup_model

    info = lookup_model(model, provider)
    known = [c for c in CAPABILITIES if info is not None and info.supports(c)]
    lacks = set(info.lacks) if info is not None else set()
    extra = sorted(set(reported) - set(known) - lacks)
    return _Row(
        provider=provider,
        model=model,
        source=source,
        context_window=(info.context_window if info else None) or reported_context,
        input_per_mtok=info.input_per_mtok if info else None,
        output_per_mtok=info.output_per_mtok if info else None,
        capabilities=known + extra,
    )


# -- the table -----------------------------------------------------------------------------


def _print_table(rows: list[_Row]) -> None:
    table = [("PROVIDER", "MODEL", "CONTEXT", "INPUT$/M", "OUTPUT$/M", "CAPABILITIES", "NOTE")]
    for row in rows:
        note = row.note
        details = ""
        if note:
            details = f"{_size(int(note.get('size_bytes') or 0))}, {note.get('state')}"
        table.append(
            (
                row.provider,
                row.model,
                _tokens(row.context_window),
                _price(row.input_per_mtok),
                _price(row.output_per_mtok),
                ",".join(row.capabilities) or "-",
                details,
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())


def _tokens(count: int | None) -> str:
    if count is None:
        return "-"
    if count >= 1_000_000:
        return f"{count / 1_000_000:.3g}M"
    if count >= 10_000:
        return f"{round(count / 1000)}k"
    return str(count)


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
