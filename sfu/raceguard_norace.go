//go:build !race

package sfu

// raceGuard is empty: the packet cache's seqlock (a stamp checked before and
// after the copy) already discards a slot overwritten while it was read.
type raceGuard struct{}

func (raceGuard) lock()    {}
func (raceGuard) unlock()  {}
func (raceGuard) rlock()   {}
func (raceGuard) runlock() {}
