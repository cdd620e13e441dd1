package machine

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestHasKey(t *testing.T) {
	for _, c := range []struct {
		bitmap string
		code   int
		want   bool
	}{
		{"10000000000000 0\n", keyPower, true}, // the ACPI power button
		{"10000000000000 0", 115, false},
		{"0", keyPower, false},
		{"1", 0, true},
		{"402000000 3803078f800d001 feffffdfffefffff fffffffffffffffe", keyPower, true}, // an AT keyboard
		{"zz", keyPower, false},
		{"", keyPower, false},
	} {
		if got := HasKey(c.bitmap, c.code); got != c.want {
			t.Errorf("HasKey(%q, %d) = %v, want %v", c.bitmap, c.code, got, c.want)
		}
	}
}

func TestPowerButtons(t *testing.T) {
	sys := t.TempDir()
	writeFiles(t, sys, map[string]string{
		"class/input/event0/device/capabilities/key": "0\n", "class/input/event0/device/name": "Sleep Button\n",
		"class/input/event1/device/capabilities/key": "10000000000000 0\n", "class/input/event1/device/name": "Power Button\n",
	})
	got, err := PowerButtons(sys)
	if err != nil {
		t.Fatal(err)
	}
	if want := []InputDevice{{Event: "event1", Name: "Power Button"}}; !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestPowerPresses(t *testing.T) {
	var b []byte
	b = append(b, inputEvent(evKey, keyPower, 1)...) // press
	b = append(b, inputEvent(0, 0, 0)...)            // sync
	b = append(b, inputEvent(evKey, keyPower, 0)...) // release
	b = append(b, inputEvent(evKey, 115, 1)...)      // another key
	b = append(b, inputEvent(evKey, keyPower, 2)...) // autorepeat
	if n := PowerPresses(b); n != 1 {
		t.Errorf("%d presses, want 1", n)
	}
	if n := PowerPresses(b[:10]); n != 0 {
		t.Errorf("a short read: %d presses", n)
	}
}
