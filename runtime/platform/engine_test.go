package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pantavisor/pantavisor-go/runtime/state"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time      { return c.t }
func (c *fakeClock) Add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func quiet() *slog.Logger                { return slog.New(slog.NewTextHandler(discard{}, nil)) }

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

const sha = "1111111111111111111111111111111111111111111111111111111111111111"

// mkState builds a state with platforms given as name → extra run.json
// fields (raw JSON members, may be empty) plus optional root documents.
func mkState(t *testing.T, plats map[string]string, root string) *state.State {
	t.Helper()
	var b strings.Builder
	b.WriteString(`{"#spec":"pantavisor-service-system@1"`)
	if root != "" {
		b.WriteString("," + root)
	}
	for name, extra := range plats {
		fmt.Fprintf(&b, `,"%s/root.squashfs":"%s","%s/lxc.container.conf":"%s"`, name, sha, name, sha)
		fmt.Fprintf(&b, `,"%s/run.json":{"#spec":"service-manifest-run@1","name":"%s","type":"lxc","config":"lxc.container.conf","root-volume":"root.squashfs"`, name, name)
		if !strings.Contains(extra, `"storage"`) {
			b.WriteString(`,"storage":{"lxc-overlay":{"persistence":"boot"}}`)
		}
		if !strings.Contains(extra, `"volumes"`) {
			b.WriteString(`,"volumes":[]`)
		}
		if extra != "" {
			b.WriteString("," + extra)
		}
		b.WriteString("}")
	}
	b.WriteString("}")
	st, err := state.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("state.Parse() error = %v\n%s", err, b.String())
	}
	return st
}

func newEngine(t *testing.T, st *state.State, clk Clock, updating bool) *Engine {
	t.Helper()
	e, err := New(st, Options{Clock: clk, Updating: updating, Log: quiet()})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return e
}

func acts(as []Action) string {
	var s []string
	for _, a := range as {
		s = append(s, a.Kind.String()+" "+a.Platform)
	}
	return strings.Join(s, ", ")
}

func status(t *testing.T, e *Engine, name string) Status {
	t.Helper()
	i, err := e.Info(name)
	if err != nil {
		t.Fatalf("Info(%s) error = %v", name, err)
	}
	return i.Status
}

// run brings name from a handed-out Mount to STARTED.
func run(t *testing.T, e *Engine, name string) {
	t.Helper()
	if err := e.Mounted(name); err != nil {
		t.Fatalf("Mounted(%s) error = %v", name, err)
	}
	if got := acts(e.Tick()); !strings.Contains(got, "start "+name) {
		t.Fatalf("Tick() after mount = %q, want start %s", got, name)
	}
	if err := e.Started(name, 42); err != nil {
		t.Fatalf("Started(%s) error = %v", name, err)
	}
}

func TestDelay(t *testing.T) {
	a := &state.AutoRecovery{RetryDelay: 5, BackoffFactor: 2}
	for retries, want := range map[int]time.Duration{0: 0, 1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 4: 40 * time.Second} {
		if got := Delay(a, retries); got != want {
			t.Errorf("Delay(5×2, %d) = %v, want %v", retries, got, want)
		}
	}
	tests := []struct {
		a       *state.AutoRecovery
		retries int
		want    time.Duration
	}{
		{nil, 1, 0},
		{&state.AutoRecovery{RetryDelay: 0, BackoffFactor: 2}, 3, 0},
		{&state.AutoRecovery{RetryDelay: 1.5, BackoffFactor: 0}, 3, 1500 * time.Millisecond},
		{&state.AutoRecovery{RetryDelay: 1, BackoffFactor: 10}, 400, maxDelay},
	}
	for _, tc := range tests {
		if got := Delay(tc.a, tc.retries); got != tc.want {
			t.Errorf("Delay(%+v, %d) = %v, want %v", tc.a, tc.retries, got, tc.want)
		}
	}
}

func TestOnExhausted(t *testing.T) {
	tests := []struct {
		policy   string
		updating bool
		want     Exhaustion
		wait     time.Duration
	}{
		{"", false, ExhaustReboot, 0},
		{"reboot", false, ExhaustReboot, 0},
		{"never", false, ExhaustNever, 0},
		{"10min", false, ExhaustWait, 10 * time.Minute},
		{"30s", false, ExhaustWait, 30 * time.Second},
		{"never", true, ExhaustRollback, 0},
	}
	for _, tc := range tests {
		got, wait := OnExhausted(&state.AutoRecovery{BackoffPolicy: tc.policy}, tc.updating)
		if got != tc.want || wait != tc.wait {
			t.Errorf("OnExhausted(%q, updating=%v) = %v, %v, want %v, %v", tc.policy, tc.updating, got, wait, tc.want, tc.wait)
		}
	}
}

func TestStatusNames(t *testing.T) {
	for s := None; s <= Stopped; s++ {
		got, err := ParseStatus(s.String())
		if err != nil || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v, want %v", s.String(), got, err, s)
		}
	}
	if _, err := ParseStatus("RUNNING"); err == nil {
		t.Errorf("ParseStatus(RUNNING) succeeded, want error")
	}
	for in, want := range map[string]Status{"MOUNTED": Mounted, "STARTED": Started, "READY": Ready} {
		if got, err := ParseGoal(in); got != want || err != nil {
			t.Errorf("ParseGoal(%q) = %v, %v, want %v", in, got, err, want)
		}
	}
	if _, err := ParseGoal("STOPPED"); err == nil {
		t.Errorf("ParseGoal(STOPPED) succeeded, want error")
	}
}

func TestGroupAssignment(t *testing.T) {
	// Runlevel mode: the first platform by name goes to root, others to platform.
	e := newEngine(t, mkState(t, map[string]string{"b": "", "a": "", "c": `"group":"app"`, "d": `"runlevel":"data"`}, ""), newClock(), false)
	want := map[string]string{"a": "root", "b": "platform", "c": "app", "d": "data"}
	for name, g := range want {
		if i, _ := e.Info(name); i.Group != g {
			t.Errorf("group of %s = %q, want %q", name, i.Group, g)
		}
	}
	if i, _ := e.Info("c"); i.RestartPolicy != "container" || i.AutoRecovery == nil || i.AutoRecovery.MaxRetries != 5 || i.Goal != Started {
		t.Errorf("app platform = %+v, want container policy with the group's auto-recovery", i)
	}
	if i, _ := e.Info("d"); i.Goal != Mounted || i.RestartPolicy != "system" {
		t.Errorf("data platform = %+v, want MOUNTED goal and system policy", i)
	}
	// Root already taken: unassigned go to platform.
	e = newEngine(t, mkState(t, map[string]string{"a": "", "z": `"group":"root"`}, ""), newClock(), false)
	if i, _ := e.Info("a"); i.Group != "platform" {
		t.Errorf("group of a with root taken = %q, want platform", i.Group)
	}
	// Explicit groups (runtime/state already rejects platforms without one,
	// as the docs promise).
	groups := `"groups.json":[{"name":"first","timeout":5},{"name":"last","status_goal":"READY","restart_policy":"system"}]`
	e = newEngine(t, mkState(t, map[string]string{"a": `"group":"last"`, "b": `"group":"first","status_goal":"MOUNTED"`}, groups), newClock(), false)
	if i, _ := e.Info("a"); i.Group != "last" || i.Goal != Ready || i.RestartPolicy != "system" {
		t.Errorf("platform a = %+v, want group last, READY, system", i)
	}
	if i, _ := e.Info("b"); i.Group != "first" || i.Goal != Mounted {
		t.Errorf("platform b = %+v, want group first with its own MOUNTED goal", i)
	}
}

func TestGroupOrdering(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root"`, "b": `"group":"platform"`, "d": `"group":"data"`}, ""), clk, false)
	if got, want := acts(e.Tick()), "mount d"; got != want {
		t.Fatalf("first Tick() = %q, want %q", got, want)
	}
	if got := status(t, e, "a"); got != Blocked {
		t.Errorf("status(a) = %v, want BLOCKED behind data", got)
	}
	if got := acts(e.Tick()); got != "" {
		t.Errorf("Tick() with a pending mount = %q, want nothing", got)
	}
	e.Mounted("d")
	if got, want := acts(e.Tick()), "mount a"; got != want {
		t.Fatalf("Tick() after data mounted = %q, want %q", got, want)
	}
	run(t, e, "a")
	if got, want := acts(e.Tick()), "mount b"; got != want {
		t.Fatalf("Tick() after root started = %q, want %q", got, want)
	}
	if got := e.Status(); got != Blocked {
		t.Errorf("revision Status() = %v, want BLOCKED (b is being mounted)", got)
	}
	run(t, e, "b")
	if got := e.Status(); got != Ready {
		t.Errorf("revision Status() = %v, want READY", got)
	}
	if ok, to := e.GoalsReached(); !ok || len(to) != 0 {
		t.Errorf("GoalsReached() = %v, %v, want true", ok, to)
	}
}

func TestGoalTimeout(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root"`, "b": `"group":"platform"`}, ""), clk, false)
	e.Tick()
	e.Mounted("a")
	e.Tick() // start a; it never reports
	clk.Add(30 * time.Second)
	if got := acts(e.Tick()); got != "" {
		t.Errorf("Tick() at the timeout = %q, want nothing", got)
	}
	clk.Add(time.Second)
	if got, want := acts(e.Tick()), "mount b"; got != want {
		t.Errorf("Tick() after the timeout = %q, want %q", got, want)
	}
	if ok, to := e.GoalsReached(); ok || strings.Join(to, ",") != "a" {
		t.Errorf("GoalsReached() = %v, %v, want false with a timed out", ok, to)
	}
}

func TestReadyGoal(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root","status_goal":"READY"`, "b": `"group":"platform"`}, ""), clk, false)
	e.Tick()
	run(t, e, "a")
	if got := acts(e.Tick()); got != "" {
		t.Errorf("Tick() before ready = %q, want nothing", got)
	}
	if err := e.Ready("b"); !errors.Is(err, ErrSignal) {
		t.Errorf("Ready(b) error = %v, want ErrSignal", err)
	}
	if err := e.Ready("a"); err != nil {
		t.Errorf("Ready(a) error = %v", err)
	}
	if got, want := acts(e.Tick()), "mount b"; got != want {
		t.Errorf("Tick() after ready = %q, want %q", got, want)
	}
	if err := e.Ready("a"); !errors.Is(err, ErrSignal) {
		t.Errorf("second Ready(a) error = %v, want ErrSignal", err)
	}
}

func TestAutoRecovery(t *testing.T) {
	clk := newClock()
	// The default app group: on-failure, 5 retries, 5 s × 2^n, reboot.
	e := newEngine(t, mkState(t, map[string]string{"app": `"group":"app"`}, ""), clk, false)
	e.Tick()
	run(t, e, "app")
	for i, delay := range []time.Duration{5, 10, 20, 40, 80} {
		as, err := e.Exited("app")
		if err != nil || acts(as) != "unmount app" {
			t.Fatalf("exit %d: Exited() = %q, %v, want unmount only", i+1, acts(as), err)
		}
		if got := status(t, e, "app"); got != Recovering {
			t.Fatalf("exit %d: status = %v, want RECOVERING", i+1, got)
		}
		clk.Add(delay*time.Second - time.Millisecond)
		if got := acts(e.Tick()); got != "" {
			t.Fatalf("exit %d: Tick() before %vs = %q, want nothing", i+1, delay, got)
		}
		clk.Add(time.Millisecond)
		if got := acts(e.Tick()); got != "mount app" {
			t.Fatalf("exit %d: Tick() after %vs = %q, want mount app", i+1, delay, got)
		}
		run(t, e, "app")
	}
	as, _ := e.Exited("app")
	if got, want := acts(as), "unmount app, reboot app"; got != want {
		t.Errorf("6th Exited() = %q, want %q", got, want)
	}
	// Same while testing an update: rollback.
	e = newEngine(t, mkState(t, map[string]string{"app": `"group":"app","auto_recovery":{"policy":"always","max_retries":1,"backoff_policy":"never"}`}, ""), clk, true)
	e.Tick()
	run(t, e, "app")
	as, _ = e.Exited("app")
	if got, want := acts(as), "unmount app"; got != want {
		t.Errorf("first Exited() = %q, want %q", got, want)
	}
	if got := status(t, e, "app"); got != Installed {
		t.Errorf("status with no delay = %v, want INSTALLED", got)
	}
	e.Tick()
	run(t, e, "app")
	as, _ = e.Exited("app")
	if got, want := acts(as), "unmount app, rollback app"; got != want {
		t.Errorf("exhausted Exited() while updating = %q, want %q", got, want)
	}
}

func TestBackoffPolicies(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{
		"n": `"group":"app","auto_recovery":{"policy":"on-failure","max_retries":1,"backoff_policy":"never"}`,
		"w": `"group":"app","auto_recovery":{"policy":"on-failure","max_retries":1,"backoff_policy":"10min"}`,
	}, ""), clk, false)
	e.Tick()
	for _, n := range []string{"n", "w"} {
		run(t, e, n)
		e.Exited(n)
		e.Tick()
		run(t, e, n)
		if as, _ := e.Exited(n); acts(as) != "unmount "+n {
			t.Errorf("exhausted Exited(%s) = %q, want unmount only", n, acts(as))
		}
	}
	clk.Add(10*time.Minute - time.Second)
	if got := acts(e.Tick()); got != "" {
		t.Errorf("Tick() during backoff = %q, want nothing", got)
	}
	clk.Add(time.Second)
	if got := acts(e.Tick()); got != "mount w" {
		t.Errorf("Tick() after backoff = %q, want mount w only (n never restarts)", got)
	}
	if i, _ := e.Info("w"); i.Retries != 0 {
		t.Errorf("retries after backoff = %d, want reset to 0", i.Retries)
	}
}

func TestResetWindow(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"app","auto_recovery":{"policy":"always","max_retries":2,"reset_window":60}`}, ""), clk, false)
	e.Tick()
	run(t, e, "a")
	e.Exited("a")
	e.Tick()
	run(t, e, "a")
	clk.Add(61 * time.Second)
	e.Exited("a")
	if i, _ := e.Info("a"); i.Retries != 1 {
		t.Errorf("retries after a long run = %d, want 1 (counter reset)", i.Retries)
	}
}

func TestNoRecovery(t *testing.T) {
	for _, updating := range []bool{false, true} {
		e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root"`}, ""), newClock(), updating)
		e.Tick()
		run(t, e, "a")
		as, _ := e.Exited("a")
		want := "unmount a, reboot a"
		if updating {
			want = "unmount a, rollback a"
		}
		if got := acts(as); got != want {
			t.Errorf("Exited() updating=%v = %q, want %q", updating, got, want)
		}
	}
}

func TestFailedStart(t *testing.T) {
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root"`}, ""), newClock(), false)
	e.Tick()
	e.Mounted("a")
	e.Tick()
	as, err := e.Failed("a", errors.New("boom"))
	if err != nil || acts(as) != "unmount a, reboot a" || !strings.Contains(as[1].Reason, "boom") {
		t.Errorf("Failed() = %v, %v, want unmount and reboot naming the cause", as, err)
	}
}

func TestUserControl(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"app": `"group":"app"`, "sys": `"group":"root"`}, ""), clk, false)
	e.Tick()
	run(t, e, "sys")
	e.Tick()
	run(t, e, "app")
	if _, err := e.UserStop("sys"); !errors.Is(err, ErrSystemPolicy) {
		t.Errorf("UserStop(sys) error = %v, want ErrSystemPolicy", err)
	}
	if _, err := e.UserStop("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("UserStop(nope) error = %v, want ErrUnknown", err)
	}
	as, err := e.UserStop("app")
	if err != nil || acts(as) != "stop app" {
		t.Fatalf("UserStop(app) = %q, %v, want stop app", acts(as), err)
	}
	// The stop makes init exit: no retry consumed, no reboot.
	as, err = e.Exited("app")
	if err != nil || acts(as) != "unmount app" {
		t.Errorf("Exited() after user stop = %q, %v, want unmount only", acts(as), err)
	}
	if i, _ := e.Info("app"); i.Status != Stopped || !i.UserStopped || i.Retries != 0 {
		t.Errorf("after user stop = %+v, want STOPPED, user_stopped, 0 retries", i)
	}
	clk.Add(time.Hour)
	if got := acts(e.Tick()); got != "" {
		t.Errorf("Tick() while user-stopped = %q, want nothing", got)
	}
	if err := e.UserStart("app"); err != nil {
		t.Fatalf("UserStart() error = %v", err)
	}
	if got := acts(e.Tick()); got != "mount app" {
		t.Errorf("Tick() after start = %q, want mount app", got)
	}
	run(t, e, "app")
	if err := e.UserStart("app"); !errors.Is(err, ErrTransition) {
		t.Errorf("UserStart() of a running platform error = %v, want ErrTransition", err)
	}
	as, err = e.UserRestart("app")
	if err != nil || acts(as) != "stop app" {
		t.Fatalf("UserRestart() = %q, %v, want stop app", acts(as), err)
	}
	as, _ = e.Stopped("app")
	if acts(as) != "unmount app" || status(t, e, "app") != Installed {
		t.Errorf("Stopped() after restart = %q, status %v, want unmount and INSTALLED", acts(as), status(t, e, "app"))
	}
	if got := acts(e.StopAll()); got != "stop sys" {
		t.Errorf("StopAll() = %q, want stop sys (app is only installed)", got)
	}
}

func TestStability(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"app": `"group":"app"`}, ""), clk, false)
	if e.Stable() {
		t.Errorf("Stable() before start = true, want false (stable_timeout 30s)")
	}
	e.Tick()
	run(t, e, "app")
	clk.Add(29 * time.Second)
	if e.Stable() {
		t.Errorf("Stable() after 29s = true, want false")
	}
	clk.Add(time.Second)
	if !e.Stable() {
		t.Errorf("Stable() after 30s = false, want true")
	}
	e.Exited("app")
	if e.Stable() {
		t.Errorf("Stable() after a crash = true, want false")
	}
}

func TestTransitions(t *testing.T) {
	e := newEngine(t, mkState(t, map[string]string{"a": `"group":"root"`}, ""), newClock(), false)
	if err := e.Mounted("a"); !errors.Is(err, ErrTransition) {
		t.Errorf("Mounted() without a pending mount error = %v, want ErrTransition", err)
	}
	if err := e.Started("a", 1); !errors.Is(err, ErrTransition) {
		t.Errorf("Started() while INSTALLED error = %v, want ErrTransition", err)
	}
	if _, err := e.Stopped("a"); !errors.Is(err, ErrTransition) {
		t.Errorf("Stopped() while INSTALLED error = %v, want ErrTransition", err)
	}
}

func TestAdoptAndStopPlatform(t *testing.T) {
	clk := newClock()
	e := newEngine(t, mkState(t, map[string]string{"kept": `"group":"root"`, "next": `"group":"app"`}, ""), clk, true)
	if err := e.Adopt("kept", 42, Ready); err != nil {
		t.Fatalf("Adopt() error = %v", err)
	}
	// READY is only kept for a READY goal; the adopted platform is at its
	// goal, so the next group starts at once.
	if i, _ := e.Info("kept"); i.Status != Started || i.Pid != 42 {
		t.Errorf("adopted = %+v, want STARTED pid 42", i)
	}
	if got := acts(e.Tick()); got != "mount next" {
		t.Errorf("Tick() after adopt = %q, want mount next", got)
	}
	if err := e.Adopt("kept", 43, Started); !errors.Is(err, ErrTransition) {
		t.Errorf("second Adopt() error = %v, want ErrTransition", err)
	}
	// A system stop works for restart_policy system and is not a user stop.
	as, err := e.StopPlatform("kept")
	if err != nil || acts(as) != "stop kept" {
		t.Fatalf("StopPlatform(kept) = %q, %v, want stop kept", acts(as), err)
	}
	if _, err := e.Stopped("kept"); err != nil {
		t.Fatal(err)
	}
	if i, _ := e.Info("kept"); i.Status != Stopped || i.UserStopped {
		t.Errorf("after StopPlatform = %+v, want STOPPED, not user_stopped", i)
	}
	if _, err := e.StopPlatform("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("StopPlatform(nope) error = %v, want ErrUnknown", err)
	}
}
