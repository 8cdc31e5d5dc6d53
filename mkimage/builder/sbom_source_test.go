package builder

import "testing"

func TestDebSource(t *testing.T) {
	for _, tc := range []struct{ field, name, want string }{
		{"glibc", "libc6", "glibc"},
		{"linux-signed-amd64 (6.1.176+1)", "linux-image-6.1.0-50-amd64", "linux-signed-amd64"},
		{"", "raspi-firmware", "raspi-firmware"}, // no Source field: the source has the package's name
		{"  ", "busybox-static", "busybox-static"},
	} {
		if got := debSource(tc.field, tc.name); got != tc.want {
			t.Errorf("debSource(%q, %q) = %q, want %q", tc.field, tc.name, got, tc.want)
		}
	}
}
