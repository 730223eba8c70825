package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/config"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/iampolicy"
)

// iamPolicyOptions are `coderctl iam-policy`'s flags.
type iamPolicyOptions struct {
	modes   []string
	stages  []string
	account string
	split   string
}

// newIAMPolicyCmd prints the least-privilege IAM policy for the runs and
// stages asked for, scoped to this deployment, account and region. It
// changes nothing; with --account it calls no AWS API at all.
func newIAMPolicyCmd(f *Factory, g *globalOptions) *cobra.Command {
	opts := iamPolicyOptions{}
	cmd := &cobra.Command{
		Use:   "iam-policy [--for up|verify|down] [--stage S] [--account ID]",
		Short: "Print the least-privilege IAM policy coderctl needs for this deployment",
		Long: `Prints an IAM policy document (JSON) granting exactly the AWS actions coderctl
calls, with resources scoped to this deployment: its tag (coderctl/deployment),
its names (IAM roles <cluster>-*, secrets coder/<cluster>/*, the cluster, the
database), this account and region. Attach it to the role or user that runs
coderctl. --for limits it to some kinds of run (comma-separated; default all:
up, verify and down), --stage to some stages. The account comes from STS
(GetCallerIdentity) unless --account gives it; then no AWS call is made.
The whole policy is larger than one managed policy holds (6,144 characters):
--split DIR writes it as iam-policy-1.json, iam-policy-2.json... to attach
together. See docs/iam.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIAMPolicy(cmd.Context(), f, g, opts, cmd.Flags().Changed("for"), cmd.Flags().Changed("stage"))
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.modes, "for", nil, "runs the policy is for: up, verify, down (comma-separated; default all three)")
	fl.StringSliceVar(&opts.stages, "stage", nil, "stages the policy is for (comma-separated; default every stage)")
	fl.StringVar(&opts.account, "account", "", "AWS account ID to scope to, instead of asking STS (no credentials needed)")
	fl.StringVar(&opts.split, "split", "", "write the policy as managed policies of at most 6,144 characters each into this directory")
	return cmd
}

func runIAMPolicy(ctx context.Context, f *Factory, g *globalOptions, opts iamPolicyOptions, forGiven, stageGiven bool) error {
	sel, err := iamSelection(f, opts, forGiven, stageGiven)
	if err != nil {
		return err
	}
	if opts.account != "" && !iampolicy.ValidAccount(opts.account) {
		return fault.Input("flag --account", "", "give the 12-digit account ID, or leave the flag out to ask STS", "%q is not an AWS account ID", opts.account)
	}
	s, err := openSession(ctx, f, g, sessionNeeds{command: "coderctl iam-policy", aws: opts.account == ""})
	if err != nil {
		return err
	}
	defer s.Close()
	d := iampolicy.Deployment{
		Account: opts.account, Region: s.deps.Region(), Cluster: s.deps.Deployment(),
		Domain: s.deps.Inputs.Get(config.KeyDomain), HostedZoneID: s.deps.Inputs.Get(config.KeyHostedZoneID),
		Partition: awsx.Partition(s.deps.Region()),
	}
	if enc := s.deps.Cluster.SecretsEncryption; enc != nil {
		d.KMSKey = enc.KeyARN
	}
	if loc, err := stateLocation(f, g); err == nil && loc.Bucket != "" {
		d.StateBucket, d.StateKey = loc.Bucket, loc.Key
	}
	if d.Account == "" {
		if d.Account, d.Partition, err = iampolicy.CallerAccount(ctx, s.deps.AWS); err != nil {
			return err
		}
	}
	p, err := iampolicy.Build(d, sel)
	if err != nil {
		return err
	}
	if opts.split != "" {
		return writeIAMParts(f, opts.split, p.Split(iampolicy.ManagedPolicyMax))
	}
	b, err := p.JSON()
	if err != nil {
		return err
	}
	if _, err = f.IO.Out.Write(b); err != nil {
		return err
	}
	if n := p.Size(); n > iampolicy.ManagedPolicyMax {
		fmt.Fprintf(f.IO.ErrOut, "note: the policy is %d characters; a managed policy holds %d: --split DIR writes it as %d policies to attach together\n",
			n, iampolicy.ManagedPolicyMax, len(p.Split(iampolicy.ManagedPolicyMax)))
	}
	return nil
}

// writeIAMParts writes each part as DIR/iam-policy-N.json (replacing an
// earlier run's) and lists them.
func writeIAMParts(f *Factory, dir string, parts []iampolicy.Policy) error {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fault.Input("flag --split", dir, "give an existing directory", "is not a directory")
	}
	for i, p := range parts {
		b, err := p.JSON()
		if err != nil {
			return err
		}
		path := filepath.Join(dir, fmt.Sprintf("iam-policy-%d.json", i+1))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		fmt.Fprintf(f.IO.Out, "%s\t%d characters, %d statements\n", path, p.Size(), len(p.Statement))
	}
	return nil
}

// iamSelection checks --for and --stage before anything is read: an empty,
// repeated or unknown name is bad input naming the flag.
func iamSelection(f *Factory, opts iamPolicyOptions, forGiven, stageGiven bool) (iampolicy.Selection, error) {
	var sel iampolicy.Selection
	if forGiven && len(opts.modes) == 0 {
		return sel, usageErr("--for is empty: name up, verify or down, or leave the flag out for all three")
	}
	for i, m := range opts.modes {
		mode, ok := iampolicy.ParseMode(strings.TrimSpace(m))
		switch {
		case !ok:
			return sel, usageErr("--for: unknown run %q (use up, verify or down)", m)
		case containsMode(sel.Modes, mode):
			return sel, usageErr("--for names %q twice (position %d): name it once", m, i+1)
		}
		sel.Modes = append(sel.Modes, mode)
	}
	if stageGiven && len(opts.stages) == 0 {
		return sel, usageErr("--stage is empty: name at least one stage, or leave the flag out")
	}
	if err := checkNameList("--stage", opts.stages, stageNames(f)); err != nil {
		return sel, err
	}
	sel.Stages = opts.stages
	return sel, nil
}

func containsMode(ms []iampolicy.Mode, m iampolicy.Mode) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}
