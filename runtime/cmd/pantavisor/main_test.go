package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const emptyState = `{"#spec":"pantavisor-service-system@1"}`

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the pantavisor command once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pantavisor-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pantavisor")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd  *exec.Cmd
	sock string
	done chan error
}

// startBinary runs the built daemon in appengine mode (config file with
// PV_SYSTEM_INIT_MODE, storage and run dir from the config) and waits for
// its socket to answer.
func startBinary(t testing.TB) *proc {
	t.Helper()
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	run := filepath.Join(dir, "run")
	if err := os.MkdirAll(filepath.Join(storage, "trails", "0", ".pvr"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(emptyState), 0o644)
	cfg := filepath.Join(dir, "pantavisor.config")
	os.WriteFile(cfg, []byte("PV_SYSTEM_INIT_MODE=appengine\nPV_STORAGE_MNTPOINT="+storage+
		"\nPV_SYSTEM_RUNDIR="+run+"\nPV_CONTROL_REMOTE=0\n"), 0o644)
	cmd := exec.Command(binary(t), "--config", cfg, "--cmdline", "pv_rev=0 pv_try=")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, sock: filepath.Join(run, "pv-ctrl"), done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Ready once the revision is READY and the FSM waits.
		if code, body := p.get(t, "/device-meta"); code == 200 && strings.Contains(body, `"pantavisor.status":"READY"`) &&
			strings.Contains(body, `"pantavisor.state":"WAIT"`) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon socket not answering after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) client() *http.Client {
	// A client per request: no keep-alive, or polling loops leave the
	// daemon one idle connection per request until GC.
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", p.sock)
	}}}
}

func (p *proc) get(t testing.TB, path string) (int, string) {
	resp, err := p.client().Get("http://localhost" + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (p *proc) post(t testing.TB, path, body string) int {
	resp, err := p.client().Post("http://localhost"+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) exitCode(t testing.TB) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit")
	}
	return -1
}

func TestBinaryExitStatus(t *testing.T) {
	tests := []struct {
		name string
		stop func(t *testing.T, p *proc)
		want int
	}{
		{"reboot", func(t *testing.T, p *proc) {
			if c := p.post(t, "/commands", `{"op":"REBOOT_DEVICE","payload":""}`); c != 200 {
				t.Fatalf("REBOOT_DEVICE = %d", c)
			}
		}, 0},
		{"poweroff", func(t *testing.T, p *proc) {
			if c := p.post(t, "/commands", `{"op":"POWEROFF_DEVICE","payload":""}`); c != 200 {
				t.Fatalf("POWEROFF_DEVICE = %d", c)
			}
		}, 3},
		{"sigterm", func(t *testing.T, p *proc) { p.cmd.Process.Signal(syscall.SIGTERM) }, 3},
		{"sigint", func(t *testing.T, p *proc) { p.cmd.Process.Signal(syscall.SIGINT) }, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startBinary(t)
			if code, body := p.get(t, "/device-meta"); code != 200 || !strings.Contains(body, `"pantavisor.mode":"local"`) {
				t.Errorf("GET /device-meta = %d %s", code, body)
			}
			tt.stop(t, p)
			if got := p.exitCode(t); got != tt.want {
				t.Errorf("exit status after %s = %d, want %d", tt.name, got, tt.want)
			}
		})
	}
}

func TestBadArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--config", "/nonexistent/pantavisor.config", "--cmdline", "pv_appengine"},
		{"--cmdline", "pv_rev=../x pv_appengine"},
		{"--bogus"},
		{"stray"},
	} {
		err := run(context.Background(), args, nil, io.Discard, io.Discard)
		var code exitCode
		if err == nil || errors.As(err, &code) {
			t.Errorf("run(%q) = %v, want a failure", args, err)
		}
	}
}

// vmRSS reads VmRSS (kB) of pid.
func vmRSS(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb, nil
		}
	}
	return 0, errors.New("no VmRSS")
}

// BenchmarkStartRSS reports the built daemon's resident memory after a
// start on an empty revision (goal ≤ 20 MB).
func BenchmarkStartRSS(b *testing.B) {
	var total int
	for i := 0; i < b.N; i++ {
		p := startBinary(b)
		time.Sleep(200 * time.Millisecond)
		kb, err := vmRSS(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		total += kb
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.done
		p.done <- nil
	}
	b.ReportMetric(float64(total)/float64(b.N)/1024, "RSS-MB")
}

func (p *proc) put(t testing.TB, path, body string) {
	t.Helper()
	req, _ := http.NewRequest("PUT", "http://localhost"+path, strings.NewReader(body))
	resp, err := p.client().Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT %s %s = %d %s", path, body, resp.StatusCode, b)
	}
}
