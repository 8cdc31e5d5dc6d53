// Command hang stops PID 1 (Pantavisor) the way a hang would: PID 1
// ignores SIGSTOP sent by a process, so it attaches with ptrace, which
// makes the kernel stop it with SIGSTOP, and holds it stopped. The
// watchdog boot test runs it from the debug shell.
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	runtime.LockOSThread() // ptrace requests come from the attaching thread
	if err := syscall.PtraceAttach(1); err != nil {
		fmt.Println("hang: attach pid 1:", err)
		os.Exit(1)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(1, &ws, syscall.WALL, nil); err != nil {
		fmt.Println("hang: wait pid 1:", err)
		os.Exit(1)
	}
	fmt.Printf("hang: pid 1 stopped by %v\n", ws.StopSignal())
	for {
		time.Sleep(time.Hour) // until the machine resets
	}
}
