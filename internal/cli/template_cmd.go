package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/names"
	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/internal/wstemplate"
)

func newTemplateCmd(f *Factory, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "The Coder workspace template that fits this cluster",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "init DIR",
		Short: "Write the workspace template (Terraform) for this deployment into an empty or new DIR",
		Long: `Write a Coder workspace template for this deployment: each workspace a pod on
the workspace node group (its label as node selector, a toleration for its
taint), with the requests and limits of the sizing, annotated not safe to evict
so the cluster-autoscaler never removes a node under it, and a home volume on
the cluster's default StorageClass. Push it with 'coder templates push', or
let coderctl push it as template kubernetes-eks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTemplateInit(f, g, args[0])
		},
	})
	return cmd
}

// templateInitReport is the -o json form.
type templateInitReport struct {
	Type  string   `json:"type"`
	Time  string   `json:"time"`
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
	Hash  string   `json:"hash"`
}

func runTemplateInit(f *Factory, g *globalOptions, dir string) error {
	if err := checkEmptyDir(dir); err != nil {
		return err
	}
	cluster, _, err := sizeCluster(f, g)
	if err != nil {
		return err
	}
	in, err := sizeInputs(f, g, cluster)
	if err != nil {
		return err
	}
	groups := config.NodeGroups(cluster)
	ws, _ := sizing.GroupFor(groups, sizing.RoleWorkspace)
	params, err := wstemplate.ForDeployment(groups, sizing.For(in.Users(), ws.InstanceType), names.CoderNamespace)
	if err != nil {
		return fault.Input(g.cfgPath(f), "managedNodeGroups", "fix the workspace node group", "%v", err)
	}
	files, err := wstemplate.Render(params)
	if err != nil {
		return err
	}
	names, err := writeTemplate(dir, files)
	if err != nil {
		return err
	}
	report := templateInitReport{Type: "template", Time: f.Now().UTC().Format(time.RFC3339Nano), Dir: dir, Files: names, Hash: wstemplate.Hash(files)}
	if g.output == "json" {
		return writeJSON(f.IO.Out, report)
	}
	for _, n := range names {
		fmt.Fprintf(f.IO.Out, "wrote %s\n", filepath.Join(dir, n))
	}
	_, err = fmt.Fprintf(f.IO.Out, "workspaces on node group %s=%s (toleration %s=%s:%s), %s CPU / %s requested, up to %s / %s, home %s\n",
		params.NodeLabelKey, params.NodeLabelValue, params.TaintKey, params.TaintValue, params.TaintEffect,
		params.CPURequest, params.MemoryRequest, params.CPULimit, params.MemoryLimit, params.HomeSize)
	return err
}

// checkEmptyDir refuses a directory that holds anything (a template of
// the user's would be overwritten) and a path that is not a directory.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fault.Input(dir, "", "give a new or empty directory", "cannot be read as a directory: %v", err)
	case len(entries) > 0:
		return fault.Input(dir, "", "give a new or empty directory; coderctl never overwrites a template",
			"is not empty (%d entries)", len(entries))
	}
	return nil
}

// writeTemplate writes the files (never over an existing one) and returns
// their names, sorted.
func writeTemplate(dir string, files map[string][]byte) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fault.Input(dir, "", "give a directory coderctl may create", "%v", err)
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fh, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, err
		}
		if _, err := fh.Write(files[name]); err != nil {
			fh.Close()
			return nil, err
		}
		if err := fh.Close(); err != nil {
			return nil, err
		}
	}
	return names, nil
}
