// Package reuse keeps a component's per-call buffers for the next call.
//
// A sync.Pool drops what it holds at every other garbage collection, and a
// sink that writes a batch every few hundred milliseconds sees several
// collections between two batches: its pooled buffers (hundreds of KB a
// batch) were made anew for most batches. A Pool here also keeps a number
// of items (one per caller that may run at once, typically) that the
// collector does not take, and uses a sync.Pool only beyond them.
package reuse

import "sync"

// Pool holds items of type T for reuse. The zero value is not usable:
// make one with New.
type Pool[T any] struct {
	mu    sync.Mutex
	kept  []*T // at most cap(kept), never taken by the collector
	extra sync.Pool
	make  func() *T
}

// New returns a pool that keeps up to keep items across collections and
// makes new ones with mk.
func New[T any](keep int, mk func() *T) *Pool[T] {
	p := &Pool[T]{kept: make([]*T, 0, keep), make: mk}
	p.extra.New = func() any { return mk() }
	return p
}

// Get returns an item: a kept one, one from the sync.Pool, or a new one.
func (p *Pool[T]) Get() *T {
	p.mu.Lock()
	if n := len(p.kept); n > 0 {
		it := p.kept[n-1]
		p.kept[n-1] = nil
		p.kept = p.kept[:n-1]
		p.mu.Unlock()
		return it
	}
	p.mu.Unlock()
	return p.extra.Get().(*T)
}

// Put returns it for reuse; the caller must not use it after.
func (p *Pool[T]) Put(it *T) {
	p.mu.Lock()
	if len(p.kept) < cap(p.kept) {
		p.kept = append(p.kept, it)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.extra.Put(it)
}
