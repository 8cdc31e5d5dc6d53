package signature

import (
	"crypto/elliptic"
	"encoding/json"
	"testing"
)

func TestInspect(t *testing.T) {
	key := testEC(t, elliptic.P256())
	m := fixture()
	inc, exc := BSPGlobs()
	signInto(t, m, "bsp", inc, exc, key)
	inc, exc = PartGlobs("app")
	signInto(t, m, "app", inc, exc, key)
	got, err := json.Marshal(Inspect(parse(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"protected":["#spec","_config/app/etc/x.conf","app/root.squashfs","bsp/build.json","bsp/kernel.img","device.json"],` +
		`"excluded":["_sigs/app.json","_sigs/bsp.json","app/src.json","bsp/src.json"],` +
		`"notseen":["README.md","acme/default.config"]}`
	if string(got) != want {
		t.Errorf("Inspect =\n%s\nwant\n%s", got, want)
	}
}
