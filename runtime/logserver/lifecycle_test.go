package logserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStartCloseRace runs Start and Close concurrently: whichever wins,
// once both returned no listener may be left behind (its socket file is
// unlinked on close).
func TestStartCloseRace(t *testing.T) {
	for i := range 50 {
		root := t.TempDir()
		s, err := New(Options{RunDir: filepath.Join(root, "run"), LogDir: filepath.Join(root, "logs"), Rev: "0", Log: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		started := make(chan error, 1)
		go func() { started <- s.Start(context.Background()) }()
		time.Sleep(time.Duration(i%10) * 20 * time.Microsecond) // vary who wins
		s.Close()
		if err := <-started; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("run %d: Start = %v, want nil or ErrClosed", i, err)
		}
		for _, name := range []string{CtrlSocket, FdSocket} {
			if _, err := os.Lstat(filepath.Join(root, "run", name)); err == nil {
				t.Fatalf("run %d: %s still listening after Close", i, name)
			}
		}
	}
}
