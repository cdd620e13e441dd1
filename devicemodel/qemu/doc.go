// Package qemu is the qemu backend of devicemodel: a pure builder of qemu's
// argv and -readconfig file in EVE's style (-S -no-user-config -nodefaults
// -no-shutdown -display none, two QMP monitors, the console on a socket
// chardev logged into a file, a pidfile), and a small QMP client (a unix
// socket, one JSON object a line: the greeting, qmp_capabilities, commands
// and their replies, events).
//
// It must not start qemu: the anchor does, and asks the client to talk to it.
//
// Concurrency: the builders are pure. A Monitor serialises its commands and
// may be used from several goroutines; its Events channel has one reader.
package qemu
