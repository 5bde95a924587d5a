package ntpclient

import (
	"slices"
	"strings"
	"testing"
)

// Every option of a server or pool line is honoured, refused with an
// error, or named in a note that says what it would have meant: none
// disappears without a word.
func TestParseSourceLineOptions(t *testing.T) {
	for _, tc := range []struct {
		line string
		spec string // Spec.String(); "" if left out or refused
		key  uint32
		note string // a note must contain it ("": no note at all)
		skip string // the source is left out, saying so
		err  string
	}{
		// Honoured.
		{line: "server a.example iburst", spec: "a.example:123"},
		{line: "server a.example burst port 1123", spec: "a.example:1123"},
		{line: "server a.example key 7", spec: "a.example:123", key: 7},
		{line: "server a.example nts", spec: "nts://a.example:4460"},
		{line: "server a.example nts ntsport 4461", spec: "nts://a.example:4461"},
		{line: "server 192.0.2.1 NTS", spec: "nts://192.0.2.1:4460"},
		{line: "pool p.example maxsources 3", spec: "p.example:123"},
		{line: "server a.example minpoll 6 maxpoll 10", spec: "a.example:123"},
		// Security: never an unauthenticated source in place of an
		// authenticated one.
		{line: "server a.example autokey", skip: "autokey would have authenticated the server"},
		{line: "pool p.example nts", err: "slewd does not do NTS for pools"},
		{line: "server a.example key 3 nts", err: "both key 3 and nts"},
		{line: "server nts://a.example", err: "write the host alone and the nts option"},
		{line: "server a.example noselect", skip: "is noselect: left out"},
		{line: "server a.example nts certset 2", spec: "nts://a.example:4460", note: "certset 2 ignored: it would have trusted only chrony's ntstrustedcerts set 2"},
		{line: "server a.example nts port 123", spec: "nts://a.example:4460", note: "port 123 ignored: with nts the key exchange names the NTP server"},
		{line: "server a.example ntsport 4460", spec: "a.example:123", note: "ntsport 4460 ignored: it is the NTS-KE port, and the line has no nts option"},
		// Noted, with what they would have meant.
		{line: "server a.example maxdelay 0.05", spec: "a.example:123", note: "maxdelay 0.05 ignored: it would have dropped samples with a round-trip delay above 0.05 s"},
		{line: "server a.example maxdelayratio 3", spec: "a.example:123", note: "exceeds 3 times the source's least delay"},
		{line: "server a.example maxdelaydevratio 10", spec: "a.example:123", note: "exceeds the least by 10 standard deviations"},
		{line: "server a.example mindelay 0.001", spec: "a.example:123", note: "fixed the source's least delay at 0.001 s"},
		{line: "server a.example minsamples 8", spec: "a.example:123", note: "minsamples 8 ignored: it would have kept at least 8 samples"},
		{line: "server a.example maxsamples 4", spec: "a.example:123", note: "kept at most 4 samples"},
		{line: "server a.example minstratum 3", spec: "a.example:123", note: "at least stratum 3"},
		{line: "server a.example offset 0.5", spec: "a.example:123", note: "shifted this source's time by 0.5 s"},
		{line: "server a.example asymmetry 0.2", spec: "a.example:123", note: "path asymmetry of 0.2"},
		{line: "server a.example polltarget 12", spec: "a.example:123", note: "aimed for 12 samples"},
		{line: "server a.example presend 9", spec: "a.example:123", note: "extra request before each poll of 2^9 s"},
		{line: "server a.example filter 5", spec: "a.example:123", note: "combined 5 samples into each one"},
		{line: "server a.example version 3", spec: "a.example:123", note: "asked in NTP version 3"},
		{line: "server a.example extfield F323", spec: "a.example:123", note: "extension field F323"},
		{line: "server a.example maxsources 2", spec: "a.example:123", note: "maxsources ignored: it applies to pools only"},
		{line: "pool p.example maxsources 99", spec: "p.example:123", note: "maxsources \"99\" ignored: want 1 to 16"},
		{line: "server a.example prefer", spec: "a.example:123", note: "prefer ignored: it would have preferred this source"},
		{line: "server a.example trust", spec: "a.example:123", note: "trust ignored: it would have trusted this source when sources disagree"},
		{line: "server a.example require", spec: "a.example:123", note: "require ignored: it would have allowed no clock update without this source"},
		{line: "server a.example true", spec: "a.example:123", note: "kept this source as a truechimer"},
		{line: "server a.example xleave", spec: "a.example:123", note: "interleaved mode"},
		{line: "server a.example copy", spec: "a.example:123", note: "copied the server's reference id"},
		{line: "server a.example offline", spec: "a.example:123", note: "started the source offline"},
		{line: "server a.example ipv6", spec: "a.example:123", note: "only the name's IPv6 addresses"},
		{line: "server a.example minpoll 40", spec: "a.example:123", note: "minpoll \"40\" ignored"},
		{line: "server a.example maxdelay", spec: "a.example:123", note: "option maxdelay has no value: ignored"},
		{line: "server a.example frobnicate", spec: "a.example:123", note: "unknown option \"frobnicate\" ignored"},
		// Refused.
		{line: "server a.example key 0", err: "not a key number"},
		{line: "server a.example ntsport x", err: "ntsport \"x\" of a.example is not a number"},
		{line: "server a.example:123 port 124", err: "a port in the host and a port option"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			f := strings.Fields(tc.line)
			l, err := ParseSourceLine(f[0], f[1:])
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.skip != "" {
				if !strings.Contains(l.Skip, tc.skip) {
					t.Fatalf("skip %q, want %q", l.Skip, tc.skip)
				}
				return
			}
			if l.Skip != "" || l.Spec.String() != tc.spec || l.Key != tc.key {
				t.Errorf("spec %s key %d skip %q, want %s key %d", l.Spec, l.Key, l.Skip, tc.spec, tc.key)
			}
			if tc.note == "" && len(l.Notes) > 0 || tc.note != "" && !slices.ContainsFunc(l.Notes, func(n string) bool { return strings.Contains(n, tc.note) }) {
				t.Errorf("notes %q, want one saying %q", l.Notes, tc.note)
			}
			for _, n := range l.Notes {
				if !strings.HasPrefix(n, f[0]+" "+f[1]+": ") {
					t.Errorf("note %q does not name the source", n)
				}
			}
		})
	}
}

// Every option slewd knows has a case in the table above or a meaning:
// a new one cannot be added without saying what it does.
func TestSourceLineMeanings(t *testing.T) {
	honoured := map[string]bool{"iburst": true, "burst": true, "noselect": true, "nts": true,
		"port": true, "ntsport": true, "key": true, "minpoll": true, "maxpoll": true, "maxsources": true}
	for _, m := range []map[string]string{flagMeanings, optionMeanings} {
		for opt, meaning := range m {
			if !honoured[opt] && !strings.Contains(meaning, " ") {
				t.Errorf("option %s: no meaning to put in its note", opt)
			}
		}
	}
}

// Directives that change what counts as trusted are named, not dropped.
func TestImportSecurityDirectives(t *testing.T) {
	conf := "server a.example nts\nntstrustedcerts /etc/chrony/ca.pem\nnosystemcert\nauthselectmode require\nminsources 2\nmakestep 1 3\n"
	imp, err := ImportConfig(strings.NewReader(conf), "c")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c:2: ntstrustedcerts /etc/chrony/ca.pem not imported: it would have added CAs", "c:3: nosystemcert not imported",
		"c:4: authselectmode require not imported", "c:5: minsources 2 not imported: it would have required that many selectable sources; use --min-sources"} {
		if !slices.ContainsFunc(imp.Notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
			t.Errorf("notes lack %q: %q", want, imp.Notes)
		}
	}
	if len(imp.Notes) != 4 || !slices.Equal(imp.Servers, []string{"nts://a.example:4460"}) {
		t.Errorf("servers %q notes %q", imp.Servers, imp.Notes)
	}
}
