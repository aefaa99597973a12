# sealcast shell hooks for zsh (format-spec/SPEC.md §2.4.3), .zlogin: see .zshenv.
if [[ -n $__sc_zd_set ]]; then ZDOTDIR=$__sc_zd; else unset ZDOTDIR; fi
if [[ -r ${ZDOTDIR:-$HOME}/.zlogin ]]; then builtin source "${ZDOTDIR:-$HOME}/.zlogin"; fi
if (( ${+ZDOTDIR} )); then __sc_zd=$ZDOTDIR __sc_zd_set=1; else __sc_zd= __sc_zd_set=; fi
ZDOTDIR=$__sc_dir
builtin source "$__sc_dir/sealcast-hooks.zsh"
