"""MCP servers as a tool source for ``run_tools`` (the ``mcp`` extra, official ``mcp`` package).

::

    async with MCPTools.stdio("python", ["weather_server.py"]) as weather:
        result = await run_tools(llm, messages, tools=[weather, get_time])

    async with MCPTools.http("http://127.0.0.1:8000/mcp") as remote:
        print([tool.name for tool in remote.tools])

On entering, the connection is opened, initialised and the server's tools are listed as
``Tool`` objects (their ``definition`` is the server's name, description and input schema).
A call goes to the server; a result it marks ``isError`` goes back to the model as the tool's
error. The connection must be entered and left in the same task (the SDK's rule).
"""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

import orjson

from lexigram.ai.llm.exceptions import MissingExtraError
from lexigram.ai.llm.tools import Tool, ToolError
from lexigram.ai.llm.types import ToolDefinition

__all__ = ["MCPConnectionError", "MCPTools"]

_INSTALL = "pip install 'lexigram-ai-llm[mcp]'"

# Opens the transport: yields a (read stream, write stream, ...) tuple.
Connector = Callable[[], AbstractAsyncContextManager[Any]]


def _import_mcp(module: str = "mcp") -> Any:
    """``mcp`` (or one of its modules), imported at first use: the extra may be missing."""
    try:
        importlib.import_module("mcp")
    except ImportError:
        raise MissingExtraError(
            f"MCP tool sources need the official mcp package: {_INSTALL}"
        ) from None
    return importlib.import_module(module)


class MCPConnectionError(ConnectionError):
    """The MCP server could not be started, reached or initialised (the message says which
    and why)."""


class MCPTools:
    """A connection to one MCP server whose tools ``run_tools`` can call.

    Build it with ``MCPTools.stdio(command, args)`` (a subprocess speaking MCP on its stdin
    and stdout) or ``MCPTools.http(url)`` (streamable HTTP), then ``async with`` it. ``prefix``
    is put before every tool name (to keep two servers' tools apart)."""

    def __init__(self, connect: Connector, *, prefix: str = "", description: str = "") -> None:
        self._connect = connect
        self._stack: AsyncExitStack | None = None
        self._session: Any = None
        self.prefix = prefix
        self.description = description
        self._tools: list[Tool] = []

    def __repr__(self) -> str:
        state = "open" if self._session is not None else "closed"
        return f"MCPTools({self.description or 'server'!r}, {state}, tools={len(self._tools)})"

    @property
    def tools(self) -> list[Tool]:
        """The server's tools; only while the connection is open (offering a closed
        connection's tools would fail every call)."""
        if self._session is None:
            raise RuntimeError(
                f"the MCP connection to {self.description or 'the server'} is not open; "
                "use 'async with MCPTools...' around run_tools"
            )
        return list(self._tools)

    @classmethod
    def stdio(
        cls,
        command: str | Sequence[str],
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        prefix: str = "",
    ) -> MCPTools:
        """A server run as a subprocess. ``command`` may be a whole command line
        (``"uvx mcp-server-time"``), split like a shell would."""
        parts = shlex.split(command) if isinstance(command, str) else list(command)
        if not parts:
            raise ValueError("an MCP stdio server needs a command")
        program, argv = parts[0], [*parts[1:], *args]

        def connect() -> AbstractAsyncContextManager[Any]:
            stdio = _import_mcp("mcp.client.stdio")
            params = stdio.StdioServerParameters(
                command=program, args=argv, env=dict(env) if env is not None else None, cwd=cwd
            )
            connection: AbstractAsyncContextManager[Any] = stdio.stdio_client(
                params, errlog=_server_errlog()
            )
            return connection

        # Only the program in messages and reprs: arguments may carry a token.
        shown = shlex.quote(program) + (" ..." if argv else "")
        return cls(connect, prefix=prefix, description=shown)

    @classmethod
    def http(
        cls, url: str, *, headers: Mapping[str, str] | None = None, prefix: str = ""
    ) -> MCPTools:
        """A server at a streamable-HTTP endpoint (``http://host:port/mcp``). ``headers``
        (an ``Authorization`` for instance) go with every request and are never shown."""

        def connect() -> AbstractAsyncContextManager[Any]:
            streamable_http = _import_mcp("mcp.client.streamable_http")
            modern = getattr(streamable_http, "streamable_http_client", None)
            connection: AbstractAsyncContextManager[Any]
            if modern is not None:  # mcp 2: headers travel on the HTTP client it is given
                httpx_utils = _import_mcp("mcp.shared._httpx_utils")
                client = httpx_utils.create_mcp_http_client(headers=dict(headers or {}))
                connection = modern(url, http_client=client)
            else:  # mcp 1.x
                connection = streamable_http.streamablehttp_client(url, headers=dict(headers or {}))
            return connection

        return cls(connect, prefix=prefix, description=_public_url(url))

    # -- lifetime --------------------------------------------------------------------------

    async def __aenter__(self) -> MCPTools:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect, initialise the session and list the server's tools."""
        if self._session is not None:
            return
        mcp = _import_mcp()
        stack = AsyncExitStack()
        try:
            streams = await stack.enter_async_context(self._connect())
            session = await stack.enter_async_context(mcp.ClientSession(streams[0], streams[1]))
            await session.initialize()
            self._session = session
            self._tools = await self._list_tools()
        except BaseException as exc:
            self._session = None
            await stack.aclose()
            if isinstance(exc, Exception):
                raise MCPConnectionError(
                    f"could not open the MCP server {self.description or 'connection'}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            raise
        self._stack = stack

    async def aclose(self) -> None:
        """Close the session and the transport (a stdio server's process ends)."""
        stack, self._stack = self._stack, None
        self._session = None
        if stack is not None:
            await stack.aclose()

    # -- tools -----------------------------------------------------------------------------

    async def _list_tools(self) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        while True:
            listed = await self._session.list_tools(
                **({"params": _paginated(cursor)} if cursor else {})
            )
            for spec in listed.tools:
                tools.append(self._tool(spec))
            cursor = _field(listed, "next_cursor", "nextCursor")
            if not cursor:
                return tools

    def _tool(self, spec: Any) -> Tool:
        remote_name = str(spec.name)
        schema = _field(spec, "input_schema", "inputSchema") or {"type": "object"}
        definition = ToolDefinition(
            name=self.prefix + remote_name,
            description=str(spec.description or ""),
            parameters=dict(schema),
        )

        async def call(**arguments: Any) -> str:
            return await self.call(remote_name, arguments)

        # The server validates against its own schema and reports problems as a tool error.
        return Tool(definition, call, validate=False)

    async def call(self, name: str, arguments: Mapping[str, Any]) -> str:
        """Call one of the server's tools (by its own name); the result as text. A result the
        server marks as an error raises ``ToolError`` with its text."""
        if self._session is None:
            raise RuntimeError("the MCP connection is not open; use 'async with MCPTools...'")
        result = await self._session.call_tool(name, dict(arguments))
        text = _result_text(result)
        if _field(result, "is_error", "isError"):
            raise ToolError(text or f"{name} failed")
        return text


def _server_errlog() -> Any:
    """Where a stdio server's stderr goes: ours, when it is a real file (the subprocess needs
    a file descriptor; a captured or replaced ``sys.stderr`` may have none)."""
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.fileno()
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    return subprocess.DEVNULL


def _public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials hide), for messages."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def _field(obj: Any, *names: str) -> Any:
    """An attribute under its mcp 2 (snake case) or mcp 1 (camel case) name."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _paginated(cursor: str) -> Any:
    return _import_mcp("mcp.types").PaginatedRequestParams(cursor=cursor)


def _result_text(result: Any) -> str:
    """A tool result as the text the model reads: text blocks joined, other blocks
    described, or the structured content as JSON when there is no text."""
    pieces: list[str] = []
    for block in _field(result, "content") or ():
        kind = getattr(block, "type", None)
        if kind == "text":
            pieces.append(str(block.text))
        elif kind in ("image", "audio"):
            mime = _field(block, "mime_type", "mimeType") or kind
            pieces.append(f"[{kind} {mime}]")
        elif kind == "resource_link":
            pieces.append(f"[resource {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            text = getattr(resource, "text", None)
            pieces.append(str(text) if text is not None else f"[resource {resource}]")
    if pieces:
        return "\n".join(pieces)
    structured = _field(result, "structured_content", "structuredContent")
    if structured is not None:
        return orjson.dumps(structured).decode()
    return ""
