package ground

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPrereqsInstallMoto runs scripts/ground-prereqs.sh's moto step, which
// every entry point (make test, demo, bench) shares, with a PATH holding
// only a fake pip: PyPI is never asked.
func TestPrereqsInstallMoto(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "..", "scripts", "ground-prereqs.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		haveMoto   bool
		pip        string // the fake pip's behaviour: "" none, "installs", "fails", "installs nothing"
		wantCode   int
		wantPipRun bool
		wantOut    string
	}{
		{"moto on PATH: nothing installed", true, "fails", 0, false, "moto_server: "},
		{"moto missing: pip installs the pin", false, "installs", 0, true, "installed moto[server]==5.2.1"},
		{"pip fails: says what to install", false, "fails", 1, true, "install moto 5.2.1 with its server extra (pip install 'moto[server]==5.2.1')"},
		{"pip installs no moto_server", false, "installs nothing", 1, true, "make sure moto_server is on PATH"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			if tc.haveMoto {
				writeExec(t, filepath.Join(bin, "moto_server"), "#!/bin/sh\n")
			}
			writeExec(t, filepath.Join(bin, "pip"), fakePip(bin, tc.pip))
			cmd := exec.Command(bash, script, "moto")
			cmd.Env = []string{"PATH=" + bin, "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tc.wantCode, tc.wantOut)
			}
			args, err := os.ReadFile(filepath.Join(bin, "pip.args"))
			if ran := err == nil; ran != tc.wantPipRun {
				t.Errorf("pip ran = %v, want %v", ran, tc.wantPipRun)
			}
			if tc.wantPipRun && string(args) != "install moto[server]==5.2.1\n" {
				t.Errorf("pip args %q, want the pinned moto[server]==5.2.1", args)
			}
		})
	}
}

// fakePip records its arguments and, when it "installs", puts a
// moto_server on PATH (its shell builtins only: PATH has nothing else).
func fakePip(bin, behaviour string) string {
	s := "#!/bin/sh\necho \"$*\" > " + filepath.Join(bin, "pip.args") + "\n"
	switch behaviour {
	case "installs":
		s += "echo '#!/bin/sh' > " + filepath.Join(bin, "moto_server") + "\n" +
			"exec /bin/chmod +x " + filepath.Join(bin, "moto_server") + "\n"
	case "fails":
		s += "echo 'ERROR: Could not find a version that satisfies the requirement' >&2\nexit 1\n"
	}
	return s
}

func writeExec(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestEntryPointsRunPrereqs: make test, demo and bench each depend on the
// ground-prereqs target, as make's own database lists them (-p, with -n so
// nothing runs).
func TestEntryPointsRunPrereqs(t *testing.T) {
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Fatal(err) // CI runs through make
	}
	cmd := exec.Command(mk, "-pn", "ground-prereqs")
	cmd.Dir = filepath.Join("..", "..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make -pn: %v", err)
	}
	deps := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if target, rest, ok := strings.Cut(line, ":"); ok && !strings.ContainsAny(target, " \t#=") {
			deps[target] = strings.Fields(rest)
		}
	}
	for _, target := range []string{"test", "demo", "bench"} {
		if !slices.Contains(deps[target], "ground-prereqs") {
			t.Errorf("make %s depends on %v, want ground-prereqs among them", target, deps[target])
		}
	}
}
