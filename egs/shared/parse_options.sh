#!/usr/bin/env bash
# Turn "--name value" and "--name=value" options into shell variables (Kaldi/icefall style).
#
# Source this after setting the defaults: every option must name a variable that already
# exists (dashes become underscores, so --stop-stage sets $stop_stage); anything else is an
# error. "--help" prints the script's header comment. Positional arguments are left in "$@".

_po_usage() {
  # Print the leading comment block of the calling script (without the shebang and "# ").
  sed -n '2,/^[^#]/{/^#/!q;s/^# \{0,1\}//;p}' "$0"
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) _po_usage; exit 0 ;;
    --*=*) _po_name=${1%%=*}; _po_value=${1#*=}; shift ;;
    --*)
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      _po_name=$1; _po_value=$2; shift 2 ;;
    *) break ;;
  esac
  _po_name=${_po_name#--}
  _po_name=${_po_name//-/_}
  if [[ ! $_po_name =~ ^[a-z_][a-z0-9_]*$ ]] || [ -z "${!_po_name+set}" ]; then
    echo "$0: unknown option --${_po_name//_/-} (see $0 --help)" >&2
    exit 1
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done
unset _po_name _po_value
