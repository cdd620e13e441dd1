package machine

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Input event codes (linux/input-event-codes.h).
const (
	evKey    = 0x01
	keyPower = 116
)

// inputEventSize is struct input_event on a 64-bit kernel: a timeval (16
// bytes), type, code (2 each) and value (4).
const inputEventSize = 24

// InputDevice is an evdev device: its node under /dev/input and its name.
type InputDevice struct {
	Event string // "event0"
	Name  string // "Power Button"
}

// PowerButtons lists the event devices that can send KEY_POWER, from
// sysfs (sysRoot/class/input/event*/device/capabilities/key): the ACPI
// power button once the button and evdev drivers are there, and a
// keyboard that has the key.
func PowerButtons(sysRoot string) ([]InputDevice, error) {
	events, err := filepath.Glob(filepath.Join(sysRoot, "class/input/event*"))
	if err != nil {
		return nil, fmt.Errorf("find power buttons: %w", err)
	}
	sort.Strings(events)
	var out []InputDevice
	for _, ev := range events {
		caps, err := os.ReadFile(filepath.Join(ev, "device/capabilities/key"))
		if err != nil || !HasKey(string(caps), keyPower) {
			continue
		}
		name, _ := os.ReadFile(filepath.Join(ev, "device/name"))
		out = append(out, InputDevice{Event: filepath.Base(ev), Name: strings.TrimSpace(string(name))})
	}
	return out, nil
}

// HasKey reads a capability bitmap as sysfs writes it (hexadecimal
// words, the highest first) and reports whether bit code is set.
func HasKey(bitmap string, code int) bool {
	words := strings.Fields(bitmap)
	n := new(big.Int)
	for _, w := range words {
		v, ok := new(big.Int).SetString(w, 16)
		if !ok {
			return false
		}
		n.Lsh(n, 64).Or(n, v)
	}
	return n.Bit(code) == 1
}

// PowerPresses counts the presses of KEY_POWER (value 1) among the input
// events in b.
func PowerPresses(b []byte) int {
	n := 0
	for ; len(b) >= inputEventSize; b = b[inputEventSize:] {
		typ := binary.NativeEndian.Uint16(b[16:])
		code := binary.NativeEndian.Uint16(b[18:])
		value := int32(binary.NativeEndian.Uint32(b[20:]))
		if typ == evKey && code == keyPower && value == 1 {
			n++
		}
	}
	return n
}

// powerButton is the power-button step: a reader for each device with
// KEY_POWER; a press is a shutdown, as SIGPWR.
func (m *machine) powerButton() error {
	devs, err := PowerButtons(m.path("/sys"))
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		m.log.Info("no power button: the kernel has no ACPI button or no evdev (list button and evdev in " + ModulesFile + ")")
		return nil
	}
	m.button = make(chan struct{}, 1)
	for _, d := range devs {
		f, err := os.Open(m.path("/dev/input/" + d.Event))
		if err != nil {
			return fmt.Errorf("watch power button: %w", err)
		}
		go m.watchButton(f)
		m.log.Info("watching power button", "device", "/dev/input/"+d.Event, "name", d.Name)
	}
	return nil
}

// watchButton reads one device's events until it goes away.
func (m *machine) watchButton(f *os.File) {
	defer f.Close()
	buf := make([]byte, 64*inputEventSize)
	for {
		n, err := f.Read(buf)
		if err != nil {
			m.log.Debug("power button gone", "device", f.Name(), "err", err)
			return
		}
		if PowerPresses(buf[:n]) > 0 {
			select {
			case m.button <- struct{}{}:
			default: // a press is pending already
			}
		}
	}
}
