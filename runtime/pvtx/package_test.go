package pvtx

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func testPackage(t testing.TB) (json string, tarball []byte) {
	json = `{` + spec + `,"app/root.squashfs":"` + shaOf([]byte("root")) + `","app/run.json":{"name":"app"}}`
	return json, makeTar(t, member{name: "json", body: []byte(json)}, obj("root"))
}

func TestReadPackageFormats(t *testing.T) {
	js, tarball := testPackage(t)
	for _, tc := range []struct {
		name    string
		in      []byte
		objects int
	}{
		{"json", []byte(js), 0},
		{"json with leading space", []byte("\n  " + js), 0},
		{"gzip json", gz([]byte(js)), 0},
		{"tar", tarball, 1},
		{"tar.gz", gz(tarball), 1},
		{"tar.bz2", bz2(t, tarball), 1},
		{"dot-slash names and dirs", makeTar(t, member{name: "./", typ: tar.TypeDir}, member{name: "./objects/", typ: tar.TypeDir}, obj("root"), member{name: "./json", body: []byte(js)}, member{name: "README", body: []byte("ignored")}), 1},
	} {
		var sink memSink
		d, err := ReadPackage(context.Background(), bytes.NewReader(tc.in), &sink, Limits{})
		if err != nil {
			t.Errorf("%s: ReadPackage = %v", tc.name, err)
			continue
		}
		if got := keys(d); got != "app/root.squashfs app/run.json" {
			t.Errorf("%s: keys = %s, want app/root.squashfs app/run.json", tc.name, got)
		}
		if len(sink.objs) != tc.objects {
			t.Errorf("%s: %d objects, want %d", tc.name, len(sink.objs), tc.objects)
		}
		if tc.objects > 0 && string(sink.objs[shaOf([]byte("root"))]) != "root" {
			t.Errorf("%s: object content = %q, want root", tc.name, sink.objs[shaOf([]byte("root"))])
		}
	}
}

func TestReadPackageBad(t *testing.T) {
	js, tarball := testPackage(t)
	j := member{name: "json", body: []byte(js)}
	bad := obj("root")
	bad.body = []byte("toor")
	truncatedGz := gz(tarball)
	truncatedGz = truncatedGz[:len(truncatedGz)/2]
	for _, tc := range []struct {
		name   string
		in     []byte
		lim    Limits
		want   error
		substr string
	}{
		{"empty", nil, Limits{}, ErrBadPackage, "empty input"},
		{"garbage", []byte("hello world"), Limits{}, ErrBadPackage, "unrecognised format"},
		{"gzip garbage", gz([]byte("hello")), Limits{}, ErrBadPackage, "neither JSON nor tar"},
		{"truncated gzip", truncatedGz, Limits{}, ErrBadPackage, ""},
		{"bad json", []byte(`{"a":`), Limits{}, ErrBadJSON, ""},
		{"wrong spec", []byte(`{"#spec":"x"}`), Limits{}, ErrBadJSON, "#spec"},
		{"json in tar malformed", makeTar(t, member{name: "json", body: []byte("{")}), Limits{}, ErrBadJSON, `member "json"`},
		{"no json", makeTar(t, obj("root")), Limits{}, ErrBadPackage, "no json member"},
		{"two json", makeTar(t, j, j), Limits{}, ErrBadPackage, "duplicate json"},
		{"dotdot", makeTar(t, j, member{name: "objects/../../etc/passwd", body: []byte("x")}), Limits{}, ErrBadPackage, "escapes"},
		{"dotdot json", makeTar(t, member{name: "../json", body: []byte(js)}), Limits{}, ErrBadPackage, "escapes"},
		{"absolute", makeTar(t, j, member{name: "/etc/passwd", body: []byte("x")}), Limits{}, ErrBadPackage, "absolute"},
		{"symlink", makeTar(t, j, member{name: "objects/x", typ: tar.TypeSymlink, linkname: "/etc/passwd"}), Limits{}, ErrBadPackage, "symlink not allowed"},
		{"symlink json", makeTar(t, member{name: "json", typ: tar.TypeSymlink, linkname: "/etc/passwd"}), Limits{}, ErrBadPackage, "symlink not allowed"},
		{"hardlink", makeTar(t, j, member{name: "objects/" + shaOf([]byte("x")), typ: tar.TypeLink, linkname: "../../etc/shadow"}), Limits{}, ErrBadPackage, "hard link not allowed"},
		{"char device", makeTar(t, j, member{name: "null", typ: tar.TypeChar}), Limits{}, ErrBadPackage, "character device not allowed"},
		{"block device", makeTar(t, j, member{name: "sda", typ: tar.TypeBlock}), Limits{}, ErrBadPackage, "block device not allowed"},
		{"fifo", makeTar(t, j, member{name: "fifo", typ: tar.TypeFifo}), Limits{}, ErrBadPackage, "fifo not allowed"},
		{"object name not sha", makeTar(t, j, member{name: "objects/passwd", body: []byte("x")}), Limits{}, ErrBadPackage, "not a sha256"},
		{"object below objects", makeTar(t, j, member{name: "objects/a/" + shaOf(nil), body: nil}), Limits{}, ErrBadPackage, "below objects"},
		{"bad checksum", makeTar(t, j, bad), Limits{}, ErrBadChecksum, ""},
		{"huge json", makeTar(t, j), Limits{MaxJSON: 10}, ErrTooLarge, `member "json"`},
		{"huge plain json", []byte(js), Limits{MaxJSON: 10}, ErrTooLarge, ""},
		{"huge object", makeTar(t, j, obj("root")), Limits{MaxObject: 2}, ErrTooLarge, "objects/"},
		{"truncated member", makeTar(t, j, member{name: obj("root").name, body: []byte("ro"), size: 4})[:1536], Limits{}, ErrBadPackage, ""},
	} {
		var sink memSink
		_, err := ReadPackage(context.Background(), bytes.NewReader(tc.in), &sink, tc.lim)
		if !errors.Is(err, tc.want) || !strings.Contains(errString(err), tc.substr) {
			t.Errorf("%s: ReadPackage = %v, want %v containing %q", tc.name, err, tc.want, tc.substr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestVerifierStopsBeforeLastChunk(t *testing.T) {
	v := newVerifier(strings.NewReader("abcd"), shaOf([]byte("abce")), 4)
	buf := make([]byte, 2)
	var got []byte
	var err error
	for err == nil {
		var n int
		n, err = v.Read(buf)
		got = append(got, buf[:n]...)
	}
	if !errors.Is(err, ErrBadChecksum) || string(got) != "ab" {
		t.Errorf("verifier read %q, %v, want \"ab\", ErrBadChecksum", got, err)
	}
}

func FuzzReadPackage(f *testing.F) {
	js, tarball := testPackage(f)
	f.Add([]byte(js))
	f.Add(tarball)
	f.Add(gz(tarball))
	f.Add(gz([]byte(js)))
	f.Add(makeTar(f, member{name: "json", body: []byte(js)}, member{name: "objects/x", typ: tar.TypeSymlink, linkname: "/"}))
	f.Add([]byte("BZh91AY&SY"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var sink memSink
		d, err := ReadPackage(context.Background(), bytes.NewReader(in), &sink, Limits{MaxJSON: 1 << 16, MaxObject: 1 << 16})
		if err != nil {
			return
		}
		for sha, b := range sink.objs {
			if shaOf(b) != sha {
				t.Fatalf("object %s accepted with content hashing to %s", sha, shaOf(b))
			}
		}
		if _, err := ParseDoc(d.Bytes()); err != nil {
			t.Fatalf("accepted document does not re-parse: %v", err)
		}
	})
}
