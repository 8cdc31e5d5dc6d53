package metadata

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Uname is the pantavisor.uname device metadata.
type Uname struct {
	KernelName    string `json:"kernel.name"`
	KernelRelease string `json:"kernel.release"`
	KernelVersion string `json:"kernel.version"`
	NodeName      string `json:"node.name"`
	Machine       string `json:"machine"`
}

// Sysinfo is the sysinfo device metadata (sysinfo(2)).
type Sysinfo struct {
	Uptime    int64  `json:"uptime"`
	Loads0    uint64 `json:"loads.0"`
	Loads1    uint64 `json:"loads.1"`
	Loads2    uint64 `json:"loads.2"`
	TotalRAM  uint64 `json:"totalram"`
	FreeRAM   uint64 `json:"freeram"`
	SharedRAM uint64 `json:"sharedram"`
	BufferRAM uint64 `json:"bufferram"`
	TotalSwap uint64 `json:"totalswap"`
	FreeSwap  uint64 `json:"freeswap"`
	Procs     uint64 `json:"procs"`
	TotalHigh uint64 `json:"totalhigh"`
	FreeHigh  uint64 `json:"freehigh"`
	MemUnit   uint64 `json:"mem_unit"`
}

// Usage is the storage device metadata.
type Usage struct {
	Total    uint64 `json:"total"`
	Free     uint64 `json:"free"`
	Reserved uint64 `json:"reserved"`
	RealFree uint64 `json:"real_free"`
}

// Iface is one network interface for the interfaces device metadata.
type Iface struct {
	Name string
	IPv4 []string
	IPv6 []string // link-local ones carry "%<name>"
	MAC  string   // "" when the interface has none
}

// Device gathers the default device metadata (spec §12). Zero fields take
// the real system: ProcDir "/proc", Now time.Now, Uname ReadUname, Sysinfo
// ReadSysinfo, Interfaces ReadInterfaces.
type Device struct {
	Version  string // pantavisor.version
	Revision string // pantavisor.revision
	Mode     string // pantavisor.mode: local or remote
	Status   string // pantavisor.status
	Storage  *Usage // storage; nil leaves it out

	ProcDir    string
	Now        func() time.Time
	Uname      func() (Uname, error)
	Sysinfo    func() (Sysinfo, error)
	Interfaces func() ([]Iface, error)
}

// Defaults returns the device metadata pantavisor publishes: pantavisor.arch,
// .version, .dtmodel, .cpumodel, .revision, .mode, .status, .uname, time,
// sysinfo, interfaces and storage. Empty strings are left out. Sources that
// fail are left out and their errors returned joined, next to the rest.
func (d Device) Defaults() ([]KV, error) {
	proc := d.ProcDir
	if proc == "" {
		proc = "/proc"
	}
	now, uname, sysinfo, ifaces := d.Now, d.Uname, d.Sysinfo, d.Interfaces
	if now == nil {
		now = time.Now
	}
	if uname == nil {
		uname = ReadUname
	}
	if sysinfo == nil {
		sysinfo = ReadSysinfo
	}
	if ifaces == nil {
		ifaces = ReadInterfaces
	}
	var (
		kvs  []KV
		errs []error
	)
	str := func(k, v string) {
		if v != "" {
			kvs = append(kvs, KV{k, []byte(v)})
		}
	}
	u, err := uname()
	if err != nil {
		errs = append(errs, err)
	} else {
		str("pantavisor.arch", Arch(u.Machine))
	}
	str("pantavisor.version", d.Version)
	str("pantavisor.dtmodel", DTModel(proc))
	str("pantavisor.cpumodel", CPUModel(proc))
	str("pantavisor.revision", d.Revision)
	str("pantavisor.mode", d.Mode)
	str("pantavisor.status", d.Status)
	if err == nil {
		b, _ := json.Marshal(u)
		kvs = append(kvs, KV{"pantavisor.uname", b})
	}
	kvs = append(kvs, KV{"time", TimeJSON(now())})
	if si, err := sysinfo(); err != nil {
		errs = append(errs, err)
	} else {
		b, _ := json.Marshal(si)
		kvs = append(kvs, KV{"sysinfo", b})
	}
	if ifs, err := ifaces(); err != nil {
		errs = append(errs, err)
	} else {
		kvs = append(kvs, KV{"interfaces", InterfacesJSON(ifs)})
	}
	if d.Storage != nil {
		b, _ := json.Marshal(d.Storage)
		kvs = append(kvs, KV{"storage", b})
	}
	return kvs, errors.Join(errs...)
}

// Arch renders pantavisor.arch as "<machine>/<bits>/<EL|EB>", e.g.
// "aarch64/64/EL", with the word size and byte order of this process.
func Arch(machine string) string {
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], 1)
	endian := "EL"
	if b[0] == 0 {
		endian = "EB"
	}
	return machine + "/" + strconv.Itoa(strconv.IntSize) + "/" + endian
}

// TimeJSON renders the time device metadata, gettimeofday(2) style.
func TimeJSON(t time.Time) []byte {
	_, offset := t.Zone()
	type timeval struct {
		Sec  int64 `json:"tv_sec"`
		Usec int64 `json:"tv_usec"`
	}
	type timezone struct {
		MinutesWest int `json:"tz_minuteswest"`
		DSTTime     int `json:"tz_dsttime"`
	}
	b, _ := json.Marshal(struct {
		Timeval  timeval  `json:"timeval"`
		Timezone timezone `json:"timezone"`
	}{timeval{t.Unix(), int64(t.Nanosecond() / 1000)}, timezone{-offset / 60, 0}})
	return b
}

// InterfacesJSON renders the interfaces device metadata:
// {"<if>.ipv4":[…], …, "<if>.ipv6":[…], …, "<if>.mac":[…]} — all IPv4
// entries first, then IPv6, then MAC addresses, each in interface order;
// interfaces without addresses of a family are left out of it.
func InterfacesJSON(ifs []Iface) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	add := func(key string, vals []string) {
		if len(vals) == 0 {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.Write(jsonString(key))
		b.WriteByte(':')
		v, _ := json.Marshal(vals)
		b.Write(v)
	}
	for _, i := range ifs {
		add(i.Name+".ipv4", i.IPv4)
	}
	for _, i := range ifs {
		add(i.Name+".ipv6", i.IPv6)
	}
	for _, i := range ifs {
		if i.MAC != "" {
			add(i.Name+".mac", []string{i.MAC})
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}

// ReadInterfaces lists the system's network interfaces and addresses.
func ReadInterfaces() ([]Iface, error) {
	nifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []Iface
	for _, ni := range nifs {
		i := Iface{Name: ni.Name, MAC: ni.HardwareAddr.String()}
		addrs, err := ni.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if v4 := ipn.IP.To4(); v4 != nil {
				i.IPv4 = append(i.IPv4, v4.String())
				continue
			}
			s := ipn.IP.String()
			if ipn.IP.IsLinkLocalUnicast() {
				s += "%" + ni.Name
			}
			i.IPv6 = append(i.IPv6, s)
		}
		out = append(out, i)
	}
	return out, nil
}

// DTModel returns the device-tree model (<proc>/device-tree/model), or "".
func DTModel(procDir string) string {
	b, err := os.ReadFile(filepath.Join(procDir, "device-tree", "model"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.TrimRight(string(b), "\x00"))
}

// cpuModelFields are the /proc/cpuinfo fields naming the CPU, by preference.
var cpuModelFields = []string{"model name", "cpu model", "Hardware", "Processor", "uarch", "isa"}

// CPUModel returns the CPU model from <proc>/cpuinfo, or "".
func CPUModel(procDir string) string {
	f, err := os.Open(filepath.Join(procDir, "cpuinfo"))
	if err != nil {
		return ""
	}
	defer f.Close()
	found := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if _, seen := found[k]; !seen && v != "" {
			found[k] = v
		}
	}
	for _, k := range cpuModelFields {
		if v, ok := found[k]; ok {
			return v
		}
	}
	return ""
}
