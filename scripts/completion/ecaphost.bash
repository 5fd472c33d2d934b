# bash completion for ecaphost (installed as share/bash-completion/completions/ecaphost).
# The commands and each command's options are read from the program's own --help texts (and
# cached per shell), so they never drift from what the binary accepts.

declare -gA _ecaphost_opts=()   # command -> lines "OPTION ARG" (ARG empty for a flag)
declare -g _ecaphost_cmds=""

# _ecaphost_parse EXE CMD: prints "OPTION ARG" for every option CMD's --help lists.
_ecaphost_parse() {
    local exe=$1 cmd=$2 line rest
    local re_line='^[[:space:]]+(-[-a-z]+)(, (-[-a-z]+))?( ([A-Z][A-Z]*|json))?([[:space:]]|$)'
    local re_usage='\[(-[-a-z]+)( ([A-Z]+))?\]'
    {
        "$exe" "$cmd" --help
        # schedule passes the host options on: they are listed by ecaphost --help
        [[ $cmd == schedule ]] && "$exe" --help
    } 2>/dev/null | while IFS= read -r line; do
        if [[ $line =~ $re_line ]]; then
            echo "${BASH_REMATCH[1]} ${BASH_REMATCH[5]}"
            [[ -n ${BASH_REMATCH[3]} ]] && echo "${BASH_REMATCH[3]} ${BASH_REMATCH[5]}"
        elif [[ $line == usage:* ]]; then
            rest=$line
            while [[ $rest =~ $re_usage ]]; do
                echo "${BASH_REMATCH[1]} ${BASH_REMATCH[3]}"
                rest=${rest#*"${BASH_REMATCH[0]}"}
            done
        fi
    done
    echo "--help "
}

# _ecaphost_options EXE CMD: _ecaphost_parse without repeats (an option in the usage line and
# in the list)
_ecaphost_options() {
    _ecaphost_parse "$1" "$2" | awk '!seen[$1]++'
}

_ecaphost() {
    local exe=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev="" cmd="" i w arg opt
    (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    [[ $exe == */* || -n $(type -P "$exe") ]] || exe=ecaphost
    COMPREPLY=()

    if [[ -z $_ecaphost_cmds ]]; then
        _ecaphost_cmds=$("$exe" --help 2>/dev/null |
            sed -n 's/^\(usage:\)\{0,1\}[[:space:]]*ecaphost \([a-z][a-z]*\) .*/\2/p' | sort -u | tr '\n' ' ')
    fi
    if (( COMP_CWORD == 1 )); then
        COMPREPLY=($(compgen -W "$_ecaphost_cmds --help --version" -- "$cur"))
        return
    fi
    cmd=${COMP_WORDS[1]}
    [[ " $_ecaphost_cmds " == *" $cmd "* ]] || return
    if [[ -z ${_ecaphost_opts[$cmd]+set} ]]; then
        _ecaphost_opts[$cmd]=$(_ecaphost_options "$exe" "$cmd")
    fi

    # The value of the option before the cursor
    arg=$(awk -v o="$prev" '$1 == o { print $2; exit }' <<<"${_ecaphost_opts[$cmd]}")
    if [[ -n $arg && $prev == -* ]]; then
        case $prev in
        --environment) COMPREPLY=($(compgen -W "us-east us-west eu fedramp implement" -- "$cur")) ;;
        --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")) ;;
        --profile)
            local conf=${ECAP_CONFIG:-${XDG_CONFIG_HOME:-$HOME/.config}/ecaphost/config}
            [[ -r $conf ]] && COMPREPLY=($(compgen -W "$(sed -n 's/^[[:space:]]*\[\([^]]*\)\].*/\1/p' "$conf")" -- "$cur")) ;;
        *)
            case $arg in
            DIR) COMPREPLY=($(compgen -d -- "$cur")) ;;
            FILE | JOURNAL | SCRIPT) COMPREPLY=($(compgen -f -- "$cur")) ;;
            esac ;;
        esac
        return
    fi

    # After the script (run, repl -i) or the schedule file, the words are the script's.
    for (( i = 2; i < COMP_CWORD; i++ )); do
        w=${COMP_WORDS[i]}
        if [[ $w == -- ]]; then
            COMPREPLY=($(compgen -f -- "$cur")); return
        elif [[ $w == -* ]]; then
            opt=$(awk -v o="$w" '$1 == o { print $2; exit }' <<<"${_ecaphost_opts[$cmd]}")
            [[ -n $opt ]] && (( i++ ))
            [[ $w == -e || $w == - ]] && [[ $cmd == run ]] && return
        elif [[ $cmd == run || $cmd == schedule || $cmd == journal ]]; then
            COMPREPLY=($(compgen -f -- "$cur")); return
        fi
    done

    if [[ $cur == -* || $cmd == ping || $cmd == sim || $cmd == routes ]]; then
        COMPREPLY=($(compgen -W "$(awk '{ print $1 }' <<<"${_ecaphost_opts[$cmd]}")" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}

complete -o filenames -o bashdefault -F _ecaphost ecaphost
