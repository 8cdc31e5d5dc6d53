package pvtest

import (
	"slices"
	"testing"
)

// TestEnv: the host's PV_* config keys do not reach a test script, the
// artifacts directory does.
func TestEnv(t *testing.T) {
	t.Setenv("PV_LOG_LEVEL", "5")
	t.Setenv("PV_TEST_ARTIFACTS", "/tmp/artifacts")
	env := (&Instance{Dir: "/i"}).Env()
	if slices.Contains(env, "PV_LOG_LEVEL=5") {
		t.Errorf("env has PV_LOG_LEVEL: a host config key would override the test's")
	}
	if !slices.Contains(env, "PV_TEST_ARTIFACTS=/tmp/artifacts") || !slices.Contains(env, "PVTEST_INSTANCE=/i") {
		t.Errorf("env = %v, want PV_TEST_ARTIFACTS and PVTEST_INSTANCE", env)
	}
}
