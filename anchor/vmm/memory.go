package vmm

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// trimResident drops the page-table entries of the anchor's own binary's
// read-only mappings (code and read-only data). The kernel maps nearly the
// whole binary into a process that touched a part of it (fault-around over
// large page-cache folios), so a quiet anchor would keep the full
// multi-MiB binary in its RSS. The pages stay in the page cache, shared
// with every moor process; an access maps them back. Writable mappings are
// never touched: their private changes would be lost. Best effort: it
// fails silently.
func trimResident() {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &st); err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	for _, m := range readOnlyMappings(f, unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino) {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED)
	}
}

// mapping is one address range of /proc/<pid>/maps.
type mapping struct{ start, end uintptr }

// readOnlyMappings lists the private, non-writable mappings of the file
// with the given device and inode in a /proc/<pid>/maps listing.
func readOnlyMappings(r io.Reader, major, minor uint32, ino uint64) []mapping {
	var out []mapping
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// start-end perms offset major:minor inode path
		f := strings.Fields(sc.Text())
		if len(f) < 6 || len(f[1]) != 4 || f[1][1] == 'w' || f[1][3] != 'p' {
			continue
		}
		if i, err := strconv.ParseUint(f[4], 10, 64); err != nil || i != ino || !sameDev(f[3], major, minor) {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, mapping{uintptr(start), uintptr(end)})
	}
	return out
}

// sameDev says whether a maps device field ("fe:00", hex) is major:minor.
func sameDev(field string, major, minor uint32) bool {
	maj, mnr, ok := strings.Cut(field, ":")
	if !ok {
		return false
	}
	a, err1 := strconv.ParseUint(maj, 16, 32)
	b, err2 := strconv.ParseUint(mnr, 16, 32)
	return err1 == nil && err2 == nil && uint32(a) == major && uint32(b) == minor
}
