package command

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		body    string
		want    Command
		wantErr bool
	}{
		{`{"op":"REBOOT_DEVICE","payload":""}`, Command{OpReboot, ""}, false},
		{`{"op":"REBOOT_DEVICE","payload":"bye"}`, Command{OpReboot, "bye"}, false},
		{`{"op":"LOCAL_RUN","payload":"locals/x"}`, Command{OpLocalRun, "locals/x"}, false},
		{`{"op":"LOCAL_RUN","payload":"4"}`, Command{OpLocalRun, "4"}, false},
		{`{"op":"MAKE_FACTORY","payload":""}`, Command{OpMakeFactory, ""}, false},
		{`{"op":"UPDATE_METADATA","payload":"{\"k\":\"v\"}"}`, Command{OpUpdateMetadata, `{"k":"v"}`}, false},
		{`{"op":"REBOOT_DEVICE"}`, Command{}, true},                           // payload mandatory
		{`{"op":"","payload":""}`, Command{}, true},                           // no prefix match
		{`{"op":"REBOOT","payload":""}`, Command{}, true},                     // no prefix match
		{`{"op":"reboot_device","payload":""}`, Command{}, true},              // exact names
		{`{"op":"LOCAL_RUN","payload":"../etc"}`, Command{}, true},            // bad revision
		{`{"op":"LOCAL_RUN","payload":"locals/a/b"}`, Command{}, true},        // two slashes
		{`{"op":"UPDATE_METADATA","payload":"{}"}`, Command{}, true},          // one key
		{`{"op":"UPDATE_METADATA","payload":"{\"a/b\":1}"}`, Command{}, true}, // bad key
		{`{"op":"RUN_GC","payload":""} {}`, Command{}, true},
		{`not json`, Command{}, true},
		{`{"op":1,"payload":""}`, Command{}, true},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.body))
		if (err != nil) != tt.wantErr {
			t.Errorf("Parse(%s) error = %v, want error %v", tt.body, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%s) error = %v, want ErrInvalid", tt.body, err)
		}
		if got != tt.want {
			t.Errorf("Parse(%s) = %+v, want %+v", tt.body, got, tt.want)
		}
	}
}

func TestReject(t *testing.T) {
	tests := []struct {
		op     Op
		st     State
		status int
		retry  int
	}{
		{OpUpdateMetadata, State{Local: true}, 409, 0},
		{OpReboot, State{Updating: true}, 503, 600},
		{OpUnclaim, State{Updating: true, Unclaimed: true}, 503, 600},
		{OpMakeFactory, State{Claimed: true}, 409, 0},
		{OpGoRemote, State{RemoteAllowed: false, Remote: true}, 409, 0},
		{OpDeferReboot, State{}, 409, 0},
		{OpGoRemote, State{RemoteAllowed: true, Remote: true}, 204, 0},
		{OpUnclaim, State{Unclaimed: true}, 204, 0},
		{OpReboot, State{}, 0, 0},
		{OpRunGC, State{Updating: true}, 0, 0},
	}
	for _, tt := range tests {
		status, _, retry := Command{Op: tt.op}.Reject(tt.st)
		if status != tt.status || retry != tt.retry {
			t.Errorf("Reject(%s, %+v) = %d retry %d, want %d retry %d", tt.op, tt.st, status, retry, tt.status, tt.retry)
		}
	}
}

// FuzzParse: any body parses or fails with ErrInvalid, and what
// parses has an exact op name and a valid payload.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"op":"REBOOT_DEVICE","payload":""}`, `{"op":"LOCAL_RUN","payload":"locals/a"}`,
		`{"op":"UPDATE_METADATA","payload":"{\"a\":1}"}`, `{"op":"","payload":""}`, `{}`, `[`, `{"op":"RUN_GC","payload":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalid", body, err)
			}
			return
		}
		found := false
		for _, o := range Ops {
			found = found || o == c.Op
		}
		if !found {
			t.Fatalf("Parse(%q) op = %q, not a known op", body, c.Op)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid payload: %v", body, err)
		}
	})
}
