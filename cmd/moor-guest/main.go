// Command moor-guest is moor's guest init: /init of the initramfs that
// moor vm spec --app builds, PID 1 of the VM that runs a container app
// (see devicemodel/guest). Re-executed as the exec stage, it sets up the
// app's process and executes the app. It is static and links no cgo and
// no libcontainer.
package main

import (
	"os"

	"github.com/lf-edge/moor/devicemodel/guest"
)

func main() {
	if os.Args[0] == guest.ExecStage {
		os.Exit(guest.Exec(os.Stderr))
	}
	guest.Run()
}
