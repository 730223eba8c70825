package kubeground

import "syscall"

// childProcAttr puts a component in its own process group, so Stop can
// signal the group, and asks the kernel to kill it when the process that
// started it dies, so a crashed or killed test binary leaves no control
// plane behind.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
