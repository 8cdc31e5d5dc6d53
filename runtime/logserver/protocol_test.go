package logserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseText(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		proto Protocol
		want  Entry
	}{
		{"rfc5424", `<14>1 2024-01-01T00:00:00Z host myapp 123 ID1 [x@1 a="b]"][y@2] hello 5424`, ProtoRFC5424,
			Entry{Level: Info, Platform: "host", Source: "myapp", Msg: "hello 5424"}},
		{"rfc5424 nil sd bom", "<8>1 - - - - - - \xef\xbb\xbfmsg", ProtoRFC5424,
			Entry{Level: Fatal, Source: "syslog", Msg: "msg"}},
		{"rfc5424 no msg", "<15>1 - h app - - -", ProtoRFC5424, Entry{Level: Debug, Platform: "h", Source: "app", Msg: ""}},
		{"rfc3164 glibc", "<11>Jan  2 03:04:05 myd[12]: hello 3164", ProtoRFC3164,
			Entry{Level: Error, Source: "myd", Msg: "hello 3164"}},
		{"rfc3164 hostname", "<12>Jan 12 03:04:05 host su: warn me", ProtoRFC3164,
			Entry{Level: Warn, Source: "su", Msg: "warn me"}},
		{"rfc3164 bare", "<13>just text", ProtoRFC3164, Entry{Level: Info, Source: "syslog", Msg: "just text"}},
		{"rfc sev 2", "<10>x: y", ProtoRFC3164, Entry{Level: Error, Source: "x", Msg: "y"}},
		{"json", `{"version":"0","level":"WARN","src":"js","message":"hello json"}`, ProtoJSON,
			Entry{Level: Warn, Source: "js", Msg: "hello json"}},
		{"json numeric level no version", `{"level":4,"src":"js","message":"m"}`, ProtoJSON,
			Entry{Level: Debug, Source: "js", Msg: "m"}},
		{"kv quoted", `level=DEBUG src=kv message="hello \"kv\" \\o/"`, ProtoKV,
			Entry{Level: Debug, Source: "kv", Msg: `hello "kv" \o/`}},
		{"kv unquoted message rest", `src=a level=1 message=two words `, ProtoKV,
			Entry{Level: Error, Source: "a", Msg: "two words"}},
		{"kv quoted src", `level=INFO src="my app" message=x extra=1`, ProtoKV,
			Entry{Level: Info, Source: "my app", Msg: "x extra=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, p, err := ParseText([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseText(%q) error %v", tt.in, err)
			}
			if p != tt.proto || got != tt.want {
				t.Errorf("ParseText(%q) = %v %+v, want %v %+v", tt.in, p, got, tt.proto, tt.want)
			}
		})
	}
}

func TestParseTextBad(t *testing.T) {
	for _, in := range []string{
		"", "garbage", "<>x", "<12345678>x",
		`{"version":"1","level":"INFO","src":"a","message":"b"}`,
		`{"level":"INFO","message":"b"}`,
		`{"level":"NOPE","src":"a","message":"b"}`,
		`{broken`,
		`level=INFO src=a`,
		`level=INFO src=a message="unterminated`,
		`level=9 src=a message=b`,
		`= src=a`,
		"\xff\xfe",
	} {
		if e, p, err := ParseText([]byte(in)); !errors.Is(err, ErrUnknownProtocol) {
			t.Errorf("ParseText(%q) = %v %+v, %v, want ErrUnknownProtocol", in, p, e, err)
		}
	}
}

func TestLevels(t *testing.T) {
	for sev, want := range []Level{Fatal, Fatal, Error, Error, Warn, Info, Info, Debug} {
		if got := syslogLevel(sev); got != want {
			t.Errorf("syslogLevel(%d) = %v, want %v", sev, got, want)
		}
	}
	for in, want := range map[string]Level{"0": Fatal, "5": All, "info": Info, "WARNING": Warn, "trace": All, " 3 ": Info} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"6", "-1", "loud", ""} {
		if _, err := ParseLevel(in); err == nil {
			t.Errorf("ParseLevel(%q) = nil error, want error", in)
		}
	}
	if got := Level(9).String(); got != "ALL" {
		t.Errorf("Level(9).String() = %q, want ALL", got)
	}
}

func TestLegacyAndCmd(t *testing.T) {
	e, err := ParseLegacy(LegacyPayload(Warn, "app", "src/x", "a\nb\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Entry{Level: Warn, Platform: "app", Source: "src/x", Msg: "a\nb", Raw: true}); e != want {
		t.Errorf("ParseLegacy = %+v, want %+v", e, want)
	}
	for _, bad := range []string{"", "3\x00a\x00b", "x\x00a\x00b\x00c", "7\x00a\x00b\x00c", "-1\x00a\x00b\x00c"} {
		if _, err := ParseLegacy([]byte(bad)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("ParseLegacy(%q) = %v, want ErrBadFrame", bad, err)
		}
	}
	c, err := ParseCmd(CmdPayload(CmdStartUpdate, "5"))
	if err != nil || c != (Command{Code: CmdStartUpdate, Data: "5"}) {
		t.Errorf("ParseCmd = %+v, %v, want {2 5}", c, err)
	}
	for _, bad := range []string{"", "{", `{"code":0}`, `{"code":5,"data":""}`, `{"code":"1"}`} {
		if _, err := ParseCmd([]byte(bad)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("ParseCmd(%q) = %v, want ErrBadFrame", bad, err)
		}
	}
}

func TestSplitter(t *testing.T) {
	var in []byte
	in = append(in, "<13>a: one\x00"...)
	in = AppendFrame(in, CodeLegacy, LegacyPayload(Info, "p", "s", "two"))
	in = append(in, "\n{\"level\":3,\"src\":\"j\",\"message\":\"three\"}\r\n"...)
	in = AppendFrame(in, CodeCmd, CmdPayload(CmdExit, ""))
	in = append(in, "level=INFO src=k message=partial"...)
	// feed byte by byte: framing must not depend on read sizes
	sp := newSplitter(64, 1024)
	var got []string
	for i := 0; i < len(in); i++ {
		sp.space()
		sp.buf = append(sp.buf, in[i])
		for {
			m, ok, err := sp.next(false)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, describe(m))
		}
	}
	m, ok, _ := sp.next(true)
	if ok {
		got = append(got, describe(m))
	}
	want := []string{"t:<13>a: one", "b0:3\x00p\x00s\x00two", `t:{"level":3,"src":"j","message":"three"}` + "\r", `b256:{"code":1,"data":""}`, "t:level=INFO src=k message=partial"}
	if len(got) != len(want) {
		t.Fatalf("messages = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func describe(m message) string {
	if m.binary {
		return fmt.Sprintf("b%d:%s", m.code, m.data)
	}
	return "t:" + string(m.data)
}

func TestSplitterLongAndBad(t *testing.T) {
	sp := newSplitter(8, 16)
	sp.buf = append(sp.buf, "0123456789abc\nok\n"...)
	m, ok, _ := sp.next(false)
	if !ok || string(m.data) != "01234567" || !m.truncated {
		t.Errorf("long line = %q %v %v, want 01234567 truncated", m.data, ok, m.truncated)
	}
	m, ok, _ = sp.next(false)
	if !ok || string(m.data) != "ok" {
		t.Errorf("after long line = %q %v, want ok", m.data, ok)
	}
	sp = newSplitter(8, 16)
	sp.buf = AppendFrame(sp.buf, CodeLegacy, make([]byte, 17))
	if _, _, err := sp.next(false); !errors.Is(err, ErrBadFrame) {
		t.Errorf("oversized frame: err = %v, want ErrBadFrame", err)
	}
	sp = newSplitter(8, 16)
	sp.buf = append(sp.buf, 0, 2, 0, 0, 1, 0, 0, 0, 'x')
	if _, _, err := sp.next(false); !errors.Is(err, ErrBadFrame) {
		t.Errorf("bad code: err = %v, want ErrBadFrame", err)
	}
}

func TestPlatformFromCgroup(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0::/\n", "pantavisor"},
		{"0::/..\n", "pantavisor"},
		{"0::/lxc/app\n", "app"},
		{"0::/lxc/app/init.scope\n", "app"},
		{"0::/lxc.payload.web\n", "web"},
		{"0::/lxc.payload/web\n", "web"},
		{"0::/_pv_\n", "pantavisor"},
		{"0::/user.slice/user-0.slice\n", "unknown-platform"},
		{"12:name=pantavisor:/\n0::/x\n", "pantavisor"},
		{"12:name=pantavisor:/lxc/db\n", "db"},
		{"3:cpu:/foo\n12:name=pantavisor:/db/sub\n", "db"},
		{"3:cpu:/foo\n", "unknown-platform"},
		{"", "unknown-platform"},
	}
	for _, tt := range tests {
		if got := PlatformFromCgroup([]byte(tt.in)); got != tt.want {
			t.Errorf("PlatformFromCgroup(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseDirMaxSize(t *testing.T) {
	const part = 1000 << 20
	tests := []struct {
		in   string
		want int64
	}{
		{"", 0}, {"0", 0}, {"16777216", 16777216}, {"512K", 512 << 10}, {"512kb", 512 << 10},
		{"256MB", 256 << 20}, {"1G", 1 << 30}, {"1GB", 1 << 30}, {"2T", 2 << 40}, {"2tb", 2 << 40},
		{"100B", 100}, {"20%", part / 5}, {"100%", part}, {"2.5%", part / 40},
	}
	for _, tt := range tests {
		if got, err := ParseDirMaxSize(tt.in, part); err != nil || got != tt.want {
			t.Errorf("ParseDirMaxSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"x", "-1", "12Q", "101%", "%", "99999999999T"} {
		if _, err := ParseDirMaxSize(bad, part); !errors.Is(err, ErrBadSize) {
			t.Errorf("ParseDirMaxSize(%q) err = %v, want ErrBadSize", bad, err)
		}
	}
	if got := AutoDirMaxSize(Partition{Size: 1000, Tmpfs: true}); got != 1000 {
		t.Errorf("AutoDirMaxSize(tmpfs 1000) = %d, want 1000", got)
	}
	if got := AutoDirMaxSize(Partition{Size: 1000}); got != 100 {
		t.Errorf("AutoDirMaxSize(block 1000) = %d, want 100", got)
	}
	n, err := ResolveDirMaxSize("0", t.TempDir())
	if err != nil || n <= 0 {
		t.Errorf("ResolveDirMaxSize(0) = %d, %v, want > 0", n, err)
	}
}

func TestBudget(t *testing.T) {
	b := NewBudget(512<<20, 0, 0)
	want := Budget{Max: 512 << 20, Gap: 128 << 20, RotSize: (128 << 20) / 5, High: (512 << 20) * 9 / 10, Low: 384 << 20}
	if b != want {
		t.Errorf("NewBudget(512M) = %+v, want %+v", b, want)
	}
}

func TestTimeFormats(t *testing.T) {
	ts := time.Date(2024, 3, 5, 14, 7, 9, 123456789, time.FixedZone("CET", 3600))
	tests := []struct{ f, want string }{
		{"", ""},
		{"golang:Layout", "03/05 02:07:09PM '24 +0100"},
		{"golang:RubyDate", "Tue Mar 05 14:07:09 +0100 2024"},
		{"golang:ANSIC", "Tue Mar  5 14:07:09 2024"},
		{"golang:RFC822Z", "05 Mar 24 14:07 +0100"},
		{"golang:RFC1123Z", "Tue, 05 Mar 2024 14:07:09 +0100"},
		{"strftime:%d, %T %Y", "05, 14:07:09 2024"},
		{"strftime:%F %H:%M:%S.%N %z %Z", "2024-03-05 14:07:09.123456789 +0100 CET"},
		{"strftime:%j|%e|%b|%a|%%|%y|%B|%A|%I%p|%D|%R|%u|%w|%C|%k|%l|%q", "065| 5|Mar|Tue|%|24|March|Tuesday|02PM|03/05/24|14:07|2|2|20|14| 2|%q"},
		{"strftime:%s", "1709644029"},
		{"strftime:trailing %", "trailing %"},
	}
	for _, tt := range tests {
		f, err := ParseTimeFormat(tt.f)
		if err != nil {
			t.Errorf("ParseTimeFormat(%q) error %v", tt.f, err)
			continue
		}
		if got := string(f.Append(nil, ts)); got != tt.want {
			t.Errorf("format %q = %q, want %q", tt.f, got, tt.want)
		}
	}
	for _, bad := range []string{"golang:Nope", "strftime:", "%Y"} {
		if _, err := ParseTimeFormat(bad); !errors.Is(err, ErrBadTimestampFormat) {
			t.Errorf("ParseTimeFormat(%q) err = %v, want ErrBadTimestampFormat", bad, err)
		}
	}
}

func TestJSONString(t *testing.T) {
	for _, in := range []string{"", "plain", "q\"b\\s", "ctl\x00\x01\x1f\n\r\t", "bad\xff\xfeutf8", "ünï€😀", "\xe2\x82"} {
		b := appendJSONString(nil, in)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("appendJSONString(%q) = %s: invalid JSON: %v", in, b, err)
			continue
		}
		want := string(bytes.ToValidUTF8([]byte(in), []byte("\ufffd")))
		if got != want {
			// ToValidUTF8 collapses runs; ours replaces byte-wise
			var ref string
			json.Unmarshal(mustMarshal(in), &ref)
			if got != ref {
				t.Errorf("appendJSONString(%q) decodes to %q, want %q", in, got, ref)
			}
		}
	}
}

func mustMarshal(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func TestFdRequest(t *testing.T) {
	r := FdRequest{Platform: "app", Source: "var/log/messages", Level: Debug, Subscribe: true}
	b := AppendFdRequest(nil, r)
	if len(b) != 108 {
		t.Fatalf("len(AppendFdRequest) = %d, want 108", len(b))
	}
	got, err := ParseFdRequest(b)
	if err != nil || got != r {
		t.Errorf("ParseFdRequest(AppendFdRequest(r)) = %+v, %v, want %+v", got, err, r)
	}
	bad := append([]byte(nil), b...)
	bad[104] = 7
	if _, err := ParseFdRequest(bad); !errors.Is(err, ErrBadFdRequest) {
		t.Errorf("action 7: err = %v, want ErrBadFdRequest", err)
	}
	if _, err := ParseFdRequest(b[:50]); !errors.Is(err, ErrBadFdRequest) {
		t.Errorf("short: err = %v, want ErrBadFdRequest", err)
	}
	if _, err := ParseFdRequest(AppendFdRequest(nil, FdRequest{Source: "x"})); !errors.Is(err, ErrBadFdRequest) {
		t.Errorf("no platform: err = %v, want ErrBadFdRequest", err)
	}
}

func TestLogPath(t *testing.T) {
	tests := []struct{ rev, plat, src, want string }{
		{"0", "app", "lxc/console.log", "/l/0/app/lxc/console.log"},
		{"locals/x", "app", "s", "/l/locals/x/app/s"},
		{"0", "../..", "../../etc/passwd", "/l/0/.._../_../_../etc/passwd"},
		{"..", "a/b", "/abs//x/./y", "/l/_../a_b/abs/x/y"},
		{"0", "", "", "/l/0/_/syslog"},
	}
	for _, tt := range tests {
		if got := logPath("/l", tt.rev, tt.plat, tt.src); got != tt.want {
			t.Errorf("logPath(%q, %q, %q) = %q, want %q", tt.rev, tt.plat, tt.src, got, tt.want)
		}
	}
}
