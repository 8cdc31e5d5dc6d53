package state_test

import (
	"fmt"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

func ExampleParse() {
	st, err := state.Parse([]byte(`{
		"#spec": "pantavisor-service-system@1",
		"web/run.json": {"name": "web", "config": "lxc.container.conf", "root-volume": "root.squashfs", "group": "app", "roles": ["mgmt"]},
		"web/lxc.container.conf": "1111111111111111111111111111111111111111111111111111111111111111",
		"web/root.squashfs": "2222222222222222222222222222222222222222222222222222222222222222"
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	p := st.Platform("web")
	r := st.Resolve(p)
	fmt.Println(p.Name, p.Mgmt(), r.Group.Name, r.RestartPolicy, r.AutoRecovery.Policy)
	fmt.Println(st.PlatformOwning("web/root.squashfs").Name)
	// Output:
	// web true app container on-failure
	// web
}

func ExampleParse_error() {
	_, err := state.Parse([]byte(`{"#spec": "pantavisor-service-system@1",
		"app/run.json": {"name": "app", "auto_recovery": {"max_retries": -1}}}`))
	fmt.Println(err)
	// Output: app/run.json: auto_recovery.max_retries: must be a non-negative integer
}

func ExampleCanonical() {
	out, _ := state.Canonical([]byte(`{"b": 1.5, "a": ["é", 100, 1e2, 0.001]}`))
	fmt.Println(string(out))
	// Output: {"a":["é",100,100,1.0E-3],"b":1.5E0}
}

func ExampleDiff() {
	old, _ := state.Parse([]byte(`{"#spec":"pantavisor-service-system@1","a/f":"1111111111111111111111111111111111111111111111111111111111111111"}`))
	new, _ := state.Parse([]byte(`{"#spec":"pantavisor-service-system@1","a/f":"2222222222222222222222222222222222222222222222222222222222222222","_config/a/x":"3333333333333333333333333333333333333333333333333333333333333333"}`))
	for _, c := range state.Diff(old, new) {
		fmt.Println(c.Kind, c.Path, c.Owner)
	}
	// Output:
	// added _config/a/x a
	// modified a/f a
}
