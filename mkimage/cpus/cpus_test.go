package cpus

import (
	"context"
	"errors"
	"testing"
	"time"
)

func take(t *testing.T, p *Pool, prio, want int) (int, func()) {
	t.Helper()
	n, release, err := p.Take(context.Background(), prio, want)
	if err != nil {
		t.Fatal(err)
	}
	return n, release
}

// TestTake: a request gets what is free up to what it wants, waits when
// nothing is, and the waiting ones are served by prio, then arrival.
func TestTake(t *testing.T) {
	p := New(2)
	n, r1 := take(t, p, 5, 1)
	if n != 1 {
		t.Fatalf("first Take(want 1) = %d", n)
	}
	n, r2 := take(t, p, 5, 4)
	if n != 1 {
		t.Fatalf("Take(want 4) with one free = %d, want 1", n)
	}
	r1()
	r2()
	r2() // twice: no effect
	n, hold := take(t, p, 5, 2)
	if n != 2 {
		t.Fatalf("Take(want 2) with both free = %d", n)
	}
	type grant struct {
		prio, n int
		release func()
	}
	granted := make(chan grant, 2)
	wait := func(prio, want int) {
		n, release, err := p.Take(context.Background(), prio, want)
		if err != nil {
			t.Error(err)
		}
		granted <- grant{prio, n, release}
	}
	go wait(6, 1)
	time.Sleep(20 * time.Millisecond)
	go wait(3, 2) // a lower prio overtakes the waiting 6
	time.Sleep(20 * time.Millisecond)
	select {
	case g := <-granted:
		t.Fatalf("prio %d was served with no CPU free", g.prio)
	default:
	}
	hold()
	g := <-granted
	if g.prio != 3 || g.n != 2 {
		t.Fatalf("first served prio %d with %d CPUs, want 3 with both", g.prio, g.n)
	}
	select {
	case g := <-granted:
		t.Fatalf("prio %d was served while prio 3 holds both CPUs", g.prio)
	case <-time.After(20 * time.Millisecond):
	}
	g.release()
	if g := <-granted; g.prio != 6 || g.n != 1 {
		t.Errorf("then prio %d with %d CPUs, want 6 with 1", g.prio, g.n)
	} else {
		g.release()
	}
	if n, r := take(t, p, 0, 8); n != 2 {
		t.Errorf("after all released, Take(want 8) = %d, want 2", n)
	} else {
		r()
	}
}

// TestTakeCancel: a waiting request gives up with its context and takes
// nothing; a nil Pool never waits.
func TestTakeCancel(t *testing.T) {
	p := New(1)
	_, release := take(t, p, 0, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := p.Take(ctx, 0, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Take with nothing free and a deadline = %v", err)
	}
	release()
	if n, r := take(t, p, 0, 1); n != 1 {
		t.Errorf("Take after the cancelled one = %d, want 1", n)
	} else {
		r()
	}
	var none *Pool
	if n, r := take(t, none, 0, 4); n != 0 {
		t.Errorf("nil Pool Take = %d, want 0", n)
	} else {
		r()
	}
}
