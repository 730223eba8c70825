package chartrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// A real chart reaches the ground inside a Go module: the module proxy
// serves a module version as a zip of its whole source tree, and `go mod
// download` unpacks it into the module cache, which this machine and CI keep
// between runs. The chart repositories themselves are not reachable here.
//
// The modules are never dependencies of coderctl's go.mod (github.com/coder/
// coder/v2 would pull its whole dependency tree into the build): `go mod
// download -json MODULE@VERSION` runs in an empty directory, outside any
// module, and only fills the cache.

// Module is one module version that holds real charts.
type Module struct {
	Path    string // e.g. github.com/coder/coder/v2
	Version string // e.g. v2.36.1
}

func (m Module) String() string { return m.Path + "@" + m.Version }

// downloads remembers each module's directory for the life of the process,
// so the many tests of one package that start a repository ask `go` once.
var downloads sync.Map // Module -> func() (string, error)

// ModuleDir returns the module's directory in the module cache, downloading
// it through the Go module proxy when it is not there yet (~130 MB for
// github.com/coder/coder/v2, once per machine). The directory is read-only.
func ModuleDir(ctx context.Context, m Module) (string, error) {
	once, _ := downloads.LoadOrStore(m, sync.OnceValues(func() (string, error) {
		// Not ctx: a cancelled first caller must not poison later ones.
		return download(context.WithoutCancel(ctx), m)
	}))
	dir, err := once.(func() (string, error))()
	if err != nil {
		return "", err
	}
	return dir, ctx.Err()
}

// download runs `go mod download -json` in an empty directory. GOFLAGS
// -mod=mod keeps a user's -mod=vendor from refusing, GOWORK=off keeps a
// go.work from a parent directory out of it.
func download(ctx context.Context, m Module) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the real charts come from Go module %s, and no `go` is on PATH: %w", m, err)
	}
	tmp, err := os.MkdirTemp("", "chartrepo-mod-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, goBin, "mod", "download", "-json", m.String())
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	return parseDownload(m, stdout.Bytes(), stderr.String(), runErr)
}

// parseDownload reads `go mod download -json`'s answer: its Error field
// says why a version is missing (the proxy's 404 or 410), better than the
// exit status.
func parseDownload(m Module, out []byte, stderr string, runErr error) (string, error) {
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %v %s", m, runErr, stderr)
	}
	switch {
	case info.Error != "":
		return "", fmt.Errorf("go mod download %s: %s", m, info.Error)
	case runErr != nil:
		return "", fmt.Errorf("go mod download %s: %v %s", m, runErr, stderr)
	case info.Dir == "":
		return "", errors.New("go mod download " + m.String() + ": no Dir in its answer")
	}
	return info.Dir, nil
}
