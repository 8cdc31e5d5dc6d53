package pvrsdk

import (
	"net/url"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
		err  string
	}{
		{in: ``, want: Config{"127.0.0.1", 12368}},
		{in: `{}`, want: Config{"127.0.0.1", 12368}},
		{in: `{"httpd":{"listen":"0.0.0.0","port":"12368"}}`, want: Config{"0.0.0.0", 12368}},
		{in: `{"httpd":{"port":8080}}`, want: Config{"127.0.0.1", 8080}},
		{in: `{"httpd":{"listen":"::"}, "other":1}`, want: Config{"::", 12368}},
		{in: `{"httpd":{"listen":"example.org"}}`, err: "not an IP"},
		{in: `{"httpd":{"port":"0"}}`, err: "1-65535"},
		{in: `{"httpd":{"port":"x"}}`, err: "1-65535"},
		{in: `[`, err: "unexpected"},
	} {
		got, err := ParseConfig([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseConfig(%s) = %v, want error %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseConfig(%s) = %+v, %v, want %+v", tc.in, got, err, tc.want)
		}
	}
	if a := DefaultConfig().Addr(); a != "127.0.0.1:12368" {
		t.Errorf("default Addr = %s, want loopback 12368", a)
	}
}

func TestParseObjectRequest(t *testing.T) {
	s := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		in   string
		size int64
		err  bool
	}{
		{in: `{"objectname":"a","sha256sum":"` + s + `","size":"4096"}`, size: 4096},
		{in: `{"sha256sum":"` + s + `","size":12}`, size: 12},
		{in: `{"sha256sum":"` + strings.ToUpper(s) + `","size":"1"}`, err: true},
		{in: `{"sha256sum":"../x","size":"1"}`, err: true},
		{in: `{"sha256sum":"` + s + `","size":"-1"}`, err: true},
		{in: `{"sha256sum":"` + s + `"}`, err: true},
	} {
		_, _, size, err := ParseObjectRequest([]byte(tc.in))
		if (err != nil) != tc.err || size != tc.size {
			t.Errorf("ParseObjectRequest(%s) = %d, %v, want %d, error %v", tc.in, size, err, tc.size, tc.err)
		}
	}
}

func TestParsePost(t *testing.T) {
	p, err := ParsePost([]byte(`{"commit-msg":"m","rev":5,"state":{"#spec":"pantavisor-service-system@1"}}`))
	if err != nil || p.Rev != 5 || p.CommitMsg != "m" {
		t.Errorf("ParsePost = %+v, %v", p, err)
	}
	p, err = ParsePost([]byte(`{"commit-msg":"m","state":{"#spec":"pantavisor-service-system@1"}}`))
	if err != nil || p.Rev != -1 {
		t.Errorf("ParsePost without rev = %+v, %v, want rev -1", p, err)
	}
	for _, bad := range []string{`{"rev":5}`, `{"rev":"locals/x","state":{}}`, `{"state":[]}`, `x`} {
		if _, err := ParsePost([]byte(bad)); err == nil {
			t.Errorf("ParsePost(%s) = nil error", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"httpd":{"listen":"0.0.0.0","port":"12368"}}`))
	f.Add([]byte(`{"httpd":{"port":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err == nil && (c.Port < 1 || c.Port > 65535 || c.Listen == "") {
			t.Errorf("ParseConfig(%q) = %+v without error", data, c)
		}
	})
}

func FuzzParseObjectRequest(f *testing.F) {
	f.Add([]byte(`{"objectname":"a","sha256sum":"` + strings.Repeat("0", 64) + `","size":"4096"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, sha, size, err := ParseObjectRequest(data)
		if err == nil && (!isSha(sha) || size < 0) {
			t.Errorf("ParseObjectRequest(%q) = %q %d without error", data, sha, size)
		}
	})
}

func FuzzParsePost(f *testing.F) {
	f.Add([]byte(`{"commit-msg":"m","rev":5,"state":{"#spec":"pantavisor-service-system@1","a/b":"x"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePost(data)
		if err == nil && p.State == nil {
			t.Errorf("ParsePost(%q) without state", data)
		}
	})
}

func FuzzParseLogQuery(f *testing.F) {
	f.Add("rev=3&source=app&tail=true&follow=true&tailn=5")
	f.Add("rev=../../x")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := ParseLogQuery(v)
		if err != nil {
			return
		}
		if strings.Contains(q.Rev, "..") || strings.HasPrefix(q.Rev, "/") || strings.ContainsAny(q.Source, "/\\") || q.Source == ".." || q.Source == "." {
			t.Errorf("ParseLogQuery(%q) = %+v: escapes the log tree", raw, q)
		}
		if q.Follow && !q.Tail || q.TailN < 0 || q.TailN > maxTailN {
			t.Errorf("ParseLogQuery(%q) = %+v", raw, q)
		}
	})
}
