#!/usr/bin/env bash
# LibriSpeech recipe: from nothing to a trained codec, its evaluation, tokens and a token LM.
#
# Usage (from egs/librispeech; outputs go below the current folder):
#   ./run.sh                                    # all stages with recipes/librispeech_full.yaml (GPU)
#   ./run.sh --stage 0 --stop-stage 1           # download and manifests only
#   ./run.sh --data-dir /corpora/LibriSpeech    # use an extracted copy, download nothing
#   ./run.sh --config ../../recipes/librispeech_small.yaml --train-parts train-clean-100  # CPU-sized
#
# Stages:
#   0  download, verify (md5) and extract the parts into $dl_dir (skipped with --data-dir)
#   1  manifests $manifest_dir/<part>.jsonl (id, path, duration, sample_rate, speaker, text)
#   2  train the codec (fsq-audio train $config -> $exp_dir/codec) and export it for
#      inference (fsq-audio export -> $exp_dir/model)
#   3  evaluate on $test_parts: fsq-audio eval -> $exp_dir/eval/<part>
#   4  extract tokens of every part: fsq-audio tokenize -> $exp_dir/tokens/<part>
#   5  train the token LM on the tokens of $train_parts (fsq-audio lm-train -> $exp_dir/lm_run)
#      and export it (-> $exp_dir/lm)
#   6  continue $num_prompts $prompt_part utterances: fsq-audio generate -> $exp_dir/generate
#
# Every finished step leaves a .done marker and a rerun skips it; delete the marker (or
# the output folder) to redo a step. Options (--name value) override the variables below.
# Environment: FSQ_AUDIO (default fsq-audio) is the command run, PYTHON the interpreter.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/../shared/lib.sh"

fsq=${FSQ_AUDIO:-fsq-audio}
python=${PYTHON:-python3}

stage=0
stop_stage=6
dl_dir=$PWD/download    # archives and the extracted LibriSpeech/ go here
data_dir=               # an extracted LibriSpeech (holding <part>/ or LibriSpeech/<part>/): no download
mirror=https://www.openslr.org/resources/12
md5_file=               # md5sum-style file overriding OpenSLR's published checksums
remove_archives=false   # true: delete each .tar.gz once extracted (saves ~60 GB)
parts="dev-clean dev-other test-clean test-other train-clean-100 train-clean-360 train-other-500"
train_parts="train-clean-100 train-clean-360 train-other-500"
valid_parts="dev-clean"
test_parts="test-clean test-other"
prompt_part=test-clean
nj=8                    # threads reading audio headers in stage 1
manifest_dir=data/manifests
exp_dir=exp
config=$repo/recipes/librispeech_full.yaml
train_opts=             # more options for fsq-audio train, e.g. "--set max_steps=1000"
train_launcher=         # multi-GPU/multi-node: e.g. "accelerate launch --num_processes 8 -m fsq_audio"
model_dir=              # the codec for stages 3-6 (config.json + model.safetensors); default $exp_dir/model
device=auto             # torch device for evaluation: auto (cuda if available), cuda, cpu
eval_opts=              # more options for fsq-audio eval, e.g. "--baselines identity,opus:6"
tokenize_opts=          # more options for fsq-audio tokenize
lm_config=              # LM recipe (recipes/lm_*.yaml); empty: the package defaults
lm_opts=                # more options for fsq-audio lm-train, e.g. "--set max_steps=5000"
num_prompts=4           # stage 6 prompts: one per speaker, in id order,
prompt_min_seconds=3    # lasting at least this long
generate_opts=          # more options for fsq-audio generate

. "$here/../shared/parse_options.sh"

model_dir=${model_dir:-$exp_dir/model}
corpus_dir=${data_dir:-$dl_dir}
check_parts() {  # check_parts STAGE PART...: the parts a stage uses must have manifests
  local s=$1 p
  shift
  for p in "$@"; do
    [[ " $parts " == *" $p "* ]] || die "stage $s uses part $p, which is missing from --parts '$parts'"
  done
}
manifests() {  # manifests PART...: absolute manifest paths
  local p
  for p in "$@"; do abspath "$manifest_dir/$p.jsonl"; done
}

log "fsq=$fsq stage=$stage stop_stage=$stop_stage corpus=$corpus_dir exp_dir=$exp_dir"

if run_stage 0; then
  if [ -n "$data_dir" ]; then
    log "Stage 0: using the extracted LibriSpeech in $data_dir (no download)"
    $python "$here/local/download_librispeech.py" --data-dir "$data_dir" --parts $parts
  else
    log "Stage 0: download LibriSpeech ($parts) from $mirror into $dl_dir"
    for part in $parts; do
      if [ -f "$dl_dir/.$part.done" ]; then
        log "Stage 0: $part already done ($dl_dir/.$part.done), skipping"
        continue
      fi
      $python "$here/local/download_librispeech.py" --dl-dir "$dl_dir" --parts "$part" \
        --mirror "$mirror" ${md5_file:+--md5-file "$md5_file"} \
        $( [ "$remove_archives" = true ] && echo --remove-archive )
      mark_done "$dl_dir/.$part.done"
    done
  fi
fi

if run_stage 1; then
  log "Stage 1: manifests of $parts into $manifest_dir"
  mkdir -p "$manifest_dir"
  for part in $parts; do
    if [ -f "$manifest_dir/.$part.done" ]; then
      log "Stage 1: $part already done ($manifest_dir/.$part.done), skipping"
      continue
    fi
    $python "$here/local/prepare_librispeech.py" --corpus-dir "$corpus_dir" --parts "$part" \
      --output-dir "$manifest_dir" --jobs "$nj"
    mark_done "$manifest_dir/.$part.done"
  done
fi

if run_stage 2; then
  check_parts 2 $train_parts $valid_parts
  if [ -f "$exp_dir/codec/.done" ]; then
    log "Stage 2: codec already trained ($exp_dir/codec/.done), skipping"
  else
    log "Stage 2: train the codec with $config on $train_parts (valid: $valid_parts)"
    [ -f "$config" ] || die "stage 2: config $config not found (pass --config recipes/NAME.yaml)"
    require_subcommand train 2
    # shellcheck disable=SC2046,SC2086
    ${train_launcher:-$fsq} train "$config" --resume \
      --set "data.train=$(yaml_list $(manifests $train_parts))" \
      --set "data.valid=$(yaml_list $(manifests $valid_parts))" \
      --set "run_dir=$(abspath "$exp_dir/codec")" $train_opts
    mark_done "$exp_dir/codec/.done"
  fi
  if [ -f "$exp_dir/.export.done" ]; then
    log "Stage 2: model already exported ($exp_dir/.export.done), skipping"
  else
    log "Stage 2: export the trained codec $exp_dir/codec -> $model_dir"
    require_subcommand export 2
    $fsq export "$exp_dir/codec" -o "$model_dir" --force
    mark_done "$exp_dir/.export.done"
  fi
fi

if run_stage 3; then
  check_parts 3 $test_parts
  for part in $test_parts; do
    out=$exp_dir/eval/$part
    if [ -f "$out/.done" ]; then
      log "Stage 3: $part already evaluated ($out/.done), skipping"
      continue
    fi
    log "Stage 3: evaluate $model_dir on $part -> $out"
    need_model 3
    require_subcommand eval 3
    [ "$device" = auto ] && device=$($python -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
    # shellcheck disable=SC2086
    $fsq eval --model "$model_dir" --data "$(manifests "$part")" -o "$out" --device "$device" --force $eval_opts
    mark_done "$out/.done"
  done
fi

if run_stage 4; then
  for part in $parts; do
    out=$exp_dir/tokens/$part
    if [ -f "$out/.done" ]; then
      log "Stage 4: tokens of $part already extracted ($out/.done), skipping"
      continue
    fi
    log "Stage 4: tokenize $part -> $out"
    need_model 4
    require_subcommand tokenize 4
    # shellcheck disable=SC2086
    $fsq tokenize "$(manifests "$part")" -o "$out" --model "$model_dir" $tokenize_opts
    mark_done "$out/.done"
  done
fi

if run_stage 5; then
  if [ -f "$exp_dir/lm_run/.done" ]; then
    log "Stage 5: token LM already trained ($exp_dir/lm_run/.done), skipping"
  else
    log "Stage 5: train the token LM ${lm_config:+($lm_config) }on the tokens of $train_parts -> $exp_dir/lm_run"
    check_parts 5 $train_parts $valid_parts
    require_subcommand lm-train 5
    train_tokens=() valid_tokens=()
    for p in $train_parts; do train_tokens+=("$(abspath "$exp_dir/tokens/$p")"); done
    for p in $valid_parts; do valid_tokens+=("$(abspath "$exp_dir/tokens/$p")"); done
    # shellcheck disable=SC2086
    $fsq lm-train ${lm_config:+"$lm_config"} --resume \
      --set "data.train=$(yaml_list "${train_tokens[@]}")" \
      --set "data.valid=$(yaml_list "${valid_tokens[@]}")" \
      --set "run_dir=$(abspath "$exp_dir/lm_run")" $lm_opts
    mark_done "$exp_dir/lm_run/.done"
  fi
  if [ -f "$exp_dir/.lm_export.done" ]; then
    log "Stage 5: token LM already exported ($exp_dir/.lm_export.done), skipping"
  else
    log "Stage 5: export the token LM $exp_dir/lm_run -> $exp_dir/lm"
    require_subcommand lm-train 5
    $fsq lm-train --export "$exp_dir/lm_run" -o "$exp_dir/lm" --force
    mark_done "$exp_dir/.lm_export.done"
  fi
fi

if run_stage 6; then
  check_parts 6 "$prompt_part"
  out=$exp_dir/generate
  if [ -f "$out/.done" ]; then
    log "Stage 6: continuations already sampled ($out/.done), skipping"
  else
    log "Stage 6: continue $num_prompts $prompt_part utterances -> $out"
    need_model 6
    require_subcommand generate 6
    mkdir -p "$out"
    $python "$here/local/select_prompts.py" --manifest "$(manifests "$prompt_part")" \
      --output "$out/prompts.txt" --num "$num_prompts" --min-duration "$prompt_min_seconds"
    while read -r id path <&3; do
      # shellcheck disable=SC2086
      $fsq generate --lm "$exp_dir/lm" --model "$model_dir" --prompt "$path" -o "$out/$id.wav" \
        --force $generate_opts
    done 3< "$out/prompts.txt"
    mark_done "$out/.done"
  fi
fi

log "Done (stages $stage-$stop_stage)"
