"""A small MCP server written with the official ``mcp`` package's server API, for the MCP tool
source tests. Run as ``python mcp_weather_server.py`` (stdio) or
``python mcp_weather_server.py http PORT`` (streamable HTTP on 127.0.0.1:PORT/mcp)."""

from __future__ import annotations

import sys
from typing import Any


def build(**settings: Any) -> Any:
    try:  # mcp 2
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError

        server = MCPServer("weather")
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP
        from mcp.server.fastmcp.exceptions import ToolError

        server = FastMCP("weather", **settings)

    @server.tool()
    def get_weather(city: str, unit: str = "c") -> str:
        """Current weather for a city.

        Args:
            city: The city name.
            unit: "c" or "f".
        """
        return f"21 degrees {unit.upper()} and sunny in {city}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def station_status(station: str) -> str:
        """Status of a weather station."""
        # A ToolError's message reaches the client (mcp 2 hides other exceptions' text).
        raise ToolError(f"station {station} is offline")

    return server


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] == "http":
        port = int(sys.argv[2])
        server = build(host="127.0.0.1", port=port)
        try:
            server.run("streamable-http", host="127.0.0.1", port=port)
        except TypeError:  # mcp 1.x takes host and port in the constructor
            server.run("streamable-http")
    else:
        build().run()


if __name__ == "__main__":
    main()
