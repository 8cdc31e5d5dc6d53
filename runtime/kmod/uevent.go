package kmod

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Uevent is one kernel uevent as the netlink KOBJECT_UEVENT socket
// delivers it: "<action>@<devpath>" then NUL-separated KEY=VALUE pairs.
type Uevent struct {
	Action, DevPath string
	Env             map[string]string
}

// ParseUevent parses a kernel uevent message. Messages from user space
// (udev's "libudev" header) are not kernel events and are rejected.
func ParseUevent(b []byte) (Uevent, error) {
	recs := bytes.Split(b, []byte{0})
	head := string(recs[0])
	action, devpath, ok := strings.Cut(head, "@")
	if !ok || action == "" || devpath == "" {
		return Uevent{}, fmt.Errorf("uevent: bad header %q", head)
	}
	ev := Uevent{Action: action, DevPath: devpath, Env: map[string]string{}}
	for _, r := range recs[1:] {
		if k, v, ok := strings.Cut(string(r), "="); ok && k != "" {
			ev.Env[k] = v
		}
	}
	return ev, nil
}

// UeventSource delivers raw kernel uevent messages (a netlink socket,
// see OpenUevents). Read fails with ErrOverflow when events were lost.
type UeventSource interface {
	Read() ([]byte, error)
	Close() error
}

// ErrOverflow means the kernel dropped uevents (the socket buffer was
// full); Hotplug then coldplugs again to catch up.
var ErrOverflow = errors.New("uevents lost")

// Hotplug loads the drivers of the devices the kernel adds from now on,
// like udev's "add" rule for MODALIAS, until ctx ends or src fails. It
// may run beside a Coldplug of the same Loader (a module both want is
// loaded once). Open src before Coldplug so that no device falls
// between the two.
func (l *Loader) Hotplug(ctx context.Context, src UeventSource) error {
	stop := context.AfterFunc(ctx, func() { src.Close() })
	defer stop()
	for {
		b, err := src.Read()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrOverflow) {
			l.log.Warn("kmod: uevents lost, coldplugging again")
			l.Coldplug()
			continue
		}
		if err != nil {
			return fmt.Errorf("kmod: hotplug: %w", err)
		}
		ev, err := ParseUevent(b)
		if err != nil || ev.Action != "add" || ev.Env["MODALIAS"] == "" {
			continue
		}
		var mods []string
		for _, m := range l.idx.LookupAlias(ev.Env["MODALIAS"]) {
			if !l.Blacklist[m] {
				mods = append(mods, m)
			}
		}
		loaded, err := l.loadFiles(l.idx.Plan(mods), nil)
		if len(loaded) > 0 || err != nil {
			l.log.Info("kmod: hotplug", "device", ev.DevPath, "modalias", ev.Env["MODALIAS"], "loaded", strings.Join(loaded, " "), "err", err)
		}
	}
}
