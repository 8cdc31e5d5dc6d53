package pvtx

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliEnv runs the pvtx CLI in-process against one PVTXDIR.
type cliEnv struct {
	t    *testing.T
	root string
	vars map[string]string
}

func newCLIEnv(t *testing.T) *cliEnv {
	root := t.TempDir()
	return &cliEnv{t: t, root: root, vars: map[string]string{"PVTXDIR": filepath.Join(root, "pvtx"), "HOME": root}}
}

func (e *cliEnv) path(p ...string) string { return filepath.Join(append([]string{e.root}, p...)...) }

// run returns stdout, the error text and the exit code.
func (e *cliEnv) run(stdin []byte, args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb bytes.Buffer
	c := &CLI{
		Stdin:  bytes.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return e.vars[k] },
		Euid:   1000,
		Now:    func() time.Time { return time.Unix(1721068626, 0) },
		Rand:   func(int) int { return 913 },
	}
	err := c.Run(context.Background(), args)
	if err == nil {
		return out.String(), "", 0
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		e.t.Fatalf("Run(%q) = %T %v, want *ExitError", args, err, err)
	}
	return out.String(), err.Error(), ee.Code
}

// ok runs a command that must succeed.
func (e *cliEnv) ok(stdin []byte, args ...string) string {
	e.t.Helper()
	out, msg, code := e.run(stdin, args...)
	if code != 0 {
		e.t.Fatalf("pvtx %s = %d %s, want 0", strings.Join(args, " "), code, msg)
	}
	return out
}

func (e *cliEnv) write(name string, data []byte) string {
	e.t.Helper()
	p := e.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func dirNames(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return strings.Join(n, " ")
}

func bspPackage(t *testing.T) (string, []byte) {
	kernel, initrd, fdt, addon := shaOf([]byte("kernel")), shaOf([]byte("initrd")), shaOf([]byte("fdt")), shaOf([]byte("addon"))
	js := `{` + spec + `,"bsp/run.json":{"linux":"kernel.img","initrd":"pantavisor","ftd":"board.dtb","addons":["addon.cpio"],"rpiab":"rpi.img.gz"},` +
		`"bsp/rpi.img.gz":"` + shaOf([]byte("rpi")) + `",` +
		`"bsp/addon.cpio":"` + addon + `","bsp/board.dtb":"` + fdt + `","bsp/kernel.img":"` + kernel + `","bsp/pantavisor":"` + initrd + `"}`
	return js, gz(makeTar(t, member{name: "json", body: []byte(js)}, obj("kernel"), obj("initrd"), obj("fdt"), obj("addon"), obj("rpi")))
}

func TestLocalTransaction(t *testing.T) {
	e := newCLIEnv(t)
	objdir := e.path("objects")
	e.ok(nil, "begin", "empty", objdir)
	if got := e.ok(nil, "show"); got != `{`+spec+"}\n" {
		t.Errorf("show after begin empty = %q", got)
	}
	_, bsp := bspPackage(t)
	e.ok(nil, "add", e.write("bsp.tgz", bsp))
	app := `{"app/run.json":{"name":"app"},"app/conf":"` + shaOf([]byte("conf")) + `"}`
	e.ok([]byte(app), "add", "-")
	e.ok(gz(makeTar(t, member{name: "json", body: []byte(`{}`)}, obj("conf"))), "add", "-")
	show := e.ok(nil, "show")
	for _, k := range []string{`"app/run.json":{"name":"app"}`, `"bsp/run.json":`, `"bsp/kernel.img":"` + shaOf([]byte("kernel"))} {
		if !strings.Contains(show, k) {
			t.Errorf("show = %s, missing %s", show, k)
		}
	}
	for _, c := range []string{"kernel", "initrd", "fdt", "addon", "conf"} {
		if got := readFile(t, filepath.Join(objdir, shaOf([]byte(c)))); got != c {
			t.Errorf("object %s = %q, want %q", c, got, c)
		}
	}
	if got := dirNames(t, objdir); strings.Contains(got, "tmp") {
		t.Errorf("object dir has leftovers: %s", got)
	}

	e.ok(nil, "remove", "app")
	if show := e.ok(nil, "show"); strings.Contains(show, "app/") {
		t.Errorf("show after remove app = %s", show)
	}
	e.ok([]byte(app), "add", "-")

	dep := e.path("deploy", "trail")
	e.ok(nil, "deploy", dep)
	if got, want := readFile(t, filepath.Join(dep, ".pvr", "json")), strings.TrimSuffix(show, "\n"); got != want {
		t.Errorf(".pvr/json = %s, want %s", got, want)
	}
	if got, want := readFile(t, filepath.Join(dep, ".pvr", "config")), `{"ObjectsDir": "`+objdir+`"}`; got != want {
		t.Errorf(".pvr/config = %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(dep, "app", "run.json")); got != `{"name":"app"}` {
		t.Errorf("app/run.json = %s", got)
	}
	if !sameFile(t, filepath.Join(dep, "app", "conf"), filepath.Join(objdir, shaOf([]byte("conf")))) {
		t.Errorf("app/conf is not a hard link of its object")
	}
	for link, file := range map[string]string{
		"pv-kernel.img": "kernel.img", "pv-initrd.img": "pantavisor", "pv-fdt.dtb": "board.dtb", "pv-initrd.img.0": "addon.cpio",
		"rpiboot.img.gz": "rpi.img.gz",
	} {
		if !sameFile(t, filepath.Join(dep, ".pv", link), filepath.Join(dep, "bsp", file)) {
			t.Errorf(".pv/%s is not a link of bsp/%s", link, file)
		}
	}
	if got := dirNames(t, e.path("deploy")); got != "trail" {
		t.Errorf("deploy parent = %s, want only trail", got)
	}
	// Deployed: the transaction is closed.
	if _, _, code := e.run(nil, "show"); code != ExitNoTx {
		t.Errorf("show after deploy = %d, want %d", code, ExitNoTx)
	}
}

func TestDeploySwap(t *testing.T) {
	e := newCLIEnv(t)
	dep := e.path("trail")
	e.write("trail/.pvr/config", []byte(`{"ObjectsDir":"/storage/objects"}`))
	e.write("trail/stale", []byte("old"))
	e.ok(nil, "begin", "empty", e.path("objects"))
	e.ok([]byte(`{"a.json":{"x":1}}`), "add", "-")
	e.ok(nil, "deploy", dep)
	if got := readFile(t, filepath.Join(dep, ".pvr", "config")); got != `{"ObjectsDir":"/storage/objects"}` {
		t.Errorf(".pvr/config = %s, want the old one", got)
	}
	if got := dirNames(t, dep); got != ".pvr a.json" {
		t.Errorf("deployed dir = %s, want .pvr a.json", got)
	}
	if got := dirNames(t, e.root); strings.Contains(got, ".bak") || strings.Contains(got, ".pvtx-") {
		t.Errorf("leftovers next to the deploy dir: %s", got)
	}
}

func TestDeployFailureKeepsDir(t *testing.T) {
	for _, tc := range []struct{ name, js string }{
		{"missing object", `{"a":"` + shaOf([]byte("nope")) + `"}`},
		{"bsp link to missing file", `{"bsp/run.json":{"linux":"nothere"}}`},
		{"bsp link escaping", `{"bsp/run.json":{"linux":"../../etc/passwd"}}`},
		{"key clash", `{"a":"1","a/b":"2"}`},
	} {
		e := newCLIEnv(t)
		dep := e.path("trail")
		e.write("trail/keep", []byte("keep"))
		e.ok(nil, "begin", "empty", e.path("objects"))
		e.ok([]byte(tc.js), "add", "-")
		if _, msg, code := e.run(nil, "deploy", dep); code != ExitFailure {
			t.Errorf("%s: deploy = %d %s, want %d", tc.name, code, msg, ExitFailure)
		}
		if got := dirNames(t, dep); got != "keep" {
			t.Errorf("%s: deploy dir after failure = %s, want keep", tc.name, got)
		}
		if got := dirNames(t, e.root); got != "objects pvtx trail" {
			t.Errorf("%s: leftovers: %s", tc.name, got)
		}
		// Still active: it can be fixed and retried.
		e.ok(nil, "show")
	}
	// Keys under the revision metadata dirs are refused when added, before
	// they could clash at deploy time.
	e := newCLIEnv(t)
	e.ok(nil, "begin", "empty", e.path("objects"))
	for _, js := range []string{`{".pvr/json":{}}`, `{".pv/done":""}`} {
		if _, msg, code := e.run([]byte(js), "add", "-"); code != ExitFailure || !strings.Contains(msg, "reserved") {
			t.Errorf("add %s = %d %s, want %d and a reserved-key error", js, code, msg, ExitFailure)
		}
	}
	if out := e.ok(nil, "show"); strings.TrimSpace(out) != `{"#spec":"pantavisor-service-system@1"}` {
		t.Errorf("show after refused adds = %s, want the empty state", out)
	}
	e = newCLIEnv(t)
	file := e.write("file", []byte("x"))
	e.ok(nil, "begin", "empty", e.path("objects"))
	if _, msg, code := e.run(nil, "deploy", file); code != ExitFailure || !strings.Contains(msg, "not a directory") {
		t.Errorf("deploy onto a file = %d %s", code, msg)
	}
}

func TestBadObjectWritesNothing(t *testing.T) {
	e := newCLIEnv(t)
	objdir := e.path("objects")
	e.ok(nil, "begin", "empty", objdir)
	e.ok(gz(makeTar(t, member{name: "json", body: []byte(`{"old":"` + shaOf([]byte("old")) + `"}`)}, obj("old"))), "add", "-")
	before := e.ok(nil, "show")
	bad := obj("evil")
	bad.body = []byte("EVIL")
	pkg := gz(makeTar(t, member{name: "json", body: []byte(`{"new":"` + shaOf([]byte("new")) + `"}`)}, obj("new"), bad))
	if _, msg, code := e.run(pkg, "add", "-"); code != ExitFailure || !strings.Contains(msg, "bad checksum") {
		t.Errorf("add with a bad object = %d %s, want %d and bad checksum", code, msg, ExitFailure)
	}
	if got := dirNames(t, objdir); got != shaOf([]byte("old")) {
		t.Errorf("object dir = %s, want only the old object", got)
	}
	if got := e.ok(nil, "show"); got != before {
		t.Errorf("show after failed add = %s, want %s", got, before)
	}
	// A corrupt existing object is replaced by a verified one.
	os.WriteFile(filepath.Join(objdir, shaOf([]byte("old"))), []byte("rot"), 0o644)
	e.ok(gz(makeTar(t, member{name: "json", body: []byte(`{}`)}, obj("old"))), "add", "-")
	if got := readFile(t, filepath.Join(objdir, shaOf([]byte("old")))); got != "old" {
		t.Errorf("repaired object = %q, want old", got)
	}
}

func TestRemoteTransaction(t *testing.T) {
	e := newCLIEnv(t)
	srv := newCtrlServer(t, `{"#spec":"pantavisor-service-system@1","bsp/run.json":{"linux":"k"},"nginx/run.json":{}}`)
	e.vars["PVCONTROL_SOCKET"] = srv.sock
	e.ok(nil, "begin", "current")
	js, pkg := testPackage(t)
	_ = js
	e.ok(nil, "add", e.write("pkg.tar", pkg))
	if b, ok := srv.object(shaOf([]byte("root"))); !ok || string(b) != "root" {
		t.Errorf("server object = %q, %v, want root", b, ok)
	}
	e.ok(nil, "remove", "nginx")
	show := e.ok(nil, "show")
	want := `{` + spec + `,"app/root.squashfs":"` + shaOf([]byte("root")) + `","app/run.json":{"name":"app"},"bsp/run.json":{"linux":"k"}}` + "\n"
	if show != want {
		t.Errorf("show = %s, want %s", show, want)
	}
	name := strings.TrimSpace(e.ok(nil, "commit"))
	sum := shaOf([]byte(strings.TrimSpace(show)))[:8]
	if wantName := "locals/pvtx-1721068626-" + sum + "-913"; name != wantName {
		t.Errorf("commit printed %s, want %s", name, wantName)
	}
	if got := srv.step(name); got+"\n" != show {
		t.Errorf("server step %s = %s, want %s", name, got, show)
	}
	if _, _, code := e.run(nil, "commit"); code != ExitNoTx {
		t.Errorf("second commit = %d, want %d", code, ExitNoTx)
	}

	// Named commit, and a bad object is refused by the server side too.
	e.ok(nil, "begin", "current")
	bad := obj("x")
	bad.body = []byte("y")
	if _, msg, code := e.run(makeTar(t, member{name: "json", body: []byte(`{}`)}, bad), "add", "-"); code != ExitFailure || !strings.Contains(msg, "bad checksum") {
		t.Errorf("remote add of a bad object = %d %s", code, msg)
	}
	if _, ok := srv.object(shaOf([]byte("x"))); ok {
		t.Errorf("server stored the bad object")
	}
	if out := e.ok(nil, "commit", "locals/mine"); out != "locals/mine\n" {
		t.Errorf("commit locals/mine printed %q", out)
	}
	for _, n := range []string{"mine", "locals/a/b", "locals/", "locals/" + strings.Repeat("x", 65)} {
		e.ok(nil, "abort")
		e.ok(nil, "begin", "current")
		if _, msg, code := e.run(nil, "commit", n); code != ExitFailure || !strings.Contains(msg, "bad revision name") {
			t.Errorf("commit %q = %d %s, want %d bad revision name", n, code, msg, ExitFailure)
		}
	}
	// Deploy needs a local transaction.
	if _, _, code := e.run(nil, "deploy", e.path("d")); code != ExitFailure {
		t.Errorf("deploy of a remote transaction = %d, want %d", code, ExitFailure)
	}
}

func TestBeginBases(t *testing.T) {
	srv := newCtrlServer(t, `{"#spec":"pantavisor-service-system@1","c":"1"}`)
	srv.steps["locals/old"] = []byte(`{"#spec":"pantavisor-service-system@1","o":"1"}`)
	e := newCLIEnv(t)
	e.vars["PVCONTROL_SOCKET"] = srv.sock
	file := e.write("base.json", []byte(`{"f":"1"}`))
	e.write("checkout/.pvr/json", []byte(`{"p":"1"}`))
	e.write("export/json", []byte(`{"x":"1"}`))
	for _, tc := range []struct{ base, want string }{
		{"empty", `{` + spec + `}`},
		{"current", `{` + spec + `,"c":"1"}`},
		{file, `{` + spec + `,"f":"1"}`},
		{e.path("checkout"), `{` + spec + `,"p":"1"}`},
		{e.path("export"), `{` + spec + `,"x":"1"}`},
		{"locals/old", `{` + spec + `,"o":"1"}`},
	} {
		e.ok(nil, "abort")
		e.ok(nil, "begin", tc.base)
		if got := strings.TrimSpace(e.ok(nil, "show")); got != tc.want {
			t.Errorf("begin %s: show = %s, want %s", tc.base, got, tc.want)
		}
	}
	e.write("bad.json", []byte(`{"#spec":"other@1"}`))
	for _, base := range []string{e.path("bad.json"), e.path("nothere.json"), "locals/missing", e.root} {
		e.ok(nil, "abort")
		if _, msg, code := e.run(nil, "begin", base); code != ExitFailure {
			t.Errorf("begin %s = %d %s, want %d", base, code, msg, ExitFailure)
		}
		if _, _, code := e.run(nil, "show"); code != ExitNoTx {
			t.Errorf("show after failed begin %s = %d, want %d", base, code, ExitNoTx)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup [][]string
		args  []string
		code  int
	}{
		{"no command", nil, nil, ExitFailure},
		{"unknown command", nil, []string{"frobnicate"}, ExitFailure},
		{"help", nil, []string{"help"}, ExitOK},
		{"add without transaction", nil, []string{"add", "x.json"}, ExitAddNoTx},
		{"add without file", [][]string{{"begin", "empty"}}, []string{"add"}, ExitFailure},
		{"add missing file", [][]string{{"begin", "empty"}}, []string{"add", "/nonexistent"}, ExitFailure},
		{"remove without transaction", nil, []string{"remove", "x"}, ExitRemoveNoTx},
		{"remove without argument", [][]string{{"begin", "empty"}}, []string{"remove"}, ExitRemoveNoArg},
		{"remove without anything", nil, []string{"remove"}, ExitRemoveNoArg},
		{"show without transaction", nil, []string{"show"}, ExitNoTx},
		{"commit without transaction", nil, []string{"commit"}, ExitNoTx},
		{"deploy without transaction", nil, []string{"deploy", "/tmp/x"}, ExitNoTx},
		{"commit local", [][]string{{"begin", "empty", "OBJ"}}, []string{"commit"}, ExitLocalOrActive},
		{"queue new while active", [][]string{{"begin", "empty"}}, []string{"queue", "new", "Q", "OBJ"}, ExitLocalOrActive},
		{"begin while active", [][]string{{"begin", "empty"}}, []string{"begin", "empty"}, ExitFailure},
		{"begin without base", nil, []string{"begin"}, ExitFailure},
		{"abort without status", nil, []string{"abort"}, ExitOK},
		{"abort active", [][]string{{"begin", "empty"}}, []string{"abort"}, ExitOK},
		{"queue without sub", nil, []string{"queue"}, ExitFailure},
		{"queue unknown sub", nil, []string{"queue", "zap"}, ExitFailure},
		{"queue remove without queue", nil, []string{"queue", "remove", "x"}, ExitFailure},
		{"queue process without queue", [][]string{{"begin", "empty"}}, []string{"queue", "process"}, ExitFailure},
		{"queue process two args", nil, []string{"queue", "process", "a", "b"}, ExitFailure},
		{"bad buffer size", nil, []string{"show"}, ExitFailure},
	} {
		e := newCLIEnv(t)
		if tc.name == "bad buffer size" {
			e.vars["PVTX_OBJECT_BUF_SIZE"] = "12"
		}
		fix := func(args []string) []string {
			out := append([]string(nil), args...)
			for i, a := range out {
				switch a {
				case "OBJ":
					out[i] = e.path("objects")
				case "Q":
					out[i] = e.path("queue")
				}
			}
			return out
		}
		for _, s := range tc.setup {
			e.ok(nil, fix(s)...)
		}
		_, msg, code := e.run(nil, fix(tc.args)...)
		if code != tc.code {
			t.Errorf("%s: pvtx %q = %d (%s), want %d", tc.name, tc.args, code, msg, tc.code)
		}
	}
}

func TestCommandMatching(t *testing.T) {
	for _, tc := range []struct {
		word string
		want string
	}{
		{"b", "begin"}, {"begin", "begin"}, {"a", "add"}, {"ab", "abort"}, {"r", "remove"},
		{"c", "commit"}, {"s", "show"}, {"d", "deploy"}, {"q", "queue"}, {"", ""}, {"beginx", ""}, {"x", ""},
	} {
		if got, _ := match(tc.word, commands); got != tc.want {
			t.Errorf("match(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	for _, tc := range []struct{ word, want string }{{"n", "new"}, {"r", "remove"}, {"u", "unpack"}, {"p", "process"}, {"x", ""}} {
		if got, _ := match(tc.word, queueCommands); got != tc.want {
			t.Errorf("match(%q, queue) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestQueue(t *testing.T) {
	e := newCLIEnv(t)
	q, objdir := e.path("queue"), e.path("objects")
	e.ok(nil, "queue", "new", q, objdir)
	e.ok(nil, "q", "r", "nginx")
	e.ok(nil, "queue", "remove", "_config/old")
	_, pkg := testPackage(t)
	e.ok(nil, "queue", "unpack", e.write("app.tgz", gz(pkg)))
	e.ok([]byte(`{"extra.json":{"v":1}}`), "queue", "unpack", "-")
	if got, want := dirNames(t, q), "000__nginx.remove 001__%2Fconfig%2Fold.remove 002__app.tgz 003__package"; got != strings.Replace(want, "%2Fconfig", "_config", 1) {
		t.Errorf("queue entries = %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(objdir, shaOf([]byte("root")))); got != "root" {
		t.Errorf("unpacked object = %q, want root", got)
	}
	// A bad package queues nothing.
	if _, _, code := e.run([]byte(`{"a":`), "queue", "unpack", "-"); code != ExitFailure {
		t.Errorf("queue unpack of bad json = %d, want %d", code, ExitFailure)
	}
	if got := dirNames(t, q); strings.Count(got, " ") != 3 {
		t.Errorf("queue after bad unpack = %s", got)
	}

	e.write("base.json", []byte(`{"nginx/run.json":{},"_config/old/x":"1","keep":"1"}`))
	e.ok(nil, "begin", e.path("base.json"))
	e.ok(nil, "queue", "process")
	want := `{` + spec + `,"app/root.squashfs":"` + shaOf([]byte("root")) + `","app/run.json":{"name":"app"},"extra.json":{"v":1},"keep":"1"}` + "\n"
	if got := e.ok(nil, "show"); got != want {
		t.Errorf("show after queue process = %s, want %s", got, want)
	}
	// The queue's transaction is local: deploy works, commit does not.
	if _, _, code := e.run(nil, "commit"); code != ExitLocalOrActive {
		t.Errorf("commit of a queue transaction = %d, want %d", code, ExitLocalOrActive)
	}
	e.ok(nil, "deploy", e.path("trail"))
	if !sameFile(t, filepath.Join(e.path("trail"), "app", "root.squashfs"), filepath.Join(objdir, shaOf([]byte("root")))) {
		t.Errorf("deployed object is not linked")
	}
}

func TestQueueProcessArgs(t *testing.T) {
	srv := newCtrlServer(t, `{"#spec":"pantavisor-service-system@1","nginx/run.json":{},"c":"1"}`)
	e := newCLIEnv(t)
	e.vars["PVCONTROL_SOCKET"] = srv.sock
	q, objdir := e.path("queue"), e.path("objects")
	os.MkdirAll(q, 0o755)
	os.WriteFile(filepath.Join(q, "000__nginx.remove"), nil, 0o644)
	// An unpacked package with its own objects/ dir.
	e.write("queue/001__pkg/json", []byte(`{"d":"`+shaOf([]byte("d"))+`"}`))
	e.write("queue/001__pkg/objects/"+shaOf([]byte("d")), []byte("d"))
	e.ok(nil, "queue", "process", "current", q, objdir)
	if got, want := e.ok(nil, "show"), `{`+spec+`,"c":"1","d":"`+shaOf([]byte("d"))+`"}`+"\n"; got != want {
		t.Errorf("show = %s, want %s", got, want)
	}
	if got := readFile(t, filepath.Join(objdir, shaOf([]byte("d")))); got != "d" {
		t.Errorf("object moved to objdir = %q, want d", got)
	}
	// Without base and without a transaction, "current" is the base.
	e.ok(nil, "abort")
	e.ok(nil, "queue", "new", q, objdir)
	e.ok(nil, "queue", "process")
	if got := e.ok(nil, "show"); !strings.Contains(got, `"c":"1"`) || strings.Contains(got, "nginx") {
		t.Errorf("show = %s", got)
	}
	// A corrupt object in a queue entry fails the whole process.
	e.ok(nil, "abort")
	e.write("queue/002__bad/json", []byte(`{"e":"`+shaOf([]byte("e"))+`"}`))
	e.write("queue/002__bad/objects/"+shaOf([]byte("e")), []byte("not e"))
	e.ok(nil, "queue", "new", q, objdir)
	if _, msg, code := e.run(nil, "queue", "process", "empty"); code != ExitFailure || !strings.Contains(msg, "bad checksum") {
		t.Errorf("queue process with a bad object = %d %s", code, msg)
	}
	if _, err := os.Stat(filepath.Join(objdir, shaOf([]byte("e")))); err == nil {
		t.Errorf("bad object was stored")
	}
}

func TestDefaultDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		vars map[string]string
		euid int
		want string
	}{
		{nil, 0, "/var/cache/pvtx"},
		{map[string]string{"PREFIX": "/opt/pv"}, 0, "/opt/pv/var/cache/pvtx"},
		{map[string]string{"HOME": "/home/u"}, 1000, "/home/u/.local/share/pvtx"},
	} {
		if got, err := DefaultDir(env(tc.vars), tc.euid); err != nil || got != tc.want {
			t.Errorf("DefaultDir(%v, %d) = %s, %v, want %s", tc.vars, tc.euid, got, err, tc.want)
		}
	}
	if _, err := DefaultDir(env(nil), 1000); err == nil {
		t.Errorf("DefaultDir without HOME = nil error")
	}
}

// TestConcurrentAdds runs adds in parallel: with the PVTXDIR lock every
// one of them lands.
func TestConcurrentAdds(t *testing.T) {
	e := newCLIEnv(t)
	e.ok(nil, "begin", "empty", e.path("objects"))
	const n = 8
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		go func() {
			_, msg, _ := e.run([]byte(`{"k`+string(rune('a'+i))+`":"v"}`), "add", "-")
			errs <- msg
		}()
	}
	for i := 0; i < n; i++ {
		if msg := <-errs; msg != "" {
			t.Errorf("concurrent add: %s", msg)
		}
	}
	d := mustDoc(t, e.ok(nil, "show"))
	if d.Len() != n {
		t.Errorf("after %d concurrent adds: keys %s", n, keys(d))
	}
}
