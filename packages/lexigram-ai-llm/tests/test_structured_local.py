"""Structured extraction and conversations against the embedded local model (SmolLM2 through
llama.cpp, where the JSON schema becomes a grammar)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel

from lexigram.ai.llm import (
    ClientConfig,
    ConversationConfig,
    ConversationManager,
    JSONExtractor,
    StructuredExtractor,
    create_llm_client,
)
from lexigram.ai.llm.exceptions import (
    ExtractionMaxRetriesError,
    ExtractionParseError,
    ExtractionValidationError,
)
from lexigram.result import Err, Ok

pytestmark = pytest.mark.slow


class Person(BaseModel):
    name: str
    age: int


# A schema no answer satisfies ("not": {} rejects every value); the grammar cannot express it,
# so the model answers and validation refuses each time.
IMPOSSIBLE = {
    "type": "object",
    "properties": {"word": {"type": "string", "not": {}}},
    "required": ["word"],
}


@pytest_asyncio.fixture
async def llm() -> AsyncIterator[Any]:
    client = create_llm_client(ClientConfig(provider="local"))
    try:
        yield client
    finally:
        await client.close()


async def test_person_is_extracted_with_the_right_types(llm: Any) -> None:
    result = await StructuredExtractor(llm).extract_detailed(
        "John is 30 years old", output_model=Person
    )
    assert isinstance(result, Ok), result
    extraction = result.value
    assert extraction.attempts <= 3
    assert isinstance(extraction.value.name, str) and isinstance(extraction.value.age, int)
    assert extraction.usage.prompt_tokens > 0


async def test_json_extraction_of_name_and_age(llm: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    result = await JSONExtractor(llm).extract("John is 30 years old", schema=schema, temperature=0)
    assert isinstance(result, Ok), result
    assert result.value == {"name": "John", "age": 30}
    assert isinstance(result.value["age"], int)


async def test_an_unsatisfiable_schema_ends_in_max_retries_with_summed_usage(llm: Any) -> None:
    once = await JSONExtractor(llm, max_retries=0).extract("Say a word", schema=IMPOSSIBLE)
    # The bundled model's answer differs between runs and thread counts: JSON that breaks the
    # schema, or an answer cut short (unterminated JSON). Either is a typed extraction error
    # carrying the usage of the one call; which one is not stable across CPUs.
    assert isinstance(once, Err)
    assert isinstance(once.error, ExtractionValidationError | ExtractionParseError)
    assert once.error.usage is not None and once.error.usage.prompt_tokens > 0
    single = once.error.usage

    result = await JSONExtractor(llm).extract("Say a word", schema=IMPOSSIBLE, max_tokens=40)
    assert isinstance(result, Err)
    error = result.error
    assert isinstance(error, ExtractionMaxRetriesError)
    assert error.details["attempts"] == 3
    assert error.raw_output.strip().startswith("{")
    # Three calls, each prompt longer than the first (the bad answer and feedback are added).
    assert error.usage.prompt_tokens > 3 * single.prompt_tokens
    assert error.usage.completion_tokens >= 3
    assert error.usage.total_tokens == error.usage.prompt_tokens + error.usage.completion_tokens


async def test_a_trimmed_conversation_runs_on_the_local_model(llm: Any) -> None:
    manager = ConversationManager(
        ConversationConfig(max_turns=2, system_prompt="Answer in one short sentence."),
        llm,
    )
    for question in ("What is 2 + 2?", "Name a colour.", "Name an animal."):
        await manager.add_message({"role": "user", "content": question})
        result = await manager.get_response(max_tokens=24)
        assert isinstance(result, Ok), result
    sent = manager.messages
    assert sent[0].text == "Answer in one short sentence."
    assert [m.text for m in sent if m.role.value == "user"] == ["Name a colour.", "Name an animal."]
    assert manager.responses == 3
