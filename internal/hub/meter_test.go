package hub

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A device's requests and wire bytes are counted under its id once its
// token is seen on the connection; the registration before it on a fresh
// connection is not.
func TestMeterAttributesConnections(t *testing.T) {
	m := NewMeter()
	s, err := New(Options{Meter: m})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.Listener = m.Listener(srv.Listener)
	srv.Config.ConnContext = m.ConnContext
	srv.Start()
	defer srv.Close()
	http.DefaultClient.CloseIdleConnections()
	d, dev := register(t, srv.URL, nil)
	for range 3 {
		if r := dev.do("GET", "/devices/"+d.ID, nil, nil, nil); r.StatusCode != 200 {
			t.Fatalf("get device: %d", r.StatusCode)
		}
	}
	snap := m.Snapshot()
	got := snap[d.ID]
	// one keep-alive connection: register, login, 3 GETs.
	if got.Conns != 1 || got.Requests != 5 || got.BytesIn < 500 || got.BytesOut < 500 {
		t.Errorf("device traffic %+v, want 1 connection, 5 requests, bytes both ways (all: %+v)", got, snap)
	}
	srv.CloseClientConnections()
	if after := m.Snapshot()[d.ID]; after != got {
		t.Errorf("after close %+v, want %+v", after, got)
	}
}
