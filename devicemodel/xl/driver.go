package xl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lf-edge/moor/devicemodel"
)

// ErrNoDomain means xl knows no domain of that name.
var ErrNoDomain = errors.New("no such domain")

// Runner runs xl with args and returns its standard output. When xl runs
// and fails (a non-zero exit, or killed by a signal) the error is an
// *ExitError, which carries the exit status and the standard error.
type Runner interface {
	Run(ctx context.Context, args ...string) ([]byte, error)
}

// Driver drives one domain through xl.
type Driver struct {
	Run  Runner
	Name string // the domain's name
}

// Create creates the domain from cfg, paused (xl create -p).
func (d *Driver) Create(ctx context.Context, cfg string) error {
	if _, err := d.Run.Run(ctx, "create", "-p", cfg); err != nil {
		return fmt.Errorf("create domain %s: %w", d.Name, err)
	}
	return nil
}

// Unpause lets the domain run.
func (d *Driver) Unpause(ctx context.Context) error { return d.simple(ctx, "unpause") }

// Pause stops the domain's vCPUs.
func (d *Driver) Pause(ctx context.Context) error { return d.simple(ctx, "pause") }

// Shutdown asks the guest to power off (xl shutdown; -F falls back to an
// ACPI event for a guest without PV drivers).
func (d *Driver) Shutdown(ctx context.Context) error {
	if _, err := d.Run.Run(ctx, "shutdown", "-F", d.Name); err != nil {
		return fmt.Errorf("shutdown domain %s: %w", d.Name, err)
	}
	return nil
}

// Destroy ends the domain at once. A domain that is gone already is no
// error.
func (d *Driver) Destroy(ctx context.Context) error {
	if _, err := d.Run.Run(ctx, "destroy", d.Name); err != nil {
		if _, lerr := d.State(ctx); errors.Is(lerr, ErrNoDomain) {
			return nil
		}
		return fmt.Errorf("destroy domain %s: %w", d.Name, err)
	}
	return nil
}

func (d *Driver) simple(ctx context.Context, verb string) error {
	if _, err := d.Run.Run(ctx, verb, d.Name); err != nil {
		return fmt.Errorf("%s domain %s: %w", verb, d.Name, err)
	}
	return nil
}

// Domain is one line of xl list.
type Domain struct {
	Name  string
	ID    int
	State string // xl's six flags: r b p s c d, "-" for unset
}

// State lists the domain (xl list <name>); ErrNoDomain when it is gone.
func (d *Driver) State(ctx context.Context) (Domain, error) {
	out, err := d.Run.Run(ctx, "list", d.Name)
	if err != nil {
		var xe *ExitError
		if errors.As(err, &xe) && xe.NoDomain() {
			return Domain{}, fmt.Errorf("list domain %s: %w", d.Name, ErrNoDomain)
		}
		return Domain{}, fmt.Errorf("list domain %s: %w", d.Name, err)
	}
	doms, err := ParseList(out)
	if err != nil {
		return Domain{}, fmt.Errorf("list domain %s: %w", d.Name, err)
	}
	for _, dom := range doms {
		if dom.Name == d.Name {
			return dom, nil
		}
	}
	return Domain{}, fmt.Errorf("list domain %s: %w", d.Name, ErrNoDomain)
}

// ParseList parses xl list's table:
//
//	Name     ID   Mem VCPUs	State	Time(s)
//	demo      3   128     1     -b----       0.1
func ParseList(out []byte) ([]Domain, error) {
	var doms []Domain
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "Name" {
			continue
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("parse xl list: short line %q", sc.Text())
		}
		id, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, fmt.Errorf("parse xl list: id %q: %w", f[1], err)
		}
		doms = append(doms, Domain{Name: f[0], ID: id, State: f[4]})
	}
	return doms, sc.Err()
}

// GuestState maps xl's state flags onto the guest's, as EVE's xen-start
// does: crashed, then shut down or dying, then paused; running and blocked
// (and no flag at all) are running.
func (dom Domain) GuestState() devicemodel.GuestState {
	switch {
	case strings.Contains(dom.State, "c"):
		return devicemodel.GuestCrashed
	case strings.ContainsAny(dom.State, "sd"):
		return devicemodel.GuestShutdown
	case strings.Contains(dom.State, "p"):
		return devicemodel.GuestPaused
	}
	return devicemodel.GuestRunning
}
