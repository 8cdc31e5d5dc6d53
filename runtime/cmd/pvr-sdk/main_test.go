package main

import (
	"testing"

	"github.com/pantavisor/pantavisor-go/runtime/pvrsdk"
)

func TestAnnounced(t *testing.T) {
	for listen, want := range map[string]bool{
		"":          true, // every address
		"0.0.0.0":   true,
		"::":        true,
		"10.0.0.1":  true,
		"127.0.0.1": false, // the default: loopback only
		"::1":       false,
		"localhost": false,
	} {
		if got := announced(pvrsdk.Config{Listen: listen, Port: 12368}); got != want {
			t.Errorf("announced(%q) = %v, want %v", listen, got, want)
		}
	}
	if announced(pvrsdk.DefaultConfig()) {
		t.Error("the default configuration is announced")
	}
}
