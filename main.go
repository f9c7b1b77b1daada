// Command picard is the Picard memory server: PocketBase plus Picard's
// plugins. `picard serve` listens on 127.0.0.1:8001 by default.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/picard-mcp/picard/platform"
)

func main() {
	if err := platform.Run(os.Args[1:]); err != nil {
		var ce *platform.CommandError
		if !errors.As(err, &ce) { // a command's own failure is already printed
			fmt.Fprintln(os.Stderr, "picard:", err)
		}
		os.Exit(1)
	}
}
