package builder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pantavisor/pantavisor-go/mkimage/recipe"
)

// FailedName is the marker a failed build leaves in the output
// directory, with the error; the next complete build removes it.
const FailedName = "FAILED"

// finalOutputs are the files of o.Out a user takes as the image: a
// failed build must not leave them looking current.
func finalOutputs(r *recipe.Recipe, out string) []string {
	return []string{
		filepath.Join(out, ImageName(r)),
		filepath.Join(out, "."+ImageName(r)+".stamp"),
		filepath.Join(out, r.Name+".pvr.tgz"),
		filepath.Join(out, SBOMName(r.Name)),
		filepath.Join(out, UpstreamSBOMName),
	}
}

// markFailed removes the outputs of the last build (they are of other
// inputs than the failed one) and writes FAILED with the error.
func markFailed(r *recipe.Recipe, out string, cause error) error {
	var errs []error
	for _, p := range finalOutputs(r, out) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return errors.Join(append(errs, err)...)
	}
	msg := fmt.Sprintf("the last build of %s failed; the outputs of the build before it were removed:\n%v\n", r.Name, cause)
	if err := os.WriteFile(filepath.Join(out, FailedName), []byte(msg), 0o644); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
