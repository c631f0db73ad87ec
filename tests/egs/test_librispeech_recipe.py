"""egs/librispeech/run.sh end to end on a tiny LibriSpeech served from 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "egs" / "librispeech" / "run.sh"
PART = "dev-clean"


def run_recipe(cwd: Path, *options: str, fsq: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the recipe in `cwd` (where its outputs go) with PART as the only part of every stage."""
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    env["FSQ_AUDIO"] = fsq or f"{sys.executable} -m fsq_audio"
    args = ["bash", str(RUN), "--parts", PART, "--train-parts", PART, "--valid-parts", PART,
            "--test-parts", PART, "--prompt-part", PART, "--nj", "2", *options]
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def fake_fsq(tmp_path: Path, subcommands: str = "prepare") -> str:
    """A stand-in for fsq-audio that knows only `subcommands` and logs its calls to fake-fsq.log.

    Unknown subcommands fail like argparse; `export RUN -o DIR` writes DIR/config.json.
    """
    script = tmp_path / "fake-fsq"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'case " {subcommands} " in *" $1 "*) ;; *)\n'
        "  echo \"fsq-audio: error: argument command: invalid choice: '$1'\" >&2; exit 2 ;; esac\n"
        '[ "${2:-}" = --help ] && { echo "usage: fsq-audio $1 [-h] [--opt OPT]"; exit 0; }\n'
        f'echo "$*" >> "{tmp_path}/fake-fsq.log"\n'
        'if [ "$1" = export ]; then mkdir -p "$4"; echo "{}" > "$4/config.json"; fi\n'
    )
    script.chmod(0o755)
    return str(script)


def test_stages_0_1_download_prepare_and_skip_on_rerun(tmp_path, mirror, corpus):
    work = tmp_path / "work"
    opts = ("--stage", "0", "--stop-stage", "1", "--mirror", mirror.url, "--md5-file", str(corpus.md5_file))
    res = run_recipe(work, *opts)
    assert res.returncode == 0, res.stderr
    assert "Stage 0: download" in res.stderr and "Stage 1: manifests" in res.stderr
    # stage 0: archive kept, part extracted, marker written
    assert (work / "download" / f"{PART}.tar.gz").exists()
    assert (work / "download" / f".{PART}.done").exists()
    flacs = sorted(p.stem for p in (work / "download" / "LibriSpeech" / PART).glob("*/*/*.flac"))
    assert flacs == sorted(corpus.texts)
    # stage 1: one row per utterance with speaker and text
    manifest = work / "data" / "manifests" / f"{PART}.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["id"] for r in rows] == sorted(corpus.texts)
    for r in rows:
        assert r["text"] == corpus.texts[r["id"]]
        assert r["speaker"] == r["id"].split("-")[0]
        assert r["sample_rate"] == 16000 and 0.5 < r["duration"] < 0.8
        assert Path(r["path"]).is_file()
    assert (work / "data" / "manifests" / f".{PART}.done").exists()
    # a second run skips both stages: no new request, manifest untouched
    requests, mtime = len(mirror.requests), manifest.stat().st_mtime_ns
    res = run_recipe(work, *opts)
    assert res.returncode == 0, res.stderr
    assert f"Stage 0: {PART} already done" in res.stderr
    assert f"Stage 1: {PART} already done" in res.stderr
    assert len(mirror.requests) == requests and manifest.stat().st_mtime_ns == mtime


def test_corrupt_archive_fails_clearly_and_is_never_used(tmp_path, mirror, corpus):
    bad_md5 = tmp_path / "bad.md5"
    bad_md5.write_text(f"{'0' * 32}  {PART}.tar.gz\n")
    work = tmp_path / "work"
    res = run_recipe(work, "--stop-stage", "1", "--mirror", mirror.url, "--md5-file", str(bad_md5))
    assert res.returncode != 0
    assert "md5 mismatch" in res.stderr
    assert not (work / "download" / "LibriSpeech").exists()
    assert not list((work / "download").glob("*.tar.gz*"))
    assert not (work / "download" / f".{PART}.done").exists()
    assert not (work / "data").exists()


def test_no_network_names_the_problem_and_the_ways_out(tmp_path, dead_url):
    res = run_recipe(tmp_path / "work", "--stop-stage", "0", "--mirror", dead_url)
    assert res.returncode != 0
    assert "cannot download" in res.stderr and "no network" in res.stderr
    assert "--data-dir" in res.stderr


def test_data_dir_skips_the_download(tmp_path, corpus, dead_url):
    work = tmp_path / "work"
    res = run_recipe(work, "--stop-stage", "1", "--data-dir", str(corpus.tree), "--mirror", dead_url)
    assert res.returncode == 0, res.stderr
    assert "no download" in res.stderr
    assert not (work / "download").exists()
    rows = (work / "data" / "manifests" / f"{PART}.jsonl").read_text().splitlines()
    assert len(rows) == len(corpus.texts)


def test_data_dir_without_the_part_fails(tmp_path):
    res = run_recipe(tmp_path / "work", "--stop-stage", "1", "--data-dir", str(tmp_path))
    assert res.returncode != 0 and "no LibriSpeech part 'dev-clean'" in res.stderr


@pytest.mark.parametrize(("stage", "subcommand"), [(2, "train"), (3, "eval"), (4, "tokenize"),
                                                   (5, "lm-train"), (6, "generate")])
def test_missing_subcommand_fails_clearly(tmp_path, stage, subcommand):
    config = tmp_path / "tiny.yaml"
    config.write_text("{}\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    res = run_recipe(tmp_path / "work", "--stage", str(stage), "--stop-stage", str(stage),
                     "--config", str(config), "--model-dir", str(model), fsq=fake_fsq(tmp_path))
    assert res.returncode != 0
    assert f"stage {stage} needs '{tmp_path / 'fake-fsq'} {subcommand}'" in res.stderr
    assert "invalid choice" in res.stderr
    assert not list((tmp_path / "work").rglob(".done"))


def test_eval_without_a_model_says_so(tmp_path):
    res = run_recipe(tmp_path / "work", "--stage", "3", "--stop-stage", "3", fsq=fake_fsq(tmp_path, "eval"))
    assert res.returncode != 0 and "stage 3 needs a trained codec" in res.stderr


def test_stages_1_to_6_call_the_cli_with_the_right_files_and_skip_on_rerun(tmp_path, corpus):
    fsq = fake_fsq(tmp_path, "train export eval tokenize lm-train generate")
    config = tmp_path / "tiny.yaml"
    config.write_text("{}\n")
    work = tmp_path / "work"
    opts = ("--stage", "1", "--data-dir", str(corpus.tree), "--config", str(config), "--device", "cpu",
            "--num-prompts", "2", "--prompt-min-seconds", "0", "--train-opts", "--set train.steps=1")
    res = run_recipe(work, *opts, fsq=fsq)
    assert res.returncode == 0, res.stderr
    calls = (tmp_path / "fake-fsq.log").read_text().splitlines()
    manifest = work / "data" / "manifests" / f"{PART}.jsonl"
    exp = work / "exp"
    prompts = [line.split() for line in (exp / "generate" / "prompts.txt").read_text().splitlines()]
    assert len({utt.split("-")[0] for utt, _ in prompts}) == 2  # one per speaker
    assert calls == [
        f'train {config} --resume --set data.train=["{manifest}"] --set data.valid=["{manifest}"] '
        f"--set run_dir={exp}/codec --set train.steps=1",
        "export exp/codec -o exp/model --force",
        f"eval --model exp/model --data {manifest} -o exp/eval/{PART} --device cpu --force",
        f"tokenize {manifest} -o exp/tokens/{PART} --model exp/model",
        f'lm-train --resume --set data.train=["{exp}/tokens/{PART}"] --set data.valid=["{exp}/tokens/{PART}"] '
        f"--set run_dir={exp}/lm_run",
        "lm-train --export exp/lm_run -o exp/lm --force",
        *(f"generate --lm exp/lm --model exp/model --prompt {path} -o exp/generate/{utt}.wav --force"
          for utt, path in prompts),
    ]
    res = run_recipe(work, *opts, fsq=fsq)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "fake-fsq.log").read_text().splitlines() == calls
    assert res.stderr.count("already") == 8  # manifest, train, export, eval, tokens, lm, lm export, generate


def test_missing_config_is_named(tmp_path):
    res = run_recipe(tmp_path / "work", "--stage", "2", "--stop-stage", "2", "--config", "nope.yaml")
    assert res.returncode != 0 and "config nope.yaml not found" in res.stderr


def test_unknown_option_and_unknown_part_are_errors(tmp_path):
    res = run_recipe(tmp_path / "work", "--no-such-option", "1")
    assert res.returncode != 0 and "unknown option --no-such-option" in res.stderr
    res = run_recipe(tmp_path / "work", "--stage", "2", "--train-parts", "train-clean-100")
    assert res.returncode != 0 and "stage 2 uses part train-clean-100, which is missing from --parts" in res.stderr


def test_help_prints_the_stages():
    res = subprocess.run(["bash", str(RUN), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "Stages:" in res.stdout and "--data-dir" in res.stdout


def _has(subcommand: str) -> bool:
    cmd = [sys.executable, "-m", "fsq_audio", subcommand, "--help"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return res.returncode == 0 and "[-h]\n" not in res.stdout.split("\n\n")[0] + "\n"


TINY_LM = ("--set model.dim=32 --set model.heads=2 --set model.layers=1 --set model.depth_layers=1 "
           "--set model.depth_hidden=32 --set model.max_frames=40 --set data.segment_frames=20 "
           "--set batch_size=2 --set max_steps=2 --set warmup_steps=1 --set valid_every=2 --set save_every=2")


@pytest.mark.slow
def test_all_stages_with_tiny_models(tmp_path, corpus):
    """The real CLI end to end on the tiny corpus: train, export, eval, tokenize, LM, generate."""
    missing = [c for c in ("train", "export", "eval", "tokenize", "lm-train", "generate") if not _has(c)]
    if missing:
        pytest.skip(f"this fsq_audio has no {', '.join(missing)} subcommand(s) yet")
    work = tmp_path / "work"
    res = run_recipe(
        work, "--stage", "1", "--data-dir", str(corpus.tree), "--config", str(REPO / "recipes" / "tiny.yaml"),
        "--train-opts", "--set max_steps=2 --set valid_every=2 --set save_every=2 --set threads=1",
        "--device", "cpu", "--eval-opts", "--baselines none", "--tokenize-opts", "--cpu --threads 1",
        "--lm-opts", TINY_LM + " --set threads=1", "--num-prompts", "1", "--prompt-min-seconds", "0",
        "--generate-opts", "--seconds 0.4 --prompt-seconds 0.2 --threads 1", timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    exp = work / "exp"
    assert (exp / "model" / "config.json").exists() and (exp / "lm").is_dir()
    assert list((exp / "eval" / PART).iterdir()) and list((exp / "tokens" / PART).iterdir())
    assert len(list((exp / "generate").glob("*.wav"))) == 1


def test_stages_0_2_for_real_with_a_tiny_config(tmp_path, mirror, corpus):
    """Download from 127.0.0.1, prepare, train + export a tiny codec with the real CLI; a re-run skips all."""
    work = tmp_path / "work"
    opts = ("--stage", "0", "--stop-stage", "2", "--mirror", mirror.url, "--md5-file", str(corpus.md5_file),
            "--config", str(REPO / "recipes" / "tiny.yaml"),
            "--train-opts", "--set max_steps=2 --set valid_every=2 --set save_every=2 --set threads=1")
    res = run_recipe(work, *opts, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    exp = work / "exp"
    assert (exp / "codec" / ".done").is_file() and (exp / "model" / "model.safetensors").is_file()
    from fsq_audio.models.codec import Codec

    assert Codec.from_pretrained(str(exp / "model")).config.name == "tiny"
    again = run_recipe(work, *opts, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (again.stdout + again.stderr).lower().count("skipping") >= 3
