package watchdog

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// OpenAll opens every watchdog device of devDir (its watchdogN nodes, or
// devDir/watchdog alone on a kernel without them) and, at each Keepalive,
// the ones registered since. /dev/watchdog is only the first watchdog the
// kernel registered: a board may have several (a SoC's and a PMIC's, a
// PC's iTCO beside another), and with their drivers loaded by the
// background coldplug which one comes first changes from boot to boot. A
// hung Pantavisor then resets the board through whichever fires, and no
// watchdog a firmware left running goes unpetted.
func OpenAll(devDir string, log *slog.Logger) Opener {
	return openAll(devDir, log, func(p string) (Device, error) { return OpenDevice(p)() })
}

func openAll(devDir string, log *slog.Logger, open func(path string) (Device, error)) Opener {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func() (Device, error) {
		s := &set{dir: devDir, log: log, open: open, devs: map[string]Device{}, failed: map[string]bool{}}
		s.scan()
		if len(s.devs) == 0 {
			return nil, fmt.Errorf("no watchdog device in %s", devDir)
		}
		return s, nil
	}
}

// set is the watchdogs OpenAll found, driven as one Device.
type set struct {
	dir     string
	log     *slog.Logger
	open    func(string) (Device, error)
	timeout time.Duration // 0 until SetTimeout: the new ones get it
	devs    map[string]Device
	order   []string        // paths in the order they were opened
	failed  map[string]bool // open failures already logged
}

// scan opens the devices not open yet.
func (s *set) scan() {
	paths, _ := filepath.Glob(filepath.Join(s.dir, "watchdog[0-9]*"))
	if len(paths) == 0 {
		// /dev/watchdog is watchdog0 too: it is opened alone, as both
		// at once fail (the driver is busy)
		paths = []string{filepath.Join(s.dir, "watchdog")}
	}
	for _, p := range paths {
		if s.devs[p] != nil {
			continue
		}
		d, err := s.open(p)
		if err != nil {
			if !s.failed[p] && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("watchdog: open", "dev", p, "err", err)
				s.failed[p] = true
			}
			continue
		}
		s.devs[p] = d
		s.order = append(s.order, p)
		if s.timeout != 0 {
			got, err := d.SetTimeout(s.timeout)
			s.logTimeout(p, got, err)
		}
	}
}

func (s *set) logTimeout(p string, got time.Duration, err error) {
	if err != nil {
		s.log.Warn("watchdog: set timeout", "dev", p, "timeout", s.timeout, "err", err)
		return
	}
	s.log.Info("watchdog: device armed", "dev", p, "timeout", got)
}

// SetTimeout sets t on every device; it returns the first device's.
func (s *set) SetTimeout(t time.Duration) (time.Duration, error) {
	s.timeout = t
	var first time.Duration
	var errs []error
	for i, p := range s.order {
		got, err := s.devs[p].SetTimeout(t)
		s.logTimeout(p, got, err)
		if err != nil {
			errs = append(errs, err)
		} else if i == 0 {
			first = got
		}
	}
	return first, errors.Join(errs...)
}

// Keepalive opens the devices that appeared and pets them all.
func (s *set) Keepalive() error {
	s.scan()
	var errs []error
	for _, p := range s.order {
		if err := s.devs[p].Keepalive(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every device.
func (s *set) Close(magic bool) error {
	var errs []error
	for _, p := range slices.Backward(s.order) {
		if err := s.devs[p].Close(magic); err != nil {
			errs = append(errs, err)
		}
	}
	s.devs, s.order = map[string]Device{}, nil
	return errors.Join(errs...)
}
