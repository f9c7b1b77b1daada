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

// TestMemoryRowHasAFieldPerColumn: every column memoryRow reads has a
// field of its own for exportedRow (the hit seeding) to fill; a column
// added to memoryColumns without one would leave seeded memories without
// it and fail every seeding as "a column is missing".
func TestMemoryRowHasAFieldPerColumn(t *testing.T) {
	var r memoryRow
	seen := map[*string]string{}
	for _, c := range memoryColumns {
		p := r.column(c)
		if p == nil {
			t.Errorf("memoryRow.column(%q) is nil", c)
			continue
		}
		if other, ok := seen[p]; ok {
			t.Errorf("columns %q and %q share a field", other, c)
		}
		seen[p] = c
	}
	if r.column("index_status") != nil {
		t.Error("memoryRow.column knows a column memoryRow does not read")
	}
}
