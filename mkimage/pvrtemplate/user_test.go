package pvrtemplate

import (
	"errors"
	"strings"
	"testing"
)

var testAccounts = Accounts{
	Passwd: []byte("# comment\nroot:x:0:0:root:/root:/bin/sh\nbroken line\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\napp:x:1000:2000::/home/app:/bin/sh\n"),
	Group:  []byte("root:x:0:\nnginx:x:101:\nstaff:x:50:app\n"),
}

func TestResolveUser(t *testing.T) {
	for _, c := range []struct {
		spec     string
		uid, gid uint32
	}{
		{"root", 0, 0},
		{"nginx", 101, 101},
		{"app", 1000, 2000},  // primary group from passwd
		{"1000", 1000, 2000}, // a uid with an entry takes its group
		{"4242", 4242, 0},    // a uid without entry: group 0
		{"app:staff", 1000, 50},
		{"app:77", 1000, 77},
		{"4242:staff", 4242, 50},
		{"0:0", 0, 0},
	} {
		uid, gid, err := ResolveUser(c.spec, testAccounts)
		if err != nil || uid != c.uid || gid != c.gid {
			t.Errorf("ResolveUser(%q) = %d, %d, %v; want %d, %d", c.spec, uid, gid, err, c.uid, c.gid)
		}
	}
	for _, c := range []struct {
		spec string
		want error
	}{
		{"nobody", ErrUser}, {"app:wheel", ErrUser}, {"broken", ErrUser}, {"", ErrArg}, {"app:", ErrArg}, {":staff", ErrArg},
	} {
		if _, _, err := ResolveUser(c.spec, testAccounts); !errors.Is(err, c.want) {
			t.Errorf("ResolveUser(%q): %v, want %v", c.spec, err, c.want)
		}
	}
	if _, _, err := ResolveUser("nginx", Accounts{}); !errors.Is(err, ErrUser) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("no passwd: %v", err)
	}
}

func TestRenderNamedUser(t *testing.T) {
	src := Src{Template: Builtin, DockerConfig: Config{Cmd: []string{"/bin/sh"}, User: "nginx:staff"}}
	f, err := Render("web", src, Options{Accounts: testAccounts})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"lxc.init.uid = 101\n", "lxc.init.gid = 50\n"} {
		if !strings.Contains(string(f.LXCConf), l) {
			t.Errorf("lxc.container.conf lacks %q:\n%s", l, f.LXCConf)
		}
	}
	src.DockerConfig.User = "ghost"
	if _, err := Render("web", src, Options{Accounts: testAccounts}); !errors.Is(err, ErrUser) {
		t.Errorf("missing user: %v, want ErrUser", err)
	}
}

func FuzzResolveUser(f *testing.F) {
	f.Add("nginx:staff", string(testAccounts.Passwd), string(testAccounts.Group))
	f.Add("1000", "a:x:1000:5::/:/bin/sh\n", "")
	f.Add("u:g", "u:x:4294967295:1\n", "g:x:-1:\n")
	f.Fuzz(func(t *testing.T, spec, passwd, group string) {
		uid, _, err := ResolveUser(spec, Accounts{Passwd: []byte(passwd), Group: []byte(group)})
		if err == nil && uid == 1<<32-1 {
			t.Fatalf("%q resolved to the invalid uid", spec)
		}
	})
}
