// Command hang stops PID 1 (Pantavisor) the way a hang would. PID 1
// ignores a SIGSTOP sent by a process, so hang attaches with ptrace (the
// kernel's SIGSTOP stops the attached thread) and lets that SIGSTOP
// through, which stops every thread of the process (a group stop). It
// then holds it stopped. The watchdog boot test runs it from the debug
// shell.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	runtime.LockOSThread() // ptrace requests come from the attaching thread
	if err := syscall.PtraceAttach(1); err != nil {
		fail("attach pid 1", err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(1, &ws, syscall.WALL, nil); err != nil {
		fail("wait pid 1", err)
	}
	// deliver the SIGSTOP: the whole thread group stops
	if err := syscall.PtraceCont(1, int(syscall.SIGSTOP)); err != nil {
		fail("continue pid 1 with SIGSTOP", err)
	}
	if _, err := syscall.Wait4(1, &ws, syscall.WALL, nil); err != nil {
		fail("wait pid 1", err)
	}
	for i := 0; ; i++ {
		n, running := threads()
		if running == 0 {
			fmt.Printf("hang: pid 1 stopped, all %d threads\n", n)
			break
		}
		if i == 50 {
			fail("stop pid 1", fmt.Errorf("%d of %d threads still running", running, n))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		time.Sleep(time.Hour) // until the machine resets
	}
}

// threads counts the threads of pid 1 and those not stopped.
func threads() (n, running int) {
	stats, _ := filepath.Glob("/proc/1/task/*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n++
		// "pid (comm) S ...": the state follows the last ')'
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		if f := strings.Fields(rest); len(f) == 0 || (f[0] != "t" && f[0] != "T") {
			running++
		}
	}
	return n, running
}

func fail(what string, err error) {
	fmt.Printf("hang: %s: %v\n", what, err)
	os.Exit(1)
}
