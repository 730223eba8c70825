// Command coderctl deploys Coder on AWS EKS in ordered, verifiable stages.
package main

import (
	"os"

	"github.com/coderctl/coderctl/internal/cli"
)

// Set by the linker: -X main.version=... -X main.commit=...
var (
	version = "dev"
	commit  = "none"
)

func main() {
	os.Exit(cli.Main(cli.NewFactory(cli.BuildInfo{Version: version, Commit: commit}), os.Args[1:]))
}
