package state

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(fullState))
	f.Add([]byte(doc()))
	f.Add([]byte(doc(plat(`"auto_recovery":{"policy":"always","backoff_policy":"5min"},"roles":["mgmt"]`)...)))
	f.Add([]byte(doc("device.json", `{"disks":[{"name":"d","type":"directory"}],"network":{"pools":{"p":{"bridge":"b","subnet":"10.0.0.0/8"}}}}`)))
	f.Add([]byte(doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"alg":"ES256","pvs":{"include":["**"]}}`)+`","signature":"c2ln"}`)))
	f.Add([]byte(doc("bsp/run.json", `{"fit":"f"}`, "bsp/f", `"`+sha1+`"`)))
	f.Add([]byte(`{"#spec":"pantavisor-service-system@1","a/../b":"x"}`))
	f.Add([]byte(doc("x/run.json", `{"name":"x","group":"app","status_goal":"READY","restart_policy":"container"}`)))
	f.Add([]byte(doc("x/run.json", `{"name":"x","storage":{"v":{"persistence":"boot"}},"logs":[{"a":"b"}],"drivers":{"manual":["m"]}}`)))
	f.Add([]byte(doc("x/run.json", `{"name":"x","network":{"mode":"host"},"services":{"required":[{"name":"s"}]},"exports":[]}`)))
	f.Add([]byte(doc("groups.json", `[{"name":"g","timeout":1.5}]`, "x/run.json", `{"name":"x","group":"g"}`)))
	f.Add([]byte(doc("disks.json", `[{"name":"d","type":"directory","aliases":["e"]}]`)))
	f.Add([]byte(doc("bsp/drivers.json", `{"#spec":"driver-aliases@1","all":{"a":["m"]}}`)))
	f.Add([]byte(doc("x/services.json", `{"services":[{"name":"n","type":"unix","socket":"/s"}]}`)))
	f.Add([]byte(doc("a.json", `{"z":[1.5,-0,"\u00e9"],"a":null}`, "b", `"`+sha2+`"`)))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(in)
		if err != nil {
			if s != nil {
				t.Fatalf("Parse error %v with a non-nil state", err)
			}
			return
		}
		out := s.Canonical()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Canonical()) error %v; canonical %q", err, out)
		}
		if !bytes.Equal(again.Canonical(), out) {
			t.Fatalf("Canonical round trip changed bytes:\n%q\n%q", out, again.Canonical())
		}
		assertSameState(t, s, again)
		if c, err := Canonical(in); err != nil || !bytes.Equal(c, out) {
			t.Fatalf("Canonical(input) = %q, %v, want State.Canonical() %q", c, err, out)
		}
		if d := Diff(s, again); len(d) != 0 {
			t.Fatalf("Diff(s, reparsed) = %v, want none", d)
		}
	})
}
