// Package discovery announces the device on the local network over mDNS
// (DNS-SD) as `pvr device scan` looks for it (pvr's libpvr/devlib.go,
// upstream's pv-avahi container): a "_ssh._tcp" service in "local." on
// the debug ssh port, whose TXT record carries
//
//	device-id=<id>        pvr lists only services that have it
//	challenge=<word>      only while unclaimed: pvr prints the claim command
//	pantahub=<url>        the hub (pvr prints <url>/devices/<id> to claim)
//	claimed=0|1           the claim state, spelt out (ours)
//	pvr-port=12368        the pvr-sdk HTTP API (ours; pvr clone <ip>)
//	ssh-port=8222         the debug ssh server (ours; also the SRV port)
//
// Announce runs until its context ends and follows the network: the
// service is registered again when the interfaces' addresses change, and
// its TXT record is refreshed when Info changes. The pvr-sdk program calls
// it from the mgmt container (host network):
//
//	go discovery.Announce(ctx, discovery.Options{Info: func() discovery.Info {
//		return discovery.ReadInfo("/pantavisor") // device-id, challenge, pantahub-host
//	}, Log: log})
package discovery

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grandcat/zeroconf"
)

// The DNS-SD names pvr browses.
const (
	Service = "_ssh._tcp"
	Domain  = "local."
)

// Default ports.
const (
	SSHPort = 8222
	PVRPort = 12368
)

// Info is what the announcement says.
type Info struct {
	// DeviceID is the hub's device id; "" (a device never registered
	// with a hub) announces the host name instead, so pvr still lists
	// the device.
	DeviceID string
	// Challenge is the claim challenge; "" once claimed.
	Challenge string
	// Pantahub is the hub's URL, e.g. https://api.pantahub.com:443.
	Pantahub string
	// Claimed is the claim state.
	Claimed bool
	SSHPort int // 0: SSHPort
	PVRPort int // 0: PVRPort
}

// Text returns the TXT record strings.
func (i Info) Text() []string {
	i = i.withDefaults()
	t := []string{"device-id=" + i.DeviceID}
	if i.Challenge != "" && !i.Claimed {
		t = append(t, "challenge="+i.Challenge)
	}
	if i.Pantahub != "" {
		t = append(t, "pantahub="+i.Pantahub)
	}
	claimed := "0"
	if i.Claimed {
		claimed = "1"
	}
	return append(t, "claimed="+claimed, "pvr-port="+strconv.Itoa(i.PVRPort), "ssh-port="+strconv.Itoa(i.SSHPort))
}

func (i Info) withDefaults() Info {
	if i.SSHPort == 0 {
		i.SSHPort = SSHPort
	}
	if i.PVRPort == 0 {
		i.PVRPort = PVRPort
	}
	if i.DeviceID == "" {
		i.DeviceID, _ = os.Hostname()
	}
	i.DeviceID = clean(i.DeviceID)
	i.Challenge = clean(i.Challenge)
	i.Pantahub = clean(i.Pantahub)
	return i
}

// clean keeps a TXT value printable and short (a TXT string is at most
// 255 bytes with its key).
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e {
			return -1
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// ReadInfo reads Pantavisor's hint files in dir (the run dir on the host,
// /pantavisor in a mgmt container): device-id, challenge and
// pantahub-host. A device with a device id and no challenge is claimed.
func ReadInfo(dir string) Info {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || len(b) > 1024 {
			return ""
		}
		return string(bytes.TrimSpace(b))
	}
	i := Info{DeviceID: read("device-id"), Challenge: read("challenge"), Pantahub: read("pantahub-host")}
	if i.Pantahub != "" && !strings.Contains(i.Pantahub, "://") {
		i.Pantahub = "https://" + i.Pantahub
	}
	i.Claimed = i.DeviceID != "" && i.Challenge == ""
	return i
}

// Options configure Announce.
type Options struct {
	// Info is read at every check; nil announces Info{}.
	Info func() Info
	// Interfaces are the links to announce on; nil: every link that is
	// up and multicast-capable, looked up again at every check.
	Interfaces func() ([]net.Interface, error)
	// Every is the interval of the checks; 0 is 10 s.
	Every time.Duration
	Log   *slog.Logger
}

// Announce keeps the device announced until ctx ends, then says goodbye
// (zero-TTL records) and returns nil. A network without addresses yet is
// waited for, not an error.
func Announce(ctx context.Context, o Options) error {
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Interfaces == nil {
		o.Interfaces = multicastInterfaces
	}
	var srv *zeroconf.Server
	var lastNet string
	var lastText []string
	defer func() {
		if srv != nil {
			srv.Shutdown()
		}
	}()
	for {
		info := Info{}
		if o.Info != nil {
			info = o.Info()
		}
		info = info.withDefaults()
		text := info.Text()
		ifaces, err := o.Interfaces()
		if err != nil {
			o.Log.Warn("discovery: interfaces", "err", err)
		}
		netKey := describe(ifaces) + fmt.Sprintf(" port=%d", info.SSHPort)
		// A change of the network or of the TXT record registers the
		// service again (goodbye, probe, announce): the library's
		// SetText races with its responder goroutine, and claims or
		// address changes are rare.
		if netKey != lastNet || !slices.Equal(text, lastText) {
			if srv != nil {
				srv.Shutdown()
				srv = nil
			}
			lastNet, lastText = netKey, text
			if srv = register(info, text, ifaces, netKey, o.Log); srv == nil {
				lastNet = "" // try again at the next check
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Every):
		}
	}
}

// register announces the service on ifaces, or returns nil when they
// have no address yet or registering fails.
func register(info Info, text []string, ifaces []net.Interface, netKey string, log *slog.Logger) *zeroconf.Server {
	if !strings.Contains(netKey, "/") {
		return nil // no addresses yet
	}
	instance := "pantavisor-" + info.DeviceID
	srv, err := zeroconf.Register(instance, Service, Domain, info.SSHPort, slices.Clone(text), ifaces)
	if err != nil {
		log.Warn("discovery: register", "err", err)
		return nil
	}
	log.Info("discovery: announced", "instance", instance, "service", Service, "on", netKey, "text", strings.Join(text, " "))
	return srv
}

// multicastInterfaces returns the links that are up and can multicast,
// loopback excluded.
func multicastInterfaces() ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	var out []net.Interface
	for _, i := range all {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagMulticast != 0 && i.Flags&net.FlagLoopback == 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// describe renders the interfaces and their addresses, to notice changes.
func describe(ifaces []net.Interface) string {
	var parts []string
	for _, i := range ifaces {
		addrs, _ := i.Addrs()
		s := make([]string, 0, len(addrs))
		for _, a := range addrs {
			s = append(s, a.String())
		}
		slices.Sort(s)
		parts = append(parts, i.Name+"="+strings.Join(s, ","))
	}
	return strings.Join(parts, " ")
}
