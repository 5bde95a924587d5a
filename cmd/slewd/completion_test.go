package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

var updateCompletion = flag.Bool("update-completion", false, "rewrite dist/completion from the CLI (make completion)")

// valueHints say what a flag's value is, for completing it: files,
// directories, host names, or a fixed set of words.
var valueHints = map[string]string{
	"config": "file", "keyfile": "file", "servers-from": "file", "plot": "file", "k": "file",
	"state-dir": "dir", "run-dir": "dir",
	"server": "host", "pool": "host",
	"slew-method": "pll tick", "log-level": "debug info warn error", "log-format": "text json",
}

type completionCmd struct {
	name, usage string
	flags       []cli.Flag
	servers     bool // takes servers as arguments
}

func completionCommands(app *cli.App) []completionCmd {
	var out []completionCmd
	for _, c := range app.Commands {
		if c.Hidden || c.Name == "help" {
			continue
		}
		out = append(out, completionCmd{c.Name, c.Usage, c.VisibleFlags(), strings.Contains(strings.ToLower(c.ArgsUsage), "server")})
	}
	return out
}

func takesValue(f cli.Flag) bool {
	_, isBool := f.(*cli.BoolFlag)
	return !isBool
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// bashCompletion is dist/completion/slewd.bash.
func bashCompletion(app *cli.App) string {
	cmds := completionCommands(app)
	var b strings.Builder
	b.WriteString("# bash completion for slewd(8). Generated from the CLI by `make completion`: do not edit.\n" +
		"_slewd() {\n" +
		"\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i opts= values=\n" +
		"\tfor ((i = 1; i < COMP_CWORD; i++)); do\n" +
		"\t\tcase ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n" +
		"\tdone\n" +
		"\tcase $cmd in\n")
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprintf(&b, "\t'') COMPREPLY=($(compgen -W '%s help --help --version' -- \"$cur\")); return ;;\n", strings.Join(names, " "))
	hints := map[string][]string{}
	for _, c := range cmds {
		var opts, vals []string
		for _, f := range c.flags {
			for _, n := range f.Names() {
				opts = append(opts, dashed(n))
				if takesValue(f) {
					vals = append(vals, dashed(n))
					h := valueHints[f.Names()[0]]
					if h == "" {
						h = "none"
					}
					if !slices.Contains(hints[h], dashed(n)) {
						hints[h] = append(hints[h], dashed(n))
					}
				}
			}
		}
		fmt.Fprintf(&b, "\t%s) opts='%s' values='%s' ;;\n", c.name, strings.Join(opts, " "), strings.Join(vals, " "))
	}
	b.WriteString("\t*) return ;;\n\tesac\n\tcase \" $values \" in *\" $prev \"*)\n\t\tcase $prev in\n")
	var keys []string
	for h := range hints {
		keys = append(keys, h)
	}
	slices.Sort(keys)
	for _, h := range keys {
		pat := strings.Join(hints[h], "|")
		switch h {
		case "file":
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n", pat)
		case "dir":
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -d -- \"$cur\")) ;;\n", pat)
		case "host":
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -A hostname -- \"$cur\")) ;;\n", pat)
		case "none":
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=() ;;\n", pat)
		default:
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -W '%s' -- \"$cur\")) ;;\n", pat, h)
		}
	}
	b.WriteString("\t\tesac\n\t\treturn ;;\n\tesac\n" +
		"\tif [[ $cur == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n" +
		"\telse\n\t\tCOMPREPLY=($(compgen -A hostname -- \"$cur\"))\n\tfi\n}\n" +
		"complete -F _slewd slewd\n")
	return b.String()
}

// zshText makes usage text safe inside an _arguments '[...]' in single quotes.
func zshText(s string) string {
	if i := strings.IndexAny(s, ";("); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(strings.NewReplacer("'", "", "[", "(", "]", ")", "`", "", "\\", "", ":", " -").Replace(s))
}

// zshCompletion is dist/completion/_slewd.
func zshCompletion(app *cli.App) string {
	cmds := completionCommands(app)
	var b strings.Builder
	b.WriteString("#compdef slewd\n# zsh completion for slewd(8). Generated from the CLI by `make completion`: do not edit.\n\n" +
		"_slewd() {\n\tlocal -a commands\n\tcommands=(\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t\t'%s:%s'\n", c.name, zshText(c.usage))
	}
	b.WriteString("\t)\n\tif (( CURRENT == 2 )); then\n\t\t_describe -t commands 'slewd command' commands\n\t\treturn\n\tfi\n" +
		"\tlocal cmd=$words[2]\n\tshift words\n\t(( CURRENT-- ))\n\tcase $cmd in\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s)\n\t\t_arguments -s", c.name)
		for _, f := range c.flags {
			names := f.Names()
			usage := ""
			if df, ok := f.(cli.DocGenerationFlag); ok {
				usage = zshText(df.GetUsage())
			}
			spec := ""
			var forms []string
			for _, n := range names {
				forms = append(forms, dashed(n))
			}
			_, repeat := f.(*cli.StringSliceFlag)
			switch {
			case len(forms) > 1 && repeat:
				spec = "'*'{" + strings.Join(forms, ",") + "}'"
			case len(forms) > 1:
				spec = "'(" + strings.Join(forms, " ") + ")'{" + strings.Join(forms, ",") + "}'"
			case repeat:
				spec = "'*" + forms[0]
			default:
				spec = "'" + forms[0]
			}
			spec += "[" + usage + "]"
			if takesValue(f) {
				action := " "
				switch h := valueHints[names[0]]; h {
				case "file":
					action = "_files"
				case "dir":
					action = "_files -/"
				case "host":
					action = "_hosts"
				case "":
				default:
					action = "(" + h + ")"
				}
				spec += ":" + names[0] + ":" + action
			}
			b.WriteString(" \\\n\t\t\t" + spec + "'")
		}
		if c.servers {
			b.WriteString(" \\\n\t\t\t'*:server:_hosts'")
		}
		b.WriteString(" ;;\n")
	}
	b.WriteString("\tesac\n}\n\n_slewd \"$@\"\n")
	return b.String()
}

// The completion scripts are generated from the CLI (`make completion`)
// and checked in; they must complete commands, flags and values as a
// person would type them.
func TestCompletion(t *testing.T) {
	app := newApp()
	dir := filepath.Join("..", "..", "dist", "completion")
	for name, text := range map[string]string{"slewd.bash": bashCompletion(app), "_slewd": zshCompletion(app)} {
		path := filepath.Join(dir, name)
		if *updateCompletion {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		disk, err := os.ReadFile(path)
		if err != nil || string(disk) != text {
			t.Errorf("%s differs from the CLI (%v): regenerate it with `make completion` and commit it", path, err)
		}
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(dir, "slewd.bash")
	for _, tc := range []struct {
		words string // the command line; the cursor is on the last word
		want  []string
		not   []string
	}{
		{"slewd ch", []string{"check-config"}, []string{"run"}},
		{"slewd run --slew", []string{"--slew-method"}, nil},
		{"slewd run --slew-method ''", []string{"pll", "tick"}, nil},
		{"slewd run --log-format j", []string{"json"}, nil},
		{"slewd check-config --max-o", []string{"--max-offset"}, nil},
		{"slewd run --max-offset ''", nil, []string{"--server"}},
		{"slewd boot --for", []string{"--forward-only"}, nil},
		{"slewd simulate --pl", []string{"--plot"}, nil},
	} {
		prog := fmt.Sprintf(`source %q; COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _slewd; printf '%%s\n' "${COMPREPLY[@]}"`, script, tc.words)
		out, err := exec.Command(bash, "--norc", "-c", prog).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", tc.words, err, out)
			continue
		}
		got := strings.Fields(string(out))
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q completes to %q, lacking %q", tc.words, got, w)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(got, w) {
				t.Errorf("%q completes to %q, which it should not", tc.words, got)
			}
		}
	}
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.Command(zsh, "-n", filepath.Join(dir, "_slewd")).CombinedOutput(); err != nil {
			t.Errorf("zsh -n _slewd: %v\n%s", err, out)
		}
	}
}
