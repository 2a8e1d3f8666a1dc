"""``lexigram-llm chat`` with no prompt, in a real terminal (tmux): two dependent questions,
thinking shown dimmed, Ctrl-C stopping a slow answer (the part shown is kept), Ctrl-D leaving
with the session's totals; then ``chat -c`` continues the session and ``logs -q`` finds it."""

from __future__ import annotations

import asyncio
import base64
import json
import shlex
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from harness.cli_process import LEXIGRAM_LLM, run_cli, user_env
from harness.openai_server import OpenAIServer
from harness.server import Reply

TMUX = shutil.which("tmux")
pytestmark = pytest.mark.skipif(
    TMUX is None, reason="tmux is not installed (scripts/bootstrap.sh --with-redis installs it)"
)

STORY = "Once upon a time " + "there was a very long story that went on and on. " * 40


@pytest_asyncio.fixture
async def openai() -> AsyncIterator[OpenAIServer]:
    server = OpenAIServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class Terminal:
    """One tmux pane on a private server socket, driven like a person would."""

    def __init__(self, env: dict[str, str]) -> None:
        assert TMUX is not None
        self.base = [TMUX, "-L", f"lexigram-test-{uuid.uuid4().hex[:12]}", "-f", "/dev/null"]
        self.env = env

    async def tmux(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *self.base,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err.decode()
        return out.decode()

    async def start(self, command: str) -> None:
        await self.tmux("new-session", "-d", "-s", "t", "-x", "200", "-y", "50", command)

    async def type(self, text: str) -> None:
        await self.tmux("send-keys", "-t", "t", "-l", text)
        await self.tmux("send-keys", "-t", "t", "Enter")

    async def keys(self, *keys: str) -> None:
        await self.tmux("send-keys", "-t", "t", *keys)

    async def screen(self, *, escapes: bool = False) -> str:
        flags = ["-e"] if escapes else []
        return await self.tmux("capture-pane", "-p", "-J", *flags, "-S", "-500", "-t", "t")

    async def wait_for(self, ready: Callable[[str], bool], what: str) -> str:
        """Poll the pane until ``ready(screen)``; fail after a bounded number of polls."""
        for _ in range(600):  # at most a minute
            screen = await self.screen()
            if ready(screen):
                return screen
            await asyncio.sleep(0.1)
        raise AssertionError(f"the terminal never showed {what}:\n{screen}")

    async def close(self) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.base,
            "kill-server",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=self.env,
        )
        await process.wait()


def prompt_count(screen: str) -> int:
    return sum(1 for line in screen.splitlines() if line.startswith(">"))


def waiting_at_prompt(count: int) -> Callable[[str], bool]:
    """The ``count``-th prompt is the last line shown (the session waits for input)."""

    def ready(screen: str) -> bool:
        lines = [line for line in screen.splitlines() if line.strip()]
        return prompt_count(screen) >= count and bool(lines) and lines[-1].rstrip() == ">"

    return ready


def turns(request_messages: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [(m["role"], m["content"]) for m in request_messages]


async def test_interactive_chat_in_a_terminal(tmp_path: Path, openai: OpenAIServer) -> None:
    env = user_env(tmp_path / "home")
    openai.script(
        Reply(text="Paris is the capital.", thinking="The user asks about France."),
        Reply(text="About 2.1 million live in Paris."),
        Reply(text=STORY, chunk_chars=4, chunk_delay=0.05),
        Reply(text="Lyon is in that story."),
        Reply(text="It is sunny in Paris."),
    )
    flags = ["--provider", "openai_compatible", "--api-base", openai.url + "/v1", "--model", "m"]
    command = shlex.join([str(LEXIGRAM_LLM), "chat", *flags])
    terminal = Terminal(env)
    try:
        await terminal.start(f'{command}; echo "exit status $?"; sleep 600')
        await terminal.wait_for(waiting_at_prompt(1), "the first prompt")

        await terminal.type("Capital of France?")
        screen = await terminal.wait_for(waiting_at_prompt(2), "the first answer")
        assert "Paris is the capital." in screen
        coloured = await terminal.screen(escapes=True)
        assert "\x1b[2mThe user asks about France." in coloured  # thinking, dimmed

        await terminal.type("How many live there?")
        screen = await terminal.wait_for(waiting_at_prompt(3), "the second answer")
        assert "About 2.1 million live in Paris." in screen
        assert turns(openai.requests[1].json["messages"]) == [
            ("user", "Capital of France?"),
            ("assistant", "Paris is the capital."),
            ("user", "How many live there?"),
        ]

        await terminal.type("Tell me a long story")
        await terminal.wait_for(lambda s: "Once upon a time there" in s, "the story starting")
        await terminal.keys("C-c")
        screen = await terminal.wait_for(waiting_at_prompt(4), "the prompt after Ctrl-C")
        assert "[interrupted]" in screen
        assert "exit status" not in screen

        await terminal.type("What city was that?")
        screen = await terminal.wait_for(waiting_at_prompt(5), "the answer after Ctrl-C")
        assert "Lyon is in that story." in screen
        sent = turns(openai.requests[3].json["messages"])
        assert sent[:4] == [
            *turns(openai.requests[1].json["messages"]),
            ("assistant", "About 2.1 million live in Paris."),
        ]
        (_, question), (role, partial), last = sent[4:]
        assert question == "Tell me a long story"
        assert role == "assistant"  # the part shown before Ctrl-C is kept
        assert isinstance(partial, str) and partial.startswith("Once upon a time")
        assert STORY.startswith(partial) and len(partial) < len(STORY.rstrip())
        assert last == ("user", "What city was that?")

        await terminal.keys("C-d")
        screen = await terminal.wait_for(lambda s: "exit status" in s, "the session ending")
        assert "exit status 0" in screen
        # Three finished answers of 12 prompt and 7 completion tokens each (the interrupted
        # one sent no usage); no price is known for model "m".
        assert "session: 3 answers, 57 tokens (36 in, 21 out), cost unknown" in screen
    finally:
        await terminal.close()

    continued = await run_cli("chat", *flags, "-c", "And the weather?", env=env, cwd=tmp_path)
    assert continued.returncode == 0, continued.stderr
    assert continued.stdout == "It is sunny in Paris.\n"
    sent = turns(openai.requests[-1].json["messages"])
    assert sent == [
        *turns(openai.requests[3].json["messages"]),
        ("assistant", "Lyon is in that story."),
        ("user", "And the weather?"),
    ]

    found = await run_cli("logs", "-q", "Lyon", "--json", env=env, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)
    assert [row["prompt"] for row in rows] == ["What city was that?"]
    everything = json.loads(
        (await run_cli("logs", "-n", "0", "--json", env=env, cwd=tmp_path)).stdout
    )
    assert len({row["conversation_id"] for row in everything}) == 1
    assert len(everything) == 5


async def test_without_a_prompt_and_no_terminal_is_a_usage_error(tmp_path: Path) -> None:
    ran = await run_cli("chat", env=user_env(tmp_path / "home"), cwd=tmp_path)
    assert ran.returncode == 2
    assert "chat needs a PROMPT" in ran.stderr


async def test_commands_and_multi_line_input(tmp_path: Path, openai: OpenAIServer) -> None:
    env = user_env(tmp_path / "home")
    openai.script(Reply(text="Un."), Reply(text="Deux."), Reply(text="Trois."))
    flags = ["--provider", "openai_compatible", "--api-base", openai.url + "/v1", "--model", "m"]
    saved = tmp_path / "conversation.json"
    terminal = Terminal(env)
    try:
        await terminal.start(shlex.join([str(LEXIGRAM_LLM), "chat", *flags]) + "; sleep 600")
        await terminal.wait_for(waiting_at_prompt(1), "the first prompt")
        await terminal.type("/help")
        screen = await terminal.wait_for(waiting_at_prompt(2), "the help")
        assert "/save FILE" in screen and "!multi" in screen

        await terminal.type("/system Answer in French.")
        await terminal.wait_for(waiting_at_prompt(3), "the system prompt set")
        await terminal.type("!multi")
        await terminal.type("line one")
        await terminal.type("line two")
        await terminal.type("!end")
        await terminal.wait_for(waiting_at_prompt(4), "the multi-line answer")
        assert turns(openai.requests[0].json["messages"]) == [
            ("system", "Answer in French."),
            ("user", "line one\nline two"),
        ]
        assert openai.requests[0].json["model"] == "m"

        await terminal.type("/model other")
        await terminal.wait_for(waiting_at_prompt(5), "the model switched")
        await terminal.type("Again?")
        await terminal.wait_for(waiting_at_prompt(6), "the answer of the other model")
        assert openai.requests[1].json["model"] == "other"
        assert turns(openai.requests[1].json["messages"])[-3:] == [
            ("user", "line one\nline two"),
            ("assistant", "Un."),
            ("user", "Again?"),
        ]

        await terminal.type(f"/save {saved}")
        screen = await terminal.wait_for(waiting_at_prompt(7), "the conversation saved")
        assert f"saved to {saved}" in screen
        export = json.loads(saved.read_text())
        assert [m["content"] for m in export["messages"]] == [
            "line one\nline two",
            "Un.",
            "Again?",
            "Deux.",
        ]
        assert export["config"]["system_prompt"] == "Answer in French."

        await terminal.type("/clear")
        await terminal.wait_for(waiting_at_prompt(8), "the history cleared")
        await terminal.type("Fresh start")
        await terminal.wait_for(waiting_at_prompt(9), "the answer after /clear")
        assert turns(openai.requests[2].json["messages"]) == [
            ("system", "Answer in French."),
            ("user", "Fresh start"),
        ]
        await terminal.type("/nope")
        screen = await terminal.wait_for(waiting_at_prompt(10), "the unknown command")
        assert "unknown command /nope" in screen
        assert len(openai.requests) == 3  # commands never reach the model
    finally:
        await terminal.close()

    rows = json.loads((await run_cli("logs", "-n", "0", "--json", env=env, cwd=tmp_path)).stdout)
    assert [row["prompt"] for row in rows] == ["line one\nline two", "Again?", "Fresh start"]
    assert [row["model"] for row in rows] == ["m", "other", "other"]
    assert rows[0]["system"] == "Answer in French."
    # /clear starts a new logged conversation, so -c does not bring the cleared history back.
    assert rows[0]["conversation_id"] == rows[1]["conversation_id"] != rows[2]["conversation_id"]


async def test_ctrl_c_before_the_first_token_drops_the_question(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home")
    openai.script(Reply(text="Never shown.", stall_after=0), Reply(text="Here I am."))
    flags = ["--provider", "openai_compatible", "--api-base", openai.url + "/v1", "--model", "m"]
    terminal = Terminal(env)
    try:
        await terminal.start(shlex.join([str(LEXIGRAM_LLM), "chat", *flags]) + "; sleep 600")
        await terminal.wait_for(waiting_at_prompt(1), "the first prompt")
        await terminal.type("Are you there?")
        for _ in range(600):  # until the server holds the stalled stream open
            if openai.open_streams:
                break
            await asyncio.sleep(0.1)
        await terminal.keys("C-c")
        screen = await terminal.wait_for(waiting_at_prompt(2), "the prompt after Ctrl-C")
        assert "[interrupted]" in screen
        await terminal.type("Hello?")
        screen = await terminal.wait_for(waiting_at_prompt(3), "the next answer")
        assert "Here I am." in screen
        # Nothing was shown, so the interrupted question is gone: no two questions in a row.
        assert turns(openai.requests[1].json["messages"]) == [("user", "Hello?")]
    finally:
        await terminal.close()
    rows = json.loads((await run_cli("logs", "-n", "0", "--json", env=env, cwd=tmp_path)).stdout)
    assert [row["prompt"] for row in rows] == ["Hello?"]


async def test_history_is_trimmed_to_the_context_window(
    tmp_path: Path, openai: OpenAIServer
) -> None:
    env = user_env(tmp_path / "home", LEX_AI_LLM__CONTEXT_WINDOW="60")
    openai.script(Reply(text="Ok."))
    flags = ["--provider", "openai_compatible", "--api-base", openai.url + "/v1", "--model", "m"]
    questions = [f"{word} " * 10 for word in ("alpha", "bravo", "charlie")]
    terminal = Terminal(env)
    try:
        await terminal.start(shlex.join([str(LEXIGRAM_LLM), "chat", *flags]) + "; sleep 600")
        await terminal.wait_for(waiting_at_prompt(1), "the first prompt")
        for count, question in enumerate(questions, start=2):
            await terminal.type(question.strip())
            await terminal.wait_for(waiting_at_prompt(count), f"answer {count - 1}")
    finally:
        await terminal.close()
    assert len(openai.requests) == 3
    sent = [m["content"] for m in openai.requests[2].json["messages"]]
    assert sent[-1] == questions[2].strip()
    assert questions[0].strip() not in sent  # the oldest turn went first


class HeldOpenAIServer(OpenAIServer):
    """Holds each request until ``release()``: what a person sees while a model thinks."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self._gate = asyncio.Event()

    def release(self) -> None:
        self._gate.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.held += 1
        await self._gate.wait()
        return await super().handle(request)


MARKDOWN = "Paris is **very** old.\n\n- first point\n- second point"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def test_a_terminal_gets_a_spinner_then_the_answer_as_markdown(tmp_path: Path) -> None:
    env = user_env(tmp_path / "home")
    server = HeldOpenAIServer()
    await server.start()
    server.script(Reply(text=MARKDOWN, thinking="Thinking about Paris."))
    flags = ["--provider", "openai_compatible", "--api-base", server.url + "/v1", "--model", "m"]
    command = shlex.join([str(LEXIGRAM_LLM), "chat", *flags, "How old is Paris?"])
    terminal = Terminal(env)
    try:
        await terminal.start(f'{command}; echo "exit status $?"; sleep 600')
        for _ in range(600):  # until the server holds the request
            if server.held:
                break
            await asyncio.sleep(0.1)
        screen = await terminal.wait_for(
            lambda s: "Waiting for the answer" in s, "the spinner while the answer is awaited"
        )
        assert server.held == 1 and "Paris is" not in screen
        server.release()
        screen = await terminal.wait_for(lambda s: "exit status" in s, "the answer")
        assert "exit status 0" in screen
        assert "Paris is very old." in screen  # rendered: no asterisks
        assert "**" not in screen
        assert "• first point" in screen and "• second point" in screen
        assert "Waiting for the answer" not in screen  # the spinner is gone
        assert screen.count("Paris is very old.") == 1  # the live text was replaced, not kept
        coloured = await terminal.screen(escapes=True)
        assert "\x1b[1mvery" in coloured  # bold
        assert "\x1b[2mThinking about Paris." in coloured  # thinking, dimmed
        # The same answer piped: the model's text as it is.
        piped = await run_cli("chat", *flags, "How old is Paris?", env=env, cwd=tmp_path)
        assert piped.stdout == MARKDOWN + "\n"
    finally:
        await terminal.close()
        await server.stop()


async def test_attach_in_the_interactive_chat(tmp_path: Path, openai: OpenAIServer) -> None:
    env = user_env(tmp_path / "home")
    (tmp_path / "dot.png").write_bytes(PNG)
    (tmp_path / "notes.txt").write_text("text\n")
    openai.script(Reply(text="A **tiny** dot."), Reply(text="Still a dot."))
    flags = ["--provider", "openai_compatible", "--api-base", openai.url + "/v1", "--model", "m"]
    terminal = Terminal(env)
    try:
        command = shlex.join([str(LEXIGRAM_LLM), "chat", *flags])
        await terminal.start(f"cd {shlex.quote(str(tmp_path))} && {command}; sleep 600")
        await terminal.wait_for(waiting_at_prompt(1), "the first prompt")
        await terminal.type("/attach notes.txt")
        screen = await terminal.wait_for(waiting_at_prompt(2), "the refused attachment")
        assert "not an image (PNG, JPEG, GIF, WebP) or a PDF" in screen
        await terminal.type("/attach dot.png")
        screen = await terminal.wait_for(waiting_at_prompt(3), "the attachment")
        assert "attached dot.png (image/png)" in screen
        await terminal.type("What is this?")
        screen = await terminal.wait_for(waiting_at_prompt(4), "the answer")
        assert "A tiny dot." in screen
        await terminal.type("And now?")
        await terminal.wait_for(waiting_at_prompt(5), "the second answer")
    finally:
        await terminal.close()
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    first, second = (request.json["messages"] for request in openai.requests)
    assert first == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": data_url}},
            ],
        }
    ]
    assert second[0] == first[0]  # the image stays in the history
    assert second[-1] == {"role": "user", "content": "And now?"}  # and goes only once
