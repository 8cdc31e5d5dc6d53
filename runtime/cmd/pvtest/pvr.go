package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/pantavisor/pantavisor-go/internal/pvrclient"
)

const pvrUsage = "usage: pvtest pvr clone <repo> <dir> | set <dir> <key> <value> | post <repo> <dir> <msg> [rev]"

// pvrCmd is the suites' stand-in for pvr against the pvr-sdk container
// (real pvr cannot be built here: see internal/pvrclient).
func pvrCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) < 1 {
		return errors.New(pvrUsage)
	}
	switch {
	case args[0] == "clone" && len(args) == 3:
		return pvrclient.Clone(ctx, args[1], args[2])
	case args[0] == "set" && len(args) == 4:
		return pvrclient.Set(args[1], args[2], []byte(args[3]))
	case args[0] == "post" && (len(args) == 4 || len(args) == 5):
		rev := -1
		if len(args) == 5 {
			n, err := strconv.Atoi(args[4])
			if err != nil {
				return fmt.Errorf("rev %q: %w", args[4], err)
			}
			rev = n
		}
		res, err := pvrclient.Post(ctx, args[1], args[2], args[3], rev)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\n", res.Raw)
		return nil
	}
	return errors.New(pvrUsage)
}
