// Package testenv decides what a test does when the machine lacks what it
// needs (root, a tool, liblxc, a kernel feature): on a developer's machine
// it skips; in CI (CI=true) it fails, so a missing install step turns CI
// red instead of silently shrinking the test run.
//
//	if _, err := exec.LookPath("mksquashfs"); err != nil {
//		testenv.Skipf(t, "mksquashfs not installed (Debian squashfs-tools)")
//	}
//
// Skips that are not about the machine (testing.Short, an opt-in variable
// such as PV_TEST_IMAGE, a case the code under test rules out itself) stay
// plain t.Skip.
package testenv

import (
	"fmt"
	"os"
	"testing"
)

// InCI reports whether the tests run in CI, where every tool the tests
// need is installed (scripts/install-deps.sh) and they run as root.
func InCI() bool { return os.Getenv("CI") == "true" }

// Skipf skips tb because the machine cannot run it, or fails it in CI.
func Skipf(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if InCI() {
		tb.Fatalf("CI=true, so this is a failure, not a skip: %s (scripts/install-deps.sh installs the test dependencies; the tests run as root)", msg)
	}
	tb.Skip(msg)
}

// NeedRoot skips (fails in CI) unless the test runs as root; why says
// what needs it ("loop mounts").
func NeedRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		Skipf(tb, "needs root: %s", why)
	}
}
