package pantavisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// badSig is a pvs@2 signature that cannot verify.
const badSig = `"_sigs/x.json":{"#spec":"pvs@2","protected":"eyJhbGciOiJSUzI1NiIsInR5cCI6IlBWUyIsInB2cyI6eyJpbmNsdWRlIjpbIioqIl19fQ","signature":"AAAA"}`

func TestSecurebootSteps(t *testing.T) {
	for _, tt := range []struct {
		name, mode, state string
		code              int
		want              string
	}{
		{"bad signature lenient", "lenient", `{"#spec":"pantavisor-service-system@1",` + badSig + `}`, 422, "Secureboot: "},
		{"bad signature disabled", "disabled", `{"#spec":"pantavisor-service-system@1",` + badSig + `}`, 200, ""},
		{"unsigned lenient", "lenient", `{"#spec":"pantavisor-service-system@1","a.json":{"x":1}}`, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storage := newStorage(t)
			in := start(t, storage, func(o *Options) { o.Env = append(o.Env, "PV_SECUREBOOT_MODE="+tt.mode) })
			code, b := in.call(t, "PUT", "/steps/locals/sb", strings.NewReader(tt.state))
			if code != tt.code || !strings.Contains(string(b), tt.want) {
				t.Errorf("PUT /steps/locals/sb = %d %s, want %d %q", code, b, tt.code, tt.want)
			}
			_, err := os.Stat(filepath.Join(storage, "trails", "locals", "sb"))
			if kept := err == nil; kept != (tt.code == 200) {
				t.Errorf("revision kept = %v, want %v", kept, tt.code == 200)
			}
		})
	}
}

// TestSecurebootRun: a running revision whose signature fails goes to
// ROLLBACK (ERROR then REBOOT for revision 0).
func TestSecurebootRun(t *testing.T) {
	storage := newStorage(t)
	os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(`{"#spec":"pantavisor-service-system@1",`+badSig+`}`), 0o644)
	var logs syncBuf
	d, err := New(Options{Cmdline: "pv_appengine pv_rev=0", NoLogServer: true,
		Log: newTextLog(&logs),
		Env: []string{"PV_STORAGE_MNTPOINT=" + storage, "PV_SYSTEM_RUNDIR=" + filepath.Join(t.TempDir(), "run")}})
	if err != nil {
		t.Fatal(err)
	}
	exit, err := d.Run(context.Background())
	if err != nil || exit != ExitReboot {
		t.Errorf("Run = %d, %v, want reboot", exit, err)
	}
	if !strings.Contains(logs.String(), "secureboot: Signature validation failed") {
		t.Errorf("log lacks the secureboot reason:\n%s", logs.String())
	}
}
