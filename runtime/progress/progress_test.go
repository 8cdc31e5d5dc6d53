package progress

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestStatusTable(t *testing.T) {
	for _, tc := range []struct {
		s        Status
		progress int
		final    bool
		failed   bool
	}{
		{StatusNew, 0, false, false},
		{Queued, 5, false, false},
		{Downloading, 25, false, false},
		{Inprogress, 50, false, false},
		{Testing, 75, false, false},
		{Updated, 100, true, false},
		{Done, 100, true, false},
		{Wontgo, 100, true, true},
		{Error, 100, true, true},
	} {
		if got := tc.s.Progress(); got != tc.progress {
			t.Errorf("%s.Progress() = %d, want %d", tc.s, got, tc.progress)
		}
		if got := tc.s.Final(); got != tc.final {
			t.Errorf("%s.Final() = %v, want %v", tc.s, got, tc.final)
		}
		if got := tc.s.Failed(); got != tc.failed {
			t.Errorf("%s.Failed() = %v, want %v", tc.s, got, tc.failed)
		}
		if !tc.s.Valid() {
			t.Errorf("%s.Valid() = false, want true", tc.s)
		}
		if got := New(tc.s, "m").Progress; got != tc.progress {
			t.Errorf("New(%s).Progress = %d, want %d", tc.s, got, tc.progress)
		}
	}
	if Status("BOGUS").Valid() {
		t.Errorf("BOGUS.Valid() = true, want false")
	}
}

func TestMarshal(t *testing.T) {
	withRetries := New(Queued, Retried(2, 10))
	withRetries.Retries = 2
	dl := New(Downloading, DownloadRetry(1, 10))
	dl.Downloads = &Downloads{Total: Download{ObjectName: "total", ObjectID: "none", TotalSize: 10, TotalDownloaded: 5, StartTime: 1, CurrentTime: 2}}
	logs := New(Error, MsgGoalNotReached)
	logs.Logs = "{\"msg\":\"a <b> & c\"}\n"
	for _, tc := range []struct {
		name string
		p    Progress
		want string
	}{
		{"factory", New(Done, MsgFactory), `{"status":"DONE","status-msg":"Factory revision","progress":100,"retries":0}`},
		{"retries", withRetries, `{"status":"QUEUED","status-msg":"Retried 2 of 10","progress":5,"retries":2}`},
		{"downloads", dl, `{"status":"DOWNLOADING","status-msg":"Downloading update artifacts, retry 1 of 10","progress":25,"retries":0,"downloads":{"total":{"object_name":"total","object_id":"none","total_size":10,"total_downloaded":5,"start_time":1,"current_time":2}}}`},
		{"logs", logs, `{"status":"ERROR","status-msg":"Status goal not reached","progress":100,"retries":0,"logs":"{\"msg\":\"a <b> & c\"}\n"}`},
		{"space", New(Wontgo, Space(100, 7)), `{"status":"WONTGO","status-msg":"Space required 100 B, available 7 B","progress":100,"retries":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// json.Marshal re-escapes <, > and & after MarshalJSON; the
			// method itself writes them plainly as upstream does.
			b, err := tc.p.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON: %v", err)
			}
			if string(b) != tc.want {
				t.Errorf("Marshal = %s, want %s", b, tc.want)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(%s): %v", b, err)
			}
			b2, _ := got.MarshalJSON()
			if string(b2) != string(b) {
				t.Errorf("round trip = %s, want %s", b2, b)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Progress
	}{
		{`{"status":"DONE","status-msg":"x","progress":100,"retries":3}`, Progress{Status: Done, Msg: "x", Progress: 100, Retries: 3}},
		{`{"status":"TESTING"}`, Progress{Status: Testing, Progress: 75}},
		{`{"status":"DONE","status-msg":"ok","progress":100,"data":"0"}`, Progress{Status: Done, Msg: "ok", Progress: 100}},
		{`{"status":"ERROR","progress":100,"retries":0,"logs":[{"msg":"a"}]}`, Progress{Status: Error, Progress: 100, Logs: `[{"msg":"a"}]`}},
		{`{"status":"SYNCING","progress":null}`, Progress{Status: Syncing}},
	} {
		got, err := Parse([]byte(tc.in))
		if err != nil {
			t.Errorf("Parse(%s): %v", tc.in, err)
			continue
		}
		if got.Status != tc.want.Status || got.Msg != tc.want.Msg || got.Progress != tc.want.Progress || got.Retries != tc.want.Retries || got.Logs != tc.want.Logs {
			t.Errorf("Parse(%s) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseBad(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `"DONE"`, `{}`, `{"status":"WHAT"}`, `{"status":1}`,
		`{"status":"DONE","progress":"100"}`, `{"status":"DONE","progress":1.5}`,
		`{"status":"DONE","retries":-1}`, `{"status":"DONE","retries":99999999999}`,
		`{"status":"DONE","status-msg":3}`, `{"status":"DONE"`, `{"status":"DONE","downloads":[]}`,
	} {
		if _, err := Parse([]byte(in)); !errors.Is(err, ErrBadProgress) {
			t.Errorf("Parse(%q) error = %v, want ErrBadProgress", in, err)
		}
	}
}

func TestUnmarshalJSON(t *testing.T) {
	var v struct{ P Progress }
	if err := json.Unmarshal([]byte(`{"P":{"status":"NEW","status-msg":"Update ready to be run"}}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.P.Status != StatusNew || v.P.Msg != MsgReady {
		t.Errorf("Unmarshal = %+v, want NEW/%q", v.P, MsgReady)
	}
}

func TestMessages(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Retried(1, 10), "Retried 1 of 10"},
		{MetadataRetry(2, 10), "Downloading update metadata, retry 2 of 10"},
		{DownloadRetry(3, 10), "Downloading update artifacts, retry 3 of 10"},
		{Space(1024, 12), "Space required 1024 B, available 12 B"},
	} {
		if tc.got != tc.want {
			t.Errorf("message = %q, want %q", tc.got, tc.want)
		}
	}
}

func FuzzProgress(f *testing.F) {
	for _, s := range []string{
		`{"status":"DONE","status-msg":"Factory revision","progress":100,"retries":0}`,
		`{"status":"DOWNLOADING","status-msg":"","progress":25,"retries":1,"downloads":{"total":{"object_name":"total","object_id":"none","total_size":1,"total_downloaded":0,"start_time":0,"current_time":0}}}`,
		`{"status":"ERROR","logs":"x"}`, `{"status":"ERROR","logs":[1,2]}`, `{}`, `[`, `{"status":"NEW","progress":1e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", p, err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)) = %v (json %s)", p, err, b)
		}
		b2, _ := json.Marshal(q)
		if string(b) != string(b2) {
			t.Fatalf("round trip %s != %s", b, b2)
		}
	})
}
