package ntpclient

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const debianNTPConf = `# /etc/ntp.conf, configuration for ntpd; see ntp.conf(5) for help

driftfile /var/lib/ntp/ntp.drift
leapfile /usr/share/zoneinfo/leap-seconds.list

# Specify one or more NTP servers.
pool 0.debian.pool.ntp.org iburst
pool 1.debian.pool.ntp.org iburst
server ntp.nict.jp iburst minpoll 5 maxpoll 11
server -4 192.0.2.10 prefer
server 127.127.1.0              # local clock
fudge  127.127.1.0 stratum 10
peer 192.0.2.99
restrict -4 default kod notrap nomodify nopeer noquery limited
restrict 127.0.0.1
includefile /etc/ntp/crypto/pw
keys /etc/ntp/keys
`

const chronyConf = `# Welcome to the chrony configuration file.
! another comment style
pool 2.debian.pool.ntp.org iburst maxsources 3
server time.example.com iburst key 7 minpoll 4 maxpoll 10
server 192.0.2.20 port 12300 key 7 xleave
server [2001:db8::1]:10123 key 7
server 2001:db8::2 nts ntsport 4461 certset 1
server 192.0.2.30 noselect
refclock PHC /dev/ptp0 poll 3 dpoll -2 offset 0
sourcedir /run/chrony-dhcp
confdir /etc/chrony/conf.d
keyfile /etc/chrony/chrony.keys
driftfile /var/lib/chrony/chrony.drift
makestep 1 3
rtcsync
`

func TestImportNTPConf(t *testing.T) {
	imp, err := ImportConfig(strings.NewReader(debianNTPConf), "ntp.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"ntp.nict.jp:123", "192.0.2.10:123"}; !slices.Equal(imp.Servers, want) {
		t.Errorf("servers %q, want %q", imp.Servers, want)
	}
	if want := []string{"0.debian.pool.ntp.org:123", "1.debian.pool.ntp.org:123"}; !slices.Equal(imp.Pools, want) {
		t.Errorf("pools %q, want %q", imp.Pools, want)
	}
	if imp.MinPoll != 32*time.Second || imp.MaxPoll != 2048*time.Second {
		t.Errorf("poll %v..%v", imp.MinPoll, imp.MaxPoll)
	}
	if imp.KeyID != 0 || imp.KeyFile != "" {
		t.Errorf("key %d file %q: no source uses a key", imp.KeyID, imp.KeyFile)
	}
	for _, want := range []string{"ntp.conf:11: server 127.127.1.0 is a reference clock", "ntp.conf:13: peer 192.0.2.99 left out", "ntp.conf:16: includefile /etc/ntp/crypto/pw not followed"} {
		if !slices.ContainsFunc(imp.Notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("notes lack %q: %q", want, imp.Notes)
		}
	}
	if len(imp.Notes) != 4 || !strings.Contains(imp.Notes[0], "ntp.conf:10: server 192.0.2.10: prefer ignored: it would have preferred") {
		t.Errorf("notes %q", imp.Notes)
	}
}

func TestImportChronyConf(t *testing.T) {
	imp, err := ImportConfig(strings.NewReader(chronyConf), "chrony.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"time.example.com:123", "192.0.2.20:12300", "[2001:db8::1]:10123", "nts://[2001:db8::2]:4461"}; !slices.Equal(imp.Servers, want) {
		t.Errorf("servers %q, want %q", imp.Servers, want)
	}
	if want := []string{"2.debian.pool.ntp.org:123"}; !slices.Equal(imp.Pools, want) || imp.PoolSize != 3 {
		t.Errorf("pools %q size %d", imp.Pools, imp.PoolSize)
	}
	if imp.KeyID != 7 || imp.KeyFile != "/etc/chrony/chrony.keys" {
		t.Errorf("key %d file %q", imp.KeyID, imp.KeyFile)
	}
	if want := []string{"/dev/ptp0"}; !slices.Equal(imp.PHCs, want) {
		t.Errorf("PHCs %q, want %q", imp.PHCs, want)
	}
	// minpoll 4 = 16 s, maxpoll 10 = 1024 s.
	if imp.MinPoll != 16*time.Second || imp.MaxPoll != 1024*time.Second {
		t.Errorf("poll %v..%v", imp.MinPoll, imp.MaxPoll)
	}
	for _, want := range []string{"chrony.conf:8: server 192.0.2.30 is noselect", "chrony.conf:9: refclock PHC /dev/ptp0: poll 3, dpoll -2, offset 0 ignored", "chrony.conf:10: sourcedir", "chrony.conf:11: confdir", "key 7 is used for every source, also the 1 configured without a key"} {
		if !slices.ContainsFunc(imp.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("notes lack %q: %q", want, imp.Notes)
		}
	}
}

func TestImportRefclocks(t *testing.T) {
	for _, tc := range []struct {
		conf  string
		phcs  []string
		notes []string
	}{
		{"refclock PHC /dev/ptp0\n", []string{"/dev/ptp0"}, nil},
		{"refclock PHC /dev/ptp_kvm poll 2 prefer\nrefclock PHC /dev/ptp_kvm\n", []string{"/dev/ptp_kvm"}, []string{"x:1: refclock PHC /dev/ptp_kvm: poll 2 ignored"}},
		{"refclock PHC /dev/ptp1:nocrossts tai\n", []string{"/dev/ptp1"}, []string{"x:1: refclock PHC /dev/ptp1: :nocrossts, tai ignored"}},
		{"refclock PHC /dev/ptp0 noselect\n", nil, []string{"x:1: refclock PHC /dev/ptp0 left out: noselect"}},
		{"refclock SHM 0 refid GPS\n", nil, []string{"x:1: reference clock SHM 0 refid GPS left out"}},
		{"refclock PHC\n", nil, []string{"x:1: reference clock PHC left out"}},
	} {
		imp, err := ImportConfig(strings.NewReader(tc.conf), "x")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(imp.PHCs, tc.phcs) {
			t.Errorf("%q: PHCs %q, want %q", tc.conf, imp.PHCs, tc.phcs)
		}
		if len(imp.Notes) != len(tc.notes) {
			t.Errorf("%q: notes %q, want %q", tc.conf, imp.Notes, tc.notes)
			continue
		}
		for i, n := range tc.notes {
			if !strings.HasPrefix(imp.Notes[i], n) {
				t.Errorf("%q: note %q, want it to start %q", tc.conf, imp.Notes[i], n)
			}
		}
		if len(tc.phcs) > 0 && !strings.Contains(imp.Format(), "refclock PHC "+tc.phcs[0]+"\n") {
			t.Errorf("Format %q lacks the refclock", imp.Format())
		}
	}
}

func TestImportErrorsAndEdges(t *testing.T) {
	for _, tc := range []struct {
		name, conf, err string
		servers         []string
		notes           int
	}{
		{"two keys", "server a.example key 1\nserver b.example key 2\n", "one key", nil, 0},
		{"bad host", "server http://time.example/\n", "looks like a URL", nil, 0},
		{"bad port", "server 192.0.2.1 port 70000\n", "port", nil, 0},
		{"port twice", "server 192.0.2.1:123 port 124\n", "a port option", nil, 0},
		{"no host", "server\n", "", nil, 1},
		{"duplicate", "server 192.0.2.1\nserver 192.0.2.1:123\n", "", []string{"192.0.2.1:123"}, 1},
		{"unknown option", "server 192.0.2.1 frobnicate\n", "", []string{"192.0.2.1:123"}, 1},
		{"option without value", "server 192.0.2.1 minpoll\n", "", []string{"192.0.2.1:123"}, 1},
		{"sub-second poll raised", "server 192.0.2.1 minpoll -2 maxpoll 2\n", "", []string{"192.0.2.1:123"}, 1},
		{"case and tabs", "SERVER\t192.0.2.1\tIBURST\n", "", []string{"192.0.2.1:123"}, 0},
		{"comment after host", "server 192.0.2.1# the lab clock\n", "", []string{"192.0.2.1:123"}, 0},
		{"empty", "", "", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp, err := ImportConfig(strings.NewReader(tc.conf), "f")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if !strings.HasPrefix(err.Error(), "f:") {
					t.Errorf("error %q does not name the file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(imp.Servers, tc.servers) || len(imp.Notes) != tc.notes {
				t.Errorf("servers %q notes %q", imp.Servers, imp.Notes)
			}
		})
	}
}

// FuzzImportConfig: any input either errors or gives sources that
// ParseSource accepts, poll bounds slewd accepts, notes that name a line,
// and an import that Format writes back and ImportConfig reads the same.
func FuzzImportConfig(f *testing.F) {
	f.Add(debianNTPConf)
	f.Add(chronyConf)
	f.Add("server 192.0.2.1 port 1 key 4294967295 minpoll 24 maxpoll -7\npool p.example maxsources 16\n")
	f.Add("server -6 -4 ::1\n")
	f.Add("server nts.example nts ntsport 4461 maxdelay 0.1\nserver a.example key 3 minsamples 4 trust require\npool p.example nts\n")
	f.Add("server 192.0.2.1 autokey\nserver b.example nts port 123 certset 2\nntstrustedcerts /etc/ca.pem\n")
	f.Fuzz(func(t *testing.T, conf string) {
		imp, err := ImportConfig(strings.NewReader(conf), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		for _, s := range append(slices.Clone(imp.Servers), imp.Pools...) {
			if _, err := ParseSource(s); err != nil {
				t.Fatalf("imported %q, which ParseSource rejects: %v", s, err)
			}
		}
		if imp.MinPoll != 0 && imp.MinPoll < MinPollFloor || imp.MaxPoll != 0 && imp.MaxPoll < MinPollFloor {
			t.Fatalf("poll %v..%v below the floor", imp.MinPoll, imp.MaxPoll)
		}
		if imp.MinPoll != 0 && imp.MaxPoll != 0 && imp.MaxPoll < imp.MinPoll {
			t.Fatalf("maxpoll %v < minpoll %v", imp.MaxPoll, imp.MinPoll)
		}
		for _, n := range imp.Notes {
			if !strings.HasPrefix(n, "fuzz") {
				t.Fatalf("note without the file name: %q", n)
			}
		}
		again, err := ImportConfig(strings.NewReader(imp.Format()), "again")
		if err != nil {
			t.Fatalf("Format output %q does not import: %v", imp.Format(), err)
		}
		if !slices.Equal(again.Servers, imp.Servers) || !slices.Equal(again.Pools, imp.Pools) || again.KeyID != imp.KeyID || again.PoolSize != imp.PoolSize {
			t.Fatalf("round trip %+v → %q → %+v", imp, imp.Format(), again)
		}
	})
}
