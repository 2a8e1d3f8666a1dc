"""The contracts package stays light: nothing third-party beyond pydantic and typing-extensions."""

from __future__ import annotations

import subprocess
import sys

from lexigram.contracts.ai import LLMClientProtocol
from lexigram.contracts.ai.llm import LLMError
from lexigram.contracts.ai.thinking import ThinkingBlock, ThinkingConfig, ThinkingResult
from lexigram.contracts.cache import CacheBackendProtocol
from lexigram.contracts.health import HealthCheckResult, HealthStatus


def test_import_pulls_no_third_party_beyond_pydantic() -> None:
    code = (
        "import sys, lexigram.contracts, lexigram.contracts.ai, lexigram.contracts.ai.thinking,"
        " lexigram.contracts.cache, lexigram.contracts.health, lexigram.contracts.stream\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "allowed = set(sys.stdlib_module_names) | {'lexigram', 'pydantic', 'pydantic_core',"
        " 'typing_extensions', 'annotated_types', 'typing_inspection', '_distutils_hack',"
        " 'sitecustomize', 'usercustomize'}\n"
        "print(sorted(r for r in roots if r not in allowed and not r.startswith('_')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_contracts_import_alone_does_not_load_config_machinery() -> None:
    code = (
        "import sys, lexigram.contracts.ai\n"
        "print(any(m.startswith(('pydantic_settings', 'yaml', 'aiohttp')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_llm_error_carries_its_fields_and_pickles() -> None:
    import pickle

    error = LLMError(
        "boom",
        provider="p",
        model="m",
        status=503,
        request_id="r1",
        retryable=True,
        retry_after=2.0,
        provider_message="upstream said no",
    )
    text = str(error)
    assert "boom" in text and "upstream said no" in text and "status=503" in text
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.provider, copy.model, copy.status, copy.retryable, copy.retry_after) == (
        "p",
        "m",
        503,
        True,
        2.0,
    )


def test_thinking_result_from_blocks() -> None:
    blocks = (
        ThinkingBlock("a", "s1"),
        ThinkingBlock("", None, True, "enc"),
        ThinkingBlock("b", "s2"),
    )
    result = ThinkingResult.from_blocks(blocks, tokens=5)
    assert result.content == "ab" and result.signature == "s2" and result.tokens == 5
    assert ThinkingConfig().budget_tokens == 10000


def test_protocols_are_runtime_checkable() -> None:
    assert not isinstance(object(), LLMClientProtocol)
    assert not isinstance(object(), CacheBackendProtocol)
    assert HealthCheckResult(HealthStatus.HEALTHY).is_healthy
