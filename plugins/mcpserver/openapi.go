package mcpserver

import (
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	swaggerfiles "github.com/swaggo/files/v2"
)

// OpenAPI builds the OpenAPI 3.1 document of the REST surface. The tool
// request and result schemas are the ones MCP publishes.
func OpenAPI(publicURL string, tools *Toolset) map[string]any {
	errorBody := obj{"$ref": "#/components/schemas/Error"}
	oauthError := obj{"$ref": "#/components/schemas/OAuthError"}
	jsonContent := func(schema any) obj { return obj{"application/json": obj{"schema": schema}} }
	resp := func(desc string, schema any) obj {
		r := obj{"description": desc}
		if schema != nil {
			r["content"] = jsonContent(schema)
		}
		return r
	}
	schemas := obj{
		"Memory": MemorySchema,
		"Error": obj{"type": "object", "required": []string{"error", "message"}, "properties": obj{
			"error":   obj{"type": "string", "enum": []string{"invalid_argument", "not_found", "unavailable", "internal", "invalid_token", "insufficient_scope"}},
			"message": str("what is wrong, starting with the field's name"),
			"field":   str("the argument at fault"),
		}},
		"OAuthError": obj{"type": "object", "required": []string{"error"}, "properties": obj{
			"error": str("RFC 6749 error code"), "error_description": str(""), "field": str("the request field at fault"),
		}},
		"TokenResponse": obj{"type": "object", "required": []string{"access_token", "token_type", "expires_in", "scope"}, "properties": obj{
			"access_token": str("JWT (RFC 9068), 1 hour"), "token_type": obj{"type": "string", "const": "Bearer"},
			"expires_in": obj{"type": "integer"}, "refresh_token": str("opaque; rotated on every use"),
			"scope": str("space-separated scopes"), "user_id": uuidProp("the user the tokens act for (direct connect)"),
		}},
	}
	var toolRefs []any
	var resultRefs []any
	mapping := obj{}
	for _, t := range tools.List() {
		in, out := SchemaObjects(t.Name)
		name := camel(t.Name)
		schemas[name+"Request"] = obj{
			"type": "object", "description": t.Description + " (scope " + t.Scope + ")",
			"required":   []string{"tool", "data"},
			"properties": obj{"tool": obj{"type": "string", "const": t.Name}, "data": in},
		}
		schemas[name+"Result"] = out
		toolRefs = append(toolRefs, obj{"$ref": "#/components/schemas/" + name + "Request"})
		resultRefs = append(resultRefs, obj{"$ref": "#/components/schemas/" + name + "Result"})
		mapping[t.Name] = "#/components/schemas/" + name + "Request"
	}
	form := func(props obj, required ...string) obj {
		return obj{"application/x-www-form-urlencoded": obj{"schema": obj{"type": "object", "properties": props, "required": required}}}
	}
	paths := obj{
		"/api/tools": obj{"post": obj{
			"summary":     "Call a tool",
			"description": "The same tools as MCP at /mcp, with the same arguments and results. Tools: " + toolNames(tools) + ". retrieve_memories is query_memory under its REST name.",
			"operationId": "callTool",
			"security":    []any{obj{"bearer": []string{}}, obj{"oauth2": []string{"memories:read", "memories:write"}}},
			"requestBody": obj{"required": true, "content": jsonContent(obj{"oneOf": toolRefs, "discriminator": obj{"propertyName": "tool", "mapping": mapping}})},
			"responses": obj{
				"200": resp("the tool's result (the schema of the called tool)", obj{"anyOf": resultRefs}),
				"400": resp("bad input; the message names the argument, nothing was stored", errorBody),
				"401": resp("missing, invalid, expired or revoked token (WWW-Authenticate carries resource_metadata)", errorBody),
				"403": resp("the token lacks the tool's scope (WWW-Authenticate: insufficient_scope)", errorBody),
				"404": resp("memory or user not found (also for another user's private memory)", errorBody),
				"503": resp("search temporarily unavailable (vector store down); writes still succeed", errorBody),
				"507": resp("storage unavailable: the data dir refuses writes (disk full or read-only); nothing was saved, try again later", errorBody),
			},
		}},
		"/api/admin/clients/register": obj{"post": obj{
			"summary": "Register an OAuth client (superuser)", "operationId": "registerClient",
			"security": []any{obj{"superuser": []string{}}},
			"requestBody": obj{"required": true, "content": jsonContent(obj{"type": "object", "required": []string{"name"}, "properties": obj{
				"name": str("shown on consent screens"), "redirect_uris": obj{"type": "array", "items": obj{"type": "string", "format": "uri"}},
				"scopes":       obj{"type": "array", "items": obj{"type": "string", "enum": []string{"memories:read", "memories:write"}}},
				"confidential": obj{"type": "boolean", "description": "confidential clients get a secret (shown once) and may use direct connect"},
			}})},
			"responses": obj{
				"201": resp("registered", obj{"type": "object", "required": []string{"client_id"}, "properties": obj{"client_id": uuidProp(""), "client_secret": str("only for confidential clients; shown once")}}),
				"400": resp("bad input", oauthError), "401": resp("not a superuser", nil), "403": resp("not a superuser", nil),
			},
		}},
		"/api/user-tokens/user-token": obj{"post": obj{
			"summary": "Direct connect: tokens for a user of a confidential client", "operationId": "userToken",
			"requestBody": obj{"required": true, "content": jsonContent(obj{"type": "object", "required": []string{"client_id", "client_secret", "email"}, "properties": obj{
				"client_id": uuidProp(""), "client_secret": str(""), "username": str("required to create a user"),
				"email": obj{"type": "string", "format": "email"}, "create_if_not_exists": obj{"type": "boolean"},
			}})},
			"responses": obj{
				"200": resp("tokens", obj{"$ref": "#/components/schemas/TokenResponse"}),
				"400": resp("bad input", oauthError), "401": resp("client authentication failed", oauthError),
				"404": resp("no such user and create_if_not_exists is false", oauthError), "409": resp("username taken", oauthError),
			},
		}},
		"/token": obj{"post": obj{
			"summary": "OAuth token endpoint (authorization_code with PKCE, refresh_token)", "operationId": "token",
			"requestBody": obj{"required": true, "content": form(obj{
				"grant_type": obj{"type": "string", "enum": []string{"authorization_code", "refresh_token"}},
				"code":       str(""), "redirect_uri": str(""), "code_verifier": str(""), "refresh_token": str(""),
				"client_id": str(""), "client_secret": str("or HTTP Basic"), "resource": str("RFC 8707; <public url>/mcp"), "scope": str(""),
			}, "grant_type")},
			"responses": obj{"200": resp("tokens", obj{"$ref": "#/components/schemas/TokenResponse"}), "400": resp("RFC 6749 error", oauthError), "401": resp("invalid_client", oauthError)},
		}},
		"/authorize": obj{"get": obj{
			"summary": "Authorization endpoint: sign-in and consent pages (PKCE S256 required)", "operationId": "authorize",
			"parameters": []any{
				qp("response_type", true), qp("client_id", true), qp("redirect_uri", false), qp("scope", false),
				qp("state", false), qp("code_challenge", true), qp("code_challenge_method", true), qp("resource", false),
			},
			"responses": obj{"200": obj{"description": "an HTML page", "content": obj{"text/html": obj{"schema": obj{"type": "string"}}}}, "302": obj{"description": "back to the client with code (or error), state and iss"}, "400": obj{"description": "unknown client or redirect URI: an error page, never a redirect"}},
		}},
		"/register": obj{"post": obj{
			"summary": "Dynamic client registration (RFC 7591)", "operationId": "dynamicRegister",
			"requestBody": obj{"required": true, "content": jsonContent(obj{"type": "object", "required": []string{"redirect_uris"}, "properties": obj{
				"redirect_uris": obj{"type": "array", "items": obj{"type": "string", "format": "uri"}}, "client_name": str(""),
				"token_endpoint_auth_method": obj{"type": "string", "enum": []string{"none", "client_secret_basic", "client_secret_post"}},
				"grant_types":                obj{"type": "array", "items": obj{"type": "string"}}, "response_types": obj{"type": "array", "items": obj{"type": "string"}}, "scope": str(""),
			}})},
			"responses": obj{"201": resp("registered", obj{"type": "object"}), "400": resp("invalid_redirect_uri or invalid_client_metadata", oauthError), "429": resp("rate limited", oauthError)},
		}},
		"/revoke": obj{"post": obj{
			"summary": "Token revocation (RFC 7009); always 200", "operationId": "revoke",
			"requestBody": obj{"required": true, "content": form(obj{"token": str(""), "token_type_hint": str(""), "client_id": str(""), "client_secret": str("")}, "token")},
			"responses":   obj{"200": obj{"description": "revoked (or unknown)"}, "401": resp("client authentication failed", oauthError)},
		}},
		"/introspect": obj{"post": obj{
			"summary": "Token introspection (RFC 7662); client authentication required", "operationId": "introspect",
			"requestBody": obj{"required": true, "content": form(obj{"token": str(""), "client_id": str(""), "client_secret": str("")}, "token")},
			"responses":   obj{"200": resp("active or not", obj{"type": "object", "required": []string{"active"}, "properties": obj{"active": obj{"type": "boolean"}}}), "401": resp("client authentication failed", oauthError)},
		}},
		"/.well-known/oauth-authorization-server":   obj{"get": obj{"summary": "Authorization server metadata (RFC 8414)", "operationId": "asMetadata", "responses": obj{"200": resp("metadata", obj{"type": "object"})}}},
		"/.well-known/oauth-protected-resource/mcp": obj{"get": obj{"summary": "Protected resource metadata for /mcp (RFC 9728)", "operationId": "prMetadata", "responses": obj{"200": resp("metadata", obj{"type": "object"})}}},
		"/.well-known/jwks.json":                    obj{"get": obj{"summary": "Public keys of the access-token signer", "operationId": "jwks", "responses": obj{"200": resp("JWKS", obj{"type": "object", "required": []string{"keys"}, "properties": obj{"keys": obj{"type": "array", "items": obj{"type": "object"}}}})}}},
		"/readyz": obj{"get": obj{"summary": "Readiness: database and vector store", "operationId": "readyz", "responses": obj{
			"200": resp("ready", obj{"type": "object", "additionalProperties": obj{"type": "string"}}),
			"503": resp("a dependency is down", obj{"type": "object", "additionalProperties": obj{"type": "string"}}),
		}}},
		"/api/health": obj{"get": obj{"summary": "Liveness (PocketBase)", "operationId": "health", "responses": obj{"200": resp("alive", obj{"type": "object"})}}},
	}
	for k, v := range transferPaths() {
		paths[k] = v
	}
	return obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":       "Picard memory server",
			"version":     Version,
			"description": "REST side of Picard. MCP clients use /mcp (streamable HTTP) with the same tools.",
		},
		"servers": []any{obj{"url": publicURL}},
		"paths":   paths,
		"components": obj{
			"schemas": schemas,
			"securitySchemes": obj{
				"bearer":    obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
				"superuser": obj{"type": "apiKey", "in": "header", "name": "Authorization", "description": "a PocketBase superuser token"},
				"oauth2": obj{"type": "oauth2", "flows": obj{"authorizationCode": obj{
					"authorizationUrl": publicURL + "/authorize", "tokenUrl": publicURL + "/token", "refreshUrl": publicURL + "/token",
					"scopes": obj{"memories:read": "read memories and ask personas", "memories:write": "create, change and delete memories"},
				}}},
			},
		},
	}
}

func qp(name string, required bool) obj {
	return obj{"name": name, "in": "query", "required": required, "schema": obj{"type": "string"}}
}

func toolNames(ts *Toolset) string {
	var names []string
	for _, t := range ts.List() {
		names = append(names, t.Name)
	}
	return strings.Join(names, ", ")
}

func camel(s string) string {
	parts := strings.Split(s, "_")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Picard API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`))

const docsInit = `window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
`

// routeDocs serves /openapi.json and Swagger UI at /docs from the binary.
func routeDocs(e *core.ServeEvent, publicURL string, tools *Toolset) {
	doc := OpenAPI(publicURL, tools)
	e.Router.GET("/openapi.json", func(re *core.RequestEvent) error {
		return re.JSON(http.StatusOK, doc)
	})
	secure := func(re *core.RequestEvent) {
		h := re.Response.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
	}
	e.Router.GET("/docs", func(re *core.RequestEvent) error {
		secure(re)
		re.Response.Header().Set("Content-Type", "text/html; charset=utf-8")
		return docsPage.Execute(re.Response, nil)
	})
	e.Router.GET("/docs/init.js", func(re *core.RequestEvent) error {
		secure(re)
		re.Response.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, err := re.Response.Write([]byte(docsInit))
		return err
	})
	assets := http.FileServer(http.FS(swaggerfiles.FS))
	e.Router.GET("/docs/{file}", func(re *core.RequestEvent) error {
		name := re.Request.PathValue("file")
		if _, err := fs.Stat(swaggerfiles.FS, name); err != nil {
			return re.NotFoundError("", nil)
		}
		secure(re)
		r := re.Request.Clone(re.Request.Context())
		r.URL.Path = "/" + name
		assets.ServeHTTP(re.Response, r)
		return nil
	})
}
