package rootfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path"
	"strings"

	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// StopSignalAnnotation is the OCI annotation that carries an image's
// StopSignal; moor's stop sends the signal it names.
const StopSignalAnnotation = "org.opencontainers.image.stopSignal"

// ImageConfig is the part of an OCI image config (image-config.json) a
// seed uses.
type ImageConfig struct {
	Config ImageRuntimeConfig `json:"config"`
}

// ImageRuntimeConfig is the "config" object of an OCI image config.
type ImageRuntimeConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
	StopSignal string            `json:"StopSignal,omitempty"`
}

// ParseImageConfig reads an OCI image config: each Env entry must be
// NAME=value, a WorkingDir absolute.
func ParseImageConfig(r io.Reader) (*ImageConfig, error) {
	var c ImageConfig
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return nil, fmt.Errorf("parse image config: %w", err)
	}
	for i, e := range c.Config.Env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return nil, fmt.Errorf("parse image config: config.Env[%d] %q: want NAME=value", i, e)
		}
	}
	if w := c.Config.WorkingDir; w != "" && !path.IsAbs(w) {
		return nil, fmt.Errorf("parse image config: config.WorkingDir %q is not absolute", w)
	}
	return &c, nil
}

// FromImageConfig builds a spec from template and an image config: the
// args are Entrypoint then Cmd, the image's Env is laid over the
// template's, WorkingDir is the cwd ("/" when empty), User is resolved
// against passwd and group (either may be nil), Labels become annotations
// and StopSignal the stop-signal annotation. The root is rootPath,
// read-only. template is not changed.
func FromImageConfig(template *specs.Spec, img *ImageConfig, rootPath string, passwd, group io.Reader) (*specs.Spec, error) {
	s, err := clone(template)
	if err != nil {
		return nil, err
	}
	c := img.Config
	s.Root = &specs.Root{Path: rootPath, Readonly: true}
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	s.Process.Args = append(append([]string{}, c.Entrypoint...), c.Cmd...)
	s.Process.Env = MergeEnv(s.Process.Env, c.Env)
	s.Process.Cwd = "/"
	if c.WorkingDir != "" {
		s.Process.Cwd = c.WorkingDir
	}
	u, err := resolveUser(c.User, passwd, group)
	if err != nil {
		return nil, fmt.Errorf("image config: User %q: %w", c.User, err)
	}
	s.Process.User = specs.User{UID: uint32(u.Uid), GID: uint32(u.Gid)}
	for _, g := range u.Sgids {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, uint32(g))
	}
	if u.Home != "" && lookupEnv(s.Process.Env, "HOME") == "" {
		s.Process.Env = append(s.Process.Env, "HOME="+u.Home)
	}
	if len(c.Labels) > 0 || c.StopSignal != "" {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		maps.Copy(s.Annotations, c.Labels)
		if c.StopSignal != "" {
			s.Annotations[StopSignalAnnotation] = c.StopSignal
		}
	}
	return s, nil
}

// resolveUser turns an image's User ("name", "uid", "name:group",
// "uid:gid", empty for root) into IDs, looking names up in passwd and
// group.
func resolveUser(spec string, passwd, group io.Reader) (*user.ExecUser, error) {
	defaults := &user.ExecUser{Uid: 0, Gid: 0, Home: "/"}
	if spec == "" {
		spec = "0"
	}
	u, err := user.GetExecUser(spec, defaults, passwd, group)
	if errors.Is(err, user.ErrNoPasswdEntries) || errors.Is(err, user.ErrNoGroupEntries) {
		return nil, fmt.Errorf("not found in the volume's /etc/passwd or /etc/group: %w", err)
	}
	if err != nil {
		return nil, err
	}
	// The files' own IDs are not range-checked by the parser: one past
	// it would wrap when it becomes the spec's uint32.
	for _, id := range append([]int{u.Uid, u.Gid}, u.Sgids...) {
		if id < 0 || id > math.MaxInt32 {
			return nil, fmt.Errorf("id %d: %w", id, user.ErrRange)
		}
	}
	return u, nil
}

// MergeEnv lays over on base: an entry of over replaces base's entry of
// the same name, or is added at the end.
func MergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if n, _, _ := strings.Cut(old, "="); n == name {
				out[i] = kv
				replaced = true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func lookupEnv(env []string, name string) string {
	for _, kv := range env {
		if n, v, _ := strings.Cut(kv, "="); n == name {
			return v
		}
	}
	return ""
}

// clone deep-copies a spec.
func clone(s *specs.Spec) (*specs.Spec, error) {
	if s == nil {
		return &specs.Spec{}, nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	var c specs.Spec
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("copy spec: %w", err)
	}
	return &c, nil
}
