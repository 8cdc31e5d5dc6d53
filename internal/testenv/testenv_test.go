package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipf runs TestHelperSkip in a child test process with and without
// CI=true: a skip there, a failure here.
func TestSkipf(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
		want     string
	}{
		{"", false, "--- SKIP: TestHelperSkip"},
		{"false", false, "--- SKIP: TestHelperSkip"},
		{"true", true, "--- FAIL: TestHelperSkip"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSkip$", "-test.v")
		cmd.Env = append(os.Environ(), "PV_TESTENV_CHILD=1", "CI="+tc.ci)
		out, err := cmd.CombinedOutput()
		if failed := err != nil; failed != tc.wantFail || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "no frobnicator here") {
			t.Errorf("CI=%q: child test err = %v, output:\n%s\nwant failed=%v and %q", tc.ci, err, out, tc.wantFail, tc.want)
		}
	}
}

func TestHelperSkip(t *testing.T) {
	if os.Getenv("PV_TESTENV_CHILD") != "1" {
		t.Skip("child of TestSkipf") // not an environment skip
	}
	Skipf(t, "no %s here", "frobnicator")
	t.Errorf("Skipf returned")
}
