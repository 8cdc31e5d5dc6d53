package pvtest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Test
		err  string // substring of the error; "" = success
	}{
		{name: "minimal", in: `{"#spec":"pv-test@1","test-script":"t"}`,
			want: &Test{Spec: Spec, Script: "t"}},
		{name: "seeds example", in: `{
			"#spec": "pv-test@1",
			"description": "ls query to mgmt and non-mgmt containers",
			"setup": {
				"cmdline": "pv_log.level=5",
				"pantavisor.config": "../../common/configs/pantavisor.config",
				"pvs": "../../common/pvs/pvs.defaultkeys.tar.gz",
				"containers": {"control": "pvr-sdk", "tarballs": [], "urls": ["https://pvr.pantahub.com/x/3#pvr-sdk/"]},
				"ready-script": "resources/ready"
			},
			"test-script": "resources/test",
			"skip": "false"
		}`, want: &Test{Spec: Spec, Description: "ls query to mgmt and non-mgmt containers", Script: "resources/test",
			Setup: Setup{Cmdline: "pv_log.level=5", Config: "../../common/configs/pantavisor.config",
				PVS: "../../common/pvs/pvs.defaultkeys.tar.gz", ReadyScript: "resources/ready",
				Containers: Containers{Control: "pvr-sdk", Tarballs: []string{}, URLs: []string{"https://pvr.pantahub.com/x/3#pvr-sdk/"}}}}},
		{name: "skip string", in: `{"#spec":"pv-test@1","test-script":"t","skip":"true"}`, want: &Test{Spec: Spec, Script: "t", Skip: true}},
		{name: "skip bool", in: `{"#spec":"pv-test@1","test-script":"t","skip":true}`, want: &Test{Spec: Spec, Script: "t", Skip: true}},
		{name: "builtin fixtures", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"containers":{"control":"c","tarballs":["builtin:control:c","builtin:nobody"]}}}`,
			want: &Test{Spec: Spec, Script: "t", Setup: Setup{Containers: Containers{Control: "c", Tarballs: []string{"builtin:control:c", "builtin:nobody"}}}}},
		{name: "factory extension", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"factory":"true","containers":{"tarballs":["builtin:plain"]}}}`,
			want: &Test{Spec: Spec, Script: "t", Setup: Setup{Factory: true, Containers: Containers{Tarballs: []string{"builtin:plain"}}}}},
		{name: "bad factory", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"factory":"yes"}}`, err: "setup.factory"},
		{name: "storage-size extension", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"storage-size":"32M"}}`,
			want: &Test{Spec: Spec, Script: "t", Setup: Setup{StorageSize: "32M"}}},
		{name: "bad storage-size", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"storage-size":"32MB"}}`, err: "setup.storage-size"},
		{name: "zero storage-size", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"storage-size":"0k"}}`, err: "setup.storage-size"},
		{name: "no spec", in: `{"test-script":"t"}`, err: "#spec: missing"},
		{name: "wrong spec", in: `{"#spec":"pv-test@2","test-script":"t"}`, err: `#spec: "pv-test@2" is not supported`},
		{name: "no script", in: `{"#spec":"pv-test@1"}`, err: "test-script: missing"},
		{name: "absolute script", in: `{"#spec":"pv-test@1","test-script":"/bin/t"}`, err: "test-script"},
		{name: "unknown key", in: `{"#spec":"pv-test@1","test-script":"t","skipp":"true"}`, err: `unknown field "skipp"`},
		{name: "bad skip", in: `{"#spec":"pv-test@1","test-script":"t","skip":"maybe"}`, err: "skip:"},
		{name: "trailing comma", in: `{"#spec":"pv-test@1","test-script":"t",}`, err: "bad test.json"},
		{name: "trailing data", in: `{"#spec":"pv-test@1","test-script":"t"} {}`, err: "trailing data"},
		{name: "unknown fixture", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"containers":{"tarballs":["builtin:bogus"]}}}`, err: "tarballs[0]"},
		{name: "bad fixture name", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"containers":{"tarballs":["builtin:control:a/b"]}}}`, err: "container name"},
		{name: "control without containers", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"containers":{"control":"x"}}}`, err: "setup.containers.control"},
		{name: "cmdline newline", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"cmdline":"a\nb"}}`, err: "setup.cmdline"},
		{name: "absolute config", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"pantavisor.config":"/etc/x"}}`, err: "setup.pantavisor.config"},
		{name: "empty url", in: `{"#spec":"pv-test@1","test-script":"t","setup":{"containers":{"urls":[""]}}}`, err: "urls[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadTest) {
					t.Fatalf("Parse() error = %v, want ErrBadTest containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzTestJSON(f *testing.F) {
	for _, s := range []string{
		`{"#spec":"pv-test@1","test-script":"t"}`,
		`{"#spec":"pv-test@1","description":"d","setup":{"cmdline":"x","containers":{"control":"c","tarballs":["builtin:control:c","a.tgz"],"urls":["u"]},"ready-script":"r"},"test-script":"t","skip":"true"}`,
		`{"#spec":"pv-test@1","test-script":"t","skip":false}`,
		`{"#spec":"pv-test@2"}`,
		`[]`, `null`, `{`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(data)
		if err != nil {
			if got != nil {
				t.Fatalf("Parse() = %+v with error %v", got, err)
			}
			if !errors.Is(err, ErrBadTest) {
				t.Fatalf("Parse() error %v does not wrap ErrBadTest", err)
			}
			return
		}
		if got.Spec != Spec || got.Script == "" {
			t.Fatalf("Parse() accepted %+v", got)
		}
		if c := got.Setup.Containers; c.Control != "" && len(c.Tarballs)+len(c.URLs) == 0 {
			t.Fatalf("Parse() accepted a control container nobody provides: %+v", c)
		}
		for _, tb := range got.Setup.Containers.Tarballs {
			if strings.HasPrefix(tb, "/") {
				t.Fatalf("Parse() accepted absolute tarball %q", tb)
			}
		}
	})
}
