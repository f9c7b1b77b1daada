package persona

// UsedMemories names the memories an answer drew on and their owner, for
// the access log.
func (a *Answer) UsedMemories() (string, []string) { return a.UserID, a.MemoryIDs }
