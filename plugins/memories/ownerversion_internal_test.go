package memories

import (
	"slices"
	"testing"

	"github.com/picard-mcp/picard/pb_migrations"
)

// TestPageColumnsMoveTheOwnerCounter: every column a get_memories page
// reads is one whose update moves the owner's change counter; a column
// added to the page but not to the trigger would leave stale pages.
func TestPageColumnsMoveTheOwnerCounter(t *testing.T) {
	for _, c := range memoryColumns {
		if !slices.Contains(pb_migrations.OwnerVersionColumns, c) {
			t.Errorf("get_memories reads %s, but its update does not move the owner's counter (pb_migrations.OwnerVersionColumns)", c)
		}
	}
}
