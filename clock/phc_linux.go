//go:build linux

package clock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// phcSamples is how many readings PTP_SYS_OFFSET_EXTENDED and
// PTP_SYS_OFFSET take per call; the narrowest wins (an interrupt or a
// host preemption widens a few).
const phcSamples = 5

// Device is a PTP hardware clock, /dev/ptpN, read with the best ioctl its
// driver supports: PTP_SYS_OFFSET_PRECISE, else PTP_SYS_OFFSET_EXTENDED,
// else PTP_SYS_OFFSET. It only reads; it never adjusts the PHC.
type Device struct {
	f      *os.File
	name   string
	method phcMethod
}

// OpenPHC opens a PHC device read-only, naming it from sysfs
// (/sys/class/ptp/ptpN/clock_name).
func OpenPHC(path string) (*Device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("PHC %s: %w", path, err)
	}
	real := path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		real = p // /dev/ptp_kvm is udev's link to a /dev/ptpN
	}
	cn, _ := os.ReadFile(filepath.Join("/sys/class/ptp", filepath.Base(real), "clock_name"))
	d := &Device{f: f, name: PHCName(real, string(cn))}
	if _, err := d.Read(); err != nil {
		f.Close()
		return nil, fmt.Errorf("PHC %s: %w", path, err)
	}
	return d, nil
}

// Name is "PHC0 (ptp_kvm)".
func (d *Device) Name() string { return d.name }

// Close closes the device.
func (d *Device) Close() error { return d.f.Close() }

// Read takes one reading, moving on to a simpler ioctl for good when the
// driver does not support one.
func (d *Device) Read() (PHCReading, error) {
	for {
		r, err := d.read(d.method)
		if err == nil {
			r.Method = d.method.String()
			return r, nil
		}
		next, ok := degrade(d.method, err)
		if !ok {
			return PHCReading{}, fmt.Errorf("reading the PHC (%s): %w", d.method, err)
		}
		d.method = next
	}
}

// degrade is the method to try after m failed with err: a driver without
// a cross-timestamp answers EOPNOTSUPP, a kernel without the ioctl ENOTTY
// (and EINVAL for a request it does not know the layout of).
func degrade(m phcMethod, err error) (phcMethod, bool) {
	if m+1 >= phcNone {
		return m, false
	}
	switch {
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EINVAL):
		return m + 1, true
	}
	return m, false
}

// ioctl tries the strict request (Linux 5.8+: the "2" ioctls check their
// reserved fields) and, on a kernel that lacks it, the original one.
func (d *Device) ioctl(req2, req uint, arg unsafe.Pointer) error {
	fd := d.f.Fd()
	_, _, e := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req2), uintptr(arg))
	if e == unix.ENOTTY {
		_, _, e = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	}
	if e != 0 {
		return e
	}
	return nil
}

func (d *Device) read(m phcMethod) (PHCReading, error) {
	var sys System
	switch m {
	case phcPrecise:
		var p unix.PtpSysOffsetPrecise
		if err := d.ioctl(unix.PTP_SYS_OFFSET_PRECISE2, unix.PTP_SYS_OFFSET_PRECISE, unsafe.Pointer(&p)); err != nil {
			return PHCReading{}, err
		}
		return fromPrecise(p), nil
	case phcExtended:
		x := unix.PtpSysOffsetExtended{Samples: phcSamples}
		a := Read(sys, 1)
		err := d.ioctl(unix.PTP_SYS_OFFSET_EXTENDED2, unix.PTP_SYS_OFFSET_EXTENDED, unsafe.Pointer(&x))
		b := Read(sys, 1)
		if err != nil {
			return PHCReading{}, err
		}
		return fromTriples(extendedTriples(x), a, b)
	case phcBasic:
		x := unix.PtpSysOffset{Samples: phcSamples}
		a := Read(sys, 1)
		err := d.ioctl(unix.PTP_SYS_OFFSET2, unix.PTP_SYS_OFFSET, unsafe.Pointer(&x))
		b := Read(sys, 1)
		if err != nil {
			return PHCReading{}, err
		}
		return fromTriples(basicTriples(x), a, b)
	}
	return PHCReading{}, errors.New("no way to read this PHC")
}

func ptpTime(t unix.PtpClockTime) time.Time { return time.Unix(t.Sec, int64(t.Nsec)) }

// fromPrecise is a hardware cross-timestamp: the PHC, REALTIME and RAW
// latched at one instant.
func fromPrecise(p unix.PtpSysOffsetPrecise) PHCReading {
	return PHCReading{
		PHC:  ptpTime(p.Device),
		Real: ptpTime(p.Realtime),
		Raw:  time.Duration(p.Monoraw.Sec)*time.Second + time.Duration(p.Monoraw.Nsec),
	}
}

// extendedTriples: PTP_SYS_OFFSET_EXTENDED fills ts[i] with REALTIME,
// PHC, REALTIME, read right around the device access.
func extendedTriples(x unix.PtpSysOffsetExtended) []phcTriple {
	n := min(int(x.Samples), len(x.Ts))
	ts := make([]phcTriple, n)
	for i := range n {
		ts[i] = phcTriple{ptpTime(x.Ts[i][0]), ptpTime(x.Ts[i][1]), ptpTime(x.Ts[i][2])}
	}
	return ts
}

// basicTriples: PTP_SYS_OFFSET fills 2n+1 stamps, REALTIME and PHC
// alternating, REALTIME first and last.
func basicTriples(x unix.PtpSysOffset) []phcTriple {
	n := min(int(x.Samples), (len(x.Ts)-1)/2)
	ts := make([]phcTriple, n)
	for i := range n {
		ts[i] = phcTriple{ptpTime(x.Ts[2*i]), ptpTime(x.Ts[2*i+1]), ptpTime(x.Ts[2*i+2])}
	}
	return ts
}

// fromTriples keeps the narrowest triple and places it on RAW by the
// Readings a and b taken before and after the call.
func fromTriples(ts []phcTriple, a, b Reading) (PHCReading, error) {
	phc, real, w, err := narrowest(ts)
	if err != nil {
		return PHCReading{}, err
	}
	return PHCReading{PHC: phc, Real: real, Raw: inRAW(real, a, b), Width: w}, nil
}
