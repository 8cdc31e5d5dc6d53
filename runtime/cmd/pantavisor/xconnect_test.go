package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
	"golang.org/x/sys/unix"
)

// TestBinaryXConnect: the daemon binary runs pv-xconnect as a managed
// daemon, which injects a provider container's unix and rest services into
// a consumer container at the targets of its run.json; REST requests carry
// the link's identity whatever the consumer sends. It logs the time from
// the consumer's STARTED to its injected socket answering.
func TestBinaryXConnect(t *testing.T) {
	if err := lxc.Available(); err != nil {
		t.Skip("checked by ctBinaryState")
	}
	p := xconnectDaemon(t)
	allStarted(t, p, 2)
	startedAt := time.Now()

	var links []struct {
		Consumer    string `json:"consumer"`
		ConsumerPid int    `json:"consumer_pid"`
		Type        string `json:"type"`
		Role        string `json:"role"`
	}
	code, body := p.get(t, "/xconnect-graph")
	if err := json.Unmarshal([]byte(body), &links); code != 200 || err != nil || len(links) != 2 {
		t.Fatalf("GET /xconnect-graph = %d %s, want 2 links", code, body)
	}
	if l := links[0]; l.Consumer != "xcons" || l.ConsumerPid <= 0 || l.Type != "unix" || l.Role != "viewer" {
		t.Errorf("first link = %+v, want xcons's unix link with role viewer", l)
	}
	root := "/proc/" + strconv.Itoa(links[0].ConsumerPid) + "/root"

	// The injected socket answers (through the consumer's root).
	var echoed string
	var injected time.Duration // the socket is there (dial may still fail: provider not listening)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Lstat(root + "/run/pv/raw.sock"); err == nil && injected == 0 {
			injected = time.Since(startedAt)
		}
		if c, err := net.Dial("unix", root+"/run/pv/raw.sock"); err == nil {
			io.WriteString(c, "ping")
			c.(*net.UnixConn).CloseWrite()
			b, _ := io.ReadAll(c)
			c.Close()
			if echoed = string(b); echoed == "ping" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("injected unix socket did not echo within 30 s (last %q)", echoed)
		}
		time.Sleep(5 * time.Millisecond) // polls the consumer's socket
	}
	t.Logf("xconnect: unix link injected %v and usable %v after the consumers were seen STARTED", injected.Round(time.Millisecond), time.Since(startedAt).Round(time.Millisecond))

	c, err := net.Dial("unix", root+"/run/pv/api.sock")
	if err != nil {
		t.Fatalf("dial injected rest socket: %v", err)
	}
	defer c.Close()
	io.WriteString(c, "GET /who HTTP/1.1\r\nHost: x\r\nX-PV-Client: pv-mgmt\r\nX-PV-Role: mgmt\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	var resp strings.Builder
	io.Copy(&resp, br)
	if got := resp.String(); !strings.HasSuffix(got, "client=xcons role=viewer\n") {
		t.Errorf("rest answer = %q, want the link's identity (client=xcons role=viewer)", got)
	}

	code, body = p.get(t, "/daemons")
	var ds []struct {
		Name    string `json:"name"`
		Pid     int    `json:"pid"`
		Respawn bool   `json:"respawn"`
	}
	if err := json.Unmarshal([]byte(body), &ds); code != 200 || err != nil || len(ds) != 1 || ds[0].Name != "pv-xconnect" || ds[0].Pid <= 0 || !ds[0].Respawn {
		t.Errorf("GET /daemons = %d %s, want pv-xconnect running with respawn", code, body)
	}
}

// xconnectDaemon starts the daemon binary with a provider container
// "xprov" serving unix (raw, an echo server) and rest (api) services and a
// consumer "xcons" requiring both, as role viewer, at /run/pv/{raw,api}.sock.
func xconnectDaemon(tb testing.TB) *proc {
	tb.Helper()
	_, self, _, _ := runtime.Caller(0)
	xc := filepath.Join(tb.TempDir(), "xcserve")
	build := exec.Command("go", "build", "-o", xc, "./runtime/pvtest/xcserve")
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build xcserve: %v: %s", err, out)
	}
	xcData, err := os.ReadFile(xc)
	if err != nil {
		tb.Fatal(err)
	}
	files := []rootfs.File{{Path: "/usr/bin/xcserve", Mode: 0o755, Data: xcData}}
	image := func(init string) []byte {
		p, err := rootfs.Build(rootfs.Options{Init: init, Files: files})
		if err != nil {
			tb.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	provInit := "#!/bin/sh\ntrap 'exit 0' PWR TERM INT\nxcserve serve /run/xc &\nwhile :; do sleep 3600 & wait $!; done\n"
	p, _, _ := ctBinaryState(tb, func(vols string, put func(string, []byte), inline func(string, string)) {
		for name, img := range map[string][]byte{"xprov": image(provInit), "xcons": image("")} {
			put(name+"/root.squashfs", img)
			put(name+"/lxc.container.conf", []byte(rootfs.LXCConf(rootfs.Conf{Name: name, VolumesDir: vols})))
		}
		inline("xprov/run.json", `{"name":"xprov","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","group":"app","storage":{"lxc-overlay":{"persistence":"boot"}}}`)
		inline("xprov/services.json", `{"#spec":"service-manifest-xconnect@1","services":[{"name":"raw","type":"unix","socket":"/run/xc/raw.sock"},{"name":"api","type":"rest","socket":"/run/xc/api.sock"}]}`)
		inline("xcons/run.json", `{"name":"xcons","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","group":"app","storage":{"lxc-overlay":{"persistence":"boot"}},`+
			`"services":{"required":[{"name":"raw","type":"unix","role":"viewer","target":"/run/pv/raw.sock"},{"name":"api","type":"rest","role":"viewer","target":"/run/pv/api.sock"}]}}`)
	})
	return p
}

// BenchmarkXConnectStartToUsable measures the time from a consumer
// container's start to its injected unix socket answering from inside it
// (bench/xconnect-start.sh). Each iteration stops the consumer, starts it
// with PUT /containers/xcons {"action":"start"} and dials /run/pv/raw.sock
// in the new consumer's root every millisecond until the provider echoes.
// Two clocks: from the start request (start-ms) and from the start of the
// consumer's init process (init-ms, /proc/<pid>/stat, 10 ms ticks);
// graph-ms is from the start request to the new pid in GET /xconnect-graph.
func BenchmarkXConnectStartToUsable(b *testing.B) {
	p := xconnectDaemon(b)
	allStarted(b, p, 2)
	oldPid := consumerPid(b, p, 0)
	var fromStart, fromInit, inGraph []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p.put(b, "/containers/xcons", `{"action":"stop"}`)
		waitStatus(b, p, "xcons", "STOPPED")
		b.StartTimer()
		t0 := time.Now()
		p.put(b, "/containers/xcons", `{"action":"start"}`)
		pid := consumerPid(b, p, oldPid)
		inGraph = append(inGraph, time.Since(t0))
		root := "/proc/" + strconv.Itoa(pid) + "/root/run/pv/raw.sock"
		deadline := t0.Add(30 * time.Second)
		for !echoes(root) {
			if time.Now().After(deadline) {
				b.Fatalf("iteration %d: injected socket did not echo within 30 s", i)
			}
			time.Sleep(time.Millisecond)
		}
		usable := time.Now()
		fromStart = append(fromStart, usable.Sub(t0))
		if d, ok := sinceProcStart(pid); ok {
			fromInit = append(fromInit, d)
		}
		oldPid = pid
	}
	b.StopTimer()
	report := func(unit string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		slices.Sort(ds)
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		b.ReportMetric(ms(ds[len(ds)/2]), unit)
		b.ReportMetric(ms(ds[0]), "min-"+unit)
		b.ReportMetric(ms(ds[len(ds)-1]), "max-"+unit)
		b.Logf("%s (%d): %v", unit, len(ds), ds)
	}
	report("start-ms", fromStart)
	report("init-ms", fromInit)
	report("graph-ms", inGraph)
}

// echoes reports whether the echo server answers "ping" at the unix socket.
func echoes(sock string) bool {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return false
	}
	defer c.Close()
	io.WriteString(c, "ping")
	c.(*net.UnixConn).CloseWrite()
	b, _ := io.ReadAll(c)
	return string(b) == "ping"
}

// consumerPid polls GET /xconnect-graph until xcons's link has a pid other
// than old.
func consumerPid(tb testing.TB, p *proc, old int) int {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var links []struct {
			Consumer    string `json:"consumer"`
			ConsumerPid int    `json:"consumer_pid"`
		}
		if code, body := p.get(tb, "/xconnect-graph"); code == 200 && json.Unmarshal([]byte(body), &links) == nil {
			for _, l := range links {
				if l.Consumer == "xcons" && l.ConsumerPid > 0 && l.ConsumerPid != old {
					return l.ConsumerPid
				}
			}
		}
		if time.Now().After(deadline) {
			_, graph := p.get(tb, "/xconnect-graph")
			_, cs := p.get(tb, "/containers")
			tb.Fatalf("no new xcons pid (old %d) in the graph within 30 s: %s; containers %s", old, graph, cs)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitStatus polls GET /containers until container name has status.
func waitStatus(tb testing.TB, p *proc, name, status string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var l []struct{ Name, Status string }
		if code, body := p.get(tb, "/containers"); code == 200 && json.Unmarshal([]byte(body), &l) == nil {
			for _, c := range l {
				if c.Name == name && c.Status == status {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			_, body := p.get(tb, "/containers")
			tb.Fatalf("%s not %s within 30 s: %s", name, status, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sinceProcStart is how long ago process pid started: its start time
// (field 22 of /proc/<pid>/stat, in USER_HZ ticks since boot, 100 a second
// on Linux) against CLOCK_BOOTTIME.
func sinceProcStart(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	var now unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &now) != nil {
		return 0, false
	}
	// The command (field 2) may hold spaces: count from its closing ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(now.Nano()) - time.Duration(ticks)*10*time.Millisecond, true
}
