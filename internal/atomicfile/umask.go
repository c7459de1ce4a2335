package atomicfile

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Mode returns perm less the process's umask: the mode os.WriteFile(path, data, perm) would
// give a new file, for files that are created private (os.CreateTemp, 0600) and given their
// final mode before they are renamed into place. So a layout or archive written by a user
// whose umask is 077 stays theirs alone, and one written with 022 is readable by others, as
// skopeo's and crane's are.
func Mode(perm os.FileMode) os.FileMode { return perm &^ umask() }

var umask = sync.OnceValue(readUmask)

// readUmask reads the umask from /proc/self/status (Linux 4.7 and later), without changing it
// (umask(2) can only be read by setting it, which would race with files being created); it
// assumes 022, the usual one, where it cannot be read.
func readUmask() os.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return os.FileMode(m) & os.ModePerm
			}
		}
	}
	return 0o022
}
