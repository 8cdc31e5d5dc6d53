package state

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// doc builds a state JSON text from key → raw JSON value pairs; "#spec"
// is added unless given.
func doc(kv ...string) string {
	var b strings.Builder
	b.WriteString("{")
	hasSpec := false
	for i := 0; i < len(kv); i += 2 {
		if kv[i] == "#spec" {
			hasSpec = true
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"` + kv[i] + `":` + kv[i+1])
	}
	if !hasSpec {
		if len(kv) > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"#spec":"pantavisor-service-system@1"`)
	}
	b.WriteString("}")
	return b.String()
}

// plat returns the keys of a platform "x" whose run.json has the given
// extra members, plus its config and root volume files.
func plat(extra string) []string {
	run := `{"name":"x","config":"c.conf","root-volume":"root.sq"`
	if extra != "" {
		run += "," + extra
	}
	run += "}"
	return []string{"x/run.json", run, "x/c.conf", `"` + sha1 + `"`, "x/root.sq", `"` + sha1 + `"`}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestParseErrors(t *testing.T) {
	q := func(s string) string { return `"` + s + `"` }
	tests := []struct {
		name    string
		in      string
		key     string // want Error.Key
		msg     string // substring of Error()
		wantErr error
	}{
		// Document and keys.
		{"not an object", `[]`, "", "must be a JSON object", ErrSyntax},
		{"syntax", `{"#spec":`, "#spec", "unexpected end", ErrSyntax},
		{"syntax between keys", `{"#spec":"x" "a":1}`, "#spec", "expected ',' or '}' in object", ErrSyntax},
		{"syntax in key", `{"#spec":"x", 1:1}`, "", "expected object member name", ErrSyntax},
		{"trailing data", `{"#spec":"pantavisor-service-system@1"} x`, "", "after the state", ErrSyntax},
		{"missing spec", `{}`, "#spec", "missing", ErrSpec},
		{"wrong spec", doc("#spec", q("pantavisor-multi-platform@1")), "#spec", "pantavisor-multi-platform@1", ErrSpec},
		{"spec not string", doc("#spec", `1`), "#spec", "want", ErrSpec},
		{"duplicate key", doc("a", q(sha1), "a", q(sha2)), "a", "more than once", ErrDuplicate},
		{"dotdot key", doc("a/../b", q(sha1)), "a/../b", `".." path element`, ErrBadKey},
		{"dot key", doc("./b", q(sha1)), "./b", `"." path element`, ErrBadKey},
		{"absolute key", doc("/etc/passwd", q(sha1)), "/etc/passwd", "absolute", ErrBadKey},
		{"empty element", doc("a//b", q(sha1)), "a//b", "empty path element", ErrBadKey},
		{"trailing slash", doc("a/", q(sha1)), "a/", "empty path element", ErrBadKey},
		{"empty key", doc("", q(sha1)), "", "empty", ErrBadKey},
		{"NUL in key", doc(`a\u0000b`, q(sha1)), "a\x00b", "NUL", ErrBadKey},
		{"backslash key", doc(`a\\b`, q(sha1)), `a\b`, "backslash", ErrBadKey},
		{"file is also a dir", doc("a/b", q(sha1), "a/b/c", q(sha1)), "a/b/c", `"a/b" is also a file`, ErrBadKey},
		{"file is also a dir far", doc("a", q(sha1), "a-b", q(sha1), "a/b", q(sha1)), "a/b", `"a" is also a file`, ErrBadKey},
		{"_config without path", doc("_config/x", q(sha1)), "_config/x", "_config/<container>/<path>", ErrBadKey},
		{"_config file", doc("_config", q(sha1)), "_config", "_config/<container>/<path>", ErrBadKey},
		{"non-hex sha", doc("bin", q(strings.Repeat("g", 64))), "bin", "sha256", ErrBadSha},
		{"short sha", doc("bin", q(sha1[:63])), "bin", "sha256", ErrBadSha},
		{"uppercase sha", doc("bin", q(strings.ToUpper(sha3))), "bin", "sha256", ErrBadSha},
		{"object for non-json key", doc("bin", `{"a":1}`), "bin", "only *.json keys", ErrBadSha},
		{"number for non-json key", doc("bin", `5`), "bin", "JSON number", ErrBadSha},

		// <container>/run.json.
		{"run.json as object", doc("x/run.json", q(sha1)), "x/run.json", "not an object reference", ErrInvalid},
		{"run.json array", doc("x/run.json", `[]`), "x/run.json", "must be a JSON object, got a array", ErrInvalid},
		{"missing name", doc("x/run.json", `{"type":"lxc"}`), "x/run.json", "name: missing", ErrInvalid},
		{"name not string", doc("x/run.json", `{"name":1}`), "x/run.json", "name: must be a string", ErrInvalid},
		{"nested duplicate", doc("x/run.json", `{"name":"x","name":"y"}`), "x/run.json", `duplicate object member "name"`, ErrDuplicate},
		{"nested syntax", doc("x/run.json", `{"name":"x",}`), "x/run.json", "expected object member name", ErrSyntax},
		{"name with slash", doc("x/run.json", `{"name":"a/b"}`), "x/run.json", "name: \"a/b\" is not a valid name", ErrInvalid},
		{"name dotdot", doc("x/run.json", `{"name":".."}`), "x/run.json", "not a valid name", ErrInvalid},
		// Issue 11, defect 2: "_pv_" is the host's caller name.
		{"name host", doc("x/run.json", `{"name":"_pv_"}`), "x/run.json", `name: "_pv_" is reserved`, ErrInvalid},
		{"name reserved prefix", doc("x/run.json", `{"name":"_pvx"}`), "x/run.json", `name: "_pvx" is reserved`, ErrInvalid},
		{"name newline", doc("x/run.json", `{"name":"a\n0::x"}`), "x/run.json", "control character", ErrInvalid},
		{"dir newline", doc(`a\nb/run.json`, `{"name":"x"}`), "a\nb/run.json", `directory: "a\nb" contains a control character`, ErrInvalid},
		{"name too long", doc("x/run.json", `{"name":"`+strings.Repeat("a", 256)+`"}`), "x/run.json", "longer than 255 bytes", ErrInvalid},
		{"bad type", doc(plat(`"type":"docker"`)...), "x/run.json", `type: unsupported platform type "docker"`, ErrInvalid},
		{"bad restart policy", doc(plat(`"restart_policy":"always"`)...), "x/run.json", `restart_policy: unknown restart policy "always"`, ErrInvalid},
		{"bad status goal", doc(plat(`"status_goal":"RUNNING"`)...), "x/run.json", `status_goal: unknown status goal "RUNNING"`, ErrInvalid},
		{"status goal lowercase", doc(plat(`"status_goal":"started"`)...), "x/run.json", "status_goal", ErrInvalid},
		{"roles string", doc(plat(`"roles":"mgmt"`)...), "x/run.json", "roles: must be an array", ErrInvalid},
		{"roles number element", doc(plat(`"roles":[1]`)...), "x/run.json", "roles:", ErrInvalid},
		{"auto_recovery not object", doc(plat(`"auto_recovery":true`)...), "x/run.json", "auto_recovery: must be an object", ErrInvalid},
		{"bad policy", doc(plat(`"auto_recovery":{"policy":"sometimes"}`)...), "x/run.json", `auto_recovery.policy: unknown policy "sometimes"`, ErrInvalid},
		{"negative max_retries", doc(plat(`"auto_recovery":{"max_retries":-1}`)...), "x/run.json", "auto_recovery.max_retries: must be a non-negative integer", ErrInvalid},
		{"float max_retries", doc(plat(`"auto_recovery":{"max_retries":1.5}`)...), "x/run.json", "auto_recovery.max_retries: must be a non-negative integer", ErrInvalid},
		{"string max_retries", doc(plat(`"auto_recovery":{"max_retries":"3"}`)...), "x/run.json", "auto_recovery.max_retries", ErrInvalid},
		{"huge max_retries", doc(plat(`"auto_recovery":{"max_retries":99999999999999999999999}`)...), "x/run.json", "auto_recovery.max_retries", ErrInvalid},
		{"negative retry_delay", doc(plat(`"auto_recovery":{"retry_delay":-1}`)...), "x/run.json", "auto_recovery.retry_delay: must be a non-negative number", ErrInvalid},
		{"string backoff_factor", doc(plat(`"auto_recovery":{"backoff_factor":"2"}`)...), "x/run.json", "auto_recovery.backoff_factor", ErrInvalid},
		{"negative reset_window", doc(plat(`"auto_recovery":{"reset_window":-5}`)...), "x/run.json", "auto_recovery.reset_window: must be a non-negative number of seconds", ErrInvalid},
		{"huge stable_timeout", doc(plat(`"auto_recovery":{"stable_timeout":1e300}`)...), "x/run.json", "auto_recovery.stable_timeout", ErrInvalid},
		{"bad backoff_policy", doc(plat(`"auto_recovery":{"backoff_policy":"sometimes"}`)...), "x/run.json", `auto_recovery.backoff_policy: unknown backoff policy "sometimes"`, ErrInvalid},
		{"zero backoff duration", doc(plat(`"auto_recovery":{"backoff_policy":"0s"}`)...), "x/run.json", "auto_recovery.backoff_policy: backoff duration", ErrInvalid},
		{"bad backoff unit", doc(plat(`"auto_recovery":{"backoff_policy":"10d"}`)...), "x/run.json", "auto_recovery.backoff_policy", ErrInvalid},
		{"overflow backoff", doc(plat(`"auto_recovery":{"backoff_policy":"99999999999999h"}`)...), "x/run.json", "out of range", ErrInvalid},
		{"network not object", doc(plat(`"network":"host"`)...), "x/run.json", "network: must be an object", ErrInvalid},
		{"bad network mode", doc(plat(`"network":{"mode":"bridge"}`)...), "x/run.json", `network.mode: unknown network mode "bridge"`, ErrInvalid},
		{"pool without name", doc(plat(`"network":{"mode":"pool"}`)...), "x/run.json", "network.pool: required", ErrInvalid},
		{"unknown pool", doc(plat(`"network":{"mode":"pool","pool":"p"}`)...), "x/run.json", `network.pool: unknown pool "p"`, ErrInvalid},
		{"config not string", doc("x/run.json", `{"name":"x","config":["a"]}`), "x/run.json", "config: must be a string", ErrInvalid},
		{"config missing", doc("x/run.json", `{"name":"x","config":"lxc.conf"}`), "x/run.json", "config: x/lxc.conf is not in the state", ErrMissingRef},
		{"config escapes dir", doc("x/run.json", `{"name":"x","config":"../y/c"}`, "y/c", q(sha1)), "x/run.json", "config: \"../y/c\" is not a clean relative path", ErrMissingRef},
		{"config in other dir", doc("x/run.json", `{"name":"x","config":"c"}`, "y/c", q(sha1)), "x/run.json", "x/c is not in the state", ErrMissingRef},
		{"root-volume missing", doc("x/run.json", `{"name":"x","root-volume":"r.sq"}`), "x/run.json", "root-volume: x/r.sq is not in the state", ErrMissingRef},
		{"root-volume handler missing", doc("x/run.json", `{"name":"x","root-volume":"dm:r.sq"}`, "x/dm:r.sq", q(sha1)), "x/run.json", "root-volume: x/r.sq", ErrMissingRef},
		{"volumes not array", doc(plat(`"volumes":"v"`)...), "x/run.json", "volumes: must be an array of strings", ErrInvalid},
		{"volumes element type", doc(plat(`"volumes":[1]`)...), "x/run.json", "volumes[0]: must be a string", ErrInvalid},
		{"volume missing", doc(plat(`"volumes":["root.sq","v.sq"]`)...), "x/run.json", "volumes[1]: x/v.sq is not in the state", ErrMissingRef},
		{"logs not array", doc(plat(`"logs":{}`)...), "x/run.json", "logs: must be an array of objects", ErrInvalid},
		{"logs element", doc(plat(`"logs":["f"]`)...), "x/run.json", "logs[0]: must be an object", ErrInvalid},
		{"logs value object", doc(plat(`"logs":[{"file":{}}]`)...), "x/run.json", "logs[0].file: must be a string", ErrInvalid},
		{"storage not object", doc(plat(`"storage":[]`)...), "x/run.json", "storage: must be an object", ErrInvalid},
		{"storage bad persistence", doc(plat(`"storage":{"v":{"persistence":"forever"}}`)...), "x/run.json", `storage.v.persistence: unknown persistence "forever"`, ErrInvalid},
		{"storage no persistence", doc(plat(`"storage":{"v":{"disk":"d"}}`)...), "x/run.json", "storage.v.persistence: missing", ErrInvalid},
		{"storage bad name", doc(plat(`"storage":{"a/b":{"persistence":"boot"}}`)...), "x/run.json", "storage.a/b", ErrInvalid},
		{"storage unknown disk", doc(plat(`"storage":{"v":{"persistence":"permanent","disk":"nope"}}`)...), "x/run.json", `storage.v.disk: unknown disk "nope"`, ErrInvalid},
		{"drivers not object", doc(plat(`"drivers":["wifi"]`)...), "x/run.json", "drivers: must be an object", ErrInvalid},
		{"drivers.required not array", doc(plat(`"drivers":{"required":"wifi"}`)...), "x/run.json", "drivers.required: must be an array", ErrInvalid},
		{"services not object", doc(plat(`"services":[]`)...), "x/run.json", "services: must be an object", ErrInvalid},
		{"services element", doc(plat(`"services":{"required":[1]}`)...), "x/run.json", "services.required[0]: must be an object", ErrInvalid},
		{"services name missing", doc(plat(`"services":{"optional":[{"type":"dbus"}]}`)...), "x/run.json", "services.optional[0].name: missing", ErrInvalid},
		{"services field type", doc(plat(`"services":{"optional":[{"name":"a","target":1}]}`)...), "x/run.json", "services.optional[0].target: must be a string", ErrInvalid},
		{"exports not array", doc(plat(`"exports":true`)...), "x/run.json", "exports: must be an array", ErrInvalid},
		{"dev-log string", doc(plat(`"dev-log":"yes"`)...), "x/run.json", "dev-log: must be true or false", ErrInvalid},
		{"automodfw number", doc(plat(`"automodfw":0`)...), "x/run.json", "automodfw", ErrInvalid},
		{"exec number", doc(plat(`"exec":1`)...), "x/run.json", "exec: must be a string", ErrInvalid},
		{"duplicate platform", doc("a/run.json", `{"name":"x"}`, "b/run.json", `{"name":"x"}`), "b/run.json", `platform name "x" (also in a/run.json)`, ErrDuplicate},
		{"unknown default group", doc(plat(`"group":"nope"`)...), "x/run.json", `group: unknown group "nope"`, ErrInvalid},
		{"unknown explicit group", doc(append(plat(`"group":"app"`), "groups.json", `[{"name":"g"}]`)...), "x/run.json", `unknown group "app"`, ErrInvalid},

		// bsp/run.json.
		{"bsp as object", doc("bsp/run.json", q(sha1)), "bsp/run.json", "not an object reference", ErrInvalid},
		{"bsp linux and fit", doc("bsp/run.json", `{"linux":"k","fit":"f"}`, "bsp/k", q(sha1), "bsp/f", q(sha1)), "bsp/run.json", "mutually exclusive", ErrInvalid},
		{"bsp initrd without linux", doc("bsp/run.json", `{"initrd":"i"}`, "bsp/i", q(sha1)), "bsp/run.json", "linux: missing", ErrInvalid},
		{"bsp missing kernel", doc("bsp/run.json", `{"linux":"k"}`), "bsp/run.json", "linux: bsp/k is not in the state", ErrMissingRef},
		{"bsp missing addon", doc("bsp/run.json", `{"addons":["a.cpio"]}`), "bsp/run.json", "addons[0]: bsp/a.cpio is not in the state", ErrMissingRef},
		{"bsp addons not array", doc("bsp/run.json", `{"addons":"a"}`), "bsp/run.json", "addons: must be an array", ErrInvalid},
		{"bsp modules_rel type", doc("bsp/run.json", `{"modules_6.1":1}`), "bsp/run.json", "modules_6.1: must be a string", ErrInvalid},
		{"bsp modules_rel missing", doc("bsp/run.json", `{"modules_6.1":"m"}`), "bsp/run.json", "modules_6.1: bsp/m is not in the state", ErrMissingRef},
		{"bsp firmware escapes", doc("bsp/run.json", `{"firmware":"../fw"}`), "bsp/run.json", "not a clean relative path", ErrMissingRef},

		// bsp/drivers.json.
		{"drivers spec", doc("bsp/drivers.json", `{"#spec":"driver-aliases@2"}`), "bsp/drivers.json", "#spec", ErrSpec},
		{"drivers section", doc("bsp/drivers.json", `{"all":["a"]}`), "bsp/drivers.json", "all: must be an object", ErrInvalid},
		{"drivers alias", doc("bsp/drivers.json", `{"all":{"wifi":"m"}}`), "bsp/drivers.json", "all.wifi: must be an array", ErrInvalid},

		// device.json, groups.json, disks.json.
		{"device not object", doc("device.json", `[]`), "device.json", "must be a JSON object", ErrInvalid},
		{"groups not array", doc("device.json", `{"groups":{}}`), "device.json", "groups: must be an array", ErrInvalid},
		{"group missing name", doc("device.json", `{"groups":[{"timeout":3}]}`), "device.json", "groups[0].name: missing", ErrInvalid},
		{"duplicate group", doc("device.json", `{"groups":[{"name":"a"},{"name":"a"}]}`), "device.json", `groups[1].name: group "a" is defined twice`, ErrDuplicate},
		{"group bad goal", doc("device.json", `{"groups":[{"name":"a","status_goal":"UP"}]}`), "device.json", "groups[0].status_goal", ErrInvalid},
		{"group bad policy", doc("device.json", `{"groups":[{"name":"a","restart_policy":"never"}]}`), "device.json", "groups[0].restart_policy", ErrInvalid},
		{"group bad timeout", doc("device.json", `{"groups":[{"name":"a","timeout":"30"}]}`), "device.json", "groups[0].timeout", ErrInvalid},
		{"group bad recovery", doc("device.json", `{"groups":[{"name":"a","auto_recovery":{"policy":"x"}}]}`), "device.json", "groups[0].auto_recovery.policy", ErrInvalid},
		{"disk unknown type", doc("device.json", `{"disks":[{"name":"d","type":"floppy"}]}`), "device.json", `disks[0].type: unknown disk type "floppy"`, ErrInvalid},
		{"disk missing name", doc("device.json", `{"disks":[{"type":"directory"}]}`), "device.json", "disks[0].name: missing", ErrInvalid},
		{"disk field type", doc("device.json", `{"disks":[{"name":"d","type":"directory","path":1}]}`), "device.json", "disks[0].path: must be a string", ErrInvalid},
		{"duplicate disk", doc("device.json", `{"disks":[{"name":"d","type":"directory"}],"disks_v2":[{"name":"d","type":"directory"}]}`), "device.json", `disk "d" is defined twice`, ErrDuplicate},
		{"alias shadows", doc("device.json", `{"disks":[{"name":"a","type":"directory"},{"name":"b","type":"directory","aliases":["a"]}]}`), "device.json", `alias "a" of disk "b"`, ErrDuplicate},
		{"volume unknown disk", doc("device.json", `{"volumes":{"pv--devmeta":{"persistence":"permanent","disk":"x"}}}`), "device.json", `volumes.pv--devmeta.disk: unknown disk "x"`, ErrInvalid},
		{"network not object", doc("device.json", `{"network":[]}`), "device.json", "network: must be an object", ErrInvalid},
		{"pool missing bridge", doc("device.json", `{"network":{"pools":{"p":{"subnet":"10.0.0.0/24"}}}}`), "device.json", "network.pools.p.bridge: missing", ErrInvalid},
		{"pool bad subnet", doc("device.json", `{"network":{"pools":{"p":{"bridge":"b","subnet":"10.0.0.0"}}}}`), "device.json", `network.pools.p.subnet: "10.0.0.0" is not an IPv4 CIDR`, ErrInvalid},
		{"pool gateway outside", doc("device.json", `{"network":{"pools":{"p":{"bridge":"b","subnet":"10.0.0.0/24","gateway":"10.0.1.1"}}}}`), "device.json", "network.pools.p.gateway: 10.0.1.1 is outside", ErrInvalid},
		{"pool bad type", doc("device.json", `{"network":{"pools":{"p":{"type":"macvlan","bridge":"b","subnet":"10.0.0.0/24"}}}}`), "device.json", "network.pools.p.type", ErrInvalid},
		{"pool nat string", doc("device.json", `{"network":{"pools":{"p":{"bridge":"b","subnet":"10.0.0.0/24","nat":"yes"}}}}`), "device.json", "network.pools.p.nat", ErrInvalid},
		{"legacy groups", doc("groups.json", `[{"name":1}]`), "groups.json", "[0].name: must be a string", ErrInvalid},
		{"legacy groups as object", doc("groups.json", q(sha1)), "groups.json", "not an object reference", ErrInvalid},
		{"legacy disks", doc("disks.json", `[{"name":"d","type":"tape"}]`), "disks.json", "unknown disk type", ErrInvalid},

		// services.json.
		{"services.json not array", doc("x/services.json", `{"services":{}}`), "x/services.json", "services: must be an array", ErrInvalid},
		{"services.json element name", doc("x/services.json", `{"services":[{"type":"dbus"}]}`), "x/services.json", "services[0].name: missing", ErrInvalid},
		{"services.json as object", doc("x/services.json", q(sha1)), "x/services.json", "not an object reference", ErrInvalid},

		// Signatures.
		{"sig protected not base64", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"!!","signature":"c2ln"}`), "_sigs/a.json", "protected: not base64url", ErrInvalid},
		{"sig protected not JSON", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64("nope")+`","signature":"c2ln"}`), "_sigs/a.json", "protected: not JSON", ErrInvalid},
		{"sig bad alg", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"alg":"none"}`)+`","signature":"c2ln"}`), "_sigs/a.json", `protected.alg: unsupported algorithm "none"`, ErrInvalid},
		{"sig missing alg", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"typ":"PVS"}`)+`","signature":"c2ln"}`), "_sigs/a.json", "protected.alg: missing", ErrInvalid},
		{"sig include not array", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"alg":"ES256","pvs":{"include":"x/**"}}`)+`","signature":"c2ln"}`), "_sigs/a.json", "protected.pvs.include: must be an array", ErrInvalid},
		{"sig missing signature", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"alg":"ES256"}`)+`"}`), "_sigs/a.json", "signature: missing", ErrInvalid},
		{"sig signature not base64", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+b64(`{"alg":"ES256"}`)+`","signature":"a b"}`), "_sigs/a.json", "signature: not base64url", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%s) = %v, nil, want error", tt.in, s)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%s) error %v (%T), want *Error", tt.in, err, err)
			}
			if se.Key != tt.key {
				t.Errorf("Parse error %q: Key = %q, want %q", err, se.Key, tt.key)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Parse error = %q, want it to contain %q", err, tt.msg)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Parse error = %q, want errors.Is %v", err, tt.wantErr)
			}
			if tt.key != "" && !strings.HasPrefix(err.Error(), tt.key+": ") {
				t.Errorf("Parse error = %q, want prefix %q", err, tt.key+": ")
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	q := func(s string) string { return `"` + s + `"` }
	tests := []struct {
		name string
		in   string
	}{
		{"only spec", doc()},
		{"json key with sha", doc("a/data.json", q(sha1))},
		{"json key with plain string", doc("a/data.json", q("hello"))},
		{"json key with number", doc("a/data.json", `1.5`)},
		{"src and build json anywhere", doc("x/src.json", `[1]`, "x/build.json", `"s"`, "bsp/src.json", `{}`)},
		{"deep run.json is not a platform", doc("a/b/run.json", `[]`)},
		{"_config run.json is not a platform", doc("_config/x/run.json", `"text"`)},
		{"run.json prefix keys are not misread", doc(plat(`"names":"y","typex":"z","configs":1,"groups":"nope","roles_x":1`)...)},
		{"unknown run.json keys", doc(plat(`"future":{"a":[1,2]}`)...)},
		{"roles object", doc(plat(`"roles":{}`)...)},
		{"automodfw bool", doc(plat(`"automodfw":false`)...)},
		{"storage without disks on boot", doc(plat(`"storage":{"v":{"persistence":"boot"}}`)...)},
		{"storage disk via alias", doc(append(plat(`"storage":{"v":{"persistence":"boot","disk":"al"}}`), "device.json", `{"disks":[{"name":"d","type":"directory","aliases":["al"]}]}`)...)},
		{"device.json disables groups.json", doc(append(plat(`"group":"data"`), "device.json", `{}`, "groups.json", `[{"name":"only"}]`)...)},
		{"device.json ignores bad legacy files", doc("device.json", `{}`, "groups.json", `"junk"`, "disks.json", `7`)},
		{"empty groups in device", doc("device.json", `{"groups":[]}`, "a/run.json", `{"name":"a"}`)},
		{"fit only", doc("bsp/run.json", `{"fit":"f.itb"}`, "bsp/f.itb", q(sha1))},
		{"rpiab only", doc("bsp/run.json", `{"rpiab":"rpiab.img"}`, "bsp/rpiab.img", q(sha1))},
		{"empty bsp", doc("bsp/run.json", `{}`)},
		{"unknown sig spec", doc("_sigs/a.json", `{"#spec":"pvs@9","x":1}`)},
		{"sig as object entry", doc("_sigs/a.json", q(sha1))},
		{"sig padded base64", doc("_sigs/a.json", `{"#spec":"pvs@2","protected":"`+base64.URLEncoding.EncodeToString([]byte(`{"alg":"ES384"}`))+`","signature":"c2lnbg=="}`)},
		{"pool mode host", doc(plat(`"network":{"mode":"host"}`)...)},
		{"backoff durations", doc(plat(`"auto_recovery":{"backoff_policy":"30s"}`)...)},
		{"backoff m", doc(plat(`"auto_recovery":{"backoff_policy":"5m"}`)...)},
		{"backoff h", doc(plat(`"auto_recovery":{"backoff_policy":"1h"}`)...)},
		{"unicode keys", doc("app/файл", q(sha1), "app/é.json", `{"ü":"✓"}`)},
		{"services.json without platform", doc("svc/services.json", `{"services":[]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.in)); err != nil {
				t.Errorf("Parse(%s) error: %v", tt.in, err)
			}
		})
	}
}

func TestPrefixKeysNotMisread(t *testing.T) {
	s := mustParse(t, doc(plat(`"names":"y","typex":"z","groups":"nope","roles_x":1,"status_goals":"x"`)...))
	p := s.Platform("x")
	if p == nil || p.Type != "lxc" || p.Group != "" || p.RolesSet || p.StatusGoal != "" {
		t.Errorf("Platform(x) = %+v, want near-prefix keys ignored", p)
	}
}
