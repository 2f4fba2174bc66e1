// Drives the official MCP TypeScript SDK client against an MCP server
// protected by Latch, for e2e/mcp/mcp_test.go. The SDK discovers Latch from
// the server's 401 (RFC 9728 metadata), identifies itself with a Client ID
// Metadata Document (MODE=cimd) or registers dynamically (MODE=dcr), sends
// `resource`, and completes PKCE; this script plays the user through
// Latch's approval API, then calls a tool with the token. It prints one
// JSON line with what happened.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const mcpURL = new URL(env("MCP_URL"));
const issuer = env("LATCH_URL");
const apiKey = env("LATCH_API_KEY");
const mode = env("MODE");
const redirectUrl = env("REDIRECT_URL");

const seen = { authorizeParams: null, session: null, registered: false };

class Provider {
  constructor() {
    this._tokens = undefined;
    this._verifier = undefined;
    this._info = undefined;
    if (mode === "cimd") this.clientMetadataUrl = env("CLIENT_METADATA_URL");
  }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: "Latch e2e MCP client",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() { return this._info; }
  // Registered dynamically unless the SDK used the metadata document URL.
  saveClientInformation(info) { this._info = info; seen.registered = info.client_id !== this.clientMetadataUrl; }
  tokens() { return this._tokens; }
  saveTokens(t) { this._tokens = t; }
  saveCodeVerifier(v) { this._verifier = v; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(url) {
    seen.authorizeParams = Object.fromEntries(url.searchParams);
    this.code = await playUser(url);
  }
}

// playUser is the browser and the host app: follow the authorization URL
// to the approval page, approve through the API, follow the resume link
// with the browser's cookies, and return the code sent to the client.
async function playUser(url) {
  const jar = new Map();
  const get = async (u) => {
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const r = await fetch(u, { redirect: "manual", headers: cookie ? { cookie } : {} });
    for (const c of r.headers.getSetCookie()) {
      const [kv] = c.split(";");
      const i = kv.indexOf("=");
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return r;
  };
  let r = await get(url);
  if (r.status !== 303) throw new Error(`authorize: ${r.status} ${await r.text()}`);
  const approval = new URL(r.headers.get("location"));
  if (!approval.searchParams.get("token")) throw new Error(`authorize went to ${approval} for ${url}`);
  const token = approval.searchParams.get("token");
  const api = (path, init = {}) =>
    fetch(issuer + path, { ...init, headers: { "X-API-Key": apiKey, "Content-Type": "application/json" } });
  seen.session = await (await api(`/api/auth_session/${token}`)).json();
  const decided = await (await api(`/api/auth_session/${token}/approve`, {
    method: "POST", body: JSON.stringify({ user: "mcp-user-1" }),
  })).json();
  if (!decided.redirect_uri) throw new Error(`approve: ${JSON.stringify(decided)} (session ${JSON.stringify(seen.session)})`);
  r = await get(decided.redirect_uri);
  if (r.status !== 303) throw new Error(`resume: ${r.status} ${await r.text()}`);
  const back = new URL(r.headers.get("location"));
  const code = back.searchParams.get("code");
  if (!code) throw new Error(`no code: ${back}`);
  return code;
}

const provider = new Provider();
const connect = async () => {
  const client = new Client({ name: "latch-e2e", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(mcpURL, { authProvider: provider }));
  return client;
};

let client;
try {
  client = await connect();
  throw new Error("connected without authorization");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
const transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
await transport.finishAuth(provider.code);
client = await connect();
const tools = await client.listTools();
const result = await client.callTool({ name: "whoami", arguments: {} });
await client.close();
console.log(JSON.stringify({
  authorize: seen.authorizeParams,
  session: seen.session,
  registered: seen.registered,
  client_id: provider.clientInformation()?.client_id ?? null,
  access_token: provider.tokens()?.access_token ?? null,
  tools: tools.tools.map((t) => t.name),
  result: result.structuredContent ?? null,
  text: result.content?.[0]?.text ?? null,
}));
