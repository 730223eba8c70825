package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/coderctl/coderctl/internal/awsx"
	"github.com/coderctl/coderctl/internal/fault"
	"github.com/coderctl/coderctl/internal/kube"
)

// kubeconfigOptions are `coderctl kubeconfig`'s flags.
type kubeconfigOptions struct {
	file       string
	alias      string
	command    string
	setCurrent bool
}

// newKubeconfigCmd writes (or merges) a kubeconfig context for the
// deployment's EKS cluster whose user runs `coderctl token`: kubectl then
// works with no aws CLI installed.
func newKubeconfigCmd(f *Factory, g *globalOptions) *cobra.Command {
	opts := kubeconfigOptions{}
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Write a kubeconfig context for the EKS cluster (kubectl then needs coderctl, not the aws CLI)",
		Long: `Adds the deployment's EKS cluster to a kubeconfig (default ~/.kube/config),
keeping every other cluster, user and context in it. The user entry runs
'coderctl token' to get a short-lived token signed with your AWS credentials.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return writeKubeconfig(cmd.Context(), f, g, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.file, "file", "", "kubeconfig to write (default ~/.kube/config)")
	fl.StringVar(&opts.alias, "alias", "", "context name (default the cluster ARN, as 'aws eks update-kubeconfig' names it)")
	fl.StringVar(&opts.command, "exec-command", "", "coderctl path the kubeconfig runs (default this binary)")
	fl.BoolVar(&opts.setCurrent, "set-current", true, "make the context the current one")
	return cmd
}

func writeKubeconfig(ctx context.Context, f *Factory, g *globalOptions, opts kubeconfigOptions) error {
	s, err := openSession(ctx, f, g, sessionNeeds{command: "coderctl kubeconfig", aws: true})
	if err != nil {
		return err
	}
	defer s.Close()
	cluster, region := s.deps.Inputs.ClusterName(), s.deps.Region()
	acc, err := kube.DescribeAccess(ctx, s.deps.AWS, cluster)
	if err != nil {
		return err
	}
	command, err := execCommand(opts.command)
	if err != nil {
		return err
	}
	path, err := kubeconfigPath(f, opts.file)
	if err != nil {
		return err
	}
	entry := kube.ExecEntry{
		Name: acc.ARN, Context: opts.alias, Access: acc, Command: command,
		Args: []string{"token", "--cluster-name", cluster, "--region", region},
		Env:  map[string]string{},
	}
	if entry.Name == "" {
		entry.Name = cluster
	}
	// kubectl starts the plugin with its own environment; pin the profile
	// this command used so the token is signed by the same identity.
	if p := f.getenv("AWS_PROFILE"); p != "" {
		entry.Env["AWS_PROFILE"] = p
	}
	name, err := kube.MergeKubeconfig(path, entry, opts.setCurrent)
	if err != nil {
		return fault.Input("flag --file", "", "pass a writable --file", "%v", err)
	}
	fmt.Fprintf(f.IO.Out, "wrote context %s for EKS cluster %s to %s\n", name, cluster, path)
	if kc := f.getenv("KUBECONFIG"); kc != "" && kc != path {
		fmt.Fprintf(f.IO.ErrOut, "note: $KUBECONFIG is %s, so kubectl reads that, not %s: use 'kubectl --kubeconfig %s' or pass --file\n", kc, path, path)
	}
	return nil
}

// execCommand is the coderctl the kubeconfig runs: given, or this binary's
// absolute path, so kubectl finds it without coderctl on PATH.
func execCommand(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fault.Input("flag --exec-command", "", "pass --exec-command PATH", "cannot tell where coderctl is: %v", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	return self, nil
}

// kubeconfigPath is --file, else ~/.kube/config. $KUBECONFIG is not used
// silently: writeKubeconfig says so when it points elsewhere.
func kubeconfigPath(f *Factory, file string) (string, error) {
	if file != "" {
		return file, nil
	}
	home := f.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fault.Input("flag --file", "", "pass --file PATH", "no home directory for ~/.kube/config: %v", err)
		}
	}
	return filepath.Join(home, ".kube", "config"), nil
}

// newTokenCmd prints an EKS bearer token as a client.authentication.k8s.io
// ExecCredential: the exec plugin `coderctl kubeconfig` configures.
func newTokenCmd(f *Factory, g *globalOptions) *cobra.Command {
	var cluster, region string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an EKS token as a kubectl ExecCredential (used by the kubeconfig 'coderctl kubeconfig' writes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printToken(cmd.Context(), f, g, cluster, region)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster-name", "", "EKS cluster (default CLUSTER_NAME of the env file or cluster config)")
	cmd.Flags().StringVar(&region, "region", "", "AWS region (default AWS_REGION of the env file or cluster config)")
	return cmd
}

// printToken writes the ExecCredential to stdout and nothing else. The
// token is a bearer credential: stdout is where the exec plugin contract
// wants it; it is never logged, put in an error or in the state file.
func printToken(ctx context.Context, f *Factory, g *globalOptions, cluster, region string) error {
	if cluster == "" || region == "" {
		// kubectl passes both; by hand, take the missing one from the
		// deployment's files, read-only and without the lock.
		s, err := openSession(ctx, f, g, sessionNeeds{command: "coderctl token"})
		if err != nil {
			return err
		}
		s.Close()
		if cluster == "" {
			cluster = s.deps.Inputs.ClusterName()
		}
		if region == "" {
			region = s.deps.Region()
		}
	}
	cfg, err := awsx.LoadConfig(ctx, region, f.Build.Version)
	if err != nil {
		return err
	}
	token, expires, err := kube.Token(ctx, awsx.NewClients(cfg).STS, cluster)
	if err != nil {
		if awsx.IsCredentialsError(err) {
			return awsx.CredentialsInput(err)
		}
		return err
	}
	data, err := kube.ExecCredentialJSON(token, expires)
	if err != nil {
		return fmt.Errorf("encode ExecCredential: %w", err)
	}
	_, err = f.IO.Out.Write(append(data, '\n'))
	return err
}
