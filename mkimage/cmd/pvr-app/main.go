// Command pvr-app is pvr's `app` verbs on a pvr checkout, for containers
// made from container images (the conversion is mkimage/oci, the files
// mkimage/pvrtemplate's):
//
//	pvr-app [-C checkout] add --from <src> [--source remote,local] [--platform os/arch[/variant]]
//	        [--arg KEY=VAL]... [--arg-json file] <name>
//	pvr-app update <name>      follow the image's tag
//	pvr-app install <name>     re-render after src.json edits
//	pvr-app ls | info <name> | rm <name>
//	pvr-app export <out.tgz> <name>...   a pvr export tarball (pvtx add, PVR_MERGE_SRC)
//
// <src> is oci:<dir>[:tag], docker-archive:<file>[:repo:tag],
// docker://<ref>, docker-daemon:<ref> (the local Docker engine over its
// unix socket, DOCKER_HOST) or a bare reference (nginx:latest), looked up
// as --source says (default remote, then local). A leading
// "app" word is accepted, so `pvr-app app add …` reads as `pvr app add …`.
// After it, `pvr add . && pvr commit && pvr post` publishes the apps.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/pantavisor/pantavisor-go/mkimage/app"
	"github.com/pantavisor/pantavisor-go/mkimage/oci"
	"github.com/pantavisor/pantavisor-go/mkimage/pvrtemplate"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pvr-app:", err)
		os.Exit(1)
	}
}

// errUsage is returned for bad command lines.
var errUsage = errors.New("usage: pvr-app [-C checkout] add|update|install|ls|info|rm|export …")

// argList collects repeated --arg KEY=VAL.
type argList map[string]any

func (a argList) String() string { return "" }

// Set takes KEY=VAL; a JSON array or object value (["mgmt"]) is decoded,
// as src.json args are lists for PV_ROLES, PV_DRIVERS_* ….
func (a argList) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("--arg %q: want KEY=VAL", s)
	}
	var j any
	if (strings.HasPrefix(v, "[") || strings.HasPrefix(v, "{")) && json.Unmarshal([]byte(v), &j) == nil {
		a[k] = j
		return nil
	}
	a[k] = v
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	top := flag.NewFlagSet("pvr-app", flag.ContinueOnError)
	top.SetOutput(stderr)
	dir := top.String("C", ".", "pvr checkout directory")
	if err := top.Parse(args); err != nil {
		return err
	}
	args = top.Args()
	if len(args) > 0 && args[0] == "app" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errUsage
	}
	verb, args := args[0], args[1:]
	fs := flag.NewFlagSet("pvr-app "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o app.Options
	fs.StringVar(&o.Platform, "platform", "", "image platform os/arch[/variant] (default: the checkout's _hostconfig/pvr/docker.json, else linux/amd64)")
	fs.StringVar(&o.Comp, "comp", "xz", "squashfs compressor")
	from := fs.String("from", "", "image source (add)")
	source := fs.String("source", "remote,local", "where a bare --from reference is looked up, in order: remote (registry), local (Docker engine), as pvr's --source (add)")
	argJSON := fs.String("arg-json", "", "JSON file of template args (add)")
	targs := argList{}
	fs.Var(targs, "arg", "template arg KEY=VAL, repeatable (add)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rest := fs.Args()
	need := func(n int) error {
		if len(rest) != n {
			return fmt.Errorf("%s: %w", verb, errUsage)
		}
		return nil
	}
	switch verb {
	case "add":
		if err := need(1); err != nil {
			return err
		}
		srcs, err := addSources(*from, *source)
		if err != nil {
			return err
		}
		if *argJSON != "" {
			b, err := os.ReadFile(*argJSON)
			if err != nil {
				return fmt.Errorf("--arg-json: %w", err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				return fmt.Errorf("--arg-json %s: %w", *argJSON, err)
			}
			for k, v := range m {
				if _, set := targs[k]; !set {
					targs[k] = v
				}
			}
		}
		// The next source is tried only when one cannot be reached or
		// lacks the image (pvr's remote,local fallback).
		var s pvrtemplate.Src
		var errs []error
		for _, src := range srcs {
			s, err = app.Add(ctx, *dir, rest[0], src, targs, o)
			if err == nil || !(errors.Is(err, oci.ErrRegistry) || errors.Is(err, oci.ErrDaemon)) {
				break
			}
			errs = append(errs, err)
		}
		if err != nil {
			return errors.Join(append(errs[:len(errs):len(errs)], err)...)
		}
		fmt.Fprintf(stdout, "%s: %s %s (%s)\n", rest[0], s.DockerName, s.DockerDigest, s.DockerPlatform)
	case "update":
		if err := need(1); err != nil {
			return err
		}
		changed, err := app.Update(ctx, *dir, rest[0], o)
		if err != nil {
			return err
		}
		if changed {
			fmt.Fprintf(stdout, "%s: updated\n", rest[0])
		} else {
			fmt.Fprintf(stdout, "%s: up to date\n", rest[0])
		}
	case "install":
		if err := need(1); err != nil {
			return err
		}
		return app.Install(ctx, *dir, rest[0], o)
	case "ls":
		if err := need(0); err != nil {
			return err
		}
		names, err := app.List(*dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintln(stdout, n)
		}
	case "info":
		if err := need(1); err != nil {
			return err
		}
		s, err := app.Read(*dir, rest[0])
		if err != nil {
			return err
		}
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", b)
	case "rm":
		if err := need(1); err != nil {
			return err
		}
		return app.Remove(*dir, rest[0])
	case "export":
		if len(rest) < 2 {
			return fmt.Errorf("export: %w", errUsage)
		}
		f, err := os.Create(rest[0])
		if err != nil {
			return err
		}
		if err := app.Export(*dir, rest[1:], f); err != nil {
			f.Close()
			os.Remove(rest[0])
			return err
		}
		return f.Close()
	default:
		return fmt.Errorf("%q: %w", verb, errUsage)
	}
	return nil
}

// addSources maps pvr's --from/--source onto the image sources to try,
// in order: a bare reference is looked up in the registry (remote) and
// in the local Docker engine's store (local, docker-daemon:) as --source
// orders them; an explicit oci:, docker-archive:, docker:// or
// docker-daemon: source is the only one.
func addSources(from, source string) ([]string, error) {
	if from == "" {
		return nil, errors.New("add: --from is required")
	}
	s, err := oci.Parse(from)
	if err != nil {
		return nil, err
	}
	order := strings.Split(source, ",")
	for _, o := range order {
		if o != "remote" && o != "local" {
			return nil, fmt.Errorf("add: --source %q: want remote, local or both, comma-separated", source)
		}
	}
	switch s.Kind {
	case oci.KindRegistry:
		if strings.HasPrefix(from, "docker://") {
			return []string{s.String()}, nil
		}
		var out []string
		for _, o := range order {
			if o == "local" {
				out = append(out, oci.Source{Kind: oci.KindDaemon, Ref: s.Ref}.String())
			} else {
				out = append(out, s.String())
			}
		}
		return out, nil
	case oci.KindDaemon:
		return []string{s.String()}, nil
	}
	// src.json keeps the path for install and update, run from anywhere.
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return nil, err
	}
	s.Path = abs
	return []string{s.String()}, nil
}
