package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"github.com/pantavisor/pantavisor-go/runtime/volume"

	"github.com/pantavisor/pantavisor-go/internal/testenv"
)

// ctBinary runs the daemon binary on a factory revision with n busybox
// containers named <prefix>0..n-1 in group "app" and returns when the
// socket answers; started is when the process was started.
func ctBinary(tb testing.TB, prefix string, n int) (p *proc, dir string, started time.Time) {
	tb.Helper()
	return ctBinaryState(tb, func(vols string, put func(key string, data []byte), inline func(key, doc string)) {
		imgPath, err := rootfs.Build(rootfs.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		img, err := os.ReadFile(imgPath)
		if err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s%d", prefix, i)
			put(name+"/root.squashfs", img)
			put(name+"/lxc.container.conf", []byte(rootfs.LXCConf(rootfs.Conf{Name: name, VolumesDir: vols})))
			inline(name+"/run.json", fmt.Sprintf(`{"name":%q,"type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","group":"app","storage":{"lxc-overlay":{"persistence":"boot"}}}`, name))
		}
	})
}

// ctBinaryState runs the daemon binary on a factory revision whose
// platforms fill adds (objects with put, JSON documents with inline;
// vols is the volumes dir for rootfs.LXCConf), group "app" declared.
func ctBinaryState(tb testing.TB, fill func(vols string, put func(key string, data []byte), inline func(key, doc string))) (p *proc, dir string, started time.Time) {
	tb.Helper()
	if os.Geteuid() != 0 {
		testenv.Skipf(tb, "skipping: running containers needs root")
	}
	if err := rootfs.Available(); err != nil {
		testenv.Skipf(tb, "skipping: %v", err)
	}
	if err := lxc.Available(); err != nil {
		testenv.Skipf(tb, "skipping: %v", err)
	}
	dir = tb.TempDir()
	storage, run, vols := filepath.Join(dir, "storage"), filepath.Join(dir, "run"), filepath.Join(dir, "volumes")
	trail := filepath.Join(storage, "trails", "0")
	keys := []string{`"#spec":"pantavisor-service-system@1"`, `"groups.json":[{"name":"app","restart_policy":"container"}]`}
	put := func(key string, data []byte) {
		p := filepath.Join(trail, key)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		s := sha256.Sum256(data)
		keys = append(keys, fmt.Sprintf("%q:%q", key, hex.EncodeToString(s[:])))
	}
	fill(vols, put, func(key, doc string) { keys = append(keys, fmt.Sprintf("%q:%s", key, doc)) })
	os.MkdirAll(filepath.Join(trail, ".pvr"), 0o755)
	os.WriteFile(filepath.Join(trail, ".pvr", "json"), []byte("{"+strings.Join(keys, ",")+"}"), 0o644)
	cfg := filepath.Join(dir, "pantavisor.config")
	os.WriteFile(cfg, []byte("PV_SYSTEM_INIT_MODE=appengine\nPV_STORAGE_MNTPOINT="+storage+"\nPV_SYSTEM_RUNDIR="+run+
		"\nPV_CONTROL_REMOTE=0\nPV_DISK_VOLDIR="+vols+"\nPV_SYSTEM_CONFDIR="+filepath.Join(dir, "configs")+"\nPV_LOG_LEVEL=4\n"), 0o644)
	cmd := exec.Command(binary(tb), "--config", cfg, "--cmdline", "pv_rev=0 pv_try=")
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stderr = io.Discard
	started = time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p = &proc{cmd: cmd, sock: filepath.Join(run, "pv-ctrl"), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
	})
	return p, dir, started
}

// allStarted polls GET /containers until n containers are STARTED.
func allStarted(tb testing.TB, p *proc, n int) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if code, body := p.get(tb, "/containers"); code == 200 {
			var l []struct{ Status string }
			json.Unmarshal([]byte(body), &l)
			ok := len(l) == n
			for _, c := range l {
				ok = ok && c.Status == "STARTED"
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			_, body := p.get(tb, "/containers")
			tb.Fatalf("containers not all STARTED after 20s: %s", body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestBinaryContainers: the daemon binary runs containers and, on SIGTERM,
// stops them, unmounts everything and exits with status 3.
func TestBinaryContainers(t *testing.T) {
	p, dir, _ := ctBinary(t, "bin-c", 2)
	allStarted(t, p, 2)
	pvc := filepath.Join(dir, "pvcontrol")
	if out, err := exec.Command("go", "build", "-o", pvc, "../pvcontrol").CombinedOutput(); err != nil {
		t.Fatalf("build pvcontrol: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"containers", "ls"}, `"name":"bin-c1"`},
		{[]string{"groups", "ls"}, `"name":"app"`},
		{[]string{"containers", "stop", "bin-c1"}, ""},
		{[]string{"containers", "start", "bin-c1"}, ""},
		{[]string{"containers", "restart", "bin-c0"}, ""},
	} {
		out, err := exec.Command(pvc, append([]string{"-s", p.sock}, tt.args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tt.want) {
			t.Errorf("pvcontrol %q = %v %s, want %q", tt.args, err, out, tt.want)
		}
	}
	allStarted(t, p, 2)
	time.Sleep(200 * time.Millisecond) // let init install its halt trap
	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := p.exitCode(t); got != 3 {
		t.Errorf("exit status after SIGTERM = %d, want 3", got)
	}
	var leaks []string
	for i := 0; i < 250; i++ {
		if leaks, _ = volume.OwnLeaks(dir); len(leaks) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(leaks) != 0 {
		t.Errorf("after SIGTERM Leaks() = %q, want none", leaks)
	}
}

// BenchmarkStartContainers measures daemon start to every container
// STARTED, and reports the daemon's RSS once they run.
func BenchmarkStartContainers(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			var rss int
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				p, _, _ := ctBinary(b, fmt.Sprintf("bench%d-%d-", n, i), n)
				b.StartTimer()
				allStarted(b, p, n)
				b.StopTimer()
				rss, _ = vmRSS(p.cmd.Process.Pid)
				time.Sleep(200 * time.Millisecond)
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.exitCode(b)
			}
			b.ReportMetric(float64(rss)/1024, "rss-MB")
		})
	}
}
