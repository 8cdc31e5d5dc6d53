// Package cpus shares the machine's CPUs among the compressor processes
// a build runs side by side (mkimage/builder): a process takes one CPU,
// then any others that are free, and runs with that many threads.
// Threads beyond the CPUs cost CPU time, not only wall time: level-19
// zstd jobs evict each other's tables from the caches (x64-uefi's three
// containers took 30% more CPU time side by side with every thread each
// than one after another).
//
//	n, release, err := pool.Take(ctx, prio, runtime.NumCPU())
//	defer release() // run the program with n threads
package cpus

import (
	"context"
	"slices"
	"sync"
)

// Pool hands out CPUs. A nil Pool hands out none and never waits: the
// callers run their programs with the programs' own thread counts.
type Pool struct {
	mu    sync.Mutex
	free  int
	queue []*request // waiting, by prio then arrival
}

type request struct {
	prio, want, got int
	ready           chan struct{}
}

// New is a pool of n CPUs (at least one).
func New(n int) *Pool { return &Pool{free: max(n, 1)} }

// Take waits until a CPU is free and no request with a lower prio waits
// (the earlier stage of a build first; equal prios in arrival order),
// then takes up to want free CPUs (at least one). It returns how many it
// took, 0 from a nil Pool, and the function that gives them back.
func (p *Pool) Take(ctx context.Context, prio, want int) (int, func(), error) {
	if p == nil {
		return 0, func() {}, nil
	}
	r := &request{prio: prio, want: max(want, 1), ready: make(chan struct{})}
	p.mu.Lock()
	i, _ := slices.BinarySearchFunc(p.queue, r, func(a, b *request) int {
		if a.prio <= b.prio {
			return -1 // after the waiting ones of the same prio
		}
		return 1
	})
	p.queue = slices.Insert(p.queue, i, r)
	p.dispatch()
	p.mu.Unlock()
	select {
	case <-r.ready:
	case <-ctx.Done():
		p.mu.Lock()
		if i := slices.Index(p.queue, r); i >= 0 {
			p.queue = slices.Delete(p.queue, i, i+1)
			p.mu.Unlock()
			return 0, func() {}, ctx.Err()
		}
		p.mu.Unlock()
		p.give(r.got) // granted meanwhile
		return 0, func() {}, ctx.Err()
	}
	var once sync.Once
	return r.got, func() { once.Do(func() { p.give(r.got) }) }, nil
}

func (p *Pool) give(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free += n
	p.dispatch()
}

// dispatch grants free CPUs to the head of the queue, in order.
func (p *Pool) dispatch() {
	for p.free > 0 && len(p.queue) > 0 {
		r := p.queue[0]
		p.queue = p.queue[1:]
		r.got = min(r.want, p.free)
		p.free -= r.got
		close(r.ready)
	}
}
