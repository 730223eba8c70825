//go:build unix && !linux

package kubeground

import "syscall"

// childProcAttr puts a component in its own process group so Stop can signal
// the group. Without Linux's Pdeathsig, a killed test binary can leave the
// components running; Require's Main stops them on a normal exit.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
