package boottest

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// growLine is the console line of a storage that grew (runtime/embedded).
var growLine = regexp.MustCompile(`storage: grew (/dev/\S+) from (\d+) MiB to (\d+) MiB`)

// TestAutogrow writes the image to a bigger disk (the copy enlarged, as dd
// to a USB stick does): the first boot grows the storage partition and its
// ext4 to the end of the disk; the second boot, with the other firmware,
// finds GRUB, its grubenv and the storage on the rewritten GPT and grown
// file system, grows nothing and reaches READY again. One boot after the
// other: a TCG guest keeps a host CPU busy.
func TestAutogrow(t *testing.T) {
	for _, c := range []struct {
		name          string
		size          int64
		first, second Firmware
	}{
		{"2GiB bios then uefi", 2 << 30, BIOS, UEFI},
		{"32GiB uefi then bios", 32 << 30, UEFI, BIOS},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			img, off := image(t)
			if marker() == "PV-SMOKE-OK" {
				t.Skip("autogrow is the daemon's: set PV_TEST_MARKER='rev=0 status=READY' (a pantavisor image)")
			}
			if err := os.Truncate(img, c.size); err != nil {
				t.Fatal(err)
			}
			first := growBoot(t, img, c.first, "storage: grew")
			m := growLine.FindStringSubmatch(first.Console)
			if m == nil {
				t.Fatalf("no %q line on the first boot", growLine)
			}
			from, _ := strconv.ParseInt(m[2], 10, 64)
			to, _ := strconv.ParseInt(m[3], 10, 64)
			if want := (c.size-off)>>20 - 1; to != want || from >= to {
				t.Errorf("grew from %d to %d MiB, want to %d MiB (the disk's end less the backup GPT, MiB-aligned)", from, to, want)
			}

			second := growBoot(t, img, c.second, "")
			if l := growLine.FindString(second.Console); l != "" {
				t.Errorf("the second boot grew again: %s", l)
			}
			for _, l := range strings.Split(second.Console, "\n") {
				if strings.Contains(l, "storage:") && strings.Contains(l, "level=WARN") {
					t.Errorf("second boot: %s", strings.TrimSpace(l))
				}
			}
			if env, err := ReadEnv(img, off); err != nil || env.Get("pv_rev") != "0" {
				t.Errorf("grubenv on the grown storage = %v, %v; want pv_rev=0", env, err)
			}
			checkGrownTable(t, img, off, to)
		})
	}
}

// growBoot boots to READY (and the STARTED lines of PV_TEST_EXPECT, and
// want when set).
func growBoot(t *testing.T, img string, fw Firmware, want string) Result {
	t.Helper()
	var more []string
	if want != "" {
		more = append(more, want)
	}
	res := boot(t, img, fw, more...)
	for _, l := range strings.Split(res.Console, "\n") {
		if strings.Contains(l, "storage") || strings.Contains(l, "EXT4-fs") || strings.Contains(l, "vda") || strings.Contains(l, "GPT") {
			t.Logf("%s console: %s", fw, strings.TrimSpace(l))
		}
	}
	return res
}

// checkGrownTable reads the image's partition table and file system from
// the host: sfdisk sees a valid GPT (backup at the end, protective MBR
// size right), the storage partition ends toMiB after its start and the
// ext4 block count fills it.
func checkGrownTable(t *testing.T, img string, off, toMiB int64) {
	t.Helper()
	if _, err := exec.LookPath("sfdisk"); err == nil {
		cmd := exec.Command("sfdisk", "--json", img)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("sfdisk --json: %v: %s", err, stderr.String())
		}
		var tab struct {
			PT struct {
				Parts []struct{ Start, Size int64 } `json:"partitions"`
			} `json:"partitiontable"`
		}
		json.Unmarshal(out, &tab)
		if n := len(tab.PT.Parts); n == 0 || tab.PT.Parts[n-1].Start*512 != off || tab.PT.Parts[n-1].Size*512 != toMiB<<20 {
			t.Errorf("partitions %+v: want the last at byte %d, %d MiB", tab.PT.Parts, off, toMiB)
		}
	}
	if _, err := exec.LookPath("dumpe2fs"); err == nil {
		out, err := exec.Command("dumpe2fs", "-h", img+"?offset="+strconv.FormatInt(off, 10)).Output()
		if err != nil {
			t.Errorf("dumpe2fs: %v", err)
		}
		var blocks, bsize int64
		for _, l := range strings.Split(string(out), "\n") {
			k, v, _ := strings.Cut(l, ":")
			switch k {
			case "Block count":
				blocks, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			case "Block size":
				bsize, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		if blocks*bsize != toMiB<<20 {
			t.Errorf("ext4: %d blocks of %d bytes, want %d MiB", blocks, bsize, toMiB)
		}
	}
}
