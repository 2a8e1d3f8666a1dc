"""ParserRegistry and its JSON, pydantic, enum and CSV parsers."""

from __future__ import annotations

import csv
import enum
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from lexigram.ai.llm import ParserRegistry
from lexigram.ai.llm.exceptions import ExtractionParseError, ExtractionValidationError
from lexigram.ai.llm.structured import CSVParser, EnumParser, JSONParser, PydanticParser
from lexigram.result import Err, Ok


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"
    DARK_BLUE = "dark blue"


class Item(BaseModel):
    sku: str
    qty: int


def test_default_registry_has_the_four_parsers() -> None:
    registry = ParserRegistry.default()
    assert registry.names() == ["csv", "enum", "json", "pydantic"]
    assert isinstance(registry.get("json"), JSONParser)
    assert isinstance(registry.create("enum", Color), EnumParser)
    assert isinstance(registry.for_type(Color), EnumParser)
    assert isinstance(registry.for_type(Item), PydanticParser)
    assert isinstance(registry.for_type(dict), JSONParser)
    assert registry.parse("json", 'x {"a": 1} y') == Ok({"a": 1})
    with pytest.raises(KeyError, match="registered: csv, enum, json, pydantic"):
        registry.get("yaml")


def test_custom_parsers_can_be_registered() -> None:
    registry = ParserRegistry()

    class Upper:
        def parse(self, text: str) -> Ok[str]:
            return Ok(text.upper())

        def format_instructions(self) -> str:
            return "Shout."

    registry.register("upper", Upper)
    assert "upper" in registry
    assert registry.parse("upper", "hi") == Ok("HI")


def test_json_parser_validates_against_its_schema() -> None:
    parser = JSONParser(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    assert parser.parse('```json\n{"n": 3}\n```') == Ok({"n": 3})
    bad = parser.parse('{"n": "three"}')
    assert isinstance(bad, Err) and isinstance(bad.error, ExtractionValidationError)
    assert bad.error.raw_output == '{"n": "three"}'
    none = parser.parse("nothing")
    assert isinstance(none, Err) and isinstance(none.error, ExtractionParseError)
    assert '"required":["n"]' in parser.format_instructions()
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        JSONParser({"type": "nonsense"})


def test_pydantic_parser() -> None:
    parser = PydanticParser(Item)
    assert parser.parse('<think>hmm</think>{"sku": "A1", "qty": "3"}') == Ok(Item(sku="A1", qty=3))
    bad = parser.parse('{"sku": "A1"}')
    assert isinstance(bad, Err) and isinstance(bad.error, ExtractionValidationError)
    assert "$.qty" in bad.error.message
    assert "sku" in parser.format_instructions()
    assert PydanticParser(list[Item]).parse('[{"sku": "b", "qty": 1}]') == Ok(
        [Item(sku="b", qty=1)]
    )


@pytest.mark.parametrize(
    "answer",
    [
        "red",
        "RED",
        '"red"',
        "'red'",
        "`red`",
        "**red**",
        "red.",
        "Color.RED",
        "RED\n",
        "The answer is red.",
        "```\nred\n```",
        "<think>green or red?</think>red",
    ],
)
def test_enum_parser_accepts_bare_quoted_and_named_values(answer: str) -> None:
    assert EnumParser(Color).parse(answer) == Ok(Color.RED)


def test_enum_parser_multiword_values_and_plain_choices() -> None:
    assert EnumParser(Color).parse('"Dark Blue"') == Ok(Color.DARK_BLUE)
    assert EnumParser(Color).parse("DARK_BLUE") == Ok(Color.DARK_BLUE)
    assert EnumParser(["yes", "no"]).parse("No.") == Ok("no")
    assert EnumParser(["Yes", "No"], case_sensitive=True).parse("yes").is_err()


def test_enum_parser_refuses_none_or_several() -> None:
    none = EnumParser(Color).parse("purple")
    assert isinstance(none, Err) and isinstance(none.error, ExtractionParseError)
    several = EnumParser(Color).parse("red or green")
    assert isinstance(several, Err) and isinstance(several.error, ExtractionValidationError)
    assert "red, green, dark blue" in EnumParser(Color).format_instructions()
    with pytest.raises(ValueError, match="at least one"):
        EnumParser([])


def test_csv_parser_reads_real_csv() -> None:
    text = (
        "Here is the table:\n"
        "```csv\n"
        "name,quote,city\n"
        'Ann,"Hello, world",Paris\n'
        'Bob,"He said ""hi""",Rome\n'
        'Cy,"two\nlines",Oslo\n'
        "```\n"
    )
    result = CSVParser(["name", "quote", "city"]).parse(text)
    assert result == Ok(
        [
            {"name": "Ann", "quote": "Hello, world", "city": "Paris"},
            {"name": "Bob", "quote": 'He said "hi"', "city": "Rome"},
            {"name": "Cy", "quote": "two\nlines", "city": "Oslo"},
        ]
    )


def test_csv_parser_errors_and_options() -> None:
    wrong_header = CSVParser(["a", "b"]).parse("x,y\n1,2\n")
    assert isinstance(wrong_header, Err) and isinstance(
        wrong_header.error, ExtractionValidationError
    )
    ragged = CSVParser().parse("a,b\n1,2\n3\n")
    assert isinstance(ragged, Err) and "row 3" in ragged.error.message
    empty = CSVParser().parse("no table here")
    assert isinstance(empty, Err) and isinstance(empty.error, ExtractionParseError)
    assert CSVParser(["a", "b"], header=False).parse("1,2\n3,4") == Ok(
        [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    )
    assert CSVParser(delimiter=";").parse("a;b\n1;2") == Ok([{"a": "1", "b": "2"}])
    assert "`a,b`" in CSVParser(["a", "b"]).format_instructions()
    with pytest.raises(ValueError, match="columns"):
        CSVParser(header=False)


cells = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"), max_size=12
)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=6))
def test_csv_written_by_the_csv_module_reads_back(rows: list[list[str]]) -> None:
    rows = [r for r in rows if any(c.strip() for c in r)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["a", "b", "c"])
    writer.writerows(rows)
    result = CSVParser(["a", "b", "c"]).parse(buffer.getvalue())
    assert result == Ok([dict(zip("abc", r, strict=True)) for r in rows])
