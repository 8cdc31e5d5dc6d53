package builder

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/mkimage/arch"
	"github.com/pantavisor/pantavisor-go/mkimage/cpus"
	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// TestRunStages: every stage starts only once the stages it needs have
// ended, independent ones overlap, and Steps keeps the order of Stages.
func TestRunStages(t *testing.T) {
	a, err := arch.Lookup("arm64") // cross: the runtime waits for packages
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	b := &run{o: Options{Progress: &progress}, r: &recipe.Recipe{}, arch: a, res: &Result{Sizes: map[string]int64{}}}
	var mu sync.Mutex
	started, ended := map[string]time.Time{}, map[string]time.Time{}
	running, most := 0, 0
	var stages []stage
	for _, name := range Stages {
		stages = append(stages, stage{name, func() (string, error) {
			mu.Lock()
			started[name] = time.Now()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			ended[name] = time.Now()
			running--
			mu.Unlock()
			return "(" + name + ")", nil
		}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.runStages(ctx, cancel, stages); err != nil {
		t.Fatal(err)
	}
	for _, name := range Stages {
		for _, n := range b.needs(name) {
			if started[name].Before(ended[n]) {
				t.Errorf("%s started before %s, which it needs, ended", name, n)
			}
		}
	}
	if most < 2 {
		t.Errorf("at most %d stages ran at once, want the initrd, addons, bsp and containers side by side", most)
	}
	var names []string
	for _, s := range b.res.Steps {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, Stages) {
		t.Errorf("steps %v, want %v", names, Stages)
	}
	for _, name := range Stages {
		if !strings.Contains(progress.String(), "    "+name+" done in ") {
			t.Errorf("progress lacks %q done in:\n%s", name, progress.String())
		}
	}
}

// TestRunStagesFailure: a failing stage is the build's error, named; the
// stages that need it do not run, the ones beside it see ctx cancelled,
// and runStages returns only once they have ended.
func TestRunStagesFailure(t *testing.T) {
	a, err := arch.Lookup("arm64")
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	b := &run{o: Options{Progress: &progress}, r: &recipe.Recipe{}, arch: a, res: &Result{Sizes: map[string]int64{}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	boom := errors.New("mksquashfs: boom")
	var mu sync.Mutex
	ran := map[string]bool{}
	var bspEnded bool
	var stages []stage
	for _, name := range Stages {
		fn := func() (string, error) {
			mu.Lock()
			ran[name] = true
			mu.Unlock()
			return "", nil
		}
		switch name {
		case "containers":
			fn = func() (string, error) { time.Sleep(10 * time.Millisecond); return "", boom }
		case "bsp":
			fn = func() (string, error) {
				<-ctx.Done() // a long stage beside it, stopped by the failure
				time.Sleep(10 * time.Millisecond)
				mu.Lock()
				bspEnded = true
				mu.Unlock()
				return "", ctx.Err()
			}
		}
		stages = append(stages, stage{name, fn})
	}
	err = b.runStages(ctx, cancel, stages)
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "containers: ") {
		t.Fatalf("runStages() = %v, want containers: %v", err, boom)
	}
	if !bspEnded {
		t.Error("runStages returned before the bsp stage beside the failure ended")
	}
	for _, n := range []string{"trails/0", "sbom", "image", "pvr export"} {
		if ran[n] {
			t.Errorf("%s ran after containers, which it needs, failed", n)
		}
	}
	if !strings.Contains(progress.String(), "containers FAILED after") {
		t.Errorf("progress does not say the containers failed:\n%s", progress.String())
	}
}

// TestStageWaitNote: a stage whose compressors waited for CPUs says how
// long in its note, counted once however many of them waited side by side.
func TestStageWaitNote(t *testing.T) {
	var progress bytes.Buffer
	b := &run{o: Options{Progress: &progress}, r: &recipe.Recipe{}, res: &Result{Sizes: map[string]int64{}}, cpus: cpus.New(1)}
	ctx := context.Background()
	_, hold, err := b.take(ctx, "initrd")
	if err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(50 * time.Millisecond); hold() }()
	st, err := b.step("containers", func() (string, error) {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, release, err := b.take(ctx, "containers")
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(10 * time.Millisecond)
				release()
			}()
		}
		wg.Wait()
		return "(2 containers)", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w := b.waits["containers"].total
	if w < 40*time.Millisecond || w > st.Duration {
		t.Errorf("containers waited %s in a stage of %s; want ≥ 40ms, at most the stage", w, st.Duration)
	}
	if !strings.Contains(st.Note, "of it waiting for CPUs)") {
		t.Errorf("note %q does not say the stage waited", st.Note)
	}
}
