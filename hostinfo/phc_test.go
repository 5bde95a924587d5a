package hostinfo

import (
	"reflect"
	"testing"
	"testing/fstest"
)

func TestPHCs(t *testing.T) {
	m := Machine{FS: fstest.MapFS{
		"sys/class/ptp/ptp10/clock_name": {Data: []byte("igb\n")},
		"sys/class/ptp/ptp0/clock_name":  {Data: []byte("ptp_kvm\n")},
		"sys/class/ptp/ptp1/other":       {Data: []byte("x")}, // no clock_name
		"sys/class/ptp/power/x":          {Data: []byte("x")}, // not a ptpN
	}}
	want := []PHC{{"/dev/ptp0", "ptp_kvm"}, {"/dev/ptp1", ""}, {"/dev/ptp10", "igb"}}
	if got := PHCs(m); !reflect.DeepEqual(got, want) {
		t.Errorf("PHCs = %+v, want %+v", got, want)
	}
	if !want[0].Reference() || want[2].Reference() {
		t.Error("ptp_kvm is the host's clock, igb's PHC is not")
	}
	if got := PHCs(Machine{FS: fstest.MapFS{}}); got != nil {
		t.Errorf("no /sys/class/ptp: %v", got)
	}
}
