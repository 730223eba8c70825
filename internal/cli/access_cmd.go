package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/kube"
)

// newAccessCmd lists who reaches the cluster's Kubernetes API and how:
// what a team asks before adding a CI role or a teammate to
// accessConfig.accessEntries.
func newAccessCmd(f *Factory, g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "access",
		Short: "List who can reach the EKS cluster's Kubernetes API, and how",
		Long: `Lists the cluster's authentication mode and its access entries: each IAM
principal, its type, Kubernetes groups and username, and the EKS access policies
associated with it with their scope. Entries coderctl made from
accessConfig.accessEntries are marked; the principal running this command is
marked "you". Under CONFIG_MAP the aws-auth ConfigMap decides and is not listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listAccess(cmd.Context(), f, g)
		},
	}
}

func listAccess(ctx context.Context, f *Factory, g *globalOptions) error {
	s, err := openSession(ctx, f, g, sessionNeeds{command: "coderctl access", aws: true})
	if err != nil {
		return err
	}
	defer s.Close()
	acc, err := kube.ListAccess(ctx, s.deps.AWS, s.deps.Inputs.ClusterName())
	if err != nil {
		return err
	}
	if g.output == "json" {
		return writeJSON(f.IO.Out, map[string]any{"type": "access", "time": f.Now().UTC().Format(time.RFC3339Nano), "access": acc})
	}
	return renderAccess(f.IO.Out, acc, s.deps.Deployment())
}

// renderAccess writes one line per entry, the caller's and coderctl's
// marked, and says plainly when the caller has no entry.
func renderAccess(w io.Writer, acc kube.Access, deployment string) error {
	fmt.Fprintf(w, "EKS cluster %s: authentication mode %s, creator admin %s\n", acc.Cluster, acc.Mode, yesNo(acc.CreatorAdmin))
	if acc.Mode == "CONFIG_MAP" {
		_, err := fmt.Fprintln(w, "no access entries: the aws-auth ConfigMap in kube-system decides who gets in")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRINCIPAL\tTYPE\tGROUPS\tACCESS POLICIES\tNOTE")
	callerListed := false
	for _, e := range acc.Entries {
		var note []string
		if e.Principal == acc.Caller {
			note, callerListed = append(note, "you"), true
		}
		if e.Tags[awsx.TagDeployment] == deployment {
			note = append(note, "from cluster-config.yaml")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Principal, e.Type, dash(strings.Join(e.Groups, ",")), dash(policyWords(e.Policies)), dash(strings.Join(note, ", ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if acc.Caller != "" && !callerListed {
		fmt.Fprintf(w, "you (%s) have no access entry: add one under accessConfig.accessEntries, or run as a listed identity\n", acc.Caller)
	}
	return nil
}

func policyWords(ps []kube.AccessPolicy) string {
	var out []string
	for _, p := range ps {
		scope := p.Scope
		if len(p.Namespaces) > 0 {
			scope += ": " + strings.Join(p.Namespaces, ",")
		}
		out = append(out, p.ARN[strings.LastIndex(p.ARN, "/")+1:]+" ("+scope+")")
	}
	return strings.Join(out, "; ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
