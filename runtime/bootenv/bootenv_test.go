package bootenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVars(t *testing.T) {
	var v Vars
	v.Set("pv_rev", "0")
	v.Set("pv_try", "1")
	v.Set("pv_rev", "2")
	if want := (Vars{{"pv_rev", "2"}, {"pv_try", "1"}}); !slices.Equal(v, want) {
		t.Errorf("Set thrice = %v, want %v (order kept)", v, want)
	}
	if v.Get("pv_try") != "1" || v.Get("nope") != "" || !v.Has("pv_rev") || v.Has("nope") {
		t.Errorf("Get/Has on %v wrong", v)
	}
	for _, kv := range [][2]string{{"", "x"}, {"a=b", "x"}, {"a\n", "x"}, {"a", "x\ny"}, {"a", "x\x00"}} {
		if err := CheckVar(kv[0], kv[1]); !errors.Is(err, ErrBadVar) {
			t.Errorf("CheckVar(%q, %q) = %v, want ErrBadVar", kv[0], kv[1], err)
		}
	}
}

func TestGrub(t *testing.T) {
	b, err := EncodeGrub(Vars{{"pv_rev", "0"}})
	if err != nil {
		t.Fatal(err)
	}
	want := GrubHeader + "pv_rev=0\n" + strings.Repeat("#", GrubSize-len(GrubHeader)-len("pv_rev=0\n"))
	if string(b) != want {
		t.Errorf("EncodeGrub(pv_rev=0) = %q, want %q", b, want)
	}
	in := Vars{{"pv_rev", "3"}, {"pv_try", ""}, {"odd", `a\b` + "\nc=d"}}
	b, err = EncodeGrub(in)
	if err != nil || len(b) != GrubSize {
		t.Fatalf("EncodeGrub(%v) = %d bytes, %v; want %d", in, len(b), err, GrubSize)
	}
	got, err := ParseGrub(b)
	if err != nil || !slices.Equal(got, in) {
		t.Errorf("ParseGrub(EncodeGrub(%q)) = %q, %v", in, got, err)
	}
	if _, err := EncodeGrub(Vars{{"big", strings.Repeat("x", GrubSize)}}); !errors.Is(err, ErrTooBig) {
		t.Errorf("EncodeGrub(too big) = %v, want ErrTooBig", err)
	}
	for _, k := range []string{"", "#c", "a=b", `a\b`, "a\nb"} {
		if _, err := EncodeGrub(Vars{{k, "v"}}); !errors.Is(err, ErrBadVar) {
			t.Errorf("EncodeGrub(key %q) = %v, want ErrBadVar", k, err)
		}
	}
	if _, err := ParseGrub([]byte("pv_rev=0\n")); !errors.Is(err, ErrNotGrub) {
		t.Errorf("ParseGrub(no header) = %v, want ErrNotGrub", err)
	}
	// Beyond the block: not read (Pantavisor reads exactly GrubSize).
	long := append(bytes.Clone(b), "late=1\n"...)
	if got, _ := ParseGrub(long); got.Has("late") {
		t.Errorf("ParseGrub read past %d bytes: %v", GrubSize, got)
	}
}

// TestGrubEditenv checks the format against GRUB's own tool (grub-common):
// what grub-editenv writes (a backslash and a newline in values) parses
// here, and what EncodeGrub writes grub-editenv lists. The newline GRUB
// escapes as a backslash before it, not as "\n".
func TestGrubEditenv(t *testing.T) {
	tool, err := exec.LookPath("grub-editenv")
	if err != nil {
		t.Skip("no grub-editenv (grub-common)")
	}
	f := filepath.Join(t.TempDir(), "grubenv")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tool, append([]string{f}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grub-editenv %q: %v: %s", args, err, out)
		}
		return string(out)
	}
	run("create")
	run("set", "pv_rev=1", `b=x\y`, "c=l1\nl2", "pv_try=")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseGrub(b)
	want := Vars{{"pv_rev", "1"}, {"b", `x\y`}, {"c", "l1\nl2"}, {"pv_try", ""}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseGrub(grub-editenv's block) = %q, %v; want %q", got, err, want)
	}
	b, err = EncodeGrub(want)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if list, want := run("list"), "pv_rev=1\nb=x\\y\nc=l1\nl2\npv_try=\n"; list != want {
		t.Errorf("grub-editenv list of EncodeGrub's block = %q, want %q", list, want)
	}
}

func TestNul(t *testing.T) {
	b, err := EncodeNul(Vars{{"pv_rev", "0"}}, 0, 0)
	if err != nil || string(b) != "pv_rev=0\x00\x00" {
		t.Errorf("EncodeNul(pv_rev=0) = %q, %v; want the factory uboot.txt", b, err)
	}
	b, err = EncodeNul(Vars{{"pv_rev", "0"}, {"pv_try", ""}}, UbootTxtSize, 0)
	if err != nil || len(b) != UbootTxtSize {
		t.Fatalf("EncodeNul(64 KiB) = %d bytes, %v", len(b), err)
	}
	if got := ParseNul(b, UbootTxtReadMax); !slices.Equal(got, Vars{{"pv_rev", "0"}, {"pv_try", ""}}) {
		t.Errorf("ParseNul = %q", got)
	}
	for in, want := range map[string]Vars{
		"":                                       nil,
		"a=1\x00b=2\x00\x00c=3":                  {{"a", "1"}, {"b", "2"}},
		"a=1\x00\xff\xffb=2":                     {{"a", "1"}},
		"junk\x00=x\x00a=1=2\x00":                {{"a", "1=2"}},
		"a=1\x00a=2":                             {{"a", "2"}},
		"pv_rev=1\x00pv_try=2\x00\x00junk=1\x00": {{"pv_rev", "1"}, {"pv_try", "2"}},
		"pv_rev=1\x00noequal\x00=x\x00pv_try=\x00": {{"pv_rev", "1"}, {"pv_try", ""}},
		"pv_rev=7": {{"pv_rev", "7"}},
	} {
		if got := ParseNul([]byte(in), 0); !slices.Equal(got, want) {
			t.Errorf("ParseNul(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ParseNul([]byte("a=1\x00b=2\x00"), 4); !slices.Equal(got, Vars{{"a", "1"}}) {
		t.Errorf("ParseNul(limit 4) = %q, want only a", got)
	}
	if _, err := EncodeNul(Vars{{"a", strings.Repeat("x", RPiABSize)}}, RPiABSize, 0); !errors.Is(err, ErrTooBig) {
		t.Errorf("EncodeNul(too big) = %v, want ErrTooBig", err)
	}
	for _, v := range []Var{{"", "x"}, {"a=b", "x"}, {"a", "x\x00"}, {"\xffa", "x"}} {
		if _, err := EncodeNul(Vars{v}, 0, 0); !errors.Is(err, ErrBadVar) {
			t.Errorf("EncodeNul(%q) = %v, want ErrBadVar", v, err)
		}
	}
}

func TestAutoboot(t *testing.T) {
	boot, try, err := ParseAutoboot(Autoboot(3, 2))
	if err != nil || boot != 3 || try != 2 {
		t.Errorf("ParseAutoboot(Autoboot(3, 2)) = %d, %d, %v", boot, try, err)
	}
	for _, bad := range []string{
		"",
		"[all]\nboot_partition=2\n",
		"[all]\nboot_partition=2\n[tryboot]\nboot_partition=2\n",
		"[all]\nboot_partition=x\n[tryboot]\nboot_partition=3\n",
		"[all]\nboot_partition=1\n[tryboot]\nboot_partition=3\n",
	} {
		if _, _, err := ParseAutoboot([]byte(bad)); !errors.Is(err, ErrBadAutoboot) {
			t.Errorf("ParseAutoboot(%q) = %v, want ErrBadAutoboot", bad, err)
		}
	}
	if got := ParseRevList([]byte(" 1,2\n")); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("ParseRevList = %q", got)
	}
	if got := ParseRevList([]byte("\n")); got != nil {
		t.Errorf("ParseRevList(blank) = %q, want none", got)
	}
	if b, ok := RevList([]string{"1", "2"}); !ok || string(b) != "1,2" {
		t.Errorf("RevList = %q, %v", b, ok)
	}
	if _, ok := RevList([]string{strings.Repeat("r", RevListMax), "1"}); ok {
		t.Error("RevList over RevListMax ok")
	}
}

func FuzzGrub(f *testing.F) {
	f.Add([]byte(GrubHeader + "pv_rev=0\n" + strings.Repeat("#", 1000)))
	f.Add([]byte(GrubHeader + "a=b\\\\c\\\nd\nno line\n=x\n#c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars, err := ParseGrub(b)
		if err != nil {
			return
		}
		out, err := EncodeGrub(vars)
		if errors.Is(err, ErrTooBig) {
			return // escaping grew it: rejected, never truncated
		}
		if err != nil {
			t.Fatalf("EncodeGrub(ParseGrub(%q)) = %v", b, err)
		}
		again, err := ParseGrub(out)
		if err != nil || !slices.Equal(again, vars) {
			t.Fatalf("round trip of %q: %q, %v; want %q", b, again, err, vars)
		}
	})
}

func FuzzNul(f *testing.F) {
	f.Add([]byte("pv_rev=0\x00\x00"))
	f.Add([]byte("a=b\x00\xff\xffc=d"))
	f.Add([]byte("x\x00=y\x00a=1=2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		vars := ParseNul(b, UbootTxtReadMax)
		out, err := EncodeNul(vars, 0, 0)
		if err != nil {
			t.Fatalf("EncodeNul(ParseNul(%q)) = %v", b, err)
		}
		if again := ParseNul(out, 0); !slices.Equal(again, vars) {
			t.Fatalf("round trip of %q: %q, want %q", b, again, vars)
		}
	})
}

func FuzzAutoboot(f *testing.F) {
	f.Add(Autoboot(2, 3))
	f.Add([]byte("[all]\nboot_partition=2\n[tryboot]\nboot_partition=3\n[other]\nboot_partition=9\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		boot, try, err := ParseAutoboot(b)
		if err != nil {
			return
		}
		if boot < 2 || try < 2 || boot == try {
			t.Fatalf("ParseAutoboot(%q) = %d, %d", b, boot, try)
		}
		if b2, t2, err := ParseAutoboot(Autoboot(boot, try)); err != nil || b2 != boot || t2 != try {
			t.Fatalf("round trip %d, %d: %d, %d, %v", boot, try, b2, t2, err)
		}
	})
}
