package pvtx

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const spec = `"#spec":"pantavisor-service-system@1"`

func mustDoc(t testing.TB, s string) *Doc {
	t.Helper()
	d, err := ParseDoc([]byte(s))
	if err != nil {
		t.Fatalf("ParseDoc(%s) = %v", s, err)
	}
	return d
}

func TestParseDoc(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // Bytes(), when ok
		wantErr string
	}{
		{`{` + spec + `}`, `{` + spec + `}`, ""},
		{`{}`, `{` + spec + `}`, ""},
		{` {"b":"x", "a" : { "k" : [1, 2] },` + spec + `} `, `{` + spec + `,"a":{ "k" : [1, 2] },"b":"x"}`, ""},
		{`{"a<b>":"&"}`, `{` + spec + `,"a<b>":"&"}`, ""},
		{`{"#spec":"pantavisor-multi-platform@1"}`, "", "#spec"},
		{`{"#spec":1}`, "", "#spec"},
		{`{"a":1,"a":2}`, "", "duplicate"},
		{`{"../x":1}`, "", "invalid state key"},
		{`{"/abs":1}`, "", "invalid state key"},
		{`{"a//b":1}`, "", "invalid state key"},
		{`{"":1}`, "", "invalid state key"},
		{`[1]`, "", "not a JSON object"},
		{`"x"`, "", "not a JSON object"},
		{`{"a":1} {}`, "", "trailing"},
		{`{"a":1`, "", "bad state json"},
		{`{"a":}`, "", "bad state json"},
		{``, "", "bad state json"},
	} {
		d, err := ParseDoc([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBadJSON) {
				t.Errorf("ParseDoc(%s) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseDoc(%s) = %v", tc.in, err)
			continue
		}
		if got := string(d.Bytes()); got != tc.want {
			t.Errorf("ParseDoc(%s).Bytes() = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestDocObjects(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	d := mustDoc(t, `{"x/1":"`+b+`","x/2":"`+a+`","x/3":"`+a+`","x/run.json":{"a":"`+b+`"},"x/s":"`+strings.Repeat("A", 64)+`"}`)
	if got := strings.Join(d.Objects(), ","); got != a+","+b {
		t.Errorf("Objects() = %s, want %s,%s", got, a, b)
	}
	if sha, ok := d.Object("x/1"); !ok || sha != b {
		t.Errorf("Object(x/1) = %s, %v, want %s", sha, ok, b)
	}
	for _, k := range []string{"x/run.json", "x/s", "missing"} {
		if _, ok := d.Object(k); ok {
			t.Errorf("Object(%s) ok, want not an object", k)
		}
	}
}

func keys(d *Doc) string { return strings.Join(d.Keys(), " ") }

func TestRemove(t *testing.T) {
	nginxSig := sig([]string{"nginx/**", "_config/nginx/**"}, []string{"nginx/src.json"})
	base := `{` + spec + `,
		"_config/nginx/etc/nginx.conf":"c",
		"_config/other/x":"c",
		"_sigs/nginx-proxy.json":` + sig([]string{"nginx-proxy/**"}, nil) + `,
		"_sigs/nginx.json":` + nginxSig + `,
		"bsp/run.json":{},
		"nginx-proxy/run.json":{},
		"nginx/root.squashfs":"r",
		"nginx/run.json":{},
		"nginx/src.json":{},
		"nginxfoo":"x"}`
	for _, tc := range []struct {
		part string
		want string // remaining keys
	}{
		// The part, its signature and everything the signature lists
		// (exclude globs included); nginx-proxy and nginxfoo stay.
		{"nginx", "_config/other/x _sigs/nginx-proxy.json bsp/run.json nginx-proxy/run.json nginxfoo"},
		{"_sigs/nginx.json", "_config/other/x _sigs/nginx-proxy.json bsp/run.json nginx-proxy/run.json nginxfoo"},
		{"_config/nginx", "_config/other/x _sigs/nginx-proxy.json bsp/run.json nginx-proxy/run.json nginxfoo"},
		{"nginx/run.json", "_config/nginx/etc/nginx.conf _config/other/x _sigs/nginx-proxy.json _sigs/nginx.json bsp/run.json nginx-proxy/run.json nginx/root.squashfs nginx/src.json nginxfoo"},
		{"nginx-proxy", "_config/nginx/etc/nginx.conf _config/other/x _sigs/nginx.json bsp/run.json nginx/root.squashfs nginx/run.json nginx/src.json nginxfoo"},
		{"bsp", "_config/nginx/etc/nginx.conf _config/other/x _sigs/nginx-proxy.json _sigs/nginx.json nginx-proxy/run.json nginx/root.squashfs nginx/run.json nginx/src.json nginxfoo"},
		{"nothing", "_config/nginx/etc/nginx.conf _config/other/x _sigs/nginx-proxy.json _sigs/nginx.json bsp/run.json nginx-proxy/run.json nginx/root.squashfs nginx/run.json nginx/src.json nginxfoo"},
	} {
		d := mustDoc(t, base)
		d.Remove(tc.part)
		if got := keys(d); got != tc.want {
			t.Errorf("Remove(%s) left %s, want %s", tc.part, got, tc.want)
		}
	}
}

// TestRemoveSharedCoverage checks the m > n rule: a key that other
// signatures cover more often than the removed part's patterns match it
// stays.
func TestRemoveSharedCoverage(t *testing.T) {
	d := mustDoc(t, `{
		"_sigs/app.json":`+sig([]string{"app/**", "_config/app/**"}, nil)+`,
		"_sigs/cfg.json":`+sig([]string{"_config/**", "_config/app/**"}, nil)+`,
		"_config/app/a.conf":"x",
		"app/run.json":{}}`)
	// _config/app/a.conf: n = 1 (app's "_config/app/"), m = 3 → kept.
	d.Remove("app")
	if got, want := keys(d), "_config/app/a.conf _sigs/cfg.json"; got != want {
		t.Errorf("Remove(app) left %s, want %s", got, want)
	}
}

func TestMerge(t *testing.T) {
	oldSig := sig([]string{"app/**"}, nil)
	for _, tc := range []struct {
		name, dst, src, want string
	}{
		{"add to empty", `{}`, `{"b":"1","a":{"x": 1}}`, `{` + spec + `,"a":{"x": 1},"b":"1"}`},
		{"replace value", `{"a":"old","c":"keep"}`, `{"a":"new"}`, `{` + spec + `,"a":"new","c":"keep"}`},
		{"replace subtree by key", `{"app/x":"1","app/y":"2"}`, `{"app/x":"3"}`, `{` + spec + `,"app/x":"3","app/y":"2"}`},
		{"signed package replaces old files", `{"_sigs/app.json":` + oldSig + `,"app/old":"1","app/run.json":{},"other":"1"}`,
			`{"_sigs/app.json":` + oldSig + `,"app/run.json":{"v":2}}`,
			`{` + spec + `,"_sigs/app.json":` + oldSig + `,"app/run.json":{"v":2},"other":"1"}`},
	} {
		d := mustDoc(t, tc.dst)
		d.Merge(mustDoc(t, tc.src))
		if got := string(d.Bytes()); got != tc.want {
			t.Errorf("%s: Merge = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestSigGlobsMalformed(t *testing.T) {
	for _, v := range []string{`"x"`, `{}`, `{"protected":"!!"}`, `{"protected":"e30"}`, `{"protected":"bm90IGpzb24"}`} {
		if g := sigGlobs(json.RawMessage(v)); len(g) != 0 {
			t.Errorf("sigGlobs(%s) = %v, want none", v, g)
		}
	}
}

func FuzzMerge(f *testing.F) {
	f.Add(`{"a":"1","b/c":{}}`, `{"b/c":"2"}`)
	f.Add(`{"_sigs/x.json":`+sig([]string{"x/**"}, []string{"x/src.json"})+`,"x/a":"1","x/src.json":{}}`, `{"_sigs/x.json":`+sig([]string{"x/*"}, nil)+`,"x/b":"2"}`)
	f.Add(`{`+spec+`,"_sigs/all.json":`+sig([]string{"**"}, nil)+`,"k":[1]}`, `{"k":null}`)
	f.Fuzz(func(t *testing.T, a, b string) {
		dst, err := ParseDoc([]byte(a))
		if err != nil {
			return
		}
		src, err := ParseDoc([]byte(b))
		if err != nil {
			return
		}
		dst.Merge(src)
		out := dst.Bytes()
		if !strings.HasPrefix(string(out), `{`+spec) {
			t.Fatalf("Merge output %s does not start with #spec", out)
		}
		back, err := ParseDoc(out)
		if err != nil {
			t.Fatalf("ParseDoc(Merge output %s) = %v", out, err)
		}
		if string(back.Bytes()) != string(out) {
			t.Fatalf("output does not round-trip: %s vs %s", back.Bytes(), out)
		}
		ks := dst.Keys()
		for i := 1; i < len(ks); i++ {
			if ks[i-1] >= ks[i] {
				t.Fatalf("keys not sorted and unique: %q", ks)
			}
		}
		for _, k := range src.Keys() {
			want, _ := src.Get(k)
			if got, ok := dst.Get(k); !ok || string(got) != string(want) {
				t.Fatalf("after Merge %s = %s (%v), want %s", k, got, ok, want)
			}
		}
		for _, k := range src.Keys() {
			dst.Remove(k)
		}
	})
}

// BenchmarkMerge merges a signed 50-key package into a signed 2000-key
// state (40 containers).
func BenchmarkMerge(b *testing.B) {
	var dst, src strings.Builder
	dst.WriteString("{")
	for c := 0; c < 40; c++ {
		name := "c" + string(rune('a'+c%26)) + string(rune('a'+c/26))
		dst.WriteString(`"_sigs/` + name + `.json":` + sig([]string{name + "/**", "_config/" + name + "/**"}, []string{name + "/src.json"}) + ",")
		for k := 0; k < 50; k++ {
			dst.WriteString(`"` + name + `/f` + string(rune('a'+k%26)) + string(rune('a'+k/26)) + `":"x",`)
		}
	}
	dst.WriteString(`"device.json":{}}`)
	src.WriteString(`{"_sigs/cab.json":` + sig([]string{"cab/**"}, nil))
	for k := 0; k < 50; k++ {
		src.WriteString(`,"cab/n` + string(rune('a'+k%26)) + string(rune('a'+k/26)) + `":"y"`)
	}
	src.WriteString("}")
	d := mustDoc(b, dst.String())
	s := mustDoc(b, src.String())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d.clone().Merge(s)
	}
}
