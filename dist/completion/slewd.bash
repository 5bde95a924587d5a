# bash completion for slewd (/usr/share/bash-completion/completions/slewd).
# The words come from slewd itself: commands, then a command's flags when
# the word starts with "-" (urfave/cli's --generate-bash-completion, which
# prints and exits: it runs no command).
_slewd() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	local -a args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
	local opts
	if [[ $cur == -* ]]; then
		args+=("$cur")
	fi
	opts=$("${COMP_WORDS[0]}" "${args[@]}" --generate-bash-completion 2>/dev/null) || return 0
	# shellcheck disable=SC2207
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o bashdefault -o default -F _slewd slewd
