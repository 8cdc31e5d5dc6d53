package kmod

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ReadModuleLists reads every *.conf of a modules-load.d style directory
// (one module name per line, # and ; comments), in file name order.
func ReadModuleLists(dir string) ([]string, error) {
	confs, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, err
	}
	sort.Strings(confs)
	var names []string
	for _, c := range confs {
		data, err := os.ReadFile(c)
		if err != nil {
			return nil, fmt.Errorf("module list: %w", err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || l[0] == '#' || l[0] == ';' {
				continue
			}
			names = append(names, l)
		}
	}
	return names, nil
}
