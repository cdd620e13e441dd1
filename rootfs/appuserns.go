package rootfs

import (
	"fmt"
	"math"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// UserNS asks for a user namespace of the task's own (APP.json's
// userNamespace): IDs 0 to Size-1 inside are host IDs HostUID and HostGID
// on. The task's root is then an unprivileged host user.
type UserNS struct {
	HostUID uint32 `json:"hostUID"`
	HostGID uint32 `json:"hostGID"`
	Size    uint32 `json:"size"`
}

// validate checks the range: not host ID 0 (the task's root must not be
// the host's), at least one ID, and all of them valid IDs (below 2^32-1).
func (u *UserNS) validate() error {
	if u == nil {
		return nil
	}
	const field = "userNamespace"
	if u.HostUID == 0 {
		return appErr(field+".hostUID", "0 would make the task's root the host's root; want an unprivileged range")
	}
	if u.HostGID == 0 {
		return appErr(field+".hostGID", "0 would make the task's root group the host's; want an unprivileged range")
	}
	if u.Size == 0 {
		return appErr(field+".size", "0: want at least 1 ID (65536 for a whole distribution)")
	}
	for name, start := range map[string]uint32{"hostUID": u.HostUID, "hostGID": u.HostGID} {
		if uint64(start)+uint64(u.Size) > math.MaxUint32 {
			return appErr(field+"."+name, "%d + size %d passes the largest ID, %d", start, u.Size, uint32(math.MaxUint32-1))
		}
	}
	return nil
}

// applyUserNS gives s the app's user namespace and checks that volumes
// asking to be idmapped have one.
func applyUserNS(s *specs.Spec, a *App) error {
	if u := a.UserNamespace; u != nil {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if i := namespaceIndex(s, specs.UserNamespace); i < 0 {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		} else {
			s.Linux.Namespaces[i].Path = ""
		}
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: u.HostUID, Size: u.Size}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: u.HostGID, Size: u.Size}}
	}
	for i, v := range a.Volumes {
		if v.IDMap && !NewUserNS(s) {
			return appErr(fmt.Sprintf("volumes[%d].idmap", i), "the task has no user namespace of its own (set userNamespace)")
		}
	}
	return nil
}

// NewUserNS says whether spec makes a user namespace of its own.
func NewUserNS(spec *specs.Spec) bool {
	if spec.Linux == nil {
		return false
	}
	i := namespaceIndex(spec, specs.UserNamespace)
	return i >= 0 && spec.Linux.Namespaces[i].Path == ""
}

// volumeOptions are a volume's bind mount options.
func volumeOptions(v Volume, mode string) []string {
	opts := []string{"rbind", "nosuid", "nodev", mode}
	if v.IDMap {
		opts = append(opts, "ridmap") // the whole rbind tree
	}
	return opts
}
