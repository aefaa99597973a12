# sealcast shell hooks for zsh (format-spec/SPEC.md §2.4.3), .zshenv.
#
# The recorder starts an interactive zsh with ZDOTDIR pointing at this directory and
# SEALCAST_HOOK_NONCE (and SEALCAST_HOOK_ZDOTDIR, the user's own ZDOTDIR, when set) in its
# environment. Each startup file here sources the user's file of the same name from the
# user's ZDOTDIR (or $HOME) with that ZDOTDIR in place, then points ZDOTDIR back here so zsh
# reads the next one from here; the last one (.zshrc, or .zlogin for a login shell) restores
# the user's ZDOTDIR and installs the hooks (sealcast-hooks.zsh). Sourcing happens at top
# level, not in a function, so the user's `typeset`s stay global.
__sc_dir=$ZDOTDIR
__sc_nonce=${SEALCAST_HOOK_NONCE-}
if (( ${+SEALCAST_HOOK_ZDOTDIR} )); then
  __sc_zd=$SEALCAST_HOOK_ZDOTDIR __sc_zd_set=1
else
  __sc_zd= __sc_zd_set=
fi
unset SEALCAST_HOOK_NONCE SEALCAST_HOOK_ZDOTDIR

if [[ -n $__sc_zd_set ]]; then ZDOTDIR=$__sc_zd; else unset ZDOTDIR; fi
if [[ -r ${ZDOTDIR:-$HOME}/.zshenv ]]; then builtin source "${ZDOTDIR:-$HOME}/.zshenv"; fi
if (( ${+ZDOTDIR} )); then __sc_zd=$ZDOTDIR __sc_zd_set=1; else __sc_zd= __sc_zd_set=; fi
ZDOTDIR=$__sc_dir
