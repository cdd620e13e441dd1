package ifname

// MaxLen is the longest interface name the kernel takes (IFNAMSIZ less
// the terminating NUL).
const MaxLen = 15

// Valid reports whether s is a valid interface name: 1 to MaxLen letters,
// digits and _.-, and not "." or "..".
func Valid(s string) bool {
	if len(s) == 0 || len(s) > MaxLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
