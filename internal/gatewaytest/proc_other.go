//go:build !linux

package gatewaytest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
