"""What ``run_tools`` costs on top of the model calls it makes.

    .venv/bin/python -m bench.tool_loop [--rounds N]

Against the OpenAI loopback server of the tests (in this process: its CPU counts on both
sides alike), one round is either two plain ``complete()`` calls (a tool call answer, then the
final answer) or one ``run_tools`` doing the same two calls plus one tool call (an async tool,
then a sync one run in a worker thread). The CPU per round of each, alternated, and the
difference: the loop's own cost per two-step run. Prints medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages/lexigram-ai-llm/tests"))

from harness.openai_server import OpenAIServer
from harness.server import Reply

from lexigram.ai.llm import ClientConfig, Tool, ToolDefinition, create_llm_client, run_tools

ASK = [{"role": "user", "content": "Weather in Paris?"}]
SCRIPT = (
    Reply(text="", finish="tool_calls", tool_calls=[("call_1", "get_weather", {"city": "Paris"})]),
    Reply(text="It is 21 degrees in Paris."),
)


async def get_weather(city: str) -> dict[str, Any]:
    """Current weather for a city."""
    return {"city": city, "temp": 21}


def get_weather_sync(city: str) -> dict[str, Any]:
    """Current weather for a city."""
    return {"city": city, "temp": 21}


async def main(rounds: int) -> None:
    server = OpenAIServer()
    await server.start()
    llm = create_llm_client(
        ClientConfig(
            provider="openai", model="gpt-4o-mini", api_base=server.url + "/v1", api_key="sk-b"
        )
    )
    samples: dict[str, list[float]] = {
        "complete x2": [],
        "run_tools async": [],
        "run_tools sync": [],
    }

    definitions = [ToolDefinition.from_function(get_weather)]  # built once, as a user would

    async def plain() -> None:
        first = (await llm.complete(ASK, tools=definitions, cache=False)).unwrap()
        history = [*ASK, first.to_message()]
        history.append({"role": "tool", "tool_call_id": "call_1", "content": '{"temp":21}'})
        (await llm.complete(history, tools=definitions, cache=False)).unwrap()

    sync_tool = Tool.from_function(get_weather_sync, name="get_weather")

    async def loop(tool: Any) -> None:
        run = (await run_tools(llm, ASK, tools=[tool], cache=False)).unwrap()
        if not run.results[0].ok:  # a failed call would be a cheaper round
            raise AssertionError(run.results[0].error)

    cases = {
        "complete x2": plain,
        "run_tools async": lambda: loop(get_weather),
        "run_tools sync": lambda: loop(sync_tool),
    }
    for _ in range(20):  # warm up: pool, imports, pydantic models
        for case in cases.values():
            server.script(*SCRIPT)
            await case()
    for _ in range(rounds):
        for name, case in cases.items():
            server.script(*SCRIPT)
            started = time.process_time()
            await case()
            samples[name].append(time.process_time() - started)
    await llm.close()
    await server.stop()
    base = statistics.median(samples["complete x2"])
    print(f"rounds: {rounds}; CPU per two-step round, median (client and loopback server)")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:16} {median * 1e6:8.0f} us   (+{(median - base) * 1e6:.0f} us)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    asyncio.run(main(parser.parse_args().rounds))
