package fdpass

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxFDs is the most fds one SCM_RIGHTS message carries (the kernel's
// SCM_MAX_FD).
const MaxFDs = 253

// RightsSpace returns the control buffer size that holds n fds: what to
// give recvmsg so that nothing is truncated. Because of alignment the
// buffer may hold one more fd than n; the receiver must still count.
func RightsSpace(n int) int { return unix.CmsgSpace(4 * n) }

// ParseRights returns the fds of every SCM_RIGHTS message in the control
// data oob (as recvmsg filled it), in order, skipping other messages (such
// as SCM_CREDENTIALS). It exists because x/sys/unix's parser stops at the
// first malformed header and loses the fds it already saw, and every fd the
// kernel installed must be closed by someone.
//
// On malformed data it returns the fds found before the fault and an error:
// the caller must close those fds. The fds are not validated or closed here.
func ParseRights(oob []byte) ([]int, error) {
	var fds []int
	const hdrLen = unix.SizeofCmsghdr
	for off := 0; off+hdrLen <= len(oob); {
		var h unix.Cmsghdr
		// Copy the header out: oob need not be aligned for a Cmsghdr.
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), hdrLen), oob[off:off+hdrLen])
		n := uint64(h.Len)
		if n < hdrLen || n > uint64(len(oob)-off) {
			return fds, fmt.Errorf("control message at offset %d: length %d out of range (%d bytes left)", off, n, len(oob)-off)
		}
		data := oob[off+hdrLen : off+int(n)]
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_RIGHTS {
			if len(data)%4 != 0 {
				return fds, fmt.Errorf("SCM_RIGHTS at offset %d: %d bytes is not a whole number of fds", off, len(data))
			}
			for i := 0; i < len(data); i += 4 {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data[i:]))))
			}
		}
		off += unix.CmsgSpace(int(n) - hdrLen)
	}
	return fds, nil
}
