# sealcast shell hooks for zsh (format-spec/SPEC.md §2.4.3): sourced after the user's last
# startup file. Restores the user's ZDOTDIR, then makes the shell write OSC 133 marks that
# carry the session's nonce:
#   A  prompt start, with the working directory      (precmd, first)
#   B  end of the prompt                              (appended to PS1)
#   C  the command line about to run (as typed)      (preexec, first)
#   D  exit status (and $pipestatus of a pipeline)   (precmd, first)
# Everything it defines starts with __sc_.
if [[ -n $__sc_zd_set ]]; then ZDOTDIR=$__sc_zd; else unset ZDOTDIR; fi
unset __sc_zd __sc_zd_set

if [[ -n $__sc_nonce ]]; then
  typeset -g __sc_running=
  typeset -g __sc_b=$'%{\e]133;B;sealcast='$__sc_nonce$'\a%}'

  # Escape $1 for a mark into REPLY: \ -> \\, ; -> \x3b, control bytes -> \xNN.
  __sc_esc() {
    emulate -L zsh
    local s=$1 h i
    s=${s//\\/\\\\}
    s=${s//;/\\x3b}
    if [[ $s == *[[:cntrl:]]* ]]; then
      for i in {0..31} 127; do
        printf -v h '%02x' $i
        s=${s//${(#)i}/\\x$h}
      done
    fi
    REPLY=$s
  }

  __sc_precmd() {
    local __sc_st=$? __sc_ps="${pipestatus[*]}"
    emulate -L zsh
    local p=
    if [[ -n $__sc_running ]]; then
      __sc_running=
      [[ $__sc_ps == *' '* ]] && p="pipestatus=${__sc_ps// /,};"
      printf '\e]133;D;%s;%ssealcast=%s\a' "$__sc_st" "$p" "$__sc_nonce"
    fi
    __sc_esc "$PWD"
    printf '\e]133;A;cwd=%s;sealcast=%s\a' "$REPLY" "$__sc_nonce"
    if [[ -o prompt_percent && $PS1 != *$__sc_b* ]]; then
      PS1+=$__sc_b
    fi
    return "$__sc_st"
  }

  # $1: the line as typed (empty when history is off: then $3, the full text to run).
  __sc_preexec() {
    emulate -L zsh
    local cmd=${1:-$3} trunc=
    if (( ${#cmd} > 8192 )); then
      cmd=${cmd[1,8192]} trunc=1
    fi
    __sc_esc "$cmd"
    __sc_running=1
    printf '\e]133;C;cmd=%s;%ssealcast=%s\a' "$REPLY" "${trunc:+trunc=1;}" "$__sc_nonce"
  }

  typeset -ga precmd_functions preexec_functions
  precmd_functions=(__sc_precmd ${precmd_functions:#__sc_precmd})
  preexec_functions=(__sc_preexec ${preexec_functions:#__sc_preexec})
fi
unset __sc_dir
