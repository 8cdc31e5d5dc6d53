package main

import (
	"slices"
	"testing"
)

func TestEnvList(t *testing.T) {
	var e envList
	for _, v := range []string{"A=1", "B=2 C=3"} {
		if err := e.Set(v); err != nil {
			t.Fatalf("Set(%q) = %v", v, err)
		}
	}
	if want := []string{"A=1", "B=2", "C=3"}; !slices.Equal(e, want) {
		t.Errorf("-e A=1 -e 'B=2 C=3' = %q, want %q", e, want)
	}
	if err := e.Set("novalue"); err == nil {
		t.Error(`Set("novalue") = nil, want an error`)
	}
}

func TestLookupEnv(t *testing.T) {
	t.Setenv("PV_DEBUG_SSH_PUBKEY", "from-process")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "from-process"},
		{[]string{"PV_DEBUG_SSH_PUBKEY=one", "PV_DEBUG_SSH_PUBKEY=two"}, "two"},
		{[]string{"PV_DEBUG_SSH_PUBKEY_X=no"}, "from-process"},
	} {
		if got := lookupEnv(tc.env, "PV_DEBUG_SSH_PUBKEY"); got != tc.want {
			t.Errorf("lookupEnv(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
