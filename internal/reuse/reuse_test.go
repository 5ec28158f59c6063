package reuse

import (
	"runtime"
	"sync"
	"testing"
)

// TestKeptAcrossCollections: what was put comes back after collections a
// sync.Pool would have emptied itself in, up to keep items; more are made.
func TestKeptAcrossCollections(t *testing.T) {
	made := 0
	p := New(2, func() *[]byte { made++; b := make([]byte, 0, 1<<20); return &b })
	a, b := p.Get(), p.Get()
	if made != 2 {
		t.Fatalf("made %d, want 2", made)
	}
	p.Put(a)
	p.Put(b)
	runtime.GC()
	runtime.GC()
	runtime.GC()
	x, y := p.Get(), p.Get()
	if !(x == b && y == a) {
		t.Fatalf("got %p %p after three collections, want the kept %p %p", x, y, b, a)
	}
	if made != 2 {
		t.Fatalf("made %d, want 2: the kept items were dropped", made)
	}
	_ = p.Get()
	if made != 3 {
		t.Fatalf("made %d, want 3: nothing was kept for a third", made)
	}
}

func TestGetPutAllocatesNothing(t *testing.T) {
	p := New(1, func() *[]byte { return new([]byte) })
	p.Put(p.Get())
	if n := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); n != 0 {
		t.Fatalf("%v allocations per Get/Put", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	p := New(2, func() *int { return new(int) })
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				it := p.Get()
				*it++
				p.Put(it)
			}
		}()
	}
	wg.Wait()
	total := 0
	for range 2 {
		total += *p.Get()
	}
	if total == 0 {
		t.Fatal("the kept items were never used")
	}
}
