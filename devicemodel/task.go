package devicemodel

import "time"

// TaskRunDir is where a hypervisor task sees its run directory,
// bind-mounted read-write: the anchor's default --dir.
const TaskRunDir = "/run/moor/vm"

// VMFile is the in-task VM description's file name in the run directory.
const VMFile = "vm.json"

// VarsFile is the file name, in the run directory, of the VM's own copy of
// its UEFI variable store (VM.FirmwareVars): made from the template once,
// kept across restarts, removed only with the bundle.
const VarsFile = "OVMF_VARS.fd"

// DefaultGrace is how long the anchor waits after an ACPI powerdown before
// it stops the guest hard.
const DefaultGrace = 10 * time.Second
