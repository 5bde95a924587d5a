//go:build !amd64

package hostinfo

// cpuidFunc is nil off amd64: Go cannot run CPUID without assembly, and on
// 386 the gap is accepted (detection falls back to DMI, /sys/hypervisor and
// the cpuinfo "hypervisor" flag); other architectures have no CPUID.
var cpuidFunc func(leaf, subleaf uint32) (eax, ebx, ecx, edx uint32)
