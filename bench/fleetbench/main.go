// Command fleetbench is the fleet load test of issue 16 (bench/fleet.sh
// runs it): one cmd/pvhub and N real App Engine devices on loopback. Each
// device is a pv-appengine with its own prefix, storage and run dir
// (runtime/pvtest.Instance), the factory revision without containers
// (the remote client, the control socket and the metadata and log paths
// run; no LXC, so 50 fit on 2 cores), ph_creds pointing at pvhub over TLS
// and a factory auto-token. It measures, in order:
//
//   - the time until every device registered (its $RUN/device-id exists)
//     and until every one is claimed and idle (pantahub.state=idle in the
//     device-meta the Hub holds);
//   - an idle window (-idle): per device, the Hub's requests, connections
//     and wire bytes (TLS included), extrapolated per hour, the device's
//     CPU time (its process tree) and RSS; pvhub's CPU time and RSS;
//   - one update posted to -update devices at once (a new 4 KiB object
//     added to the factory state): the time to every DONE, per-device
//     medians, the Hub's traffic during it;
//   - errors: steps not DONE, ERROR lines in the devices' logs.
//
// Everything runs under -timeout; past it the run fails.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/pvtest"
)

type opts struct {
	n, update       int
	pkg, pvhub, lab string
	port, statsPort int
	idle, timeout   time.Duration
	interval        int
	dir             string
	keep            bool
}

func main() {
	var o opts
	flag.IntVar(&o.n, "n", 50, "devices")
	flag.IntVar(&o.update, "update", -1, "devices that get the update (-1: all)")
	flag.StringVar(&o.pkg, "pkg", "", "App Engine package dir (pvtest package)")
	flag.StringVar(&o.pvhub, "pvhub", "", "pvhub binary")
	flag.StringVar(&o.lab, "lab", "tests/hub/0/resources", "dir with certs/hub.pem and lab/hub.key")
	flag.IntVar(&o.port, "port", 12431, "pvhub TLS port on 127.0.0.1")
	flag.IntVar(&o.statsPort, "stats-port", 12432, "pvhub -stats-listen port")
	flag.IntVar(&o.interval, "interval", 0, "ph_updater.interval of the devices in seconds (0: the default)")
	flag.DurationVar(&o.idle, "idle", 2*time.Minute, "idle window measured")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "the whole run fails past this")
	flag.StringVar(&o.dir, "dir", "", "work dir (default a temporary one)")
	flag.BoolVar(&o.keep, "keep", false, "keep the work dir")
	flag.Parse()
	if o.update < 0 || o.update > o.n {
		o.update = o.n
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	err := run(ctx, o)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleetbench: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("fleetbench: PASS")
}

type dev struct {
	in *pvtest.Instance
	id string
}

func run(ctx context.Context, o opts) (err error) {
	if o.pkg == "" || o.pvhub == "" {
		return errors.New("-pkg and -pvhub are required")
	}
	if err := pvtest.Isolate(); err != nil {
		return fmt.Errorf("%w (run under unshare -m, as bench/fleet.sh does)", err)
	}
	lab, _ := filepath.Abs(o.lab)
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fleetbench-"); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		for _, n := range pvtest.Cleanup(dir, o.keep) {
			fmt.Fprintln(os.Stderr, "cleanup:", n)
		}
	}()
	hubURL := fmt.Sprintf("https://127.0.0.1:%d", o.port)
	statsURL := fmt.Sprintf("http://127.0.0.1:%d/stats", o.statsPort)
	hubLog, err := os.Create(filepath.Join(dir, "pvhub.log"))
	if err != nil {
		return err
	}
	defer hubLog.Close()
	hub := exec.Command(o.pvhub, "-listen", fmt.Sprintf("127.0.0.1:%d", o.port), "-tls-cert", lab+"/certs/hub.pem",
		"-tls-key", lab+"/lab/hub.key", "-autotok", "user1:fleettok", "-stats-listen", fmt.Sprintf("127.0.0.1:%d", o.statsPort))
	hub.Stdout, hub.Stderr = hubLog, hubLog
	if err := hub.Start(); err != nil {
		return err
	}
	defer func() { hub.Process.Signal(syscall.SIGTERM); hub.Wait() }()
	pem, err := os.ReadFile(lab + "/certs/hub.pem")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if err := waitFor(ctx, 20*time.Second, func() bool { _, err := hc.Get(statsURL); return err == nil }); err != nil {
		return fmt.Errorf("pvhub did not start: %w", err)
	}

	conf := []byte("PV_LIBTHHTTP_CERTSDIR=" + lab + "/certs\nPV_CONTROL_REMOTE=1\n")
	cmdline := fmt.Sprintf("ph_creds.host=127.0.0.1 ph_creds.port=%d ph_factory.autotok=fleettok", o.port)
	if o.interval > 0 {
		cmdline += fmt.Sprintf(" ph_updater.interval=%d", o.interval)
	}
	devs := make([]*dev, o.n)
	for i := range devs {
		in, err := pvtest.NewInstance(filepath.Join(dir, fmt.Sprintf("dev%02d", i)), o.pkg, conf, cmdline)
		if err != nil {
			return err
		}
		devs[i] = &dev{in: in}
	}
	interval := "default"
	if o.interval > 0 {
		interval = fmt.Sprint(o.interval, " s")
	}
	fmt.Printf("== fleetbench: %d App Engine devices (factory revision, no containers; ph_updater.interval %s), pvhub on %s, %d cores, load %s\n",
		o.n, interval, hubURL, runtime.NumCPU(), loadavg())
	start := time.Now()
	for _, d := range devs {
		if err := d.in.Start(); err != nil {
			return err
		}
	}
	defer func() {
		var wg sync.WaitGroup
		for _, d := range devs {
			wg.Go(func() { d.in.Stop(20 * time.Second) })
		}
		wg.Wait()
		if err != nil {
			for _, d := range devs[:min(3, len(devs))] {
				fmt.Fprintf(os.Stderr, "--- %s log tail:\n%s\n", d.in.Dir, d.in.LogTail(3000))
			}
		}
	}()

	// Registration: $RUN/device-id appears.
	regAt := make([]time.Duration, o.n)
	if err := waitFor(ctx, o.timeout, func() bool {
		all := true
		for i, d := range devs {
			if d.id != "" {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(d.in.RunDir, "device-id")); err == nil && len(bytes.TrimSpace(b)) > 0 {
				d.id, regAt[i] = string(bytes.TrimSpace(b)), time.Since(start)
			} else {
				all = false
			}
			if !d.in.Running() {
				return true
			}
		}
		return all
	}); err != nil {
		return fmt.Errorf("registration: %w", err)
	}
	for _, d := range devs {
		if !d.in.Running() {
			return fmt.Errorf("%s: pv-appengine exited", d.in.Dir)
		}
	}
	allReg := time.Since(start)
	u := &user{hc: hc, url: hubURL}
	if err := u.login(); err != nil {
		return err
	}
	// Claimed (auto-token) and idle: the device pushed pantahub.state=idle.
	idleAt := make([]time.Duration, o.n)
	if err := waitFor(ctx, o.timeout, func() bool {
		all := true
		for i, d := range devs {
			if idleAt[i] != 0 {
				continue
			}
			var m map[string]any
			if u.get("/devices/"+d.id+"/device-meta", &m) == nil && m["pantahub.state"] == "idle" {
				idleAt[i] = time.Since(start)
			} else {
				all = false
			}
		}
		return all
	}); err != nil {
		return fmt.Errorf("claim/idle: %w", err)
	}
	allIdle := time.Since(start)
	fmt.Printf("registered: all %d in %.1f s (median %.1f s); claimed+idle: all in %.1f s (median %.1f s)\n",
		o.n, allReg.Seconds(), medianDur(regAt), allIdle.Seconds(), medianDur(idleAt))

	// Idle window.
	settle := 10 * time.Second
	fmt.Printf("idle: settling %s, then measuring %s\n", settle, o.idle)
	if err := sleep(ctx, settle); err != nil {
		return err
	}
	s0, err := stats(hc, statsURL)
	if err != nil {
		return err
	}
	cpu0 := devCPU(devs)
	hubCPU0 := procCPU(hub.Process.Pid)
	t0 := time.Now()
	if err := sleep(ctx, o.idle); err != nil {
		return err
	}
	s1, err := stats(hc, statsURL)
	if err != nil {
		return err
	}
	win := time.Since(t0)
	cpu1 := devCPU(devs)
	hubCPU1 := procCPU(hub.Process.Pid)
	perHour := float64(time.Hour) / float64(win)
	var reqs, conns, bytesIn, bytesOut, cpu, rss []float64
	for i, d := range devs {
		a, b := s0.Devices[d.id], s1.Devices[d.id]
		reqs = append(reqs, float64(b.Requests-a.Requests)*perHour)
		conns = append(conns, float64(b.Conns-a.Conns)*perHour)
		bytesIn = append(bytesIn, float64(b.BytesIn-a.BytesIn)*perHour)
		bytesOut = append(bytesOut, float64(b.BytesOut-a.BytesOut)*perHour)
		cpu = append(cpu, (cpu1[i]-cpu0[i]).Seconds()*perHour)
		rss = append(rss, float64(treeRSS(d.in))/(1<<20))
	}
	fmt.Printf("idle, per device per hour (measured %.0f s, extrapolated; median [min–max]):\n", win.Seconds())
	fmt.Printf("  requests         %s\n", spread(reqs, "%.0f"))
	fmt.Printf("  new connections  %s\n", spread(conns, "%.0f"))
	fmt.Printf("  bytes up         %s  (device → Hub, TLS records)\n", spread(bytesIn, "%.0f"))
	fmt.Printf("  bytes down       %s\n", spread(bytesOut, "%.0f"))
	fmt.Printf("  CPU s            %s  (pv-appengine + pantavisor tree, 10 ms ticks)\n", spread(cpu, "%.2f"))
	fmt.Printf("  RSS MiB          %s  (now)\n", spread(rss, "%.1f"))
	fmt.Printf("pvhub idle: %.0f requests/s, CPU %.2f%% of a core, RSS %.1f MiB\n",
		float64(s1.Stats.Requests-s0.Stats.Requests)/win.Seconds(), 100*(hubCPU1-hubCPU0).Seconds()/win.Seconds(),
		float64(procRSS(hub.Process.Pid))/(1<<20))

	// One update to o.update devices at once.
	content := bytes.Repeat([]byte("fleet update\n"), 4096/13)
	sum := sha256.Sum256(content)
	sha := hex.EncodeToString(sum[:])
	var put struct {
		URL string `json:"signed-puturl"`
	}
	if err := u.post("/objects/", map[string]string{"objectname": "fleet.txt", "sha256sum": sha,
		"size": strconv.Itoa(len(content))}, &put); err != nil {
		return fmt.Errorf("post object: %w", err)
	}
	req, _ := http.NewRequest("PUT", put.URL, bytes.NewReader(content))
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("upload: %s", resp.Status)
	}
	states := make([]map[string]any, o.update)
	for i, d := range devs[:o.update] {
		if err := u.get("/trails/"+d.id+"/steps/0/state", &states[i]); err != nil {
			return fmt.Errorf("state of %s: %w", d.id, err)
		}
		states[i]["_config/fleet/fleet.txt"] = sha
	}
	s2, _ := stats(hc, statsURL)
	hubCPU2 := procCPU(hub.Process.Pid)
	ustart := time.Now()
	for i, d := range devs[:o.update] {
		if err := u.post("/trails/"+d.id+"/steps", map[string]any{"rev": 1, "commit-msg": "fleet update",
			"state": states[i]}, nil); err != nil {
			return fmt.Errorf("post step to %s: %w", d.id, err)
		}
	}
	doneAt := make([]time.Duration, o.update)
	status := make([]string, o.update)
	werr := waitFor(ctx, o.timeout, func() bool {
		all := true
		for i, d := range devs[:o.update] {
			switch status[i] {
			case "DONE", "ERROR", "WONTGO":
				continue
			}
			var st struct {
				Progress struct {
					Status string
				}
			}
			if u.get("/trails/"+d.id+"/steps/1", &st) == nil {
				status[i] = st.Progress.Status
			}
			switch status[i] {
			case "DONE", "ERROR", "WONTGO":
				doneAt[i] = time.Since(ustart)
			default:
				all = false
			}
		}
		return all
	})
	allDone := time.Since(ustart)
	s3, _ := stats(hc, statsURL)
	hubCPU3 := procCPU(hub.Process.Pid)
	counts := map[string]int{}
	for _, s := range status {
		counts[s]++
	}
	var ureqs, ubytes []float64
	var devReqs int64 // every device's, updated or not
	for _, d := range devs {
		a, b := s2.Devices[d.id], s3.Devices[d.id]
		devReqs += b.Requests - a.Requests
	}
	for _, d := range devs[:o.update] {
		a, b := s2.Devices[d.id], s3.Devices[d.id]
		ureqs = append(ureqs, float64(b.Requests-a.Requests))
		ubytes = append(ubytes, float64(b.BytesIn-a.BytesIn+b.BytesOut-a.BytesOut))
	}
	fmt.Printf("update to %d devices: all finished in %.1f s; per device to DONE %s s; statuses %v\n",
		o.update, allDone.Seconds(), spread(durs(doneAt), "%.1f"), counts)
	fmt.Printf("  per device during the update: requests %s, wire bytes %s (+ signed download on unattributed connections)\n",
		spread(ureqs, "%.0f"), spread(ubytes, "%.0f"))
	fmt.Printf("  pvhub: %d requests from devices' tokens (%d in all, with this bench's status polls and the signed downloads), %d object bytes served, CPU %.1f s, RSS %.1f MiB\n",
		devReqs, s3.Stats.Requests-s2.Stats.Requests, s3.Stats.BlobBytesServed-s2.Stats.BlobBytesServed,
		(hubCPU3 - hubCPU2).Seconds(), float64(procRSS(hub.Process.Pid))/(1<<20))
	errLines := 0
	for _, d := range devs {
		b, _ := os.ReadFile(d.in.LogPath())
		errLines += bytes.Count(b, []byte("level=ERROR"))
	}
	fmt.Printf("errors: %d steps not DONE, %d level=ERROR lines in the devices' logs; pvhub total CPU %.1f s over %.0f s\n",
		o.update-counts["DONE"], errLines, procCPU(hub.Process.Pid).Seconds(), time.Since(start).Seconds())
	if werr != nil {
		return fmt.Errorf("update: %w (statuses %v)", werr, counts)
	}
	if counts["DONE"] != o.update {
		return fmt.Errorf("update: statuses %v", counts)
	}
	return nil
}

type hubStats struct {
	Stats struct {
		Requests        int64
		BlobBytesServed int64
	} `json:"stats"`
	Devices map[string]struct {
		Conns    int64 `json:"conns"`
		Requests int64 `json:"requests"`
		BytesIn  int64 `json:"bytes_in"`
		BytesOut int64 `json:"bytes_out"`
	} `json:"devices"`
}

func stats(hc *http.Client, url string) (hubStats, error) {
	var s hubStats
	resp, err := hc.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

type user struct {
	hc       *http.Client
	url, tok string
}

func (u *user) login() error {
	var out struct{ Token string }
	if err := u.do("POST", "/auth/login", map[string]string{"username": "user1", "password": "user1"}, &out); err != nil {
		return err
	}
	u.tok = out.Token
	return nil
}

func (u *user) get(p string, out any) error        { return u.do("GET", p, nil, out) }
func (u *user) post(p string, body, out any) error { return u.do("POST", p, body, out) }
func (u *user) do(method, p string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, u.url+p, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "fleetbench")
	if u.tok != "" {
		req.Header.Set("Authorization", "Bearer "+u.tok)
	}
	resp, err := u.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %s %s", method, p, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// waitFor polls ok every second until it holds.
func waitFor(ctx context.Context, limit time.Duration, ok func() bool) error {
	end := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(end) {
			return fmt.Errorf("not after %s", limit)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("run bounded: %w", ctx.Err())
	case <-time.After(d):
		return nil
	}
}

// devCPU is each device's CPU time: its pv-appengine and every process
// under it (the pantavisor daemon).
func devCPU(devs []*dev) []time.Duration {
	out := make([]time.Duration, len(devs))
	for i, d := range devs {
		for _, p := range tree(d.in) {
			out[i] += procCPU(p)
		}
	}
	return out
}

func treeRSS(in *pvtest.Instance) int64 {
	var n int64
	for _, p := range tree(in) {
		n += procRSS(p)
	}
	return n
}

// tree is the instance's pv-appengine pid and its descendants.
func tree(in *pvtest.Instance) []int {
	for _, e := range in.Env() {
		if v, ok := strings.CutPrefix(e, "PVTEST_APPENGINE_PID="); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				return nil
			}
			return append([]int{pid}, pvtest.Descendants(pid)...)
		}
	}
	return nil
}

// procCPU is utime+stime of a pid (clock ticks at 100 Hz).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procRSS is VmRSS in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func durs(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = x.Seconds()
	}
	return out
}

func medianDur(d []time.Duration) float64 { return median(durs(d)) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(v []float64, f string) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", median(v), slices.Min(v), slices.Max(v))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
