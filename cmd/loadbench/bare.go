package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// runBare serves a bare mcp-go server with one trivial tool, "echo", on
// streamable HTTP at /mcp, and prints its address on stdout. args:
// "stateful" or "stateless".
func runBare(args []string) error {
	stateless := len(args) > 0 && args[0] == "stateless"
	s := server.NewMCPServer("bare", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(req.GetString("text", "")), nil
	})
	h := server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp"), server.WithStateLess(stateless))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

// startBare re-executes this binary as the bare server.
func startBare(mode string) (*child, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(exe, mode) //nolint:gosec // this very binary, re-executed as the bare server
	cmd.Env = append(os.Environ(), childRole+"=bare")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start bare server: %w", err)
	}
	c := &child{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		c.Stop()
		return nil, "", fmt.Errorf("bare server did not print its address: %w", err)
	}
	return c, "http://" + strings.TrimSpace(line), nil
}

// measureBare runs the trivial tool on a bare mcp-go server in mode.
func measureBare(ctx context.Context, o Options, mode string) (Result, error) {
	c, base, err := startBare(mode)
	if err != nil {
		return Result{}, err
	}
	defer c.Stop()
	clients := make([]*mcpClient, o.Conns)
	for i := range clients {
		clients[i] = newMCPClient(o, base+"/mcp", "", mode == "stateless")
		if err := clients[i].Initialize(ctx); err != nil {
			return Result{}, fmt.Errorf("bare: %w", err)
		}
	}
	var r Result
	var client time.Duration
	cpu := measureCPU(c.cmd.Process.Pid, func() {
		client = measureCPU(os.Getpid(), func() {
			r = drive(ctx, clients, o.Duration, func(cl *mcpClient, _ int) error {
				return cl.CallToolChecked(ctx, "echo", map[string]any{"text": "hello"})
			})
		})
	})
	r.CPU, r.ClientCPU = cpu, client
	r.Mode, r.Workload = mode, "bare mcp-go echo"
	return r, nil
}
