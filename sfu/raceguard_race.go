//go:build race

package sfu

import "sync"

// raceGuard serializes the packet cache's byte copies under the race
// detector, which (rightly, by the Go memory model) reports a seqlock's
// overlapping copy even though the stamps make the outcome safe. Release
// builds use raceguard_norace.go: no lock on the packet path.
type raceGuard struct{ mu sync.RWMutex }

func (g *raceGuard) lock()    { g.mu.Lock() }
func (g *raceGuard) unlock()  { g.mu.Unlock() }
func (g *raceGuard) rlock()   { g.mu.RLock() }
func (g *raceGuard) runlock() { g.mu.RUnlock() }
