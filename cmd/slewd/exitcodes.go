package main

// exitStatusTable is every command's exit statuses, in one table: the man
// page's EXIT STATUS and docs/deploy.md's "Exit status" carry it (the
// tests check both). Usage errors are 2 everywhere; no error exits 0 or 3,
// the statuses slewd-boot.service accepts as success.
const exitStatusTable = "Exit status, for every command:\n" +
	"   0  success: done, synchronized, or nothing to do (query: an estimate;\n" +
	"      ntpdate -q: at least one server measured; help, --version)\n" +
	"   1  failure: the kernel refused a clock change, a file could not be\n" +
	"      read or written, another slewd run holds --state-dir, an unusable\n" +
	"      --state-dir or --run-dir, interrupted by SIGINT or SIGTERM; query\n" +
	"      and ntpdate: no usable time from the servers\n" +
	"   2  usage: an unknown command or flag, a bad value (the message names\n" +
	"      the flag or variable, the value and the range), contradictory\n" +
	"      flags, a configuration or key file that cannot be used\n" +
	"   3  boot and sync: no usable time from the servers (boot: before\n" +
	"      --deadline; the clock was not set, and slewd-boot.service accepts\n" +
	"      it); wait: not synchronized before --timeout\n" +
	"   4  boot --require-sync: as 3, and the unit fails\n" +
	"   5  boot and sync: the correction is beyond the adjtime slew (2145 s)\n" +
	"      and no step is allowed (sync never steps, --forward-only never\n" +
	"      steps back): nothing was changed\n" +
	"  77  no permission to change the clock (CAP_SYS_TIME)"
