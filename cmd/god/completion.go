package main

import (
	"flag"
	"fmt"
	"strings"
)

// setupCompletion makes "god completion bash|zsh": a script that completes
// command names, flags, and job names (asked from god with status --json).
func setupCompletion(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(c *cli, args []string) int {
		if len(args) != 1 {
			return c.usageError("want exactly one shell: bash or zsh")
		}
		var names []string
		for _, cmd := range commands {
			names = append(names, cmd.name)
		}
		// status --state completes the states god knows.
		states := strings.ReplaceAll(validStates(), ",", "")
		fill := strings.NewReplacer("@COMMANDS@", strings.Join(names, " "), "@STATES@", states)
		switch args[0] {
		case "bash":
			fmt.Fprint(c.stdout, fill.Replace(bashCompletion))
		case "zsh":
			fmt.Fprint(c.stdout, fill.Replace(zshCompletion))
		default:
			return c.usageError("unknown shell %q: want bash or zsh", args[0])
		}
		return exitOK
	}
}

// bashCompletion is loaded with: source <(god completion bash)
const bashCompletion = `# bash completion for god; load with: source <(god completion bash)
_god_jobs() {
	god ${_god_socket:+--socket "$_god_socket"} status --json 2>/dev/null |
		grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

_god() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	local cmd="" i _god_socket=""
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--socket | -socket) ((i++)); _god_socket=${COMP_WORDS[i]} ;;
		-*) ;;
		*) [[ -z $cmd ]] && cmd=${COMP_WORDS[i]} ;;
		esac
	done
	if [[ $prev == --socket || $prev == -socket ]]; then
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	case $cmd in
	"") COMPREPLY=($(compgen -W "@COMMANDS@ --socket --help" -- "$cur")) ;;
	status)
		[[ $prev == --state ]] && { COMPREPLY=($(compgen -W "@STATES@" -- "$cur")); return; }
		COMPREPLY=($(compgen -W "--json --state --socket $(_god_jobs)" -- "$cur"))
		;;
	start | stop | restart | reload) COMPREPLY=($(compgen -W "--socket $(_god_jobs)" -- "$cur")) ;;
	logs)
		[[ $prev == -n || $prev == --since ]] && return
		[[ $prev == --stream ]] && { COMPREPLY=($(compgen -W "stdout stderr" -- "$cur")); return; }
		COMPREPLY=($(compgen -W "-f -n --since --stream --json --socket $(_god_jobs)" -- "$cur"))
		;;
	completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
	help) COMPREPLY=($(compgen -W "@COMMANDS@" -- "$cur")) ;;
	esac
}

complete -F _god god
`

// zshCompletion is loaded with: source <(god completion zsh), or saved as
// _god in a directory of $fpath.
const zshCompletion = `#compdef god
# zsh completion for god; load with: source <(god completion zsh)
_god() {
	local -a cmds names
	local cmd="" sock="" i
	cmds=(@COMMANDS@)
	for ((i = 2; i < CURRENT; i++)); do
		case ${words[i]} in
		--socket | -socket) ((i++)); sock=${words[i]} ;;
		-*) ;;
		*) [[ -z $cmd ]] && cmd=${words[i]} ;;
		esac
	done
	if [[ ${words[CURRENT-1]} == --socket || ${words[CURRENT-1]} == -socket ]]; then
		_files
		return
	fi
	case $cmd in
	start | stop | restart | reload | status | logs)
		names=(${(f)"$(god ${sock:+--socket "$sock"} status --json 2>/dev/null |
			grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')"})
		;;
	esac
	case $cmd in
	'') compadd -- $cmds --socket --help ;;
	status)
		[[ ${words[CURRENT-1]} == --state ]] && { compadd -- @STATES@; return; }
		compadd -- --json --state --socket $names
		;;
	start | stop | restart | reload) compadd -- --socket $names ;;
	logs)
		[[ ${words[CURRENT-1]} == -n || ${words[CURRENT-1]} == --since ]] && return
		[[ ${words[CURRENT-1]} == --stream ]] && { compadd -- stdout stderr; return; }
		compadd -- -f -n --since --stream --json --socket $names
		;;
	completion) compadd -- bash zsh ;;
	help) compadd -- $cmds ;;
	esac
}

if [[ $funcstack[1] == _god ]]; then
	_god "$@"
else
	compdef _god god
fi
`
