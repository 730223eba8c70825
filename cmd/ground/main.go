// Command ground runs the local proving ground for `make demo`: moto, a real
// Kubernetes control plane with fake EKS nodes, a cloud controller for NLBs,
// a CSI secret syncer, a loopback chart repository (serving the real coder
// and CSI driver charts) and a Coder API double — all on 127.0.0.1 only.
// `make demo` runs scripts/ground-prereqs.sh first: moto, the Kubernetes
// binaries and the charts' Go modules are then in place. It writes a shell file to source
// (environment) and a file of `coderctl init` inputs, then runs until
// SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coderctl/coderctl/internal/testenv/awsproxy"
	"github.com/coderctl/coderctl/internal/testenv/chartrepo"
	"github.com/coderctl/coderctl/internal/testenv/ground"
)

func main() {
	dir := flag.String("dir", ".ground", "directory for logs and the files to source")
	cluster := flag.String("cluster", "coder-prod", "EKS cluster name the controllers follow")
	region := flag.String("region", "us-west-2", "AWS region")
	version := flag.String("coder-version", chartrepo.CoderVersions[0],
		"Coder version the API double reports and CODER_VERSION (charts served: "+strings.Join(chartrepo.CoderVersions, ", ")+")")
	slow := flag.Float64("slow", 0, "scale of real AWS durations (e.g. 0.005); 0 = moto's instant answers")
	unlicensed := flag.Bool("unlicensed", false, "make the Coder double a deployment without Premium")
	noUsers := flag.Bool("no-users", false, "start the Coder double with no user and no owner token (set CODER_FIRST_USER_EMAIL for up)")
	flag.Parse()
	if err := run(*dir, *cluster, *region, *version, *slow, *unlicensed, *noUsers); err != nil {
		fmt.Fprintln(os.Stderr, "ground:", err)
		os.Exit(1)
	}
}

func run(dir, cluster, region, version string, slow float64, unlicensed, noUsers bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(dir, "ground.log"))
	if err != nil {
		return err
	}
	defer log.Close()
	opts := ground.Options{WorkDir: dir, Cluster: cluster, Region: region, CoderVersion: version, Unlicensed: unlicensed, NoUsers: noUsers, Log: log}
	if slow > 0 {
		p := awsproxy.Realistic(slow)
		opts.Profile = &p
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	g, err := ground.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer g.Stop()
	envPath := filepath.Join(dir, "env")
	if err := g.EnvFile(envPath); err != nil {
		return err
	}
	inputs := filepath.Join(dir, "inputs")
	if err := os.WriteFile(inputs, []byte(strings.Join(g.InitArgs(), "\n")+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), []byte(fmt.Sprint(os.Getpid())), 0o600); err != nil {
		return err
	}
	fmt.Printf("ground ready in %s: AWS %s, kubeconfig %s, Coder double %s\n", time.Since(start).Round(time.Millisecond), g.AWSURL, g.Kube.Kubeconfig(), g.Coder.URL())
	<-ctx.Done()
	return nil
}
