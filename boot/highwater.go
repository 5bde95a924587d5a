package boot

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"slewd/adjtime"
)

// HighWaterFile is the high-water mark of known-good time in the state
// directory (/var/lib/slewd), like systemd-timesyncd's clock file: a time
// that true time was known to be past. After a reboot without network
// (an RTC with a flat battery boots in 1970 or at the firmware's build
// date), `slewd boot --restore-from-high-water` moves the clock forward to
// it, never backward.
const HighWaterFile = "highwater"

// SaveHighWater records t as known-good time. t must not be later than
// true time: pass REALTIME plus the correction still to make minus the
// error bound, while synchronized. `slewd boot` saves it after a good
// sync; `slewd run` should save it periodically while synchronized (with
// the drift file, say hourly, and at exit):
//
//	boot.SaveHighWater(state, clk.Now().Add(remaining - errorBound))
//
// It overwrites the mark even with an earlier time: a synchronized clock
// is the better witness, and a mark saved wrongly in the future must not
// stick.
func SaveHighWater(st adjtime.Store, t time.Time) error {
	if err := st.WriteFile(HighWaterFile, []byte(t.UTC().Format(time.RFC3339Nano)+"\n")); err != nil {
		return fmt.Errorf("saving the high-water mark: %w", err)
	}
	return nil
}

// ReadHighWater returns the high-water mark; ok is false when there is none.
func ReadHighWater(st adjtime.Store) (t time.Time, ok bool, err error) {
	b, err := st.ReadFile(HighWaterFile)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("reading the high-water mark: %w", err)
	}
	t, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("high-water mark %q is not an RFC 3339 time: delete %s and slewd writes a new one at the next sync",
			strings.TrimSpace(string(b)), HighWaterFile)
	}
	return t, true, nil
}

// HighWaterStep is how far to step the clock forward to the mark: the
// clock reads now, and true time is at least mark. Zero when the clock is
// not behind the mark: the mark never moves a clock back.
func HighWaterStep(now, mark time.Time) time.Duration {
	if !mark.After(now) {
		return 0
	}
	return mark.Sub(now)
}
