// Package coderctl holds the files shipped inside the binary: the default
// cluster configuration and the documented env file that `coderctl init`
// writes.
package coderctl

import _ "embed"

// DefaultClusterConfig is the shipped cluster-config.yaml.
//
//go:embed cluster-config.yaml
var DefaultClusterConfig []byte

// DefaultEnvFile is the shipped coder-infra.env.example.
//
//go:embed coder-infra.env.example
var DefaultEnvFile []byte
