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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/internal/rootfs"
	"github.com/pantavisor/pantavisor-go/runtime/platform/lxc"
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
	_, self, _, _ := runtime.Caller(0)
	xc := filepath.Join(t.TempDir(), "xcserve")
	build := exec.Command("go", "build", "-o", xc, "./runtime/pvtest/xcserve")
	build.Dir = filepath.Join(filepath.Dir(self), "..", "..", "..")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build xcserve: %v: %s", err, out)
	}
	xcData, err := os.ReadFile(xc)
	if err != nil {
		t.Fatal(err)
	}
	files := []rootfs.File{{Path: "/usr/bin/xcserve", Mode: 0o755, Data: xcData}}
	image := func(init string) []byte {
		p, err := rootfs.Build(rootfs.Options{Init: init, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	provInit := "#!/bin/sh\ntrap 'exit 0' PWR TERM INT\nxcserve serve /run/xc &\nwhile :; do sleep 3600 & wait $!; done\n"
	p, _, _ := ctBinaryState(t, func(vols string, put func(string, []byte), inline func(string, string)) {
		for name, img := range map[string][]byte{"xprov": image(provInit), "xcons": image("")} {
			put(name+"/root.squashfs", img)
			put(name+"/lxc.container.conf", []byte(rootfs.LXCConf(rootfs.Conf{Name: name, VolumesDir: vols})))
		}
		inline("xprov/run.json", `{"name":"xprov","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","group":"app","storage":{"lxc-overlay":{"persistence":"boot"}}}`)
		inline("xprov/services.json", `{"#spec":"service-manifest-xconnect@1","services":[{"name":"raw","type":"unix","socket":"/run/xc/raw.sock"},{"name":"api","type":"rest","socket":"/run/xc/api.sock"}]}`)
		inline("xcons/run.json", `{"name":"xcons","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs","group":"app","storage":{"lxc-overlay":{"persistence":"boot"}},`+
			`"services":{"required":[{"name":"raw","type":"unix","role":"viewer","target":"/run/pv/raw.sock"},{"name":"api","type":"rest","role":"viewer","target":"/run/pv/api.sock"}]}}`)
	})
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
	deadline := time.Now().Add(30 * time.Second)
	for {
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
	t.Logf("xconnect: unix link usable %v after the consumer was seen STARTED", time.Since(startedAt).Round(time.Millisecond))

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
