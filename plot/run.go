package plot

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"slewd/discipline/simulation"
)

// RunInfo is what the plot of a simulation says: the run in its
// title, the rate limit, convergence, kills and the step from outside.
func RunInfo(cfg simulation.Config, res *simulation.Result) Info {
	p := Info{RateLimitPPM: cfg.MaxSlewPPM, Bound: 1e-3, ConvergedAt: -1}
	if res.ConvergedAfterS != nil {
		p.ConvergedAt = *res.ConvergedAfterS
	}
	for _, k := range cfg.KillAt {
		p.Marks = append(p.Marks, Mark{At: k.Seconds(), Label: "kill -9"})
	}
	if cfg.StepBy != 0 {
		p.Marks = append(p.Marks, Mark{At: cfg.StepAt.Seconds(), Label: "stepped " + plusSign(cfg.StepBy.Seconds()) + signedHuman(cfg.StepBy.Seconds()) + " from outside"})
	}
	if cfg.AgentPeriod > 0 {
		p.Marks = append(p.Marks, Mark{At: cfg.AgentStart.Seconds(), Label: "agent starts"})
	}
	if cfg.SuspendFor > 0 {
		p.Marks = append(p.Marks, Mark{At: cfg.SuspendAt.Seconds(), Label: "suspended " + signedHuman(cfg.SuspendFor.Seconds())})
	}
	// REALTIME's backward windows, drawn as spans (one undone at the same
	// virtual instant has none to draw); one label says how many.
	if bw := res.Metrics.Backward; len(bw.Windows) > 0 {
		for i, l := range bw.Windows {
			if l > 0 {
				p.Marks = append(p.Marks, Mark{At: bw.Starts[i], Until: bw.Starts[i] + l})
			}
		}
		label := fmt.Sprintf("REALTIME went back %d times, the longest for %s", len(bw.Windows), signedHuman(bw.Longest))
		if len(bw.Windows) == 1 {
			label = "REALTIME went back for " + signedHuman(bw.Longest)
		}
		if bw.Longest == 0 {
			label += " (undone at once)"
		}
		p.Marks = append(p.Marks, Mark{At: bw.Starts[0], Label: label})
	}
	servers := fmt.Sprintf("%d servers", cfg.Servers)
	if cfg.Servers == 1 {
		servers = "1 server"
	}
	if cfg.Falsetickers > 0 {
		servers += fmt.Sprintf(" (%d false)", cfg.Falsetickers)
	}
	osc := "exact"
	if cfg.DriftPPM != 0 {
		osc = strings.Replace(fmt.Sprintf("%+g ppm", cfg.DriftPPM), "-", "−", 1)
	}
	p.Title = fmt.Sprintf("slewd simulate: clock %s at the start, oscillator %s, %s, seed %d",
		aheadOrBehind(cfg.ClockError.Seconds()), osc, servers, cfg.Seed)
	return p
}

// signedHuman is a signed time in a unit: +2 s, −54 s, −300 ms.
func signedHuman(s float64) string {
	u, scale := secondsUnit(math.Abs(s))
	return strings.Replace(strconv.FormatFloat(s/scale, 'g', 4, 64), "-", "−", 1) + " " + u
}

func plusSign(s float64) string {
	if s > 0 {
		return "+"
	}
	return ""
}
