package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// crashRootEnv makes TestReplaceRevisionCrash the child that replaces
// revision 0 over and over in the storage it names, until killed.
const crashRootEnv = "PV_TEST_REPLACE_CRASH_ROOT"

// crashStates are two revisions of 400 files each, sharing none.
func crashStates(t *testing.T, s *Storage) (a, b *planned) {
	t.Helper()
	mk := func(tag string) *planned {
		kv := map[string]any{}
		for i := range 400 {
			kv[fmt.Sprintf("c%d/f%d", i%20, i)] = putContent(t, s, fmt.Sprintf("%s-%d", tag, i))
		}
		st := stateOf(t, kv)
		p, err := s.plan(st)
		if err != nil {
			t.Fatal(err)
		}
		return &planned{st: st, p: p}
	}
	return mk("a"), mk("b")
}

// planned is a state with its trail plan.
type planned struct {
	st *state.State
	p  *plan
}

// TestReplaceRevisionCrash kills (SIGKILL) a process in the middle of
// replacing revision 0, again and again, and checks that trails/0 is
// every time one of the two revisions, complete, and that its state
// existed whenever the test looked while the child worked: never missing
// or half-built (issue 11 review, finding 1; deleting 0 before building
// the new one fails this at once). RemoveTemporaries then leaves no temp
// behind.
func TestReplaceRevisionCrash(t *testing.T) {
	if root := os.Getenv(crashRootEnv); root != "" {
		replaceForever(t, root)
		return
	}
	s := newStorage(t)
	a, b := crashStates(t, s)
	if err := s.Materialize("0", a.st); err != nil {
		t.Fatal(err)
	}
	dir := s.TrailDir("0")
	json := filepath.Join(dir, stateFile)
	for kill := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplaceRevisionCrash$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashRootEnv+"="+s.Root())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		n := 0
		for n <= kill%4 && lines.Scan() {
			if lines.Text() == "replaced" {
				n++
			} else {
				t.Logf("child: %s", lines.Text())
			}
		}
		if n <= kill%4 {
			cmd.Wait()
			t.Fatalf("kill %d: the child stopped after %d replacements", kill, n)
		}
		// Watch the trail while the child works, a varying while, so
		// the kill lands at varying points of a replacement: its state
		// must exist at every instant.
		for range 500 * (kill + 1) {
			if _, err := os.Stat(json); err != nil {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("kill %d: trails/0 while being replaced: %v", kill, err)
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if !s.complete(dir, a.p) && !s.complete(dir, b.p) {
			ents, _ := os.ReadDir(dir)
			t.Fatalf("kill %d: trails/0 is neither revision complete (%d entries)", kill, len(ents))
		}
	}
	if _, err := s.RemoveTemporaries(); err != nil {
		t.Fatal(err)
	}
	if names := dotEntries(t, s.trailsDir()); len(names) != 0 {
		t.Errorf("temp entries after RemoveTemporaries: %v", names)
	}
}

// replaceForever is the child of TestReplaceRevisionCrash.
func replaceForever(t *testing.T, root string) {
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	a, b := crashStates(t, s)
	for i := 0; ; i++ {
		st := a.st
		if i%2 == 0 {
			st = b.st
		}
		if err := s.ReplaceRevision("0", st); err != nil {
			t.Fatal(err)
		}
		fmt.Println("replaced")
	}
}
