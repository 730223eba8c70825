//go:build unix

package fsx

import "syscall"

const nonBlock = syscall.O_NONBLOCK
