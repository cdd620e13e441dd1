package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/lf-edge/moor/lifecycle"
)

// SystemNamespace is the task namespace of a containers tree's tasks.
const SystemNamespace = "services.linuxkit"

// Unit is one bundle of a linuxkit-style containers tree.
type Unit struct {
	Name        string // the folder name, e.g. "010-sshd"
	ID          string // the task ID: the name without a leading "NNN-"
	Dir         string
	Spec        *specs.Spec
	Digest      string // of the spec, to see a changed service on reconcile
	Policy      Policy
	StopTimeout time.Duration
}

// Tree is what a containers directory holds: onboot bundles, run one at a
// time in lexical order, then services, kept running.
type Tree struct {
	Onboot   []*Unit
	Services []*Unit
}

var orderPrefix = regexp.MustCompile(`^[0-9]+-`)

// ReadTree reads DIR/onboot/* and DIR/services/*. A bundle that cannot be
// read is left out and reported in the returned error, which is non-nil
// alongside a usable Tree; a missing DIR is an error on its own.
func ReadTree(dir string) (*Tree, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("read containers tree %s: not a directory", dir)
	}
	t := &Tree{}
	var errs []error
	var e1, e2 error
	t.Onboot, e1 = readUnits(filepath.Join(dir, "onboot"))
	t.Services, e2 = readUnits(filepath.Join(dir, "services"))
	errs = append(errs, e1, e2)
	seen := map[string]string{}
	for _, u := range t.Services {
		if other, dup := seen[u.ID]; dup {
			errs = append(errs, fmt.Errorf("services %s and %s share the task id %s", other, u.Name, u.ID))
		}
		seen[u.ID] = u.Name
	}
	return t, errors.Join(errs...)
}

func readUnits(dir string) ([]*Unit, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var units []*Unit
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		u, err := readUnit(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		units = append(units, u)
	}
	return units, errors.Join(errs...)
}

func readUnit(dir string) (*Unit, error) {
	name := filepath.Base(dir)
	u := &Unit{Name: name, ID: orderPrefix.ReplaceAllString(name, ""), Dir: dir}
	if err := lifecycle.CheckID(u.ID); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	var err error
	if u.Spec, err = lifecycle.LoadSpec(dir); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if u.Digest, err = SpecDigest(u.Spec); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if u.Policy, err = ParsePolicy(u.Spec.Annotations[RestartAnnotation]); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if u.StopTimeout, err = ParseStopTimeout(u.Spec.Annotations[StopTimeoutAnnotation]); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	return u, nil
}

// SpecDigest identifies a spec's content.
func SpecDigest(s *specs.Spec) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("digest spec: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
