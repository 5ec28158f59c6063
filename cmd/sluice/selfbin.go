package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// sluiceBinary is the binary bench starts its child `sluice run` processes
// from: $SLUICE_BIN when set, else this executable. A Go test binary is
// refused: started as `run -c …` it would run its tests again, and those
// would start children again (a test did exactly that: hundreds of
// processes within minutes).
func sluiceBinary() (string, error) {
	if b := os.Getenv("SLUICE_BIN"); b != "" {
		return b, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locating the sluice binary for the child processes: %w", err)
	}
	if strings.HasSuffix(filepath.Base(self), ".test") {
		return "", fmt.Errorf("bench starts child `sluice run` processes from its own binary, and %s is a Go test binary (it would run its tests instead); build sluice and set SLUICE_BIN to it", self)
	}
	return self, nil
}
