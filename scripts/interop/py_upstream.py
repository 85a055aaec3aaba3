#!/usr/bin/env python3
"""Test upstream for mcp-pii-gateway interop and conformance runs, built on the official Python SDK (mcp 2.x).

It serves BOTH protocol generations on one Streamable HTTP endpoint (`http://HOST:PORT/mcp`):
2026-07-28 requests statelessly (server/discover, `_meta` envelope, input_required results), and
2025-11-25-and-earlier clients with `initialize` + `Mcp-Session-Id` sessions (server->client requests on SSE).

It offers:
* the fixtures the official conformance suite (`@modelcontextprotocol/conformance server`) looks for
  (tools `test_*`, prompts `test_*`, resources `test://...`), written from the suite's published
  expectations so the suite has a real upstream to compare the gateway against;
* PII test surface for the interop client: tools `echo` (echoes its message), `send_report` (asks the user for a
  contact address through elicitation: a standalone request in session mode, an input_required result in
  stateless mode), `confirm_contact` (the elicitation message carries the address) and `lookup_contact` (argument mirrored in an `Mcp-Param-Email` header); resource template
  `contact://{email}` (URI mirrored in `Mcp-Name`); prompt `write_to(email)`.

Usage: py_upstream.py [--host 127.0.0.1] [--port 3002]     (Streamable HTTP at http://HOST:PORT/mcp)
       py_upstream.py --stdio                               (newline-delimited JSON-RPC on stdin/stdout)
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from typing import Annotated, Any

import mcp_types as types
from pydantic import BaseModel, Field

from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore

# 1x1 PNG and a minimal WAV: binary payloads must pass through the gateway byte for byte.
PNG_1X1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV_MIN = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="


class MemoryEventStore(EventStore):
    """Keeps every SSE event so clients can resume a stream with Last-Event-ID (SEP-1699)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        stream = next((s for s, e, _ in self.events if e == last_event_id), None)
        if stream is None:
            return None
        for s, e, message in self.events:
            if s == stream and int(e) > int(last_event_id) and message is not None:
                await send_callback(EventMessage(message, e))
        return stream


mcp = MCPServer("mcp-pii-gateway-test-upstream")

# ---------------------------------------------------------------- PII test tools


@mcp.tool()
def echo(message: str) -> str:
    """Echo the message back (prefixed with 'Echo: ')."""
    return f"Echo: {message}"


class Contact(BaseModel):
    email: str = Field(description="Address that receives the report")


def ask_contact() -> Elicit[Contact]:
    return Elicit("Which address should receive the report?", Contact)


@mcp.tool()
def send_report(topic: str, contact: Annotated[Contact, Resolve(ask_contact)]) -> str:
    """Send a report on a topic; asks the user (elicitation) for the address."""
    return f"report on {topic} sent to {contact.email}"


class Confirmation(BaseModel):
    confirm: bool = Field(description="Whether the address is right")


def ask_confirmation(email: str) -> Elicit[Confirmation]:
    return Elicit(f"Send the report to {email}?", Confirmation)


@mcp.tool()
def confirm_contact(email: str, answer: Annotated[Confirmation, Resolve(ask_confirmation)]) -> str:
    """Ask the user to confirm an address; the elicitation message itself carries the address (toward the model)."""
    return f"{'confirmed' if answer.confirm else 'rejected'} {email}"


@mcp.tool()
def lookup_contact(
    email: Annotated[str, Field(description="Address to look up", json_schema_extra={"x-mcp-header": "Email"})],
) -> str:
    """Look up a contact. Stateless clients mirror `email` into an `Mcp-Param-Email` header that the
    server checks against the body, so a gateway that restores a placeholder must restore both."""
    return f"found {email}"


@mcp.resource("contact://{email}", mime_type="text/plain")
def contact_card(email: str) -> str:
    """A contact card; its URI carries the address (mirrored in the `Mcp-Name` header by stateless clients)."""
    return f"Contact card for {email}"


@mcp.prompt()
def write_to(email: str) -> list[UserMessage]:
    """A prompt whose argument and rendered message carry an address."""
    return [UserMessage(content=types.TextContent(type="text", text=f"Write a short note to {email}."))]


# ---------------------------------------------------------------- conformance fixtures: tools


@mcp.tool()
def test_simple_text() -> str:
    """Tests simple text content response"""
    return "This is a simple text response for testing."


@mcp.tool()
def test_image_content() -> list[types.ImageContent]:
    """Tests image content response"""
    return [types.ImageContent(type="image", data=PNG_1X1, mime_type="image/png")]


@mcp.tool()
def test_audio_content() -> list[types.AudioContent]:
    """Tests audio content response"""
    return [types.AudioContent(type="audio", data=WAV_MIN, mime_type="audio/wav")]


def _text_resource(uri: str, mime: str, text: str) -> types.EmbeddedResource:
    return types.EmbeddedResource(
        type="resource", resource=types.TextResourceContents(uri=uri, mime_type=mime, text=text)
    )


@mcp.tool()
def test_embedded_resource() -> list[types.EmbeddedResource]:
    """Tests embedded resource content response"""
    return [_text_resource("test://embedded-resource", "text/plain", "This is an embedded resource content.")]


@mcp.tool()
def test_multiple_content_types() -> list[types.TextContent | types.ImageContent | types.EmbeddedResource]:
    """Tests response with multiple content types (text, image, resource)"""
    return [
        types.TextContent(type="text", text="Multiple content types test:"),
        types.ImageContent(type="image", data=PNG_1X1, mime_type="image/png"),
        _text_resource("test://mixed-content-resource", "application/json", json.dumps({"test": "data", "value": 123})),
    ]


@mcp.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Tests tool that emits log messages during execution"""
    for step in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.info(step)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


@mcp.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Tests tool that reports progress notifications"""
    for done in (0, 50, 100):
        await ctx.report_progress(progress=done, total=100, message=f"Completed step {done} of 100")
        await asyncio.sleep(0.05)
    meta = (ctx.request_context.meta if ctx.request_context else None) or {}
    token = meta.get("progress_token", meta.get("progressToken"))  # a TypedDict in mcp 2.x
    return str(token if token is not None else 0)


@mcp.tool()
def test_error_handling() -> str:
    """Tests error response handling"""
    raise RuntimeError("This tool intentionally returns an error for testing")


@mcp.tool()
async def test_reconnection(ctx: Context) -> str:
    """Tests SSE polling: closes the response stream mid-call, the client resumes (SEP-1699)"""
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await asyncio.sleep(0.2)
    await ctx.info("After reconnect")
    return "Reconnection test completed"


@mcp.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Tests server-initiated sampling (LLM completion request)"""
    try:
        result = await ctx.session.create_message(
            messages=[types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
            max_tokens=100,
            # On the call's own SSE stream: without it the SDK sends the request on the GET stream,
            # which the client may not have opened yet (the scenario then fails at random).
            related_request_id=ctx.request_id,
        )
    except Exception as exc:  # the suite checks the request was made, the text is informative only
        return f"Sampling not supported or error: {exc}"
    content = result.content
    text = content.text if isinstance(content, types.TextContent) else "No response"
    return f"LLM response: {text}"


class UserResponse(BaseModel):
    response: str = Field(description="User's response")


def _elicit_summary(result: Any) -> str:
    content = result.data.model_dump_json() if result.action == "accept" else "{}"
    return f"action={result.action}, content={content}"


@mcp.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Tests server-initiated elicitation (user input request)"""
    try:
        return "User response: " + _elicit_summary(await ctx.elicit(message=message, schema=UserResponse))
    except Exception as exc:
        return f"Elicitation not supported or error: {exc}"


class DefaultsForm(BaseModel):
    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active", description="User status", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    verified: bool = Field(default=True, description="Verification status")


@mcp.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Tests elicitation with default values for all primitive types (SEP-1034)"""
    try:
        result = await ctx.elicit(message="Please provide user information", schema=DefaultsForm)
        return "Elicitation result: " + _elicit_summary(result)
    except Exception as exc:
        return f"Elicitation not supported or error: {exc}"


class EnumForm(BaseModel):
    untitledSingle: str = Field(  # noqa: N815 (wire names fixed by the suite)
        description="Simple enum without titles", json_schema_extra={"enum": ["active", "inactive", "pending"]}
    )
    titledSingle: str = Field(  # noqa: N815
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "low", "title": "Low Priority"},
                {"const": "medium", "title": "Medium Priority"},
                {"const": "high", "title": "High Priority"},
            ]
        },
    )
    untitledMulti: list[str] = Field(  # noqa: N815
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(  # noqa: N815
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "feature", "title": "New Feature"},
                    {"const": "bug", "title": "Bug Fix"},
                    {"const": "docs", "title": "Documentation"},
                ]
            }
        },
    )
    legacyEnum: str = Field(  # noqa: N815
        description="Legacy enum with enumNames",
        json_schema_extra={"enum": ["small", "medium", "large"], "enumNames": ["Small Size", "Medium Size", "Large Size"]},
    )


@mcp.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Tests elicitation with enum schema variations (SEP-1330)"""
    try:
        result = await ctx.elicit(message="Please select values using different enum schema types", schema=EnumForm)
        return "Elicitation completed: " + _elicit_summary(result)
    except Exception as exc:
        return f"Elicitation not supported or error: {exc}"


# ---------------------------------------------------------------- conformance fixtures: resources


@mcp.resource("test://static-text")
def static_text() -> str:
    """A static text resource for testing"""
    return "This is the content of the static text resource."


@mcp.resource("test://static-binary", mime_type="image/png")
def static_binary() -> bytes:
    """A static binary resource (image) for testing"""
    return base64.b64decode(PNG_1X1)


@mcp.resource("test://template/{id}/data", mime_type="application/json")
def template_data(id: str) -> str:  # noqa: A002 (template variable name fixed by the suite)
    """A resource template with parameter substitution"""
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@mcp.resource("test://watched-resource")
def watched() -> str:
    """A resource that can be subscribed to for updates"""
    return "Watched resource content"


# ---------------------------------------------------------------- conformance fixtures: prompts


@mcp.prompt()
def test_simple_prompt() -> list[UserMessage]:
    """A simple prompt without arguments"""
    return [UserMessage(content=types.TextContent(type="text", text="This is a simple prompt for testing."))]


@mcp.prompt()
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    """A prompt with required arguments"""
    text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
    return [UserMessage(content=types.TextContent(type="text", text=text))]


@mcp.prompt()
def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803
    """A prompt that includes an embedded resource"""
    return [
        UserMessage(content=_text_resource(resourceUri, "text/plain", "Embedded resource content for testing.")),
        UserMessage(content=types.TextContent(type="text", text="Please process the embedded resource above.")),
    ]


@mcp.prompt()
def test_prompt_with_image() -> list[UserMessage]:
    """A prompt that includes image content"""
    return [
        UserMessage(content=types.ImageContent(type="image", data=PNG_1X1, mime_type="image/png")),
        UserMessage(content=types.TextContent(type="text", text="Please analyze the image above.")),
    ]


@mcp.completion()
async def complete(ref: Any, argument: Any, context: Any) -> types.Completion:
    """Completions exist (capability) but suggest nothing."""
    return types.Completion(values=[], total=0, has_more=False)


# ---------------------------------------------------------------- legacy-era handlers the decorators don't cover

_subscriptions: set[str] = set()


async def _on_set_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


async def _on_subscribe(ctx: Any, params: types.SubscribeRequestParams) -> types.EmptyResult:
    _subscriptions.add(str(params.uri))
    return types.EmptyResult()


async def _on_unsubscribe(ctx: Any, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
    _subscriptions.discard(str(params.uri))
    return types.EmptyResult()


_low = mcp._lowlevel_server  # noqa: SLF001 (no public API for these three yet)
_low.add_request_handler("logging/setLevel", types.SetLevelRequestParams, _on_set_level)
_low.add_request_handler("resources/subscribe", types.SubscribeRequestParams, _on_subscribe)
_low.add_request_handler("resources/unsubscribe", types.UnsubscribeRequestParams, _on_unsubscribe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3002)
    parser.add_argument("--stdio", action="store_true", help="serve over stdio instead of HTTP")
    args = parser.parse_args()
    if args.stdio:
        mcp.run(transport="stdio")
        return
    mcp.run(
        transport="streamable-http",
        host=args.host,
        port=args.port,
        event_store=MemoryEventStore(),
        retry_interval=100,
    )


if __name__ == "__main__":
    main()
