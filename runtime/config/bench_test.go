package config

import "testing"

func BenchmarkGet(b *testing.B) {
	c := New(nil)
	c.Set("PV_LOG_LEVEL", "4", Env)
	for b.Loop() {
		_ = c.Int(LogLevel)
	}
}

func BenchmarkEntries(b *testing.B) {
	c := New(nil)
	for b.Loop() {
		_ = c.Entries()
	}
}
