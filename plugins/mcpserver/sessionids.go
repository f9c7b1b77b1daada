package mcpserver

import (
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// terminatedSessions is mcp-go's default session id manager (ids generated
// here, any well-formed id accepted, so sessions survive a restart) that
// also remembers the sessions terminated in this process, by DELETE or by
// the idle sweeper: a request bearing one is answered 404, as the
// Streamable HTTP transport requires, so the client starts a new session
// instead of silently using a dead one. Terminated ids are kept for
// terminatedTTL (pruned at most once a minute), so the set stays bounded.
type terminatedSessions struct {
	server.StatelessGeneratingSessionIdManager

	mu     sync.Mutex
	ended  map[string]time.Time
	pruned time.Time
}

const terminatedTTL = 24 * time.Hour

func newTerminatedSessions() *terminatedSessions {
	return &terminatedSessions{ended: map[string]time.Time{}}
}

// Validate accepts well-formed ids and reports the terminated ones.
func (m *terminatedSessions) Validate(sessionID string) (bool, error) {
	if _, err := m.StatelessGeneratingSessionIdManager.Validate(sessionID); err != nil {
		return false, err
	}
	m.mu.Lock()
	_, ended := m.ended[sessionID]
	m.mu.Unlock()
	return ended, nil
}

// Terminate remembers the id as terminated.
func (m *terminatedSessions) Terminate(sessionID string) (bool, error) {
	if _, err := m.StatelessGeneratingSessionIdManager.Validate(sessionID); err != nil {
		return false, err
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.pruned) > time.Minute {
		m.pruned = now
		for id, at := range m.ended {
			if now.Sub(at) > terminatedTTL {
				delete(m.ended, id)
			}
		}
	}
	m.ended[sessionID] = now
	return false, nil
}
