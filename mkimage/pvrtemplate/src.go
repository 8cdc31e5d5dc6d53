// Package pvrtemplate is the one producer of a container's run.json and
// lxc.container.conf in this repository: it renders pvr's builtin
// LXC/Docker template ("builtin-lxc-docker") from a src.json — the image
// config (docker_config) and the template args (PV_GROUP, PV_ROLES,
// PV_DRIVERS_*, PV_LXC_EXTRA_CONF …). The image builder's default
// containers, the runtime's test fixtures and `pvr-app` all call it, so
// the files a device gets have one shape.
//
//	src := pvrtemplate.Src{Template: pvrtemplate.Builtin, Args: map[string]any{"PV_GROUP": "app"},
//		DockerConfig: pvrtemplate.Config{Cmd: []string{"/bin/httpd", "-f"}}}
//	f, err := pvrtemplate.Render("web", src, pvrtemplate.Options{})
//	// f.RunJSON, f.LXCConf (nil for a data container)
package pvrtemplate

import (
	"encoding/json"
	"fmt"
	"maps"
)

// Spec values of the manifests.
const (
	SrcSpec = "service-manifest-src@1"
	RunSpec = "service-manifest-run@1"
	// Builtin is pvr's template name for containers made from images.
	Builtin = "builtin-lxc-docker"
)

// Config is the part of an OCI/Docker image config the template reads
// (src.json docker_config; Docker's field names).
type Config struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
}

// Src is a container's src.json (service-manifest-src@1). Keys this
// package does not know are kept through a read and write.
type Src struct {
	Args         map[string]any
	DockerConfig Config
	// DockerName is the repository (or oci:<dir>, docker-archive:<file>),
	// DockerTag its tag, DockerDigest the manifest digest as pvr writes
	// it (name@sha256:… for registries), DockerSource remote or local,
	// DockerPlatform the platform converted (os/arch[/variant]).
	DockerName, DockerTag, DockerDigest, DockerSource, DockerPlatform string
	// Persistence maps image paths to persistence (permanent, revision,
	// boot, with @disk), and "lxc-overlay" to the overlay's.
	Persistence map[string]string
	Template    string
	// Extra holds the keys this package does not interpret.
	Extra map[string]json.RawMessage
}

var known = []string{"#spec", "args", "docker_config", "docker_name", "docker_tag", "docker_digest", "docker_source",
	"docker_platform", "persistence", "template"}

// MarshalJSON writes the src.json document (keys sorted, as pvr's).
func (s Src) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	for k, v := range s.Extra {
		m[k] = v
	}
	m["#spec"] = SrcSpec
	m["args"] = orEmpty(s.Args)
	m["docker_config"] = s.DockerConfig
	for k, v := range map[string]string{"docker_name": s.DockerName, "docker_tag": s.DockerTag, "docker_digest": s.DockerDigest,
		"docker_source": s.DockerSource, "docker_platform": s.DockerPlatform} {
		if v != "" {
			m[k] = v
		}
	}
	if s.Persistence == nil {
		m["persistence"] = map[string]string{}
	} else {
		m["persistence"] = s.Persistence
	}
	m["template"] = s.Template
	return json.MarshalIndent(m, "", "  ")
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// UnmarshalJSON reads a src.json.
func (s *Src) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("src.json: %w", err)
	}
	var spec string
	if r, ok := m["#spec"]; ok {
		json.Unmarshal(r, &spec)
	}
	if spec != SrcSpec {
		return fmt.Errorf("src.json: #spec %q, want %q", spec, SrcSpec)
	}
	*s = Src{Extra: map[string]json.RawMessage{}}
	fields := map[string]any{"args": &s.Args, "docker_config": &s.DockerConfig, "docker_name": &s.DockerName,
		"docker_tag": &s.DockerTag, "docker_digest": &s.DockerDigest, "docker_source": &s.DockerSource,
		"docker_platform": &s.DockerPlatform, "persistence": &s.Persistence, "template": &s.Template}
	for k, r := range m {
		if k == "#spec" {
			continue
		}
		p, ok := fields[k]
		if !ok {
			s.Extra[k] = r
			continue
		}
		if err := json.Unmarshal(r, p); err != nil {
			return fmt.Errorf("src.json: %s: %w", k, err)
		}
	}
	if len(s.Extra) == 0 {
		s.Extra = nil
	}
	s.Args = maps.Clone(s.Args)
	return nil
}
