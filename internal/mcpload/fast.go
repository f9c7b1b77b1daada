package mcpload

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/valyala/fasthttp"
)

// newFast makes the fasthttp client of one endpoint: one keep-alive
// connection, for which concurrent calls wait as they do with net/http's
// MaxConnsPerHost.
func newFast(endpoint string) (*fasthttp.HostClient, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("mcpload: %q is not an http(s) URL", endpoint)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += map[string]string{"http": ":80", "https": ":443"}[u.Scheme]
	}
	return &fasthttp.HostClient{
		Addr:     addr,
		IsTLS:    u.Scheme == "https",
		MaxConns: 1,
		// a 16 KB get_memories page is read with one read(2), not two
		// (4 KB of head first): 40–47 µs of the load generator's CPU per
		// call instead of 50–52, two runs each
		ReadBufferSize:           32 << 10,
		MaxConnWaitTimeout:       requestTimeout,
		NoDefaultUserAgentHeader: true,
	}, nil
}

// sendFast is send with fasthttp: the request and the answer are pooled,
// and the request's body is sent without a copy.
func (c *Client) sendFast(ctx context.Context, body []byte) (answer, error) {
	if c.fastErr != nil {
		return answer{}, c.fastErr
	}
	// fasthttp takes no context: its deadline bounds the request, and a
	// request is not started once ctx is done
	if err := ctx.Err(); err != nil {
		return answer{}, err
	}
	timeout := requestTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI(c.url)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	req.Header.Set("Accept", accept)
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	req.SetBodyRaw(body)
	resp := fasthttp.AcquireResponse()
	if err := c.fast.DoTimeout(req, resp, timeout); err != nil {
		fasthttp.ReleaseResponse(resp)
		return answer{}, err
	}
	return answer{status: resp.StatusCode(), body: resp.Body(), fast: resp}, nil
}
