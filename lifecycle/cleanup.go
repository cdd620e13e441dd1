package lifecycle

// cleanup is a stack of undo steps for a multi-step setup: push an undo
// after each resource is made; on failure run them all, newest first; on
// success release them.
type cleanup struct{ undo []func() }

func (c *cleanup) push(f func()) { c.undo = append(c.undo, f) }

// run undoes every step unless release was called.
func (c *cleanup) run() {
	for i := len(c.undo) - 1; i >= 0; i-- {
		c.undo[i]()
	}
	c.undo = nil
}

func (c *cleanup) release() { c.undo = nil }
