"""Structured output: JSON and typed objects out of model answers, and output parsers.

- ``JSONExtractor`` — a JSON value validated against a JSON Schema (``Result[dict, ...]``).
- ``StructuredExtractor`` — an instance of a pydantic model.
- ``ParserRegistry`` — JSON, pydantic, enum and CSV parsers with their format instructions.
- ``extract_json`` — the one JSON extractor (think tags, code fences, a string-aware scan).
"""

from lexigram.ai.llm.structured._json import (
    JSONExtractionError,
    extract_json,
    parse_partial_json,
)
from lexigram.ai.llm.structured.extractor import (
    Extraction,
    ExtractionMode,
    JSONExtractor,
    StructuredExtractor,
)
from lexigram.ai.llm.structured.parsers import (
    CSVParser,
    EnumParser,
    JSONParser,
    OutputParser,
    ParserRegistry,
    PydanticParser,
)

__all__ = [
    "CSVParser",
    "EnumParser",
    "Extraction",
    "ExtractionMode",
    "JSONExtractionError",
    "JSONExtractor",
    "JSONParser",
    "OutputParser",
    "ParserRegistry",
    "PydanticParser",
    "StructuredExtractor",
    "extract_json",
    "parse_partial_json",
]
