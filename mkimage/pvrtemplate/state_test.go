package pvrtemplate

import (
	"encoding/json"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

// TestRunJSONParses: what the template renders is a run.json the
// runtime's state parser accepts (one format, two sides), for a plain
// app, a platform with args and a data container.
func TestRunJSONParses(t *testing.T) {
	for name, src := range map[string]Src{
		"plain": {},
		"args": {Args: map[string]any{"PV_ROLES": []any{"mgmt"}, "PV_GROUP": "platform", "PV_DRIVERS_OPTIONAL": []any{"bt"},
			"PV_RESTART_POLICY": "container", "PV_STATUS_GOAL": "READY"},
			DockerConfig: Config{Volumes: map[string]struct{}{"/data/": {}}}, Persistence: map[string]string{"/var/x": "revision"}},
		"data": {Args: map[string]any{"PV_STATUS_GOAL": "MOUNTED", "PV_GROUP": "data"}},
	} {
		f, err := Render("c", src, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		doc, _ := json.Marshal(map[string]any{"#spec": "pantavisor-service-system@1", "c/run.json": f.RunJSON,
			"c/root.squashfs":      "0000000000000000000000000000000000000000000000000000000000000000",
			"c/lxc.container.conf": "0000000000000000000000000000000000000000000000000000000000000000"})
		if _, err := state.Parse(doc); err != nil {
			t.Errorf("%s: state.Parse(run.json %s) = %v", name, f.RunJSON, err)
		}
	}
}
