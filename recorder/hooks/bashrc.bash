# sealcast shell hooks for bash (format-spec/SPEC.md §2.4.3).
#
# The recorder starts an interactive bash as `bash --rcfile <this file> -i` with
# SEALCAST_HOOK_NONCE (and SEALCAST_HOOK_LOGIN=1 for a login shell) in its environment. This
# file reads what bash would have read, then makes the shell write OSC 133 marks that carry
# the session's nonce:
#   A  prompt start, with the working directory      (first PROMPT_COMMAND entry)
#   B  end of the prompt                              (appended to PS1)
#   C  the command line about to run                  (DEBUG trap, after PS0 flagged a line)
#      or, with late=1, just run                      (first PROMPT_COMMAND entry, when no
#                                                      DEBUG trap ran: a subshell came first)
#   D  exit status (and PIPESTATUS of a pipeline)     (first PROMPT_COMMAND entry)
# It forks nothing per prompt. Everything it defines starts with __sc_.

__sc_nonce=${SEALCAST_HOOK_NONCE-}
__sc_login=${SEALCAST_HOOK_LOGIN-}
builtin unset SEALCAST_HOOK_NONCE SEALCAST_HOOK_LOGIN

# 1. The startup files bash would have read (bash(1), INVOCATION). A login shell ignores
#    --rcfile, so the recorder starts a non-login shell and the login sequence runs here.
if [[ -n $__sc_login ]]; then
    BASH_ARGV0="-${0##*/}"
    if [[ -r /etc/profile ]]; then builtin . /etc/profile; fi
    if [[ -r ~/.bash_profile ]]; then
        builtin . ~/.bash_profile
    elif [[ -r ~/.bash_login ]]; then
        builtin . ~/.bash_login
    elif [[ -r ~/.profile ]]; then
        builtin . ~/.profile
    fi
elif [[ -r ~/.bashrc ]]; then
    builtin . ~/.bashrc
fi

# 2. The hooks (bash 4.4 or later: PS0, ${var@a}).
if [[ -n $__sc_nonce ]] && ((BASH_VERSINFO[0] > 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] >= 4))); then
    __sc_running=   # a C was written and its D is due
    __sc_line=      # PS0 saw a command line that is not claimed yet
    __sc_arm=       # promptvars off (no PS0 expansion): claim the next command
    __sc_hist=      # newest history number at the last prompt
    __sc_v=         # output of __sc_esc and __sc_capture
    # Scratch file for builtin output (no fork); without one, a command substitution.
    __sc_tmp=
    if [[ -n ${XDG_RUNTIME_DIR-} && -d $XDG_RUNTIME_DIR && -w $XDG_RUNTIME_DIR && -O $XDG_RUNTIME_DIR ]]; then
        __sc_tmp=$XDG_RUNTIME_DIR/sealcast-hook.$$
    fi
    __sc_b=$'\\[\e]133;B;sealcast='$__sc_nonce$'\a\\]'
    __sc_ps0='${__sc_z[__sc_line=1]-}' # expands to nothing, sets __sc_line

    # Escape $1 for a mark into __sc_v: \ -> \\, ; -> \x3b, control bytes -> \xNN.
    __sc_esc() {
        local s="$1" c h i
        s=${s//\\/\\\\}
        s=${s//;/\\x3b}
        if [[ $s == *[[:cntrl:]]* ]]; then
            s=${s//$'\n'/\\x0a}
            s=${s//$'\t'/\\x09}
            if [[ $s == *[[:cntrl:]]* ]]; then
                for i in {1..31} 127; do
                    builtin printf -v h '%02x' "$i"
                    builtin printf -v c "\\x$h"
                    s=${s//"$c"/\\x$h}
                done
            fi
        fi
        __sc_v=$s
    }

    # Run a builtin and put its output (one trailing newline removed) into __sc_v. The
    # scratch file is rewritten in place, NUL-terminated, never truncated: truncating and
    # rewriting a file costs ext4 a synchronous flush (auto_da_alloc), milliseconds.
    __sc_capture() {
        __sc_v=
        if [[ -n $__sc_tmp ]] && { "$@"; builtin printf '\0'; } 2>/dev/null 1<>"$__sc_tmp"; then
            IFS= builtin read -r -d '' __sc_v <"$__sc_tmp"
            __sc_v=${__sc_v%$'\n'}
        else
            __sc_v=$("$@" 2>/dev/null)
        fi
    }

    # First PROMPT_COMMAND entry: a late C, D for the finished command, A with the directory.
    __sc_precmd() {
        local st=$? ps="${PIPESTATUS[*]}" p=
        # A line no DEBUG trap claimed (its first command was a subshell, or it only
        # defined a function): claim it now, flagged late.
        [[ -n $__sc_line ]] && __sc_claim late
        __sc_arm=
        if [[ -n $__sc_running ]]; then
            __sc_running=
            [[ $ps == *' '* ]] && p="pipestatus=${ps// /,};"
            builtin printf '\e]133;D;%s;%ssealcast=%s\a' "$st" "$p" "$__sc_nonce"
        fi
        __sc_esc "$PWD"
        builtin printf '\e]133;A;cwd=%s;sealcast=%s\a' "$__sc_v" "$__sc_nonce"
        [[ ${HISTCMD-} =~ ^[0-9]+$ ]] && __sc_hist=$((HISTCMD - 1))
        [[ ${PS1-} == *"$__sc_b"* ]] || PS1+=$__sc_b
        if builtin shopt -q promptvars; then
            [[ ${PS0-} == *"$__sc_ps0"* ]] || PS0+=$__sc_ps0
        else
            __sc_arm=1 # no PS0 expansion: claim the next command from the prompt on
        fi
        builtin return "$st"
    }

    # DEBUG trap, first simple command after a line was read: claim it (not our own hooks).
    __sc_preexec() {
        [[ $BASH_COMMAND == __sc_* ]] && builtin return 0
        __sc_claim
        builtin return 0
    }

    # C with the line as history has it; $1 = late: the command already ran.
    __sc_claim() {
        local line n cmd partial= trunc= late=${1-} HISTTIMEFORMAT=
        __sc_line= __sc_arm=
        __sc_capture builtin history 1
        line=${__sc_v#"${__sc_v%%[![:space:]]*}"}
        n=${line%%[!0-9]*}
        if [[ -n $n && $n != "$__sc_hist" ]]; then
            cmd=${line:${#n}+2} # "N  cmd" or "N* cmd" (edited entry)
        elif [[ -n $late ]]; then
            cmd= partial=1
        else
            # Not in history (HISTCONTROL, HISTIGNORE, set +o history): the first command.
            cmd=$BASH_COMMAND partial=1
        fi
        while [[ $cmd == *$'\n' ]]; do cmd=${cmd%$'\n'}; done # a here-document's last line
        [[ -n $n ]] && __sc_hist=$n
        if ((${#cmd} > 8192)); then
            cmd=${cmd:0:8192} trunc=1
        fi
        __sc_esc "$cmd"
        __sc_running=1
        builtin printf '\e]133;C;cmd=%s;%s%s%ssealcast=%s\a' "$__sc_v" \
            "${partial:+partial=1;}" "${trunc:+trunc=1;}" "${late:+late=1;}" "$__sc_nonce"
    }

    # DEBUG trap: ours first, then the one the user's files set (if any).
    __sc_capture builtin trap -p DEBUG
    __sc_user_debug=
    if [[ -n $__sc_v ]]; then
        builtin eval "__sc_t=( $__sc_v )"
        __sc_user_debug=${__sc_t[2]-}
        builtin unset __sc_t
    fi
    if [[ -n $__sc_user_debug ]]; then
        builtin trap '[[ -z ${__sc_line-}${__sc_arm-} ]] || __sc_preexec; builtin eval "$__sc_user_debug"' DEBUG
    else
        builtin trap '[[ -z ${__sc_line-}${__sc_arm-} ]] || __sc_preexec' DEBUG
    fi

    # PROMPT_COMMAND: __sc_precmd first (it returns $? to the user's entries).
    if [[ -v PROMPT_COMMAND && ${PROMPT_COMMAND@a} == *a* ]]; then
        PROMPT_COMMAND=(__sc_precmd "${PROMPT_COMMAND[@]}")
    else
        # Children must not inherit a PROMPT_COMMAND naming a function they lack.
        [[ -v PROMPT_COMMAND && ${PROMPT_COMMAND@a} == *x* ]] && builtin export -n PROMPT_COMMAND
        PROMPT_COMMAND="__sc_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"
    fi

    # What differs from a real login shell (SPEC §2.4.3): `logout` and ~/.bash_logout.
    if [[ -n $__sc_login ]]; then
        logout() { builtin exit "$@"; }
        __sc_capture builtin trap -p EXIT
        if [[ -z $__sc_v ]]; then
            builtin trap '[[ -r ~/.bash_logout ]] && builtin . ~/.bash_logout' EXIT
        fi
    fi
fi
