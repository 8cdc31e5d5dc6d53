// Command stepsrss measures the pantavisor daemon's peak memory under
// concurrent state uploads (issue 11, defect 7): it builds the daemon,
// starts it in App Engine mode on a temp storage, sends N concurrent
// PUT /steps/locals/x of a state of the given size, and prints the
// answers and the daemon's VmHWM (peak RSS) from /proc/<pid>/status.
//
//	go run ./bench/stepsrss                      # 8 × 63 MiB
//	go run ./bench/stepsrss -chunked             # 8 × 63 MiB without Content-Length
//	go run ./bench/stepsrss -size 4194000        # 8 × just under the limit
//	go run ./bench/stepsrss -src /path/to/other/checkout
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
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
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "stepsrss:", err)
		os.Exit(1)
	}
}

func run() error {
	src := flag.String("src", ".", "checkout whose runtime/cmd/pantavisor is built")
	size := flag.Int("size", 63<<20, "state JSON bytes per upload")
	n := flag.Int("n", 8, "concurrent uploads")
	objects := flag.Bool("objects", false, "PUT /objects/<sha> of size random bytes instead (each upload its own object)")
	chunked := flag.Bool("chunked", false, "send no Content-Length (the daemon learns the size by reading)")
	flag.Parse()

	dir, err := os.MkdirTemp("", "stepsrss")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "pantavisor")
	build := exec.Command("go", "build", "-o", bin, "./runtime/cmd/pantavisor")
	build.Dir = *src
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	storage, run := filepath.Join(dir, "storage"), filepath.Join(dir, "run")
	empty := `{"#spec":"pantavisor-service-system@1"}`
	if err := os.MkdirAll(filepath.Join(storage, "trails", "0", ".pvr"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(storage, "trails", "0", ".pvr", "json"), []byte(empty), 0o644); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "pantavisor.config")
	if err := os.WriteFile(cfg, []byte("PV_SYSTEM_INIT_MODE=appengine\nPV_STORAGE_MNTPOINT="+storage+
		"\nPV_SYSTEM_RUNDIR="+run+"\nPV_CONTROL_REMOTE=0\nPV_LOG_LEVEL=0\n"), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "--config", cfg, "--cmdline", "pv_rev=0")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", filepath.Join(run, "pv-ctrl"))
	}}}
	if err := ready(hc); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	idle, err := hwm(pid)
	if err != nil {
		return err
	}
	body := state(*size)
	paths := make([]string, *n)
	bodies := make([][]byte, *n)
	for i := range paths {
		paths[i], bodies[i] = "/steps/locals/x", body
		if *objects {
			bodies[i] = make([]byte, *size)
			rand.Read(bodies[i])
			sum := sha256.Sum256(bodies[i])
			paths[i] = "/objects/" + hex.EncodeToString(sum[:])
		}
	}
	var wg sync.WaitGroup
	codes := make([]string, *n)
	start := time.Now()
	for i := range *n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("PUT", "http://localhost"+paths[i], bytes.NewReader(bodies[i]))
			if *chunked {
				req, _ = http.NewRequest("PUT", "http://localhost"+paths[i], io.MultiReader(bytes.NewReader(bodies[i])))
				req.ContentLength = -1
			}
			resp, err := hc.Do(req)
			if err != nil {
				codes[i] = err.Error()
				return
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
			resp.Body.Close()
			codes[i] = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		}()
	}
	wg.Wait()
	took := time.Since(start)
	peak, err := hwm(pid)
	if err != nil {
		return err
	}
	for i, c := range codes {
		fmt.Printf("upload %d: %s\n", i, c)
	}
	fmt.Printf("%d concurrent PUT %s of %d bytes (chunked %v) in %v\n", *n, strings.Split(paths[0], "/")[1], len(bodies[0]), *chunked, took.Round(time.Millisecond))
	fmt.Printf("daemon VmHWM: idle %d kB, after uploads %d kB (%.1f MiB)\n", idle, peak, float64(peak)/1024)
	return nil
}

// state returns a valid state JSON of about size bytes made of small
// entries (run.json and two object references per container), the shape
// that costs the parser most.
func state(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"#spec":"pantavisor-service-system@1"`)
	for i := 0; b.Len() < size-200; i++ {
		c := fmt.Sprintf("c%07d", i)
		fmt.Fprintf(&b, `,"%s/run.json":{"#spec":"service-manifest-run@1","type":"lxc","name":"%s","config":"lxc.container.conf","root-volume":"root.squashfs","storage":{}}`, c, c)
		fmt.Fprintf(&b, `,"%s/root.squashfs":"%064x","%s/lxc.container.conf":"%064x"`, c, i, c, i+1)
	}
	b.WriteString("}")
	return b.Bytes()
}

func ready(hc *http.Client) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get("http://localhost/device-meta"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), `"pantavisor.state":"WAIT"`) {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("daemon not ready after 20s")
}

// hwm reads VmHWM (kB) of pid.
func hwm(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), "kB"), &kb)
			return kb, nil
		}
	}
	return 0, errors.New("no VmHWM")
}
