// The official TypeScript MCP SDK connects to Picard the way an MCP host
// does: 401 -> discovery (RFC 9728, RFC 8414) -> dynamic registration
// (RFC 7591) -> authorization code with PKCE, where a scripted "user" signs
// up and consents on Picard's own pages -> token -> MCP session; then it
// lists the tools and calls every one of them, plus a resource and the
// persona prompt. Prints one JSON summary line; exits non-zero on failure.
// Usage: node sdk_oauth.mjs BASE_URL USERNAME
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [base, username] = process.argv.slice(2);
const mcpUrl = new URL("/mcp", base);
const redirectUrl = "http://127.0.0.1:53682/callback";

class MemoryProvider {
  constructor() { this.saved = {}; }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: "Picard e2e (official TypeScript SDK)",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      scope: "memories:read memories:write",
    };
  }
  state() { this.saved.state = "st-" + Math.random().toString(36).slice(2); return this.saved.state; }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  redirectToAuthorization(url) { this.saved.authorizationUrl = url; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
}

// --- a scripted browser: cookies, forms, redirects -------------------------
const jar = new Map();
function remember(res) {
  for (const c of res.headers.getSetCookie?.() ?? []) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1));
  }
}
const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
const decode = (s) => s.replace(/&#39;/g, "'").replace(/&#34;/g, '"').replace(/&quot;/g, '"').replace(/&amp;/g, "&").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&#43;/g, "+");

function forms(html) {
  const out = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const action = decode((/action="([^"]*)"/i.exec(m[1]) || [])[1] || "");
    const fields = {};
    for (const inp of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const name = (/name="([^"]*)"/i.exec(inp[1]) || [])[1];
      const value = (/value="([^"]*)"/i.exec(inp[1]) || [])[1] || "";
      if (name) fields[name] = decode(value);
    }
    out.push({ action, fields });
  }
  return out;
}

async function browse(url, init = {}) {
  const res = await fetch(url, { ...init, redirect: "manual", headers: { ...(init.headers || {}), cookie: cookieHeader() } });
  remember(res);
  return res;
}

async function signUpAndConsent(authorizationUrl) {
  let res = await browse(authorizationUrl);
  let pageUrl = new URL(authorizationUrl);
  const steps = [];
  for (let i = 0; i < 10; i++) {
    if (res.status >= 300 && res.status < 400) {
      const loc = new URL(res.headers.get("location"), pageUrl);
      if (loc.href.startsWith(redirectUrl)) {
        steps.push("redirected back");
        return { loc, steps };
      }
      pageUrl = loc;
      res = await browse(loc);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`authorize page ${res.status}: ${html.slice(0, 300)}`);
    const fs = forms(html);
    const signup = fs.find((f) => f.fields.action === "signup");
    const consent = fs.find((f) => f.fields.action === "consent");
    const createLink = /<a\b[^>]*href="([^"]*)"[^>]*>\s*Create one/i.exec(html);
    let form, extra;
    if (!consent && !signup && createLink) {
      // a new user follows "No account yet? Create one"
      steps.push("open sign-up");
      pageUrl = new URL(decode(createLink[1]), pageUrl);
      res = await browse(pageUrl);
      continue;
    }
    if (consent) {
      form = consent; extra = { decision: "allow" }; steps.push("consent");
    } else if (signup) {
      form = signup; extra = { email: `${username}@picard.test`, username, password: "correct horse battery staple" }; steps.push("sign up");
    } else {
      throw new Error("no sign-up or consent form on the page: " + html.slice(0, 500));
    }
    const target = new URL(form.action || pageUrl.href, pageUrl);
    res = await browse(target, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: pageUrl.origin },
      body: new URLSearchParams({ ...form.fields, ...extra }).toString(),
    });
    pageUrl = target;
  }
  throw new Error("too many steps in the authorization pages");
}

// --- the flow ---------------------------------------------------------------
const provider = new MemoryProvider();
const summary = { steps: [] };
let transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
let client = new Client({ name: "picard-e2e-sdk", version: "1.0.0" });
try {
  await client.connect(transport);
  throw new Error("connected without authorization");
} catch (e) {
  if (!(e instanceof UnauthorizedError)) throw e;
}
summary.registered_client = provider.saved.client?.client_id;
const authUrl = provider.saved.authorizationUrl;
if (!authUrl) throw new Error("the SDK did not start an authorization");
summary.authorization_params = Object.fromEntries(["code_challenge_method", "resource", "scope"].map((k) => [k, authUrl.searchParams.get(k)]));
const { loc, steps } = await signUpAndConsent(authUrl);
summary.steps.push(...steps);
if (loc.searchParams.get("state") !== provider.saved.state) throw new Error("state not echoed");
summary.iss = loc.searchParams.get("iss");
const code = loc.searchParams.get("code");
if (!code) throw new Error("no code: " + loc.href);
await transport.finishAuth(code);
summary.token_scope = provider.saved.tokens?.scope;

transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
client = new Client({ name: "picard-e2e-sdk", version: "1.0.0" });
await client.connect(transport);
summary.server = client.getServerVersion();
const { tools } = await client.listTools();
summary.tools = tools.map((t) => t.name).sort();

const call = async (name, args) => {
  const r = await client.callTool({ name, arguments: args });
  if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
  return r.structuredContent;
};
const called = {};
const pub = await call("submit_memory", { text: "I grow tomatoes on my balcony every summer", permission: "public" });
called.submit_memory = pub.id;
const priv = await call("submit_memory", { text: "My balcony door key hides under the blue pot" });
called.get_memories = (await call("get_memories", { limit: 10 })).memories.length;
called.query_memory = (await call("query_memory", { query: "tomatoes balcony", limit: 3 })).memories.map((m) => m.id);
called.query_memory_own = (await call("query_memory", { query: "balcony door key", scope: "own" })).count;
called.update_memory = (await call("update_memory", { memory_id: pub.id, text: "I grow tomatoes and basil on my balcony" })).text;
called.modify_permissions = (await call("modify_permissions", { memory_id: priv.id, permission: "private" })).permission;
const persona = await call("query_user", { user_id: pub.owner_id, query: "what do you grow?" });
called.query_user = { memory_ids: persona.memory_ids, llm_answered: persona.llm_answered };
called.delete_memory = (await call("delete_memory", { memory_id: priv.id })).deleted;
const resource = await client.readResource({ uri: `memory://${pub.id}` });
called.resource = resource.contents[0].text;
const prompt = await client.getPrompt({ name: "persona", arguments: { user_id: pub.owner_id, question: "what do you grow?" } });
called.prompt = prompt.messages.length;
summary.called = called;
summary.public_id = pub.id;
summary.private_id = priv.id;
await client.close();
console.log(JSON.stringify(summary));
