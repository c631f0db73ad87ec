#!/usr/bin/env bash
# Helpers shared by the recipes in egs/: logging, stage bookkeeping, subcommand checks.
# Needs $fsq (the fsq-audio command, e.g. "fsq-audio" or "python -m fsq_audio").

_log_at() {
  # _log_at DEPTH MESSAGE: print time, caller's script:line (DEPTH frames up) and MESSAGE.
  local depth=$(( $1 + 1 ))
  shift
  echo "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[$depth]##*/}:${BASH_LINENO[$depth - 1]}) $*" >&2
}

log() {
  # One line on stderr: time, script:line, message.
  _log_at 1 "$*"
}

die() {
  # Log an error and exit 1.
  _log_at 1 "ERROR: $*"
  exit 1
}

run_stage() {
  # run_stage N: true when stage N lies in [stage, stop_stage].
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}

require_subcommand() {
  # require_subcommand NAME STAGE: fail clearly unless "$fsq NAME" is a working subcommand.
  # Missing means: "--help" fails, says "not available", or lists no option but -h (the
  # placeholder fsq-audio shows for a subcommand whose module is not installed).
  local out reason=""
  # shellcheck disable=SC2086  # $fsq may be several words ("python -m fsq_audio")
  if ! out=$($fsq "$1" --help 2>&1); then
    reason=$(echo "$out" | grep -v '^\s*$' | tail -n 1)
  elif echo "$out" | grep -q "not available"; then
    reason=$(echo "$out" | grep -m 1 "not available")
  elif echo "$out" | grep -Eq "^usage: .* $1 \[-h\][[:space:]]*$"; then
    reason="its --help lists no options: the module behind it is not installed"
  fi
  if [ -n "$reason" ]; then
    _log_at 1 "ERROR: stage $2 needs '$fsq $1', which this installation does not provide ($reason)." \
      "Install a version of fsq_audio that has it, or stop earlier with --stop-stage $(( $2 - 1 ))."
    exit 1
  fi
}

need_model() {
  # need_model STAGE: fail unless $model_dir holds a codec release directory.
  [ -f "$model_dir/config.json" ] && return 0
  _log_at 1 "ERROR: stage $1 needs a trained codec in $model_dir (config.json missing): run the" \
    "training stage first, or pass --model-dir DIR (a release directory)"
  exit 1
}

mark_done() {
  # mark_done FILE: create the .done marker FILE (and its folder).
  mkdir -p "$(dirname "$1")"
  touch "$1"
}

yaml_list() {
  # yaml_list A B ...: print ["A", "B", ...] (a YAML/JSON flow list of strings).
  local out="" item
  for item in "$@"; do
    out+="${out:+, }\"$item\""
  done
  echo "[$out]"
}

abspath() {
  # abspath PATH: the absolute path (the file need not exist).
  case "$1" in
    /*) echo "$1" ;;
    *) echo "$PWD/$1" ;;
  esac
}
