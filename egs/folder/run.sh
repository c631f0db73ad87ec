#!/usr/bin/env bash
# Folder recipe: train a codec on any folder of speech (this is how the shipped model is made).
#
# Usage (from egs/folder; outputs go below the current folder):
#   ./run.sh --data-dir /path/to/train --valid-dir /path/to/dev   # the shipped model's recipe
#   ./run.sh --data-dir /path/to/speech --config ../../recipes/NAME.yaml
#   ./run.sh --data-dir /path/to/speech --stop-stage 0     # manifests only
# local/README.md lists the corpus of the shipped model: sources, licences and hours.
#
# Stages:
#   0  manifests: $manifest_dir/train.jsonl and valid.jsonl (from --valid-dir, or
#      --valid-count files held out of --data-dir); unreadable files are skipped with a warning
#   1  train the codec (fsq-audio train $config -> $exp_dir/codec) and export it for
#      inference (fsq-audio export -> $exp_dir/model)
#   2  evaluate on the validation manifest: fsq-audio eval -> $exp_dir/eval
#   3  extract tokens of train and valid: fsq-audio tokenize -> $exp_dir/tokens/{train,valid}
#
# Every finished stage leaves a .done marker and a rerun skips it; delete the marker to
# redo it. Options (--name value) override the variables below. Environment: FSQ_AUDIO
# (default fsq-audio) is the command run, PYTHON the interpreter.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../shared/lib.sh"

fsq=${FSQ_AUDIO:-fsq-audio}
python=${PYTHON:-python3}

stage=0
stop_stage=3
data_dir=          # required: folder of speech audio (searched recursively)
valid_dir=         # optional: folder of validation audio; default: hold out files of data_dir
valid_count=100    # files held out of data_dir when there is no valid_dir
nj=8               # threads reading audio headers in stage 0
manifest_dir=data
exp_dir=exp
config=$repo/recipes/fsq_speech_16k.yaml  # the model recipe (default: the shipped model's)
train_opts=        # more options for fsq-audio train
model_dir=         # the codec for stages 2-3 (a release directory); default $exp_dir/model
device=auto        # torch device for evaluation: auto (cuda if available), cuda, cpu
eval_opts=         # more options for fsq-audio eval
tokenize_opts=     # more options for fsq-audio tokenize

. "$here/../shared/parse_options.sh"

[ -n "$data_dir" ] || die "give --data-dir DIR (a folder of speech audio); see $0 --help"
model_dir=${model_dir:-$exp_dir/model}
log "fsq=$fsq stage=$stage stop_stage=$stop_stage data_dir=$data_dir exp_dir=$exp_dir"

if run_stage 0; then
  if [ -f "$manifest_dir/.done" ]; then
    log "Stage 0: manifests already done ($manifest_dir/.done), skipping"
  else
    log "Stage 0: manifests of $data_dir${valid_dir:+ and $valid_dir} into $manifest_dir"
    mkdir -p "$manifest_dir"
    if [ -n "$valid_dir" ]; then
      $fsq prepare "$data_dir" -o "$manifest_dir/train.jsonl" --jobs "$nj" --force
      $fsq prepare "$valid_dir" -o "$manifest_dir/valid.jsonl" --jobs "$nj" --force
    else
      $fsq prepare "$data_dir" -o "$manifest_dir/all.jsonl" --jobs "$nj" --force
      $python "$here/local/split_manifest.py" --manifest "$manifest_dir/all.jsonl" \
        --train "$manifest_dir/train.jsonl" --valid "$manifest_dir/valid.jsonl" \
        --valid-count "$valid_count"
    fi
    mark_done "$manifest_dir/.done"
  fi
fi

if run_stage 1; then
  if [ -f "$exp_dir/codec/.done" ]; then
    log "Stage 1: codec already trained ($exp_dir/codec/.done), skipping"
  else
    log "Stage 1: train the codec with ${config:-<no config>} -> $exp_dir/codec"
    [ -n "$config" ] || die "stage 1 needs --config recipes/NAME.yaml"
    [ -f "$config" ] || die "stage 1: config $config not found"
    require_subcommand train 1
    # shellcheck disable=SC2086
    $fsq train "$config" --resume \
      --set "data.train=$(yaml_list "$(abspath "$manifest_dir/train.jsonl")")" \
      --set "data.valid=$(yaml_list "$(abspath "$manifest_dir/valid.jsonl")")" \
      --set "run_dir=$(abspath "$exp_dir/codec")" $train_opts
    mark_done "$exp_dir/codec/.done"
  fi
  if [ -f "$exp_dir/.export.done" ]; then
    log "Stage 1: model already exported ($exp_dir/.export.done), skipping"
  else
    log "Stage 1: export the trained codec $exp_dir/codec -> $model_dir"
    require_subcommand export 1
    $fsq export "$exp_dir/codec" -o "$model_dir" --force
    mark_done "$exp_dir/.export.done"
  fi
fi

if run_stage 2; then
  if [ -f "$exp_dir/eval/.done" ]; then
    log "Stage 2: already evaluated ($exp_dir/eval/.done), skipping"
  else
    log "Stage 2: evaluate $model_dir on $manifest_dir/valid.jsonl -> $exp_dir/eval"
    need_model 2
    require_subcommand eval 2
    [ "$device" = auto ] && device=$($python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    # shellcheck disable=SC2086
    $fsq eval --model "$model_dir" --data "$manifest_dir/valid.jsonl" -o "$exp_dir/eval" \
      --device "$device" --force $eval_opts
    mark_done "$exp_dir/eval/.done"
  fi
fi

if run_stage 3; then
  for split in train valid; do
    out=$exp_dir/tokens/$split
    if [ -f "$out/.done" ]; then
      log "Stage 3: tokens of $split already extracted ($out/.done), skipping"
      continue
    fi
    log "Stage 3: tokenize $split -> $out"
    need_model 3
    require_subcommand tokenize 3
    # shellcheck disable=SC2086
    $fsq tokenize "$manifest_dir/$split.jsonl" -o "$out" --model "$model_dir" $tokenize_opts
    mark_done "$out/.done"
  done
fi

log "Done (stages $stage-$stop_stage)"
