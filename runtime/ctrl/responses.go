package ctrl

import "encoding/json"

// The typed bodies of the JSON answers. Field order and names are
// upstream's (spec §5): users' tools read them, so a change here is a
// change of interface; testdata/*.json pins each one byte for byte.

// Container is one element of GET /containers.
type Container struct {
	Name          string             `json:"name"`
	Group         string             `json:"group"`
	Status        string             `json:"status"`
	StatusGoal    string             `json:"status_goal"`
	RestartPolicy string             `json:"restart_policy"`
	Roles         []string           `json:"roles"` // [] when none
	AutoRecovery  *ContainerRecovery `json:"auto_recovery,omitempty"`
	// UserStopped is "true" or "false", only for restart_policy container.
	UserStopped string `json:"user_stopped,omitempty"`
}

// ContainerRecovery is a container's auto_recovery state.
type ContainerRecovery struct {
	Policy         string `json:"policy"`
	MaxRetries     int    `json:"max_retries"`
	CurrentRetries int    `json:"current_retries"`
	StableTimeout  int    `json:"stable_timeout"` // seconds
	IsStable       string `json:"is_stable"`      // "true" or "false" (upstream: a string)
	BackoffPolicy  string `json:"backoff_policy"`
}

// Group is one element of GET /groups.
type Group struct {
	Name          string         `json:"name"`
	StatusGoal    string         `json:"status_goal"`
	RestartPolicy string         `json:"restart_policy"`
	Status        string         `json:"status"`
	AutoRecovery  *GroupRecovery `json:"auto_recovery,omitempty"`
}

// GroupRecovery is a group's auto_recovery policy.
type GroupRecovery struct {
	MaxRetries    int    `json:"max_retries"`
	StableTimeout int    `json:"stable_timeout"` // seconds
	BackoffPolicy string `json:"backoff_policy"`
}

// Driver is one element of GET /drivers.
type Driver struct {
	Name   string `json:"name"`
	Type   string `json:"type"`   // REQUIRED, OPTIONAL or MANUAL
	Status string `json:"status"` // LOADED, UNLOADED or UNKNOWN
}

// XConnectLink is one element of GET /xconnect-graph.
type XConnectLink struct {
	Consumer    string `json:"consumer"`
	ConsumerPid int    `json:"consumer_pid"`
	Provider    string `json:"provider"`
	ProviderPid int    `json:"provider_pid"`
	Name        string `json:"name"`
	Type        string `json:"type"`
	Role        string `json:"role"`
	Interface   string `json:"interface"`
	Target      string `json:"target"`
	Socket      string `json:"socket"`
	UID         *int   `json:"uid,omitempty"`
}

// Wakelocks is the GET /wakelocks answer.
type Wakelocks struct {
	Mode      string    `json:"mode"`  // PV_POWER_MODE: disabled, locks or managed
	Count     int       `json:"count"` // locks held, all scopes
	Degraded  bool      `json:"degraded"`
	Autosleep bool      `json:"autosleep"`
	Settling  bool      `json:"settling"`
	Polling   bool      `json:"polling"`
	RunWindow bool      `json:"run_window"`
	Held      HeldLocks `json:"held"`
}

// HeldLocks counts the locks held per scope.
type HeldLocks struct {
	Boot        int `json:"boot"`
	Update      int `json:"update"`
	UpdateCheck int `json:"update_check"`
	Devmeta     int `json:"devmeta"`
	Usrmeta     int `json:"usrmeta"`
	Shutdown    int `json:"shutdown"`
	DebugShell  int `json:"debug_shell"`
	Poll        int `json:"poll"`
}

// ConfigEntry is one element of GET /config2.
type ConfigEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Modified string `json:"modified"` // the level the value comes from
}

// Daemon is one element of GET /daemons.
type Daemon struct {
	Name    string `json:"name"`
	Pid     int    `json:"pid"`
	Respawn bool   `json:"respawn"`
}

// objectEntry is one element of GET /objects.
type objectEntry struct {
	Sha  string `json:"sha256"`
	Size string `json:"size"` // decimal, a string as upstream
}

// stepEntry is one element of GET /steps.
type stepEntry struct {
	Name      string          `json:"name"`
	Date      string          `json:"date"` // %Y-%m-%dT%H:%M:%SZ in local time, as upstream
	CommitMsg string          `json:"commitmsg"`
	Progress  json.RawMessage `json:"progress"`
}

// gcResult is the POST /storage/gc answer.
type gcResult struct {
	Reclaimed int64 `json:"reclaimed"`
}
