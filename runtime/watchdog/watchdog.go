// Package watchdog drives the kernel watchdogs (/dev/watchdogN) the way
// PV_WDT_MODE asks: Pantavisor arms them, sets PV_WDT_TIMEOUT and pets
// them from the main state machine's loop, so a hung Pantavisor resets
// the board.
//
//	w := watchdog.New(watchdog.Always, 15*time.Second, watchdog.OpenAll("/dev", log), log)
//	w.Start()     // INIT
//	w.Running()   // RUN done: startup mode hands the device to a container
//	w.Pet()       // every FSM round
//	w.Shutdown()  // reboot/poweroff: armed (again) and petted until the end
//
// Modes (seeds §6.12): disabled never touches the device; shutdown (the
// default) arms it only when a reboot or poweroff is ordered, and never
// closes it, so a hang while shutting down still resets; startup pets from
// INIT until RUN is done, then closes it with the magic character so a
// container can take over, and arms it again at shutdown; always pets for
// the whole life of the daemon.
package watchdog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Mode is PV_WDT_MODE.
type Mode int

// The modes, in upstream's order.
const (
	Disabled Mode = iota
	Shutdown
	Startup
	Always
)

var modeNames = [...]string{"disabled", "shutdown", "startup", "always"}

func (m Mode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("Mode(%d)", int(m))
	}
	return modeNames[m]
}

// ErrMode is returned by ParseMode for an unknown mode.
var ErrMode = errors.New("unknown watchdog mode")

// ParseMode reads a PV_WDT_MODE value.
func ParseMode(s string) (Mode, error) {
	for i, n := range modeNames {
		if s == n {
			return Mode(i), nil
		}
	}
	return Disabled, fmt.Errorf("%w %q (want disabled, shutdown, startup or always)", ErrMode, s)
}

// Device is an open watchdog device.
type Device interface {
	// SetTimeout asks for a timeout and returns the one the driver took.
	SetTimeout(d time.Duration) (time.Duration, error)
	// Keepalive pets the watchdog.
	Keepalive() error
	// Close closes the device; with magic it first writes 'V', which
	// disarms a driver that honours the magic close.
	Close(magic bool) error
}

// Opener opens the device (it appears late when its driver is a module).
type Opener func() (Device, error)

// Watchdog applies a mode to a device. Its methods are safe for concurrent
// use, and no-ops on a nil *Watchdog; the daemon calls them from its main loop and at shutdown.
type Watchdog struct {
	mode    Mode
	timeout time.Duration
	open    Opener
	log     *slog.Logger

	mu      sync.Mutex
	dev     Device
	petting bool // the current phase pets
	warned  bool // an open failure was logged
}

// New returns a watchdog for mode; timeout is PV_WDT_TIMEOUT.
func New(mode Mode, timeout time.Duration, open Opener, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watchdog{mode: mode, timeout: timeout, open: open, log: log}
}

// Mode is the configured mode.
func (w *Watchdog) Mode() Mode { return w.mode }

// Start is INIT: startup and always modes arm the watchdog.
func (w *Watchdog) Start() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mode == Startup || w.mode == Always {
		w.petting = true
		w.petLocked()
	}
}

// Running is the end of RUN (first WAIT): startup mode closes the device
// with the magic character so a container can open it and take over.
func (w *Watchdog) Running() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mode != Startup {
		return
	}
	w.petting = false
	if w.dev != nil {
		if err := w.dev.Close(true); err != nil {
			w.log.Warn("watchdog: close", "err", err)
		}
		w.dev = nil
		w.log.Info("watchdog: released to the containers (startup mode)")
	}
}

// Pet is one FSM round: it pets when the mode asks for it now, opening
// the device if it was not there before (its driver may be a module
// loaded by coldplug).
func (w *Watchdog) Pet() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.petting {
		w.petLocked()
	}
}

// Shutdown is a reboot or poweroff order: every mode but disabled arms
// the watchdog and pets it from now on. The device is never closed
// afterwards, so a hang before the machine resets is caught.
func (w *Watchdog) Shutdown() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mode == Disabled {
		return
	}
	w.petting = true
	w.petLocked()
}

// Stop ends the daemon without a reboot (App Engine, tests): the device
// is closed with the magic character so the machine does not reset.
func (w *Watchdog) Stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.petting = false
	if w.dev != nil {
		if err := w.dev.Close(true); err != nil {
			w.log.Warn("watchdog: close", "err", err)
		}
		w.dev = nil
	}
}

// petLocked opens the device when needed and pets it.
func (w *Watchdog) petLocked() {
	if w.dev == nil {
		dev, err := w.open()
		if err != nil {
			if !w.warned {
				w.log.Warn("watchdog: no device, not petting", "mode", w.mode, "err", err)
				w.warned = true
			}
			return
		}
		got, err := dev.SetTimeout(w.timeout)
		if err != nil {
			w.log.Warn("watchdog: set timeout", "timeout", w.timeout, "err", err)
		} else if got != w.timeout {
			w.log.Warn("watchdog: the driver chose another timeout", "want", w.timeout, "got", got)
		}
		w.dev = dev
		w.log.Info("watchdog: armed", "mode", w.mode, "timeout", got)
	}
	if err := w.dev.Keepalive(); err != nil {
		w.log.Warn("watchdog: keepalive", "err", err)
	}
}
