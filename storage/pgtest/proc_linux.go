package pgtest

import "syscall"

// setDeathSignal makes the postmaster quit if the test binary dies without
// reaching Main's cleanup (a panic, a timeout, ^C).
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
