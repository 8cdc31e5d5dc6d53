package xconnect

import (
	"encoding/json"
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

const sha = "1111111111111111111111111111111111111111111111111111111111111111"

// platformJSON is the state entries of a platform with extra run.json members.
func platformJSON(name, extra string) string {
	s := `"` + name + `/root.squashfs":"` + sha + `","` + name + `/lxc.container.conf":"` + sha + `",` +
		`"` + name + `/run.json":{"#spec":"service-manifest-run@1","name":"` + name + `","type":"lxc",` +
		`"config":"lxc.container.conf","root-volume":"root.squashfs","volumes":[],"group":"app"`
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func graphState(t *testing.T) *state.State {
	t.Helper()
	doc := `{"#spec":"pantavisor-service-system@1",` +
		platformJSON("prov", "") + `,` +
		`"prov/services.json":{"#spec":"service-manifest-xconnect@1","services":[` +
		`{"name":"raw","type":"unix","socket":"/run/raw.sock"},{"name":"api","type":"rest","socket":"/run/api.sock"}]},` +
		platformJSON("app", `"services":{"required":[{"name":"raw","type":"unix","target":"/run/pv/raw.sock"}],`+
			`"optional":[{"name":"api","type":"rest","role":"admin","interface":"v1","target":"/run/pv/api.sock"},{"name":"absent","type":"unix"}]}`) + `,` +
		platformJSON("bare", `"services":{"optional":[{"name":"raw"}]}`) + `}`
	st, err := state.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("state.Parse() error = %v", err)
	}
	return st
}

func TestGraph(t *testing.T) {
	st := graphState(t)
	tests := []struct {
		name string
		pids map[string]int
		want string
	}{
		{"nothing runs", nil, `[]`},
		{"provider down", map[string]int{"app": 10, "bare": 11}, `[]`},
		{"consumer down", map[string]int{"prov": 20}, `[]`},
		{"all run", map[string]int{"app": 10, "bare": 11, "prov": 20}, `[` +
			`{"consumer":"app","consumer_pid":10,"provider":"prov","provider_pid":20,"name":"raw","type":"unix","role":"any","interface":"unix","target":"/run/pv/raw.sock","socket":"/run/raw.sock"},` +
			`{"consumer":"app","consumer_pid":10,"provider":"prov","provider_pid":20,"name":"api","type":"rest","role":"admin","interface":"v1","target":"/run/pv/api.sock","socket":"/run/api.sock"},` +
			`{"consumer":"bare","consumer_pid":11,"provider":"prov","provider_pid":20,"name":"raw","type":"unix","role":"any","interface":"unix","target":"/run/raw.sock","socket":"/run/raw.sock"}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(Graph(st, tc.pids))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("Graph() = %s\nwant %s", b, tc.want)
			}
		})
	}
	if b, _ := json.Marshal(Graph(nil, nil)); string(b) != "[]" {
		t.Errorf("Graph(nil) = %s, want []", b)
	}
}
