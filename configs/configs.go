// Package configs embeds the default Helm values files shipped inside the
// binary, one per chart coderctl installs (every *.yaml here: Coder, the
// Coder provisioner, the Secrets Store CSI driver and its AWS provider).
// Stages read them by name; users extend them with their own files (the
// *_VALUES_FILE inputs).
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
