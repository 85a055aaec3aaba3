"""The connection to the gateway's ``/mcp`` endpoint, shared by every tool function in ``servers``.

One process holds one MCP session, opened on the first call: every placeholder a tool returns
(``[EMAIL_1]``, ``[PHONE_2]``) belongs to that session, so a script can hand it to another tool
as it is and the gateway restores the real value on the way out (when the flow policy allows).

Environment:
    MCP_GATEWAY_URL           the endpoint (default ``http://127.0.0.1:8080/mcp``)
    MCP_GATEWAY_TOKEN         sent as ``Authorization: Bearer <token>`` when set
    MCP_GATEWAY_SCOPE         sent in the gateway's scope header when set (e.g. one agent run's id)
    MCP_GATEWAY_SCOPE_HEADER  that header's name, when this tree was not generated with it

Works under ``asyncio.run``: the session closes when the loop ends, or earlier with
``await close()``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

__all__ = [
    "GatewayConfigError",
    "ToolError",
    "ToolResult",
    "call_mcp_tool",
    "check_flow",
    "close",
    "describe_placeholders",
    "search_tools",
]

DEFAULT_URL = "http://127.0.0.1:8080/mcp"
# The gateway's `[scope] header`, when known at generation.
SCOPE_HEADER: str | None = __SCOPE_HEADER__

ToolResult = dict[str, Any]
"""A tool result without ``structuredContent``: ``{"content": [...], ...}``."""


class GatewayConfigError(Exception):
    """The environment does not say how to reach the gateway."""


class ToolError(Exception):
    """A tool answered with ``isError: true``, or the gateway refused the call (for example a
    flow the policy denies). The message is the tool's or the gateway's text."""

    def __init__(self, tool: str, message: str, result: ToolResult | None = None) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
        self.result = result


def _headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    token = os.environ.get("MCP_GATEWAY_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    scope = os.environ.get("MCP_GATEWAY_SCOPE")
    if scope:
        name = SCOPE_HEADER or os.environ.get("MCP_GATEWAY_SCOPE_HEADER")
        if not name:
            raise GatewayConfigError(
                "MCP_GATEWAY_SCOPE is set but no scope header name is known: "
                "set MCP_GATEWAY_SCOPE_HEADER to the gateway's [scope] header"
            )
        headers[name] = scope
    return headers


class _Session:
    """The client, run by a task of its own so that it opens and closes in one task whichever
    task calls first."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: asyncio.Future[Client] = loop.create_future()
        self.stop = asyncio.Event()
        url = os.environ.get("MCP_GATEWAY_URL") or DEFAULT_URL
        headers = _headers()
        self.task = loop.create_task(self._run(url, headers))
        self.task.add_done_callback(self._done)

    async def _run(self, url: str, headers: dict[str, str]) -> None:
        timeout = httpx2.Timeout(60.0, read=300.0)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode="legacy") as client:
                self.ready.set_result(client)
                await self.stop.wait()

    def _done(self, task: asyncio.Task[None]) -> None:
        error = None if task.cancelled() else task.exception()
        if not self.ready.done():
            self.ready.set_exception(
                error or GatewayConfigError("the connection to the gateway closed while opening")
            )


_session: _Session | None = None


async def _client() -> Client:
    global _session
    loop = asyncio.get_running_loop()
    if _session is None or _session.loop is not loop or _session.task.done():
        _session = _Session(loop)
    return await asyncio.shield(_session.ready)


async def close() -> None:
    """Closes the session (the next call opens a new one, with new placeholders)."""
    global _session
    session, _session = _session, None
    if session is not None and session.loop is asyncio.get_running_loop():
        session.stop.set()
        try:
            await session.task
        except Exception:
            pass


def _text(content: list[Any]) -> str:
    return "\n".join(getattr(c, "text", "") for c in content if getattr(c, "type", "") == "text")


async def call_mcp_tool(name: str, input: Mapping[str, Any] | None = None) -> Any:
    """Calls the gateway tool ``name`` (``<server>__<tool>`` or one of the gateway's own).

    Returns the result's ``structuredContent`` when it has one, else the whole result as a dict.
    Raises ``ToolError`` when the tool reports an error or the gateway refuses the call.
    """
    client = await _client()
    try:
        result = await client.call_tool(name, dict(input or {}))
    except MCPError as e:
        raise ToolError(name, str(e)) from e
    as_dict: ToolResult = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    if result.is_error:
        raise ToolError(name, _text(result.content) or "the tool reported an error", as_dict)
    if result.structured_content is not None:
        return result.structured_content
    return as_dict


async def search_tools(
    query: str, detail: str | None = None, limit: int | None = None
) -> Any:
    """The gateway's ranked keyword search over every tool this client may call."""
    args: dict[str, Any] = {"query": query}
    if detail is not None:
        args["detail"] = detail
    if limit is not None:
        args["limit"] = limit
    return await call_mcp_tool("search_tools", args)


async def check_flow(tool: str, arguments: Mapping[str, Any]) -> Any:
    """Whether the flow policy would let this call through, without making it."""
    return await call_mcp_tool("check_flow", {"tool": tool, "arguments": dict(arguments)})


async def describe_placeholders(placeholders: list[str]) -> Any:
    """What the policy lets out about placeholders (kind, email domain, phone country,
    same person), never their values."""
    return await call_mcp_tool("describe_placeholders", {"placeholders": list(placeholders)})
