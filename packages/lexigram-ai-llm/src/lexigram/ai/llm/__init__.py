"""lexigram-ai-llm: one async client interface over every major LLM provider.

Names are imported on first use (PEP 562), so ``import lexigram.ai.llm`` loads neither the
HTTP transport nor any provider.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lexigram.ai.llm.budget import Budget as Budget
    from lexigram.ai.llm.caching import LLMCache as LLMCache
    from lexigram.ai.llm.client import AbstractLLMClient as AbstractLLMClient
    from lexigram.ai.llm.config import ClientConfig as ClientConfig
    from lexigram.ai.llm.conversation import ConversationConfig as ConversationConfig
    from lexigram.ai.llm.conversation import ConversationManager as ConversationManager
    from lexigram.ai.llm.embeddings import EmbeddingClient as EmbeddingClient
    from lexigram.ai.llm.embeddings import Embeddings as Embeddings
    from lexigram.ai.llm.embeddings import create_embedding_client as create_embedding_client
    from lexigram.ai.llm.exceptions import InvalidRequestError as InvalidRequestError
    from lexigram.ai.llm.exceptions import LLMAuthenticationError as LLMAuthenticationError
    from lexigram.ai.llm.exceptions import LLMBudgetExceededError as LLMBudgetExceededError
    from lexigram.ai.llm.exceptions import LLMContentFilterError as LLMContentFilterError
    from lexigram.ai.llm.exceptions import LLMError as LLMError
    from lexigram.ai.llm.exceptions import LLMModelNotFoundError as LLMModelNotFoundError
    from lexigram.ai.llm.exceptions import LLMQuotaExceededError as LLMQuotaExceededError
    from lexigram.ai.llm.exceptions import LLMRateLimitError as LLMRateLimitError
    from lexigram.ai.llm.exceptions import LLMTimeoutError as LLMTimeoutError
    from lexigram.ai.llm.exceptions import MaxStepsExceededError as MaxStepsExceededError
    from lexigram.ai.llm.exceptions import ProviderConnectionError as ProviderConnectionError
    from lexigram.ai.llm.exceptions import StreamError as StreamError
    from lexigram.ai.llm.exceptions import TokenLimitError as TokenLimitError
    from lexigram.ai.llm.exceptions import ToolFailureLimitError as ToolFailureLimitError
    from lexigram.ai.llm.exceptions import ToolLoopError as ToolLoopError
    from lexigram.ai.llm.exceptions import (
        UnsupportedCapabilityError as UnsupportedCapabilityError,
    )
    from lexigram.ai.llm.middleware import CallInfo as CallInfo
    from lexigram.ai.llm.middleware import LoggingMiddleware as LoggingMiddleware
    from lexigram.ai.llm.middleware import Middleware as Middleware
    from lexigram.ai.llm.middleware import MiddlewareError as MiddlewareError
    from lexigram.ai.llm.model_manager import LLMModelManager as LLMModelManager
    from lexigram.ai.llm.module import LLMModule as LLMModule
    from lexigram.ai.llm.module import LLMProvider as LLMProvider
    from lexigram.ai.llm.module import StubLLMClient as StubLLMClient
    from lexigram.ai.llm.otel import OpenTelemetryMiddleware as OpenTelemetryMiddleware
    from lexigram.ai.llm.providers._listing import ModelListing as ModelListing
    from lexigram.ai.llm.providers._listing import (
        ModelListingUnsupportedError as ModelListingUnsupportedError,
    )
    from lexigram.ai.llm.rate_limit import RateLimiter as RateLimiter
    from lexigram.ai.llm.registry import ProviderRegistry as ProviderRegistry
    from lexigram.ai.llm.registry import create_llm_client as create_llm_client
    from lexigram.ai.llm.selection import ModelSelector as ModelSelector
    from lexigram.ai.llm.selection import ModelSelectorStrategy as ModelSelectorStrategy
    from lexigram.ai.llm.stream import ChatStream as ChatStream
    from lexigram.ai.llm.structured import JSONExtractor as JSONExtractor
    from lexigram.ai.llm.structured import ParserRegistry as ParserRegistry
    from lexigram.ai.llm.structured import StructuredExtractor as StructuredExtractor
    from lexigram.ai.llm.tokens import CharEstimateCounter as CharEstimateCounter
    from lexigram.ai.llm.tokens import HuggingFaceCounter as HuggingFaceCounter
    from lexigram.ai.llm.tokens import TiktokenCounter as TiktokenCounter
    from lexigram.ai.llm.tokens import TokenCounterRegistry as TokenCounterRegistry
    from lexigram.ai.llm.tools import Tool as Tool
    from lexigram.ai.llm.tools import ToolError as ToolError
    from lexigram.ai.llm.tools import ToolResult as ToolResult
    from lexigram.ai.llm.tools import ToolRun as ToolRun
    from lexigram.ai.llm.tools import ToolStep as ToolStep
    from lexigram.ai.llm.tools import ToolStream as ToolStream
    from lexigram.ai.llm.tools import run_tools as run_tools
    from lexigram.ai.llm.tools import stream_tools as stream_tools
    from lexigram.ai.llm.types import ChatMessage as ChatMessage
    from lexigram.ai.llm.types import Completion as Completion
    from lexigram.ai.llm.types import StreamChunk as StreamChunk
    from lexigram.ai.llm.types import ToolCall as ToolCall
    from lexigram.ai.llm.types import ToolDefinition as ToolDefinition
    from lexigram.ai.llm.types import Usage as Usage
    from lexigram.contracts.ai.thinking import ThinkingConfig as ThinkingConfig

_EXPORTS: dict[str, str] = {
    "AbstractLLMClient": "lexigram.ai.llm.client",
    "CallInfo": "lexigram.ai.llm.middleware",
    "LoggingMiddleware": "lexigram.ai.llm.middleware",
    "Middleware": "lexigram.ai.llm.middleware",
    "MiddlewareError": "lexigram.ai.llm.middleware",
    "OpenTelemetryMiddleware": "lexigram.ai.llm.otel",
    "ChatMessage": "lexigram.ai.llm.types",
    "ChatStream": "lexigram.ai.llm.stream",
    "CharEstimateCounter": "lexigram.ai.llm.tokens",
    "Budget": "lexigram.ai.llm.budget",
    "ClientConfig": "lexigram.ai.llm.config",
    "Completion": "lexigram.ai.llm.types",
    "ConversationConfig": "lexigram.ai.llm.conversation",
    "ConversationManager": "lexigram.ai.llm.conversation",
    "EmbeddingClient": "lexigram.ai.llm.embeddings",
    "Embeddings": "lexigram.ai.llm.embeddings",
    "HuggingFaceCounter": "lexigram.ai.llm.tokens",
    "InvalidRequestError": "lexigram.ai.llm.exceptions",
    "JSONExtractor": "lexigram.ai.llm.structured",
    "LLMAuthenticationError": "lexigram.ai.llm.exceptions",
    "LLMCache": "lexigram.ai.llm.caching",
    "LLMContentFilterError": "lexigram.ai.llm.exceptions",
    "LLMError": "lexigram.ai.llm.exceptions",
    "LLMModelManager": "lexigram.ai.llm.model_manager",
    "LLMModelNotFoundError": "lexigram.ai.llm.exceptions",
    "LLMModule": "lexigram.ai.llm.module",
    "LLMProvider": "lexigram.ai.llm.module",
    "LLMBudgetExceededError": "lexigram.ai.llm.exceptions",
    "LLMQuotaExceededError": "lexigram.ai.llm.exceptions",
    "LLMRateLimitError": "lexigram.ai.llm.exceptions",
    "LLMTimeoutError": "lexigram.ai.llm.exceptions",
    "MaxStepsExceededError": "lexigram.ai.llm.exceptions",
    "ModelListing": "lexigram.ai.llm.providers._listing",
    "ModelListingUnsupportedError": "lexigram.ai.llm.providers._listing",
    "ModelSelector": "lexigram.ai.llm.selection",
    "ModelSelectorStrategy": "lexigram.ai.llm.selection",
    "ParserRegistry": "lexigram.ai.llm.structured",
    "ProviderConnectionError": "lexigram.ai.llm.exceptions",
    "ProviderRegistry": "lexigram.ai.llm.registry",
    "RateLimiter": "lexigram.ai.llm.rate_limit",
    "StreamChunk": "lexigram.ai.llm.types",
    "StreamError": "lexigram.ai.llm.exceptions",
    "StructuredExtractor": "lexigram.ai.llm.structured",
    "StubLLMClient": "lexigram.ai.llm.module",
    "ThinkingConfig": "lexigram.contracts.ai.thinking",
    "TiktokenCounter": "lexigram.ai.llm.tokens",
    "TokenCounterRegistry": "lexigram.ai.llm.tokens",
    "TokenLimitError": "lexigram.ai.llm.exceptions",
    "Tool": "lexigram.ai.llm.tools",
    "ToolCall": "lexigram.ai.llm.types",
    "ToolDefinition": "lexigram.ai.llm.types",
    "ToolError": "lexigram.ai.llm.tools",
    "ToolFailureLimitError": "lexigram.ai.llm.exceptions",
    "ToolLoopError": "lexigram.ai.llm.exceptions",
    "ToolResult": "lexigram.ai.llm.tools",
    "ToolRun": "lexigram.ai.llm.tools",
    "ToolStep": "lexigram.ai.llm.tools",
    "ToolStream": "lexigram.ai.llm.tools",
    "UnsupportedCapabilityError": "lexigram.ai.llm.exceptions",
    "Usage": "lexigram.ai.llm.types",
    "create_embedding_client": "lexigram.ai.llm.embeddings",
    "create_llm_client": "lexigram.ai.llm.registry",
    "run_tools": "lexigram.ai.llm.tools",
    "stream_tools": "lexigram.ai.llm.tools",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lexigram.ai.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
