package lxc

import (
	"os"
	"strings"
	"testing"
)

// TestLogSummary: the error of a failed start names LXC's first ERROR
// (the cause), not only the WARNs of its cleanup that end the log. The
// sample is a real log of a start that failed on a stale cgroup.
func TestLogSummary(t *testing.T) {
	sample, err := os.ReadFile("testdata/stale-cgroup.log")
	if err != nil {
		t.Fatal(err)
	}
	got := logSummary(sample)
	const cause = ": Numerical result out of range - Failed to create container cgroup; lxc log: "
	if !strings.HasPrefix(got, cause) {
		t.Errorf("logSummary(stale-cgroup.log) = %q, want prefix %q", got, cause)
	}
	if !strings.HasSuffix(got, "Failed to destroy 11(lxc.monitor/pv-app)") {
		t.Errorf("logSummary(stale-cgroup.log) = %q, want the last line at the end", got)
	}
	if n := strings.Count(got, " | "); n != logTailLines-1 {
		t.Errorf("logSummary(stale-cgroup.log) has %d separators, want %d lines", n, logTailLines)
	}

	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"\n\n", ""},
		{"lxc a 1 WARN x - y - only a warning\n", "; lxc log: lxc a 1 WARN x - y - only a warning"},
		{"lxc a 1 ERROR    start - s.c:f:1 - boom\n", ": boom; lxc log: lxc a 1 ERROR    start - s.c:f:1 - boom"},
		{"lxc a 1 ERROR odd", ": odd; lxc log: lxc a 1 ERROR odd"},
		{"lxc a 1 ERROR", "; lxc log: lxc a 1 ERROR"},
		{"lxc a 1\tERROR\tx - y - tabbed", ": tabbed; lxc log: lxc a 1\tERROR\tx - y - tabbed"},
	} {
		if got := logSummary([]byte(tt.in)); got != tt.want {
			t.Errorf("logSummary(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzLogSummary(f *testing.F) {
	if b, err := os.ReadFile("testdata/stale-cgroup.log"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("lxc a 1 ERROR"))
	f.Add([]byte("lxc a 1 ERROR  - - "))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := logSummary(data)
		if strings.TrimSpace(string(data)) != "" && !strings.Contains(s, "lxc log: ") {
			t.Errorf("logSummary(%q) = %q, want the log tail", data, s)
		}
	})
}
