package discipline

// claim words a log line about something done to the clock: a dry run
// does none of it and must not say otherwise.
func (d *Discipline) claim(msg string) string {
	if d.cfg.DryRun {
		return "dry run, not done: " + msg
	}
	return msg
}
