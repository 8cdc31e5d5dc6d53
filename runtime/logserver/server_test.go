package logserver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// testLogger writes to t.Log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// newServer starts a server in a temp dir with a fixed clock (tsec 42).
func newServer(t testing.TB, mod func(*Options)) (*Server, string) {
	t.Helper()
	root := t.TempDir()
	o := Options{
		RunDir:   filepath.Join(root, "run"),
		LogDir:   filepath.Join(root, "logs"),
		Rev:      "0",
		Level:    int(All),
		MaxSize:  64 << 20,
		Now:      func() time.Time { return testNow },
		BootTime: testNow.Add(-42 * time.Second),
		Log:      testLogger(t),
		Platform: func(int32) string { return "app" },
	}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, root
}

func dial(t testing.TB, s *Server, name string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: filepath.Join(s.o.RunDir, name), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFile polls until path has content want (after Sync), or fails.
func waitFile(t *testing.T, s *Server, path, want string) {
	t.Helper()
	var got []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.Sync()
		got, _ = os.ReadFile(path)
		if string(got) == want {
			return
		}
	}
	t.Errorf("%s = %q, want %q", path, got, want)
}

func legacy(l Level, plat, src, data string) []byte {
	return AppendFrame(nil, CodeLegacy, LegacyPayload(l, plat, src, data))
}

func TestCtrlProtocolsFiletree(t *testing.T) {
	s, root := newServer(t, nil)
	c := dial(t, s, CtrlSocket)
	var in []byte
	in = append(in, `<14>1 2024-01-01T00:00:00Z host myapp 123 ID1 [x@1 a="b]"] hello 5424`+"\n"...)
	in = append(in, "<11>Jan  2 03:04:05 myd[12]: hello 3164\x00"...)
	in = append(in, `{"version":"0","level":"WARN","src":"js","message":"hello json"}`+"\n"...)
	in = append(in, `level=DEBUG src=kv message="hello \"kv\""`+"\n"...)
	in = append(in, legacy(Info, "app", "leg/deep", "raw1\nraw2")...)
	in = append(in, legacy(Info, "app", "leg/deep", " raw3\n")...)
	if _, err := c.Write(in); err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(root, "logs", "0", "app")
	waitFile(t, s, filepath.Join(logs, "myapp"), "hello 5424\n")
	waitFile(t, s, filepath.Join(logs, "myd"), "hello 3164\n")
	waitFile(t, s, filepath.Join(logs, "js"), "hello json\n")
	waitFile(t, s, filepath.Join(logs, "kv"), "hello \"kv\"\n")
	waitFile(t, s, filepath.Join(logs, "leg", "deep"), "raw1\nraw2 raw3\n")
	// an unterminated text message is flushed when nothing more comes
	c.Write([]byte(`{"level":"INFO","src":"late","message":"no newline"}`))
	waitFile(t, s, filepath.Join(logs, "late"), "no newline\n")
	if link, err := os.Readlink(filepath.Join(root, "logs", "current")); err != nil || link != "0" {
		t.Errorf("logs/current -> %q, %v, want 0", link, err)
	}
}

func TestRFCHostnameFallback(t *testing.T) {
	s, root := newServer(t, func(o *Options) { o.Platform = func(int32) string { return PlatformUnknown } })
	c := dial(t, s, CtrlSocket)
	c.Write([]byte("<14>1 - web app - - - from web\n<14>1 - - app - - - nobody\n"))
	waitFile(t, s, filepath.Join(root, "logs", "0", "web", "app"), "from web\n")
	waitFile(t, s, filepath.Join(root, "logs", "0", "unknown-platform", "app"), "nobody\n")
}

func TestPantavisorLines(t *testing.T) {
	var out syncBuffer
	s, root := newServer(t, func(o *Options) {
		o.Outputs = []string{OutFiletree, OutStdoutPantavisor}
		o.Stdout = &out
		o.Platform = func(int32) string { return "_pv_" }
	})
	c := dial(t, s, CtrlSocket)
	c.Write(legacy(Warn, "pantavisor", "ctrl", "two\nlines\n"))
	c.Write([]byte("level=ERROR src=kv message=via-cgroup\n"))
	pv := filepath.Join(root, "logs", "0", "pantavisor", "pantavisor.log")
	waitFile(t, s, pv, "[pantavisor] 42 WARN\t -- [ctrl]: two\n[pantavisor] 42 WARN\t -- [ctrl]: lines\n"+
		"[pantavisor] 42 ERROR\t -- [kv]: via-cgroup\n")
	log := slog.New(s.Handler())
	log.Info("started", "src", "init", "n", 3, "what", "a b")
	log.With("src", "grp").WithGroup("g").Debug("dbg", "k", "v")
	s.Write(Entry{Level: Fatal, Source: "w", Msg: "boom"})
	s.Write(Entry{Level: Info, Platform: "app", Source: "c", Msg: "container"})
	want := "[pantavisor] 42 WARN\t -- [ctrl]: two\n[pantavisor] 42 WARN\t -- [ctrl]: lines\n" +
		"[pantavisor] 42 ERROR\t -- [kv]: via-cgroup\n" +
		"[pantavisor] 42 INFO\t -- [init]: started n=3 what=\"a b\"\n" +
		"[pantavisor] 42 DEBUG\t -- [grp]: dbg g.k=v\n" +
		"[pantavisor] 42 FATAL\t -- [w]: boom\n"
	waitFile(t, s, pv, want)
	s.Sync()
	if got := out.String(); got != want {
		t.Errorf("stdout.pantavisor = %q, want %q", got, want)
	}
}

func TestLevelFilterAndTimestamps(t *testing.T) {
	s, root := newServer(t, func(o *Options) {
		o.Level = int(Info)
		o.Absolute = true
		o.TimestampFormats = map[string]string{OutFiletree: "strftime:%F %T"}
	})
	log := slog.New(s.Handler())
	if log.Enabled(context.Background(), slog.LevelDebug) {
		t.Errorf("Enabled(Debug) at level INFO = true, want false")
	}
	log.Debug("hidden")
	log.Info("shown")
	pv := filepath.Join(root, "logs", "0", "pantavisor", "pantavisor.log")
	want := "[pantavisor] [2026-01-02 03:04:05] " + strconv.FormatInt(testNow.Unix(), 10) + " INFO\t -- [pantavisor]: shown\n"
	waitFile(t, s, pv, want)
	if st := s.Stats(); st.Filtered != 0 {
		// slog filtered in Enabled; direct Writes are counted
		t.Errorf("Filtered = %d, want 0", st.Filtered)
	}
	s.Write(Entry{Level: Debug, Msg: "x"})
	if st := s.Stats(); st.Filtered != 1 {
		t.Errorf("Filtered = %d, want 1", st.Filtered)
	}
}

func TestSinglefile(t *testing.T) {
	s, root := newServer(t, func(o *Options) {
		o.Outputs = []string{OutSinglefile}
		o.TimestampFormat = "golang:RFC1123Z"
	})
	c := dial(t, s, CtrlSocket)
	c.Write(legacy(Error, "app", "s", "bad \xff utf8 \"q\"\n"))
	s.Write(Entry{Level: Info, Source: "pv", Msg: "hello"})
	path := filepath.Join(root, "logs", "0", "pv.log")
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 2 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.Sync()
		lines = readJSONLines(t, path)
	}
	if len(lines) != 2 {
		t.Fatalf("pv.log has %d lines, want 2", len(lines))
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i]["src"].(string) < lines[j]["src"].(string) })
	want0 := map[string]any{"tsec": 42.0, "tnano": 0.0, "ts": "Fri, 02 Jan 2026 03:04:05 +0000",
		"plat": "pantavisor", "lvl": "INFO", "src": "pv", "msg": "hello"}
	want1 := map[string]any{"tsec": 42.0, "tnano": 0.0, "ts": "Fri, 02 Jan 2026 03:04:05 +0000",
		"plat": "app", "lvl": "ERROR", "src": "s", "msg": "bad \ufffd utf8 \"q\"\n"}
	for i, want := range []map[string]any{want0, want1} {
		got, _ := json.Marshal(lines[i])
		w, _ := json.Marshal(want)
		if string(got) != string(w) {
			t.Errorf("line %d = %s, want %s", i, got, w)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "logs", "0", "app")); err == nil {
		t.Errorf("singlefile-only server created the filetree dir")
	}
}

func readJSONLines(t *testing.T, path string) []map[string]any {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: bad JSON line %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestFdPassing(t *testing.T) {
	s, root := newServer(t, nil)
	c := dial(t, s, FdSocket)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	req := FdRequest{Platform: "app", Source: "var/log/x.log", Level: Info, Subscribe: true}
	if err := SendFd(c, pr, req); err != nil {
		t.Fatal(err)
	}
	pr.Close() // the server has its own copy now
	pw.Write([]byte("line one\nline two\r\npart"))
	pw.Write([]byte("ial\n"))
	path := filepath.Join(root, "logs", "0", "app", "var", "log", "x.log")
	waitFile(t, s, path, "line one\nline two\npartial\n")

	req.Subscribe = false
	if err := SendFd(c, nil, req); err != nil {
		t.Fatal(err)
	}
	// once unsubscribed the server closes its read end: writes fail
	var werr error
	for deadline := time.Now().Add(5 * time.Second); werr == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, werr = pw.Write([]byte("after\n"))
	}
	if werr == nil {
		t.Errorf("write after unsubscribe kept succeeding, want EPIPE")
	}
	s.Sync()
	if got, _ := os.ReadFile(path); strings.Contains(string(got), "after") {
		// lines written before the close may still be read; only check
		// that the subscription is gone
		s.subsMu.Lock()
		n := len(s.subs)
		s.subsMu.Unlock()
		if n != 0 {
			t.Errorf("subscriptions after unsubscribe = %d, want 0", n)
		}
	}
	// bad request: no fd with subscribe, then garbage action; server keeps serving
	SendFd(c, nil, FdRequest{Platform: "app", Source: "nofd", Subscribe: true})
	bad := AppendFdRequest(nil, req)
	bad[104] = 9
	c.Write(bad)
	pr2, pw2, _ := os.Pipe()
	defer pw2.Close()
	SendFd(c, pr2, FdRequest{Platform: "app", Source: "second", Level: Info, Subscribe: true})
	pr2.Close()
	pw2.Write([]byte("ok\n"))
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "second"), "ok\n")
	if st := s.Stats(); st.Bad < 2 {
		t.Errorf("Stats.Bad = %d, want >= 2", st.Bad)
	}
}

func TestSubscribeInProcess(t *testing.T) {
	s, root := newServer(t, func(o *Options) { o.MaxLine = 16 })
	pr, pw, _ := os.Pipe()
	s.Subscribe(pr, "app", "lxc/console.log", Info)
	pw.Write([]byte("a\nthis line is longer than sixteen\nlast"))
	pw.Close()
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "lxc", "console.log"),
		"a\nthis line is lon\nger than sixteen\nlast\n")
	// a replacing subscription closes the old reader
	r1, w1, _ := os.Pipe()
	r2, w2, _ := os.Pipe()
	defer w1.Close()
	defer w2.Close()
	s.Subscribe(r1, "app", "dup", Info)
	s.Subscribe(r2, "app", "dup", Info)
	w2.Write([]byte("new\n"))
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "dup"), "new\n")
	if _, err := r1.Read(make([]byte, 1)); !errors.Is(err, os.ErrClosed) {
		t.Errorf("old reader Read err = %v, want ErrClosed", err)
	}
}

func TestUpdateCapture(t *testing.T) {
	s, root := newServer(t, func(o *Options) { o.Level = int(Fatal) })
	trail := filepath.Join(root, "trails", "5")
	os.MkdirAll(trail, 0o755)
	c := dial(t, s, CtrlSocket)
	if err := WriteCmd(c, CmdStartUpdate, "5"); err != nil {
		t.Fatal(err)
	}
	if err := WriteLegacy(c, Entry{Level: Error, Platform: "app", Source: "s", Msg: "container error"}); err != nil {
		t.Fatal(err)
	}
	c.Write(legacy(Info, "app", "s", "container info"))
	waitFile(t, s, filepath.Join(trail, ".pv", "logs.tmp"), `{"tsec":42,"tnano":0,"platform":"app","lvl":"ERROR","src":"s","msg":"container error"}`+"\n")
	s.Write(Entry{Level: Error, Source: "update", Msg: "pv error"})
	s.Write(Entry{Level: Warn, Source: "update", Msg: "pv warn"})
	s.Write(Entry{Level: Fatal, Source: "update", Msg: "pv fatal"})
	s.Sync()
	if _, err := os.Stat(filepath.Join(trail, ".pv", "logs.tmp")); err != nil {
		t.Errorf("logs.tmp during update: %v", err)
	}
	c.Write(AppendFrame(nil, CodeCmd, CmdPayload(CmdStopUpdate, "")))
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); len(lines) < 3 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.Sync()
		lines = readJSONLines(t, filepath.Join(trail, ".pv", "logs"))
	}
	var msgs []string
	for _, l := range lines {
		msgs = append(msgs, l["msg"].(string))
	}
	if got, want := strings.Join(msgs, "|"), "container error|pv error|pv fatal"; got != want {
		t.Errorf(".pv/logs messages = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(trail, ".pv", "logs.tmp")); err == nil {
		t.Errorf("logs.tmp still there after STOP_UPDATE")
	}
	// level FATAL: the ERROR lines were captured but not written to filetree
	if _, err := os.Stat(filepath.Join(root, "logs", "0", "app", "s")); err == nil {
		t.Errorf("ERROR line reached filetree at level FATAL")
	}
	// after the update errors are no longer captured
	s.Write(Entry{Level: Error, Msg: "later"})
	s.Sync()
	if got := readJSONLines(t, filepath.Join(trail, ".pv", "logs")); len(got) != 3 {
		t.Errorf(".pv/logs lines after stop = %d, want 3", len(got))
	}
}

func TestUpdateCaptureCap(t *testing.T) {
	s, root := newServer(t, func(o *Options) { o.UpdateMaxSize = 300 })
	os.MkdirAll(filepath.Join(root, "trails", "7"), 0o755)
	s.StartUpdate("7")
	for i := 0; i < 20; i++ {
		s.Write(Entry{Level: Error, Msg: "an error line number " + strconv.Itoa(i)})
	}
	s.StopUpdate()
	st, err := os.Stat(filepath.Join(root, "trails", "7", ".pv", "logs"))
	if err != nil || st.Size() > 300 || st.Size() == 0 {
		t.Errorf(".pv/logs size = %v, %v, want 1..300", st, err)
	}
	if s.Stats().Capped == 0 {
		t.Errorf("Stats.Capped = 0, want > 0")
	}
	// no trail dir: nothing is created
	s.StartUpdate("nope")
	s.Write(Entry{Level: Error, Msg: "x"})
	s.StopUpdate()
	if _, err := os.Stat(filepath.Join(root, "trails", "nope")); err == nil {
		t.Errorf("update capture created trails/nope")
	}
}

func TestCmdRefusedAndTransition(t *testing.T) {
	s, root := newServer(t, func(o *Options) { o.MainPID = 1 })
	c := dial(t, s, CtrlSocket)
	c.Write(AppendFrame(nil, CodeCmd, CmdPayload(CmdTransition, "9")))
	c.Write(legacy(Info, "app", "s", "x\n"))
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "s"), "x\n")
	if s.Revision() != "0" || s.Stats().Bad != 1 {
		t.Errorf("after refused command: Revision = %q, Bad = %d, want 0, 1", s.Revision(), s.Stats().Bad)
	}

	s2, root2 := newServer(t, nil)
	c2 := dial(t, s2, CtrlSocket)
	c2.Write(AppendFrame(nil, CodeCmd, CmdPayload(CmdTransition, "locals/abc")))
	c2.Write(legacy(Info, "app", "s", "y\n"))
	waitFile(t, s2, filepath.Join(root2, "logs", "locals", "abc", "app", "s"), "y\n")
	if link, _ := os.Readlink(filepath.Join(root2, "logs", "current")); link != "locals/abc" {
		t.Errorf("logs/current -> %q, want locals/abc", link)
	}
	c2.Write(AppendFrame(nil, CodeCmd, CmdPayload(CmdExit, "")))
	for deadline := time.Now().Add(5 * time.Second); !s2.closed.Load() && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	if !s2.closed.Load() {
		t.Errorf("EXIT command did not close the server")
	}
}

func TestBadInput(t *testing.T) {
	s, root := newServer(t, nil)
	send := func(b []byte) {
		c := dial(t, s, CtrlSocket)
		c.Write(b)
		c.Close()
	}
	send([]byte("total garbage\n\xff\xfe\x01\n"))
	send(AppendFrame(nil, CodeLegacy, []byte("no separators")))
	send(legacy(Info, "app", "s", "cut")[:10])       // truncated then disconnect
	send([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}) // huge length
	send([]byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}) // negative length
	send([]byte{0, 9, 0, 0, 1, 0, 0, 0, 'x'})        // unknown code
	send(append([]byte("{\"level\":\"INFO\",\"src\":\"u\",\"message\":\"\xc3\x28\"}\n"), bytes.Repeat([]byte("x"), 10000)...))
	send(AppendFrame(nil, CodeCmd, []byte("{not json")))
	// the server still works
	c := dial(t, s, CtrlSocket)
	c.Write(legacy(Info, "app", "alive", "yes\n"))
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "alive"), "yes\n")
	waitFile(t, s, filepath.Join(root, "logs", "0", "app", "u"), "\ufffd(\n")
	if st := s.Stats(); st.Bad < 5 {
		t.Errorf("Stats.Bad = %d, want >= 5", st.Bad)
	}
}

func TestSocketInUse(t *testing.T) {
	s, _ := newServer(t, nil)
	s2, err := New(Options{RunDir: s.o.RunDir, LogDir: t.TempDir(), MaxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Start(context.Background()); !errors.Is(err, ErrSocketInUse) {
		t.Errorf("second Start = %v, want ErrSocketInUse", err)
	}
	// a stale socket file is replaced
	s.Close()
	os.WriteFile(filepath.Join(s.o.RunDir, CtrlSocket), nil, 0o644)
	s3, _ := New(Options{RunDir: s.o.RunDir, LogDir: t.TempDir(), MaxSize: 1 << 20})
	defer s3.Close()
	if err := s3.Start(context.Background()); err != nil {
		t.Errorf("Start over stale socket = %v, want nil", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []Options{
		{},
		{LogDir: dir, Outputs: []string{"tape"}},
		{LogDir: dir, Level: 6},
		{LogDir: dir, TimestampFormat: "golang:Nope"},
	} {
		if s, err := New(o); err == nil {
			s.Close()
			t.Errorf("New(%+v) = nil error, want error", o)
		}
	}
	if got, err := ParseOutputs(" filetree, singlefile ,stdout_direct,,nullsink"); err != nil || len(got) != 4 {
		t.Errorf("ParseOutputs = %q, %v, want 4 outputs", got, err)
	}
	if _, err := ParseOutputs("filetree,bogus"); !errors.Is(err, ErrUnknownOutput) {
		t.Errorf("ParseOutputs(bogus) = %v, want ErrUnknownOutput", err)
	}
}

func TestStdoutDirectAndAfterClose(t *testing.T) {
	var out syncBuffer
	s, _ := newServer(t, func(o *Options) {
		o.Outputs = []string{OutStdoutDirect, OutNullsink}
		o.Stdout = &out
		o.Level = int(Warn)
	})
	s.Write(Entry{Level: Warn, Source: "d", Msg: "direct"})
	s.Write(Entry{Level: Info, Source: "d", Msg: "filtered"})
	s.Write(Entry{Level: Warn, Platform: "app", Source: "d", Msg: "container not direct"})
	if got, want := out.String(), "[pantavisor] 42 WARN\t -- [d]: direct\n"; got != want {
		t.Errorf("stdout_direct = %q, want %q", got, want)
	}
	s.Close()
	out.Reset()
	s.Write(Entry{Level: Fatal, Source: "d", Msg: "dying"})
	if got, want := out.String(), "[pantavisor] 42 FATAL\t -- [d]: dying\n"; got != want {
		t.Errorf("after Close = %q, want %q", got, want)
	}
}

// TestSlowOutputDrops: a blocked stdout loses lines, never blocks producers,
// and does not stop the filetree output.
func TestSlowOutputDrops(t *testing.T) {
	pr, pw := io.Pipe()
	s, root := newServer(t, func(o *Options) {
		o.Outputs = []string{OutFiletree, OutStdout}
		o.Stdout = pw
		o.QueueLen = 8
	})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 5000; i++ {
			s.Write(Entry{Level: Info, Platform: "app", Source: "flood", Msg: "line"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Write blocked behind a stuck output")
	}
	if s.Stats().Dropped == 0 {
		t.Errorf("Stats.Dropped = 0, want > 0")
	}
	go io.Copy(io.Discard, pr) // unblock so Sync/Close can finish
	s.Sync()
	data, _ := os.ReadFile(filepath.Join(root, "logs", "0", "app", "flood"))
	if n := bytes.Count(data, []byte("\n")); n == 0 {
		t.Errorf("filetree lines = 0 while stdout was stuck, want > 0")
	}
}

func TestRotation(t *testing.T) {
	// max 8000: gap 2000, rot 400, high 7200, low 6000
	s, root := newServer(t, func(o *Options) { o.MaxSize = 8000 })
	const n = 3000
	for i := 0; i < n; i++ {
		s.Write(Entry{Level: Info, Platform: "app", Source: "big", Msg: "line " + strconv.Itoa(i) + " " + strconv.FormatUint(uint64(i)*2654435761%1000000007, 36)})
		if i%50 == 0 {
			s.Write(Entry{Level: Info, Platform: "small", Source: "s", Msg: "small " + strconv.Itoa(i)})
			s.Write(Entry{Level: Info, Msg: "pv " + strconv.Itoa(i)})
		}
		if i%200 == 0 {
			s.Sync() // keep the queue from dropping in this test
		}
	}
	s.Sync()
	dir := filepath.Join(root, "logs", "0", "app")
	// current file + gz files must hold a contiguous tail of the lines
	ents, _ := os.ReadDir(dir)
	type gzf struct {
		n    int
		name string
	}
	var gzs []gzf
	for _, e := range ents {
		if k, ok := gzIndex(e.Name(), "big"); ok {
			gzs = append(gzs, gzf{k, e.Name()})
		} else if e.Name() != "big" {
			t.Errorf("unexpected file %s", e.Name())
		}
	}
	if len(gzs) == 0 {
		t.Fatalf("no big.N.gz after %d lines", n)
	}
	sort.Slice(gzs, func(i, j int) bool { return gzs[i].n < gzs[j].n })
	var all []byte
	for _, g := range gzs {
		f, _ := os.Open(filepath.Join(dir, g.name))
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		b, err := io.ReadAll(zr)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", g.name, err)
		}
		if int64(len(b)) < s.budget.RotSize {
			t.Errorf("%s holds %d bytes, want >= rot_size %d", g.name, len(b), s.budget.RotSize)
		}
		all = append(all, b...)
	}
	cur, _ := os.ReadFile(filepath.Join(dir, "big"))
	all = append(all, cur...)
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	first, _ := strconv.Atoi(strings.Fields(lines[0])[1])
	for i, l := range lines {
		if want := "line " + strconv.Itoa(first+i) + " "; !strings.HasPrefix(l, want) {
			t.Fatalf("line %d = %q, want %q (gz files %v)", i, l, want, gzs)
		}
	}
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "line "+strconv.Itoa(n-1)+" ") {
		t.Errorf("last line = %q, want line %d", last, n-1)
	}
	if first == 0 {
		t.Errorf("no old log was deleted: first kept line is 0, want cleanup to remove some")
	}
	if total := dirSize(t, filepath.Join(root, "logs")); total > s.budget.High {
		t.Errorf("log dir size = %d, want <= high watermark %d", total, s.budget.High)
	}
	if st := s.Stats(); st.Rotated == 0 || st.Deleted == 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want rotations, deletions and no drops", st)
	}
}

func dirSize(t *testing.T, dir string) int64 {
	var total int64
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	return total
}

func TestCleanupLargestDirFirst(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string, size int, age time.Duration) {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, size), 0o644)
		mt := time.Now().Add(-age)
		os.Chtimes(p, mt, mt)
	}
	mk("0/a/x.1.gz", 1000, 3*time.Hour)
	mk("0/a/x.2.gz", 1000, 2*time.Hour)
	mk("0/a/x.3.gz", 1000, time.Hour)
	mk("0/b/y.1.gz", 500, 4*time.Hour)
	m := newMaintainer(dir, NewBudget(4000, 4, 5), testLogger(t)) // high 3600, low 3000
	defer m.close()
	m.wait()
	if m.deleted.Load() != 0 {
		t.Fatalf("deleted %d files below the high watermark, want 0", m.deleted.Load())
	}
	mk("0/b/y", 600, 0)
	m.wait()
	var left []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			r, _ := filepath.Rel(dir, p)
			left = append(left, r)
		}
		return nil
	})
	sort.Strings(left)
	if got, want := strings.Join(left, " "), "0/a/x.3.gz 0/b/y 0/b/y.1.gz"; got != want {
		t.Errorf("after cleanup: %s, want %s", got, want)
	}
}

func TestLeftoverRotatingCompressed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "0", "app", "s")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p+".123"+rotatingSuffix, []byte("old\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p+".123"+rotatingSuffix, old, old)
	os.WriteFile(p+".1.gz.tmp", []byte("partial"), 0o644)
	os.Chtimes(p+".1.gz.tmp", old, old)
	m := newMaintainer(dir, NewBudget(1<<20, 4, 5), testLogger(t))
	defer m.close()
	m.wait()
	if _, err := os.Stat(p + ".1.gz"); err != nil {
		t.Errorf("leftover not compressed to s.1.gz: %v", err)
	}
	if _, err := os.Stat(p + ".123" + rotatingSuffix); err == nil {
		t.Errorf("leftover .rotating file still there")
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

func TestKmsg(t *testing.T) {
	tests := []struct {
		in   string
		pri  int
		msg  string
		keep bool
	}{
		{"6,1234,5678,-;usb 1-1: new device", 6, "usb 1-1: new device", true},
		{"3,1,2,c;oops", 3, "oops", true},
		{"12,1,2,-;user warn", 4, "user warn", true},
		{" SUBSYSTEM=usb", 0, "", false},
		{"no prefix", -1, "no prefix", true},
	}
	for _, tt := range tests {
		pri, msg, ok := parseKmsg([]byte(tt.in))
		if ok != tt.keep || (ok && (pri != tt.pri || string(msg) != tt.msg)) {
			t.Errorf("parseKmsg(%q) = %d %q %v, want %d %q %v", tt.in, pri, msg, ok, tt.pri, tt.msg, tt.keep)
		}
	}
	// console_loglevel 4: the kernel printed the error on the console
	// itself, so stdout leaves it out; files keep every record.
	var out syncBuffer
	s, root := newServer(t, func(o *Options) {
		o.Outputs = []string{OutFiletree, OutStdout}
		o.Stdout = &out
	})
	pr, pw, _ := os.Pipe()
	s.SubscribeKmsg(pr, 4)
	pw.Write([]byte("3,9,10,-;disk error\n4,10,20,-;disk warning\n SUBSYSTEM=block\nbare\n"))
	pw.Close()
	waitFile(t, s, filepath.Join(root, "logs", "0", "pantavisor", "pantavisor.log"),
		"[pantavisor] 42 ERROR\t -- [dmesg]: disk error\n[pantavisor] 42 WARN\t -- [dmesg]: disk warning\n"+
			"[pantavisor] 42 INFO\t -- [dmesg]: bare\n")
	s.Sync()
	if got, want := out.String(), "[pantavisor] 42 WARN\t -- [dmesg]: disk warning\n[pantavisor] 42 INFO\t -- [dmesg]: bare\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
}

func TestDevLogLink(t *testing.T) {
	devlog := filepath.Join(t.TempDir(), "log")
	os.Symlink("/nowhere", devlog)
	s, _ := newServer(t, func(o *Options) { o.DevLog = devlog })
	if got, _ := os.Readlink(devlog); got != filepath.Join(s.o.RunDir, CtrlSocket) {
		t.Errorf("/dev/log -> %q, want the pv-ctrl-log socket", got)
	}
	c, err := net.Dial("unix", devlog)
	if err != nil {
		t.Fatalf("dial /dev/log: %v", err)
	}
	c.Close()
	// a regular file is not replaced
	reg := filepath.Join(t.TempDir(), "log")
	os.WriteFile(reg, nil, 0o644)
	s2, err := New(Options{RunDir: filepath.Join(t.TempDir(), "run"), LogDir: t.TempDir(), MaxSize: 1 << 20, DevLog: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Start(context.Background()); !errors.Is(err, os.ErrExist) {
		t.Errorf("Start with a regular file at DevLog = %v, want ErrExist", err)
	}
}

func TestWriteErrors(t *testing.T) {
	s, root := newServer(t, nil)
	// make logs/0/app a file: opening logs/0/app/s fails
	os.MkdirAll(filepath.Join(root, "logs", "0"), 0o755)
	os.WriteFile(filepath.Join(root, "logs", "0", "app"), nil, 0o644)
	s.Write(Entry{Level: Info, Platform: "app", Source: "s", Msg: "lost"})
	s.Write(Entry{Level: Info, Platform: "other", Source: "s", Msg: "kept"})
	waitFile(t, s, filepath.Join(root, "logs", "0", "other", "s"), "kept\n")
	if st := s.Stats(); st.WriteErrs != 1 {
		t.Errorf("Stats.WriteErrs = %d, want 1", st.WriteErrs)
	}
}

func TestCloseWithLiveSubscriptions(t *testing.T) {
	s, _ := newServer(t, nil)
	c := dial(t, s, FdSocket)
	pr, pw, _ := os.Pipe()
	defer pw.Close()
	SendFd(c, pr, FdRequest{Platform: "app", Source: "live", Level: Info, Subscribe: true})
	pr.Close()
	r2, w2, _ := os.Pipe()
	defer w2.Close()
	s.Subscribe(r2, "app", "live2", Info)
	// a client stuck mid-frame
	mid := dial(t, s, CtrlSocket)
	mid.Write(legacy(Info, "app", "s", "never finished")[:12])
	pw.Write([]byte("x\n"))
	s.Sync()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on live subscriptions or clients")
	}
}

// TestRealSyslogClients sends through util-linux logger and busybox logger
// when installed (stream unix socket, RFC5424 and RFC3164).
func TestRealSyslogClients(t *testing.T) {
	s, root := newServer(t, nil)
	sock := filepath.Join(s.o.RunDir, CtrlSocket)
	ran := 0
	if p, err := exec.LookPath("logger"); err == nil {
		ran++
		for _, args := range [][]string{
			{"-u", sock, "-T", "--rfc5424", "-t", "ul5424", "-p", "user.err", "util-linux 5424"},
			{"-u", sock, "-T", "--rfc3164", "-t", "ul3164", "-p", "user.warning", "util-linux 3164"},
		} {
			if out, err := exec.Command(p, args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %q: %v: %s", args, err, out)
			}
		}
		waitFile(t, s, filepath.Join(root, "logs", "0", "app", "ul5424"), "util-linux 5424\n")
		waitFile(t, s, filepath.Join(root, "logs", "0", "app", "ul3164"), "util-linux 3164\n")
	}
	if ran == 0 {
		testenv.Skipf(t, "no logger client installed (Debian bsdutils or busybox-static)")
	}
}
