package boot

import (
	"fmt"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
	"github.com/pantavisor/pantavisor-go/runtime/bootenv"
)

// pending is a boot loader whose recipes validate and whose factory
// state is written, but whose image assembly does not exist yet: Plan
// fails with ErrNotImplemented, naming what is missing. It is what the
// builder did for these types before the registry, kept honest.
type pending struct {
	name string
	// state is the storage file of the NUL-separated env holding
	// pv_rev=0 ("" = none: rpiab's first boot has no rpiab.txt).
	state string
	// missing says what the image would need.
	missing string
}

func (p pending) Validate(r *recipe.Recipe) error {
	if len(r.Bootloader.Firmware) > 0 {
		return invalid("bootloader.firmware", "only grub takes firmware")
	}
	if r.Partition(recipe.RoleBoot) == nil {
		return invalid("disk.partitions", "%s needs a boot partition", p.name)
	}
	return nil
}

func (p pending) State() (map[string][]byte, error) {
	if p.state == "" {
		return nil, nil
	}
	// upstream's factory uboot.txt: "pv_rev=0\0\0"
	env, err := bootenv.EncodeNul(bootenv.Vars{{Key: "pv_rev", Value: "0"}}, 0, 0)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{p.state: env}, nil
}

func (p pending) Plan(Input) (*Plan, error) {
	return nil, fmt.Errorf("bootloader %s: %w yet (%s); build with -until trails/0", p.name, ErrNotImplemented, p.missing)
}
