// Package configs holds the default Helm values files and IAM policy
// documents shipped inside the binary. Stages read them by name; users
// override values with their own files (see the *_VALUES_FILE inputs).
package configs

import (
	"embed"
	"fmt"
)

//go:embed *.yaml
var files embed.FS

// Read returns an embedded file; a missing name is a programming error.
func Read(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("configs: %s is not embedded: %v", name, err))
	}
	return b
}
