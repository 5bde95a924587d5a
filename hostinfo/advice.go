package hostinfo

// Advice is one line on what moves the clock on this kind of machine and
// what to do about it, for the daemon's start-up log (docs/guests.md §2
// has the details).
func Advice(v Virt) string {
	switch v.Container {
	case "none", "":
	case "wsl":
		return "WSL2: Hyper-V TimeSync steps the clock (hv_utils.timesync_implicit=1); slewd undoes backward steps; see docs/guests.md"
	default:
		return "container: the host's clock is this clock; run slewd on the host, or `slewd run --monitor-only` here"
	}
	switch v.Virtualization {
	case "none", "":
		return "bare metal: only programs on this machine move the clock"
	case "microsoft":
		return "Hyper-V: hv_utils TimeSync steps the clock on restore, resume and host maintenance; slewd undoes backward steps; see docs/guests.md for unbinding it; --phc with the ptp_hyperv PHC (clock_name hyperv) is the host's clock"
	case "vmware":
		return "VMware: VMware Tools may slew the tick and step on resume; disable its time sync (vmware-toolbox-cmd timesync disable, and the VMX time.synchronize.* settings)"
	case "oracle":
		return "VirtualBox: VBoxService steps the clock on restore and past 20 min; run it with --disable-timesync"
	case "kvm", "qemu":
		return "KVM/QEMU: a paused guest comes back behind with no kernel event; the next poll finds it and slewd steps forward (the guest agent's guest-set-time steps too); with KVM, modprobe ptp_kvm and add --phc /dev/ptp0: the host's clock, read every second"
	case "xen":
		return "Xen: save/restore and migration resume the clock through the kernel; slewd re-measures at once"
	case "amazon", "google":
		return "cloud guest: the provider's agent may set the clock after migration or stop/start; slewd undoes backward steps; see docs/guests.md"
	}
	return "virtual machine: a hypervisor agent may step the clock; slewd undoes backward steps; see docs/guests.md"
}
