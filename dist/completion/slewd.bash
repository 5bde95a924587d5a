# bash completion for slewd(8). Generated from the CLI by `make completion`: do not edit.
_slewd() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i opts= values=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac
	done
	case $cmd in
	'') COMPREPLY=($(compgen -W 'run check-config simulate boot sync ntpdate wait query status sources tracking burst help --help --version' -- "$cur")); return ;;
	run) opts='--server -s --pool --pool-size --min-sources --minpoll --maxpoll --poll --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --max-offset --max-slew-rate --slew-method --sync-threshold --state-dir --run-dir --dry-run --user --control-socket --metrics-listen --monitor-only --log-level --undo-foreign-steps --step-forward-over --log-format' values='--server -s --pool --pool-size --min-sources --minpoll --maxpoll --poll --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --max-offset --max-slew-rate --slew-method --sync-threshold --state-dir --run-dir --user --control-socket --metrics-listen --monitor-only --log-level --step-forward-over --log-format' ;;
	check-config) opts='--server -s --pool --pool-size --min-sources --minpoll --maxpoll --poll --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --max-offset --max-slew-rate --slew-method --sync-threshold --state-dir --run-dir --dry-run --user --control-socket --metrics-listen --monitor-only --log-level --undo-foreign-steps --step-forward-over --log-format' values='--server -s --pool --pool-size --min-sources --minpoll --maxpoll --poll --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --max-offset --max-slew-rate --slew-method --sync-threshold --state-dir --run-dir --user --control-socket --metrics-listen --monitor-only --log-level --step-forward-over --log-format' ;;
	simulate) opts='--clock-error --drift --wander --servers --falsetickers --delay --jitter --asymmetry --loss --poll --duration --max-slew-rate --slew-method --seed --kill-at --restart-after --step-by --step-at --undo-foreign-steps --step-forward-over --agent-period --agent-start --agent-threshold --agent-offset --suspend-for --suspend-at --suspend-error --outage-for --outage-at --kiss --kiss-at --kiss-for --server-names --dns-fail-for --dns-fail-at --leap-second --leap-at --leap-ignorers --converge-within --json --plot --verbose -v' values='--clock-error --drift --wander --servers --falsetickers --delay --jitter --asymmetry --loss --poll --duration --max-slew-rate --slew-method --seed --kill-at --restart-after --step-by --step-at --step-forward-over --agent-period --agent-start --agent-threshold --agent-offset --suspend-for --suspend-at --suspend-error --outage-for --outage-at --kiss --kiss-at --kiss-for --dns-fail-for --dns-fail-at --leap-second --leap-at --leap-ignorers --converge-within --plot' ;;
	boot) opts='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --step-threshold --forward-only --deadline --require-sync --restore-from-high-water --sync-threshold --state-dir --dry-run -n --json --log-level --log-format' values='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --step-threshold --deadline --sync-threshold --state-dir --log-level --log-format' ;;
	sync) opts='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --samples --interval --deadline --force --sync-threshold --state-dir --run-dir --dry-run -n --quiet --json --log-level' values='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --samples --interval --deadline --sync-threshold --state-dir --run-dir --log-level' ;;
	ntpdate) opts='' values='' ;;
	wait) opts='--timeout --interval --max-error --max-correction --max-behind --max-ahead --daemon-only --run-dir --status-max-age --quiet -q --verbose -v' values='--timeout --interval --max-error --max-correction --max-behind --max-ahead --run-dir --status-max-age' ;;
	query) opts='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --samples --interval --deadline --json --log-level' values='--server -s --pool --pool-size --min-sources --timeout --keyfile --key --nts-ca --phc --phc-poll --servers-from --config --samples --interval --deadline --log-level' ;;
	status) opts='--json --control-socket' values='--control-socket' ;;
	sources) opts='--control-socket --verbose -v --json' values='--control-socket' ;;
	tracking) opts='--control-socket --json' values='--control-socket' ;;
	burst) opts='--control-socket' values='--control-socket' ;;
	*) return ;;
	esac
	case " $values " in *" $prev "*)
		case $prev in
		--log-level) COMPREPLY=($(compgen -W 'debug info warn error' -- "$cur")) ;;
		--state-dir|--run-dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
		--keyfile|--servers-from|--config|--plot) COMPREPLY=($(compgen -f -- "$cur")) ;;
		--server|-s|--pool) COMPREPLY=($(compgen -A hostname -- "$cur")) ;;
		--pool-size|--min-sources|--minpoll|--maxpoll|--poll|--timeout|--key|--nts-ca|--phc|--phc-poll|--max-offset|--max-slew-rate|--sync-threshold|--user|--control-socket|--metrics-listen|--monitor-only|--step-forward-over|--clock-error|--drift|--wander|--servers|--falsetickers|--delay|--jitter|--asymmetry|--loss|--duration|--seed|--kill-at|--restart-after|--step-by|--step-at|--agent-period|--agent-start|--agent-threshold|--agent-offset|--suspend-for|--suspend-at|--suspend-error|--outage-for|--outage-at|--kiss|--kiss-at|--kiss-for|--dns-fail-for|--dns-fail-at|--leap-second|--leap-at|--leap-ignorers|--converge-within|--step-threshold|--deadline|--samples|--interval|--max-error|--max-correction|--max-behind|--max-ahead|--status-max-age) COMPREPLY=() ;;
		--slew-method) COMPREPLY=($(compgen -W 'pll tick' -- "$cur")) ;;
		--log-format) COMPREPLY=($(compgen -W 'text json' -- "$cur")) ;;
		esac
		return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	else
		COMPREPLY=($(compgen -A hostname -- "$cur"))
	fi
}
complete -F _slewd slewd
