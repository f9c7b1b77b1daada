package mcpserver

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// BenchmarkResultAnswer: the fast path's answer to a tool call whose
// result holds placeholders (as every Picard tool's does), encoded by
// encoding/json through mcp-go's MarshalJSON (general) and written by
// writeResultAnswer (direct). go test -bench ResultAnswer ./plugins/mcpserver/
func BenchmarkResultAnswer(b *testing.B) {
	res := mcp.NewToolResultText("picard-result-0123456789abcdef0123456789abcdef-42-t")
	res.StructuredContent = "picard-result-0123456789abcdef0123456789abcdef-42-s"
	b.Run("general", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = json.NewEncoder(io.Discard).Encode(mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(7)), res))
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf := buffers.Get().(*bytes.Buffer)
			if !writeResultAnswer(buf, float64(7), res) {
				b.Fatal("not written")
			}
			putBuffer(buf)
		}
	})
}
