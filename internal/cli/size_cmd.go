package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	api "github.com/weaveworks/eksctl/pkg/apis/eksctl.io/v1alpha5"

	coderctl "github.com/coderctl/coderctl"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/engine"
	"github.com/coderctl/coderctl/internal/sizing"
	"github.com/coderctl/coderctl/internal/state"
)

// newSizeCmd prints the capacity a number of users needs and whether the
// node groups of the cluster config hold it. It reads files but changes
// nothing and calls no API.
func newSizeCmd(f *Factory, g *globalOptions) *cobra.Command {
	var users int
	cmd := &cobra.Command{
		Use:   "size [--users N]",
		Short: "Print the sizing for N users: provisioners, coderd, workspace nodes, database",
		Long: `Print the capacity a deployment for N peak concurrent users needs: external
provisioner replicas (one concurrent build each) and the provisioner nodes that
hold them, coderd replicas and resources, workspace node bounds and the database
instance class; and whether the node groups of the cluster config hold it.
Without --users, USERS from the env file (or the environment) is used.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSize(f, g, users, cmd.Flags().Changed("users"))
		},
	}
	cmd.Flags().IntVar(&users, "users", 0, "peak concurrent users (default: USERS from the env file, else 500)")
	return cmd
}

// sizeReport is the -o json form.
type sizeReport struct {
	Type          string        `json:"type"`
	Time          string        `json:"time"`
	ClusterConfig string        `json:"cluster_config"`
	Sizing        sizing.Sizing `json:"sizing"`
	NodeGroups    []sizing.Fit  `json:"node_groups"`
	Check         engine.Check  `json:"check"`
}

func runSize(f *Factory, g *globalOptions, users int, usersSet bool) error {
	cluster, cfgSource, err := sizeCluster(f, g)
	if err != nil {
		return err
	}
	in, err := sizeInputs(f, g, cluster)
	if err != nil {
		return err
	}
	if usersSet {
		if _, err := config.CheckInput("flag --users", config.KeyUsers, strconv.Itoa(users)); err != nil {
			return err
		}
	} else {
		users = in.Users()
	}
	groups := config.NodeGroups(cluster)
	ws, _ := sizing.GroupFor(groups, sizing.RoleWorkspace)
	s := sizing.For(users, ws.InstanceType)
	report := sizeReport{
		Type: "size", Time: f.Now().UTC().Format(time.RFC3339Nano), ClusterConfig: cfgSource,
		Sizing: s, NodeGroups: sizing.Fits(s, groups, in.Autoscaling()), Check: sizing.CapacityCheck(s, groups, in.Autoscaling()),
	}
	if g.output == "json" {
		return writeJSON(f.IO.Out, report)
	}
	return writeSizeText(f.IO.Out, report)
}

// sizeCluster loads the cluster config, or the shipped one when the file
// does not exist (sizing works before `coderctl init`).
func sizeCluster(f *Factory, g *globalOptions) (*api.ClusterConfig, string, error) {
	path := g.cfgPath(f)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		c, err := config.ParseCluster("shipped cluster-config.yaml", coderctl.DefaultClusterConfig)
		return c, "shipped default (" + path + " not found)", err
	}
	c, err := config.LoadCluster(path)
	return c, path, err
}

// sizeInputs resolves the inputs (USERS, AUTOSCALER) as every other
// command does: environment, then the env file, then the defaults.
func sizeInputs(f *Factory, g *globalOptions, cluster *api.ClusterConfig) (*config.Inputs, error) {
	envPath := g.envPath(f)
	values := map[string]string{}
	if _, err := os.Stat(envPath); err == nil {
		file, err := state.Open(envPath)
		if err != nil {
			return nil, err
		}
		values = file.Snapshot()
	}
	return config.ResolveInputs(envPath, values, f.LookupEnv, cluster, g.cfgPath(f))
}

func writeSizeText(w io.Writer, r sizeReport) error {
	s := r.Sizing
	p, c, ws, db := s.Provisioners, s.Coderd, s.Workspaces, s.Database
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Sizing for %d peak concurrent users\n", s.Users)
	fmt.Fprintf(tw, "  provisioners\t%d replicas = %d concurrent builds (one build per provisioner), %s\n",
		p.Replicas, p.ConcurrentBuilds, podText(p.Pod))
	fmt.Fprintf(tw, "  \t%s\n", p.Basis)
	fmt.Fprintf(tw, "  coderd\t%d replicas, %s\n", c.Replicas, podText(c.Pod))
	fmt.Fprintf(tw, "  \t%s\n", c.Basis)
	if ws.MaxNodes > 0 {
		fmt.Fprintf(tw, "  workspace nodes\t%d–%d × %s (%d workspaces of %s CPU / %s per node)\n",
			ws.MinNodes, ws.MaxNodes, ws.InstanceType, ws.PerNode, ws.PerUser.CPU, ws.PerUser.Memory)
	} else {
		fmt.Fprintf(tw, "  workspace nodes\tat least %d; %s CPU / %s per concurrent workspace (instance type %q unknown to coderctl)\n",
			ws.MinNodes, ws.PerUser.CPU, ws.PerUser.Memory, ws.InstanceType)
	}
	fmt.Fprintf(tw, "  database\t%s, multi-AZ (%s)\n", db.InstanceClass, db.Basis)
	fmt.Fprintf(tw, "\nNode groups in %s\n", r.ClusterConfig)
	for _, fit := range r.NodeGroups {
		fmt.Fprintf(tw, "  %s\t%s\n", fit.Role, fitText(fit))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes")
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	_, err := fmt.Fprintf(w, "\n%s: %s\n", strings.ToUpper(string(r.Check.Status)), r.Check.Reason)
	return err
}

func podText(p sizing.Pod) string {
	return fmt.Sprintf("requests %s CPU / %s, limits %s CPU / %s", p.Requests.CPU, p.Requests.Memory, p.Limits.CPU, p.Limits.Memory)
}

func fitText(f sizing.Fit) string {
	if f.Group == "" || f.PerNode == 0 {
		return "problem: " + f.Problem
	}
	reach := fmt.Sprintf("%d × %s (desiredCapacity; nothing grows it)", f.MaxNodes, f.InstanceType)
	if f.Grows {
		reach = fmt.Sprintf("up to %d × %s (maxSize, grown by the cluster-autoscaler)", f.MaxNodes, f.InstanceType)
	}
	base := fmt.Sprintf("%s: %s, %d pods per node; %d pods need %d node(s)",
		f.Group, reach, f.PerNode, f.Pods, f.NodesNeeded)
	if f.Problem != "" {
		return base + " — too small"
	}
	return base + " — ok"
}
