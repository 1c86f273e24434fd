package gate

// SetBeforeConfirm installs a hook run at the start of every confirmation
// (nil removes it). A hook that blocks freezes the gate as SIGSTOP would.
func (g *Gate) SetBeforeConfirm(f func()) {
	g.hookMu.Lock()
	defer g.hookMu.Unlock()
	g.beforeConfirm = f
}
