package hub

import (
	"net/http"
	"testing"
)

// Devices post one entry or a batch; a batch with an entry lacking src or
// msg is refused whole; owners read their devices' entries only, paged.
func TestLogs(t *testing.T) {
	_, u := newHub(t, Options{AutoTokens: map[string]string{"tok": "user1"}})
	d, dev := register(t, u, map[string]string{"Pantahub-Devices-Auto-Token-V1": "tok"})
	if r := dev.do("POST", "/logs/", nil, map[string]any{"src": "pantavisor.log", "msg": "one", "lvl": "INFO", "tsec": 1}, nil); r.StatusCode != 200 {
		t.Fatalf("single entry: %d", r.StatusCode)
	}
	batch := []map[string]any{{"src": "a", "msg": "two", "plat": "app", "rev": "0"}, {"src": "a", "msg": "three"}}
	if r := dev.do("POST", "/logs/", nil, batch, nil); r.StatusCode != 200 {
		t.Fatalf("batch: %d", r.StatusCode)
	}
	bad := []map[string]any{{"src": "a", "msg": "lost"}, {"src": "a"}}
	if r := dev.do("POST", "/logs/", nil, bad, nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("batch with an entry without msg: %d, want 400", r.StatusCode)
	}
	if r := dev.do("POST", "/logs/", nil, []byte("{"), nil); r.StatusCode != http.StatusBadRequest {
		t.Errorf("bad JSON: %d, want 400", r.StatusCode)
	}
	user := login(t, u, "user1", "user1")
	if r := user.do("POST", "/logs/", nil, map[string]any{"src": "a", "msg": "user"}, nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("a user posts logs: %d, want 403", r.StatusCode)
	}
	var out struct {
		Count   int        `json:"count"`
		Entries []LogEntry `json:"entries"`
	}
	user.do("GET", "/logs/?start=1&page=5&dev="+d.ID, nil, nil, &out)
	if out.Count != 3 || len(out.Entries) != 2 || out.Entries[0].Msg != "two" || out.Entries[0].Plat != "app" ||
		out.Entries[0].Device != d.PRN || out.Entries[0].Owner != "prn:pantahub.com:auth:/user1" {
		t.Errorf("GET /logs/ = %+v", out)
	}
	other := login(t, u, "user2", "user2")
	out.Count = -1
	other.do("GET", "/logs/", nil, nil, &out)
	if out.Count != 0 {
		t.Errorf("user2 sees %d of user1's entries", out.Count)
	}
}

func FuzzParseLogs(f *testing.F) {
	f.Add([]byte(`{"src":"a","msg":"b"}`))
	f.Add([]byte(`[{"src":"a","msg":"b","tsec":1,"tnano":2}]`))
	f.Add([]byte(`[{"src":1}]`))
	f.Add([]byte(` [`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := parseLogs(b)
		if err != nil {
			return
		}
		for _, e := range in {
			if e.Src == "" || e.Msg == "" {
				t.Fatalf("accepted %+v", e)
			}
		}
	})
}
