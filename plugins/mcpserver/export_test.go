package mcpserver

// FastCalls is how many tool calls the fast path has answered so far.
func FastCalls() int64 { return fastCalls.Load() }
