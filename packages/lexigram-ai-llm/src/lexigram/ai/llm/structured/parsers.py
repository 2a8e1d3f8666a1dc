"""Output parsers (JSON, pydantic, enum, CSV), each with the format instructions that ask a model
for its format, and ``ParserRegistry`` to find them by name or by output type.

``parse`` never raises for a bad answer: it returns ``Err(ExtractionParseError)`` (nothing
usable) or ``Err(ExtractionValidationError)`` (the right shape, the wrong content), with the
answer kept in ``raw_output``.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from lexigram.ai.llm.exceptions import (
    ExtractionError,
    ExtractionParseError,
    ExtractionValidationError,
)
from lexigram.ai.llm.structured._json import (
    _FENCE,
    JSONExtractionError,
    extract_json,
    strip_reasoning,
)
from lexigram.ai.llm.structured._schema import (
    compile_validator,
    pydantic_problem,
    schema_instructions,
)
from lexigram.result import Err, Ok, Result

__all__ = [
    "CSVParser",
    "EnumParser",
    "JSONParser",
    "OutputParser",
    "ParserRegistry",
    "PydanticParser",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class OutputParser(Protocol[T_co]):
    """Turns a model's answer into a value, and says how to ask for that format."""

    def parse(self, text: str) -> Result[T_co, ExtractionError]:
        """The value, or the typed extraction error."""
        ...

    def format_instructions(self) -> str:
        """The instruction to add to a prompt so the model answers in this format."""
        ...


def _unfenced(text: str) -> str:
    body = strip_reasoning(text)
    match = _FENCE.search(body)
    return match.group(2) if match else body


class JSONParser:
    """A JSON value, optionally validated against a JSON Schema."""

    def __init__(self, schema: Mapping[str, Any] | None = None) -> None:
        self.schema = dict(schema) if schema is not None else None
        self._validate = compile_validator(self.schema) if self.schema is not None else None

    def parse(self, text: str) -> Result[Any, ExtractionError]:
        try:
            value = extract_json(text)
        except JSONExtractionError as exc:
            return Err(ExtractionParseError(f"No JSON in the answer: {exc}", raw_output=text))
        if self._validate is not None:
            problems = self._validate(value)
            if problems:
                return Err(
                    ExtractionValidationError(
                        "The JSON does not match the schema: " + "; ".join(problems),
                        raw_output=text,
                        details={"problems": problems},
                    )
                )
        return Ok(value)

    def format_instructions(self) -> str:
        return schema_instructions(self.schema)


class PydanticParser(Generic[T]):
    """An instance of a pydantic model (or any type pydantic validates) from JSON."""

    def __init__(self, model: type[T]) -> None:
        from pydantic import TypeAdapter

        self.model = model
        self._adapter: TypeAdapter[T] = TypeAdapter(model)

    def parse(self, text: str) -> Result[T, ExtractionError]:
        from pydantic import ValidationError

        try:
            value = extract_json(text)
        except JSONExtractionError as exc:
            return Err(ExtractionParseError(f"No JSON in the answer: {exc}", raw_output=text))
        try:
            return Ok(self._adapter.validate_python(value))
        except ValidationError as exc:
            problems = [pydantic_problem(e) for e in exc.errors()[:8]]
            return Err(
                ExtractionValidationError(
                    f"The JSON does not match {getattr(self.model, '__name__', 'the model')}: "
                    + "; ".join(problems),
                    raw_output=text,
                    details={"problems": problems},
                )
            )

    def format_instructions(self) -> str:
        return schema_instructions(self._adapter.json_schema())


class EnumParser(Generic[T]):
    """One choice out of an ``Enum`` (or a list of strings), answered bare (``red``), quoted
    (``"red"``, ``'red'``, ```red```), as a member name (``Color.RED``) or inside a short
    sentence (``The answer is red.``) as long as exactly one choice is named."""

    def __init__(self, choices: type[T] | Iterable[str], *, case_sensitive: bool = False) -> None:
        self.enum: type[enum.Enum] | None = None
        table: list[tuple[str, Any]] = []
        if isinstance(choices, type) and issubclass(choices, enum.Enum):
            self.enum = choices
            for member in choices:
                table.append((str(member.value), member))
                table.append((member.name, member))
                table.append((f"{choices.__name__}.{member.name}", member))
        else:
            for choice in choices:  # type: ignore[union-attr]
                table.append((str(choice), str(choice)))
        if not table:
            raise ValueError("EnumParser needs at least one choice")
        self.case_sensitive = case_sensitive
        self._table = table

    @property
    def choices(self) -> list[str]:
        """The values the model may answer with."""
        if self.enum is not None:
            return [str(m.value) for m in self.enum]
        return [label for label, _ in self._table]

    def _key(self, text: str) -> str:
        return text if self.case_sensitive else text.casefold()

    def parse(self, text: str) -> Result[Any, ExtractionError]:
        body = _unfenced(text).strip()
        cleaned = body.strip(" \t\r\n\"'`*").rstrip(".!,;:").strip(" \t\"'`*")
        if cleaned:
            key = self._key(cleaned)
            for label, value in self._table:
                if self._key(label) == key:
                    return Ok(value)
        found: dict[int, Any] = {}
        for label, value in self._table:
            pattern = rf"(?<![\w.]){re.escape(label)}(?![\w])"
            flags = 0 if self.case_sensitive else re.IGNORECASE
            if re.search(pattern, body, flags):
                found[id(value)] = value
        if len(found) == 1:
            return Ok(next(iter(found.values())))
        allowed = ", ".join(self.choices)
        if not found:
            return Err(
                ExtractionParseError(
                    f"The answer names none of the choices ({allowed})", raw_output=text
                )
            )
        return Err(
            ExtractionValidationError(
                f"The answer names more than one choice ({allowed})", raw_output=text
            )
        )

    def format_instructions(self) -> str:
        return (
            "Answer with exactly one of these values and nothing else: "
            + ", ".join(self.choices)
            + "."
        )


class CSVParser:
    """Rows of real CSV (RFC 4180: quoted fields may hold commas, quotes and newlines) as a list
    of dicts keyed by the header. ``columns`` fixes the expected header."""

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        *,
        delimiter: str = ",",
        header: bool = True,
    ) -> None:
        if not header and not columns:
            raise ValueError("CSVParser without a header row needs columns=")
        self.columns = list(columns) if columns else None
        self.delimiter = delimiter
        self.header = header

    def parse(self, text: str) -> Result[list[dict[str, str]], ExtractionError]:
        body = _unfenced(text).strip("\r\n")
        lines = body.splitlines(keepends=True)
        # Leading prose ("Here is the table:") has no delimiter; a header row does.
        start = 0
        if self.columns is not None and self.header:
            wanted = self._normalize(self.columns)
            for i, line in enumerate(lines):
                if (
                    self._normalize(next(csv.reader([line], delimiter=self.delimiter), []))
                    == wanted
                ):
                    start = i
                    break
        while start < len(lines) and self.delimiter not in lines[start]:
            start += 1
        try:
            rows = [
                row
                for row in csv.reader(
                    io.StringIO("".join(lines[start:])), delimiter=self.delimiter, strict=True
                )
                if any(cell.strip() for cell in row)
            ]
        except csv.Error as exc:
            return Err(ExtractionParseError(f"The answer is not valid CSV: {exc}", raw_output=text))
        if not rows:
            return Err(ExtractionParseError("The answer holds no CSV rows", raw_output=text))
        if self.header:
            names = [cell.strip() for cell in rows[0]]
            rows = rows[1:]
            if self.columns is not None and self._normalize(names) != self._normalize(self.columns):
                return Err(
                    ExtractionValidationError(
                        f"The CSV header is {names}, expected {self.columns}", raw_output=text
                    )
                )
        else:
            assert self.columns is not None
            names = list(self.columns)
        out: list[dict[str, str]] = []
        for number, row in enumerate(rows, start=2 if self.header else 1):
            if len(row) != len(names):
                return Err(
                    ExtractionValidationError(
                        f"CSV row {number} has {len(row)} fields, expected {len(names)}",
                        raw_output=text,
                    )
                )
            out.append(dict(zip(names, row, strict=True)))
        return Ok(out)

    @staticmethod
    def _normalize(cells: Sequence[str]) -> list[str]:
        return [c.strip().casefold() for c in cells]

    def format_instructions(self) -> str:
        header = (
            f"a header row `{self.delimiter.join(self.columns)}`"
            if self.columns
            else "a header row naming the columns"
        )
        return (
            f"Respond with CSV only (no explanation, no code fences): {header}, then one row "
            "per item. Enclose a field in double quotes when it contains the delimiter, a "
            "double quote (written twice) or a line break."
        )


ParserFactory = Callable[..., Any]


class ParserRegistry:
    """Output parsers by name. ``default()`` knows ``json``, ``pydantic``, ``enum`` and ``csv``::

    parser = registry.create("enum", Color)
    registry.parse("json", answer)
    registry.for_type(Person)          # a PydanticParser
    """

    def __init__(self) -> None:
        self._factories: dict[str, ParserFactory] = {}

    @classmethod
    def default(cls) -> ParserRegistry:
        """A registry with the built-in parsers."""
        registry = cls()
        registry.register("json", JSONParser)
        registry.register("pydantic", PydanticParser)
        registry.register("enum", EnumParser)
        registry.register("csv", CSVParser)
        return registry

    def register(self, name: str, factory: ParserFactory) -> None:
        """Register a parser class or factory under ``name`` (replacing any previous one)."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """A parser built by the factory registered as ``name`` with these arguments."""
        try:
            factory = self._factories[name]
        except KeyError:
            raise KeyError(
                f"no parser named {name!r}; registered: {', '.join(self.names()) or 'none'}"
            ) from None
        return factory(*args, **kwargs)

    def get(self, name: str) -> Any:
        """The parser ``name`` with its default arguments."""
        return self.create(name)

    def parse(
        self, name: str, text: str, *args: Any, **kwargs: Any
    ) -> Result[Any, ExtractionError]:
        """Parse ``text`` with a new parser ``name`` built from ``args``/``kwargs``."""
        result: Result[Any, ExtractionError] = self.create(name, *args, **kwargs).parse(text)
        return result

    def for_type(self, output_type: Any) -> Any:
        """The parser for an output type: an ``Enum`` -> enum, a pydantic model -> pydantic,
        ``dict``/``None`` -> json, anything else pydantic can validate -> pydantic."""
        if isinstance(output_type, type) and issubclass(output_type, enum.Enum):
            return self.create("enum", output_type)
        if output_type is None or output_type is dict:
            return self.create("json")
        return self.create("pydantic", output_type)
