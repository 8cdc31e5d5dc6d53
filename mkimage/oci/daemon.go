package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// KindDaemon is an image in the local Docker engine's store
// (docker-daemon:<ref>), pvr's --source local.
const KindDaemon = "docker-daemon"

// ErrDaemon wraps every failure to reach the Docker engine or get the
// image from it.
var ErrDaemon = errors.New("cannot get the image from the local Docker engine")

// daemonSocket is the engine's unix socket: DOCKER_HOST (unix:// only),
// else Docker's default.
func daemonSocket() (string, error) {
	h := os.Getenv("DOCKER_HOST")
	if h == "" {
		return "/var/run/docker.sock", nil
	}
	if p, ok := strings.CutPrefix(h, "unix://"); ok && p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%w: DOCKER_HOST %q (only unix:// sockets are supported)", ErrDaemon, h)
}

// fromDaemon exports the image with the Engine API's GET
// /images/<ref>/get (a docker save tarball) into an unlinked temporary
// file, read as a docker archive; ref without tag or digest is :latest.
func fromDaemon(ctx context.Context, s Source) (v1.Image, string, string, error) {
	ref, err := name.ParseReference(s.Ref)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrSource, s, err)
	}
	want, repo, tag := s.Ref, s.Ref, ""
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
		if !strings.HasSuffix(s.Ref, ":"+tag) {
			want += ":" + tag
		}
		repo = strings.TrimSuffix(s.Ref, ":"+tag)
	} else {
		repo, _, _ = strings.Cut(s.Ref, "@")
	}
	sock, err := daemonSocket()
	if err != nil {
		return nil, "", "", err
	}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	u := url.URL{Scheme: "http", Host: "docker", Path: "/images/" + want + "/get"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrDaemon, want, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s (socket %s): %w", ErrDaemon, want, sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var m struct {
			Message string `json:"message"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return nil, "", "", fmt.Errorf("%w %s: %s: %s", ErrDaemon, want, resp.Status, m.Message)
	}
	f, err := os.CreateTemp("", "pv-docker-save-")
	if err != nil {
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrDaemon, want, err)
	}
	os.Remove(f.Name()) // the open file is the only reference
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		f.Close()
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrDaemon, want, err)
	}
	open := func() (io.ReadCloser, error) { return io.NopCloser(io.NewSectionReader(f, 0, n)), nil }
	img, err := tarball.Image(open, nil)
	if err != nil {
		f.Close()
		return nil, "", "", fmt.Errorf("%w %s: %w", ErrDaemon, want, err)
	}
	// docker_name is the repository as the user named it (pvr's).
	return img, repo, tag, nil
}
