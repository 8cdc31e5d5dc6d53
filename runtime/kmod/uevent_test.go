package kmod

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

const e1000eAdd = "add@/devices/pci0000:00/0000:00:03.0\x00ACTION=add\x00DEVPATH=/devices/pci0000:00/0000:00:03.0\x00SUBSYSTEM=pci\x00" +
	"MODALIAS=pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00\x00SEQNUM=1234\x00"

func TestParseUevent(t *testing.T) {
	ev, err := ParseUevent([]byte(e1000eAdd))
	if err != nil || ev.Action != "add" || ev.DevPath != "/devices/pci0000:00/0000:00:03.0" || ev.Env["SUBSYSTEM"] != "pci" || ev.Env["SEQNUM"] != "1234" {
		t.Errorf("ParseUevent(e1000e add) = %+v, %v", ev, err)
	}
	for _, bad := range []string{"", "libudev\x00\xfe\xed", "add@", "@/devices/x"} {
		if _, err := ParseUevent([]byte(bad)); err == nil {
			t.Errorf("ParseUevent(%q) = nil error", bad)
		}
	}
}

// fakeUevents hands out msgs, then fails with io.EOF.
type fakeUevents struct {
	msgs []any // string or error
}

func (f *fakeUevents) Read() ([]byte, error) {
	if len(f.msgs) == 0 {
		return nil, io.EOF
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	if err, ok := m.(error); ok {
		return nil, err
	}
	return []byte(m.(string)), nil
}

func (f *fakeUevents) Close() error { return nil }

func TestHotplug(t *testing.T) {
	k := &fakeKernel{}
	l, _ := testLoader(t, k)
	src := &fakeUevents{msgs: []any{
		"remove@/devices/x\x00MODALIAS=virtio:d00000001v00001AF4\x00",
		"add@/devices/y\x00SUBSYSTEM=cpu\x00", // no modalias
		"garbage",
		e1000eAdd,
		e1000eAdd, // already loaded
		ErrOverflow,
		"add@/devices/virtio0\x00MODALIAS=virtio:d00000001v00001AF4\x00",
	}}
	if err := l.Hotplug(context.Background(), src); !errors.Is(err, io.EOF) {
		t.Errorf("Hotplug() = %v, want the source's io.EOF", err)
	}
	// The overflow's coldplug finds no devices in the empty sysfs;
	// virtio_net brings its soft dependencies (ipv6 before, e1000 after).
	want := []string{"pps_core", "ptp", "e1000e", "ipv6", "failover", "net_failover", "virtio_net", "e1000"}
	if !reflect.DeepEqual(k.calls, want) {
		t.Errorf("finit_module calls = %q, want %q", k.calls, want)
	}
}

func TestOpenUevents(t *testing.T) {
	src, err := OpenUevents()
	if err != nil {
		testenv.Skipf(t, "no uevent socket here: %v", err)
	}
	l, _ := testLoader(t, &fakeKernel{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Hotplug(ctx, src) }()
	time.Sleep(20 * time.Millisecond)
	cancel() // closing the socket unblocks the read
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Hotplug() = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Hotplug did not return after cancel")
	}
}

func FuzzParseUevent(f *testing.F) {
	f.Add([]byte(e1000eAdd))
	f.Add([]byte("add@/x\x00=v\x00K\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseUevent(b)
		if err == nil && (ev.Action == "" || ev.DevPath == "" || strings.Contains(ev.Action, "\x00")) {
			t.Fatalf("ParseUevent(%q) = %+v", b, ev)
		}
	})
}
