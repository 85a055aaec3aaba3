/**
 * The connection to the gateway's `/mcp` endpoint, shared by every tool function in `servers`.
 *
 * One process holds one MCP session, opened on the first call: every placeholder a tool returns
 * (`[EMAIL_1]`, `[PHONE_2]`) belongs to that session, so a script can hand it to another tool as
 * it is and the gateway restores the real value on the way out (when the flow policy allows).
 *
 * Environment:
 * - `MCP_GATEWAY_URL`: the endpoint (default `http://127.0.0.1:8080/mcp`)
 * - `MCP_GATEWAY_TOKEN`: sent as `Authorization: Bearer <token>` when set
 * - `MCP_GATEWAY_SCOPE`: sent in the gateway's scope header when set (e.g. one agent run's id)
 * - `MCP_GATEWAY_SCOPE_HEADER`: that header's name, when this tree was not generated with it
 *
 * Call `close()` when done: an open session keeps Node running.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

const DEFAULT_URL = "http://127.0.0.1:8080/mcp";
/** The gateway's `[scope] header`, when known at generation. */
const SCOPE_HEADER: string | undefined = __SCOPE_HEADER__;

/** A tool result without `structuredContent`. */
export type ToolResult = CallToolResult;

/** The environment does not say how to reach the gateway. */
export class GatewayConfigError extends Error {}

/**
 * A tool answered with `isError: true`, or the gateway refused the call (for example a flow the
 * policy denies). The message is the tool's or the gateway's text.
 */
export class ToolError extends Error {
  constructor(
    readonly tool: string,
    message: string,
    readonly result?: ToolResult,
  ) {
    super(`${tool}: ${message}`);
  }
}

function headers(): Record<string, string> {
  const out: Record<string, string> = {};
  const token = process.env.MCP_GATEWAY_TOKEN;
  if (token) out["Authorization"] = `Bearer ${token}`;
  const scope = process.env.MCP_GATEWAY_SCOPE;
  if (scope) {
    const name = SCOPE_HEADER ?? process.env.MCP_GATEWAY_SCOPE_HEADER;
    if (!name) {
      throw new GatewayConfigError(
        "MCP_GATEWAY_SCOPE is set but no scope header name is known: " +
          "set MCP_GATEWAY_SCOPE_HEADER to the gateway's [scope] header",
      );
    }
    out[name] = scope;
  }
  return out;
}

let session: Promise<{ client: Client; transport: StreamableHTTPClientTransport }> | undefined;

async function connect(): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const url = new URL(process.env.MCP_GATEWAY_URL || DEFAULT_URL);
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: headers() } });
  const client = new Client({ name: "mcp-pii-gateway-codegen", version: "1" });
  await client.connect(transport);
  return { client, transport };
}

async function client(): Promise<Client> {
  if (!session) {
    session = connect();
    session.catch(() => {
      session = undefined;
    });
  }
  return (await session).client;
}

/** Closes the session (the next call opens a new one, with new placeholders). */
export async function close(): Promise<void> {
  const s = session;
  session = undefined;
  if (!s) return;
  const { client, transport } = await s;
  await transport.terminateSession().catch(() => undefined);
  await client.close();
}

function text(result: ToolResult): string {
  return result.content
    .flatMap((c) => (c.type === "text" ? [c.text] : []))
    .join("\n");
}

/**
 * Calls the gateway tool `name` (`<server>__<tool>` or one of the gateway's own). Resolves to
 * the result's `structuredContent` when it has one, else the whole result; rejects with a
 * `ToolError` when the tool reports an error or the gateway refuses the call.
 */
export async function callMCPTool<T = unknown>(name: string, input: object = {}): Promise<T> {
  const c = await client();
  let result: ToolResult;
  try {
    result = (await c.callTool({ name, arguments: input as Record<string, unknown> })) as ToolResult;
  } catch (e) {
    throw new ToolError(name, e instanceof Error ? e.message : String(e));
  }
  if (result.isError) {
    throw new ToolError(name, text(result) || "the tool reported an error", result);
  }
  return (result.structuredContent ?? result) as T;
}

/** The gateway's ranked keyword search over every tool this client may call. */
export function searchTools(query: string, detail?: string, limit?: number): Promise<unknown> {
  return callMCPTool("search_tools", { query, detail, limit });
}

/** Whether the flow policy would let this call through, without making it. */
export function checkFlow(tool: string, args: object): Promise<unknown> {
  return callMCPTool("check_flow", { tool, arguments: args });
}

/**
 * What the policy lets out about placeholders (kind, email domain, phone country, same person),
 * never their values.
 */
export function describePlaceholders(placeholders: string[]): Promise<unknown> {
  return callMCPTool("describe_placeholders", { placeholders });
}
