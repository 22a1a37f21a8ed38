package roommgr

import "errors"

// ErrDraining is returned by Create while the server drains: calls in
// progress go on (and can still be joined), new ones belong elsewhere.
var ErrDraining = errors.New("the server is draining: it takes no new calls; retry on another server or after the restart")

// Drain makes Create refuse new calls from now on. It reports whether this
// call started the drain (false if it was already draining). There is no way
// back: a drained server is on its way out.
func (m *Manager) Drain() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.draining {
		return false
	}
	m.draining = true
	close(m.drainStarted)
	return true
}

// Draining reports whether Drain was called.
func (m *Manager) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.draining
}

// DrainStarted is closed when the drain starts, by whoever started it (a
// signal, or the API's POST /v1/drain).
func (m *Manager) DrainStarted() <-chan struct{} { return m.drainStarted }

// Count is the number of calls in progress.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}
