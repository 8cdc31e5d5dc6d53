package platform

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A consumer whose required xconnect service no container exports stays
// BLOCKED with the service named; an optional one, or a required one that
// is exported, does not hold a container back.
func TestMissingRequiredServiceBlocks(t *testing.T) {
	exports := `"prov/services.json":{"#spec":"service-manifest-xconnect@1","services":[{"name":"raw","type":"unix","socket":"/run/raw.sock"}]}`
	st := mkState(t, map[string]string{
		"prov":   `"group":"app"`,
		"ok":     `"group":"app","services":{"required":[{"name":"raw","type":"unix","target":"/run/raw.sock"}],"optional":[{"name":"nope","type":"rest"}]}`,
		"broken": `"group":"app","services":{"required":[{"name":"raw","type":"rest","target":"/x"},{"name":"gone","type":"unix","target":"/y"}]}`,
	}, exports)
	clk := newClock()
	e := newEngine(t, st, clk, false)
	got := acts(e.Tick())
	for _, want := range []string{"mount prov", "mount ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("Tick() = %q, want %q", got, want)
		}
	}
	if strings.Contains(got, "broken") {
		t.Errorf("Tick() = %q, want no action for broken", got)
	}
	i, err := e.Info("broken")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"raw (rest)", "gone (unix)"}; i.Status != Blocked || !slices.Equal(i.Missing, want) {
		t.Errorf("Info(broken) = %v %q, want BLOCKED %q", i.Status, i.Missing, want)
	}
	if got := acts(e.Tick()); strings.Contains(got, "broken") {
		t.Errorf("second Tick() = %q, want no action for broken", got)
	}
	// The goal timer runs from the block: an update under test fails
	// instead of waiting for ever.
	if _, timedOut := e.GoalsReached(); len(timedOut) != 0 {
		t.Errorf("GoalsReached() timed out %q at once, want none", timedOut)
	}
	clk.Add(e.byName["broken"].Timeout + time.Second)
	if _, timedOut := e.GoalsReached(); !slices.Contains(timedOut, "broken") {
		t.Errorf("GoalsReached() timed out %q after the goal timeout, want broken", timedOut)
	}
}
