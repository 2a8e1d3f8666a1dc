from __future__ import annotations

import pickle

import pytest

from lexigram.result import (
    Err,
    Ok,
    Result,
    UnwrapError,
    as_async_result,
    as_result,
    collect,
    partition,
    wrap,
    wrap_async,
)


def parse(text: str) -> Result[int, str]:
    return Ok(int(text)) if text.isdigit() else Err(f"not a number: {text}")


def test_sides_know_what_they_are() -> None:
    assert Ok(1).is_ok()
    assert not Ok(1).is_err()
    assert Err("e").is_err()
    assert not Err("e").is_ok()
    assert (Ok(1).ok(), Ok(1).err()) == (1, None)
    assert (Err("e").ok(), Err("e").err()) == (None, "e")
    assert bool(Ok(0)) is True
    assert bool(Err("e")) is False


def test_unwrap_returns_the_value_or_raises_naming_the_error() -> None:
    assert Ok(5).unwrap() == 5

    with pytest.raises(UnwrapError, match=r"called unwrap\(\) on Err\('boom'\)") as caught:
        Err("boom").unwrap()

    assert caught.value.result == Err("boom")


def test_unwrap_chains_an_exception_error_as_the_cause() -> None:
    error = ValueError("bad input")

    with pytest.raises(UnwrapError) as caught:
        Err(error).unwrap()

    assert caught.value.__cause__ is error
    assert "bad input" in str(caught.value)


def test_unwrap_err_returns_the_error_or_raises_naming_the_value() -> None:
    assert Err("e").unwrap_err() == "e"

    with pytest.raises(UnwrapError, match=r"called unwrap_err\(\) on Ok\(3\)"):
        Ok(3).unwrap_err()


def test_unwrap_or_and_unwrap_or_else() -> None:
    assert Ok(1).unwrap_or(0) == 1
    assert Err("e").unwrap_or(0) == 0
    assert Ok(1).unwrap_or_else(len) == 1
    assert Err("four").unwrap_or_else(len) == 4


def test_expect_and_expect_err_carry_the_message() -> None:
    assert Ok(1).expect("needed a value") == 1
    assert Err("e").expect_err("needed an error") == "e"

    with pytest.raises(UnwrapError, match=r"needed a value: Err\('e'\)"):
        Err("e").expect("needed a value")
    with pytest.raises(UnwrapError, match=r"needed an error: Ok\(1\)"):
        Ok(1).expect_err("needed an error")


def test_match_calls_the_branch_for_its_side() -> None:
    assert Ok(2).match(ok=lambda v: v * 10, err=lambda e: -1) == 20
    assert Err("e").match(ok=lambda v: v, err=lambda e: f"failed: {e}") == "failed: e"


def test_map_and_map_err_change_only_their_side() -> None:
    assert Ok(2).map(lambda v: v + 1) == Ok(3)
    assert Err("e").map(lambda v: v + 1) == Err("e")
    assert Err("e").map_err(str.upper) == Err("E")
    assert Ok(2).map_err(str.upper) == Ok(2)


def test_and_then_and_or_else_chain() -> None:
    assert Ok("42").and_then(parse) == Ok(42)
    assert Ok("x").and_then(parse) == Err("not a number: x")
    assert Err("early").and_then(parse) == Err("early")
    assert Err("7").or_else(parse) == Ok(7)
    assert Ok(1).or_else(parse) == Ok(1)


async def test_async_twins_behave_like_the_sync_methods() -> None:
    async def double(value: int) -> int:
        return value * 2

    async def shout(error: str) -> str:
        return error.upper()

    async def parse_async(text: str) -> Result[int, str]:
        return parse(text)

    assert await Ok(2).map_async(double) == Ok(4)
    assert await Err("e").map_async(double) == Err("e")
    assert await Err("e").map_err_async(shout) == Err("E")
    assert await Ok(2).map_err_async(shout) == Ok(2)
    assert await Ok("3").and_then_async(parse_async) == Ok(3)
    assert await Err("e").and_then_async(parse_async) == Err("e")
    assert await Err("9").or_else_async(parse_async) == Ok(9)
    assert await Ok(1).or_else_async(parse_async) == Ok(1)


def test_equality_and_hashing_are_by_side_and_content() -> None:
    assert Ok(1) == Ok(1)
    assert Ok(1) != Err(1)
    assert Err("e") == Err("e")
    assert Ok(1) != Ok(2)
    assert len({Ok(1), Ok(1), Err(1), Err("e")}) == 3
    assert hash(Ok((1, 2))) == hash(Ok((1, 2)))


def test_results_are_immutable_and_picklable() -> None:
    result = Ok([1, 2])

    with pytest.raises(AttributeError):
        result.value = [3]  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(result)) == result
    assert pickle.loads(pickle.dumps(Err("e"))) == Err("e")


def test_repr_shows_side_and_content() -> None:
    assert repr(Ok("a")) == "Ok('a')"
    assert repr(Err(ValueError("x"))) == "Err(ValueError('x'))"


@pytest.mark.parametrize(("text", "expected"), [("12", "value 12"), ("x", "error not a number: x")])
def test_structural_pattern_matching(text: str, expected: str) -> None:
    match parse(text):
        case Ok(value):
            described = f"value {value}"
        case Err(error):
            described = f"error {error}"

    assert described == expected


def test_wrap_catches_the_given_exceptions_only() -> None:
    assert wrap(lambda: int("5")) == Ok(5)

    caught = wrap(lambda: int("x"), ValueError)
    assert isinstance(caught.err(), ValueError)

    with pytest.raises(ZeroDivisionError):
        wrap(lambda: 1 / 0, ValueError)


async def test_wrap_async_catches_exceptions_of_an_awaitable() -> None:
    async def ok() -> int:
        return 1

    async def fails() -> int:
        raise LookupError("missing")

    assert await wrap_async(ok()) == Ok(1)
    failed = await wrap_async(fails(), LookupError)
    assert isinstance(failed.err(), LookupError)
    with pytest.raises(LookupError):
        await wrap_async(fails(), ValueError)


def test_as_result_decorates_a_raising_function() -> None:
    @as_result(ValueError)
    def to_int(text: str) -> int:
        """Parse an integer."""
        return int(text)

    assert to_int("3") == Ok(3)
    assert isinstance(to_int("x").err(), ValueError)
    assert (to_int.__name__, to_int.__doc__) == ("to_int", "Parse an integer.")


async def test_as_async_result_decorates_a_raising_coroutine_function() -> None:
    @as_async_result(KeyError)
    async def lookup(key: str) -> int:
        return {"a": 1}[key]

    assert await lookup("a") == Ok(1)
    assert isinstance((await lookup("b")).err(), KeyError)


def test_collect_returns_all_values_or_the_first_error() -> None:
    assert collect([Ok(1), Ok(2)]) == Ok([1, 2])
    assert collect([Ok(1), Err("first"), Err("second")]) == Err("first")
    assert collect([]) == Ok([])


def test_partition_splits_values_and_errors_in_order() -> None:
    values, errors = partition([Ok(1), Err("a"), Ok(2), Err("b")])

    assert values == [1, 2]
    assert errors == ["a", "b"]
