"""utils/shared_stages.sh's driver: stage ranges, and the background lanes (stages 9 and 13 beside 7, 12
beside 11 on CPU; none on GPUs; a failed lane fails the recipe; 14-16 wait for every lane).

The stage functions are replaced by stubs that append "start N" / "end N" to a trace file, so the order
in which stages start and end shows what ran side by side."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
set -euo pipefail
. {root}/utils/log.sh
. {root}/utils/shared_stages.sh
stage={stage}; stop_stage={stop}; ngpu={ngpu}
for n in $(seq 2 16); do
  eval "stage_$n() {{ echo start $n >> trace; [ $n != {fail} ] || exit 3; sleep {delay}; echo end $n >> trace; }}"
done
# the long stages: 7 (teacher) outlasts 9 and 13; 11 outlasts 12
stage_7() {{ echo start 7 >> trace; sleep {t7}; echo end 7 >> trace; }}
stage_11() {{ echo start 11 >> trace; sleep 1; echo end 11 >> trace; }}
{extra}
shared_stages 2 16
echo finished >> trace
"""


def run(tmp_path: Path, stage=2, stop=16, ngpu=0, fail=0, delay=0.1, t7=1.5, extra=""):
    script = tmp_path / "run.sh"
    script.write_text(SCRIPT.format(root=ROOT, stage=stage, stop=stop, ngpu=ngpu, fail=fail, delay=delay, t7=t7,
                                    extra=extra))
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    trace = (tmp_path / "trace").read_text().split("\n")[:-1] if (tmp_path / "trace").exists() else []
    return proc, trace


def test_cpu_lanes_run_students_beside_the_teacher(tmp_path):
    proc, trace = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(t for t in trace if t.startswith("start")) == sorted(f"start {n}" for n in range(2, 17))
    pos = {t: i for i, t in enumerate(trace)}
    # 9 and 13 start while 7 runs (before it ends), one after the other in their lane
    assert pos["start 7"] < pos["end 13"] < pos["end 7"]
    assert pos["start 9"] < pos["end 7"] and pos["end 9"] < pos["start 13"]
    assert pos["start 12"] < pos["end 11"]  # 12 beside 11
    for n in (9, 12, 13):  # 14-16 wait for every lane
        assert pos[f"end {n}"] < pos["start 14"]
    assert trace[-1] == "finished"
    assert (tmp_path / "exp" / "log" / "students.log").exists()
    assert "lane 'students' started" in proc.stderr


def test_realigned_students_wait_for_the_teacher(tmp_path):
    """With realign_with_teacher, stage 9 needs stage 7's realignment: it runs after 8, 13 alone in the lane."""
    proc, trace = run(tmp_path, extra="realign_with_teacher=true")
    assert proc.returncode == 0, proc.stderr
    pos = {t: i for i, t in enumerate(trace)}
    assert pos["start 13"] < pos["end 7"] < pos["start 8"] < pos["end 8"] < pos["start 9"] < pos["end 9"]


def test_gpu_runs_stages_in_order(tmp_path):
    proc, trace = run(tmp_path, ngpu=1)
    assert proc.returncode == 0, proc.stderr
    expected = [x for n in range(2, 17) for x in (f"start {n}", f"end {n}")] + ["finished"]
    assert trace == expected


@pytest.mark.parametrize("stage,stop,ran", [(9, 9, [9]), (8, 10, [8, 9, 10]), (13, 16, [13, 14, 15, 16])])
def test_stage_range_without_stage_7_runs_in_order(tmp_path, stage, stop, ran):
    proc, trace = run(tmp_path, stage=stage, stop=stop)
    assert proc.returncode == 0, proc.stderr
    assert trace == [x for n in ran for x in (f"start {n}", f"end {n}")] + ["finished"]


def test_a_failed_lane_fails_the_recipe_naming_its_log(tmp_path):
    proc, trace = run(tmp_path, fail=9)
    assert proc.returncode != 0
    assert "lane 'students' failed: see exp/log/students.log" in proc.stderr
    assert "start 14" not in trace and "finished" not in trace
    assert "end 7" in trace  # the foreground went on until it needed the lane


def test_a_failed_foreground_stage_stops_its_lanes(tmp_path):
    proc, trace = run(tmp_path, fail=8, delay=1.0, t7=0.1)  # 8 fails while the lane sleeps in 9
    assert proc.returncode != 0
    time.sleep(2.5)  # a lane left running would end 9 and run 13 by now
    trace = (tmp_path / "trace").read_text().split("\n")[:-1]
    assert "start 9" in trace and "end 9" not in trace and "start 13" not in trace, trace


def test_a_failed_recipe_stops_its_lanes_grandchildren(tmp_path):
    """A lane's stage whose program has children of its own (a decoder's worker pool): they go too."""
    grandchild = ("stage_9() { echo start 9 >> trace; bash -c '( sleep 1.5; echo grandchild >> trace ) & wait'; "
                  "echo end 9 >> trace; }")
    proc, trace = run(tmp_path, fail=8, delay=0.5, t7=0.1, extra=grandchild)
    assert proc.returncode != 0
    time.sleep(2.5)
    trace = (tmp_path / "trace").read_text().split("\n")[:-1]
    assert "start 9" in trace and "grandchild" not in trace and "end 9" not in trace, trace


SEEDS_SCRIPT = r"""
set -euo pipefail
. {root}/utils/log.sh
. {root}/utils/shared_stages.sh
seeds="{seeds}"; labelled_lr_mult=2.0; supervised_lr_mult="{sup_mult}"; student_conf=conf/student.yaml
senone_count() {{ echo 40; }}
nnet_train() {{ echo "train $1 ${{*:2}}" >> trace; }}
nnet_decode() {{ echo "decode $3" >> trace; }}
train_students supervised data exp/senone exp/student_sup --labelled-cuts sup.jsonl.gz
train_students interleaved data exp/senone exp/student_ssl_inter --labelled-cuts sup.jsonl.gz
"""


@pytest.mark.parametrize("seeds,sup_mult", [("", ""), ("5", ""), ("1 2 3", "1.0")])
def test_students_per_seed(tmp_path, seeds, sup_mult):
    """--seeds: one student per seed, in exp/<system>/seed<S> when several (one: exp/<system>, the config's
    seed when none); every student with --equal-updates true and the labelled LR multiplier (the
    supervised one's own with --supervised-lr-mult)."""
    script = tmp_path / "run.sh"
    script.write_text(SEEDS_SCRIPT.format(root=ROOT, seeds=seeds, sup_mult=sup_mult))
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    trace = (tmp_path / "trace").read_text().splitlines()
    trains = [t for t in trace if t.startswith("train")]
    dirs = [t.split()[1] for t in trains]
    decoded = [t.split()[1] for t in trace if t.startswith("decode")]
    if seeds == "1 2 3":
        want = [f"exp/{s}/seed{k}" for s in ("student_sup", "student_ssl_inter") for k in (1, 2, 3)]
    else:
        want = ["exp/student_sup", "exp/student_ssl_inter"]
    assert dirs == decoded == want
    for t in trains:
        assert "--equal-updates true" in t, t
        assert "--tree exp/senone/tree" in t and "--cmvn data/cmvn.npz" in t, t  # the dirs given to train_students
        mult = (sup_mult or "2.0") if "student_sup" in t else "2.0"
        assert f"--labelled-lr-mult {mult}" in t, t
        if seeds:
            assert f"--seed {t.split()[1][-1] if seeds == '1 2 3' else '5'}" in t, t
        else:
            assert "--seed" not in t, t


NNET_SCRIPT = r"""
set -euo pipefail
. {root}/utils/log.sh
. {root}/utils/shared_stages.sh
train_cmd=./fake_cmd.sh; force={force}
nnet_train exp/t asrkit.bin.train_nnet --config c.yaml --train-cuts cuts.jsonl.gz --pseudo-dir pseudo \
  --unlabelled-cuts exp/t/subset.jsonl.gz --out-dir exp/t
"""
FAKE_CMD = """#!/usr/bin/env bash
while [ $# -gt 0 ] && [ "$1" != --out-dir ]; do shift; done
mkdir -p "$2"; touch "$2/.best.pt.done"; echo trained >> calls
"""


def test_a_network_trained_before_its_inputs_were_redone_is_stale(tmp_path):
    (tmp_path / "fake_cmd.sh").write_text(FAKE_CMD)
    (tmp_path / "fake_cmd.sh").chmod(0o755)
    for f in ("c.yaml", "cuts.jsonl.gz"):
        (tmp_path / f).write_text("x")
    (tmp_path / "pseudo").mkdir()

    def nnet_train(force="false"):
        (tmp_path / "run.sh").write_text(NNET_SCRIPT.format(root=ROOT, force=force))
        return subprocess.run(["bash", "run.sh"], cwd=tmp_path, capture_output=True, text=True, timeout=60)

    calls = lambda: (tmp_path / "calls").read_text().count("trained")  # noqa: E731
    assert nnet_train().returncode == 0 and calls() == 1
    r = nnet_train()
    assert r.returncode == 0 and calls() == 1 and "exp/t is trained: skipping" in r.stderr
    time.sleep(0.02)
    (tmp_path / "pseudo/index.json").write_text("rewritten")  # a folder's new mtime is no change (stage 10 re-run)
    (tmp_path / "exp/t/subset.jsonl.gz").write_text("rewritten")  # nor a file in its own folder (stage 14)
    r = nnet_train()
    assert r.returncode == 0 and calls() == 1 and "exp/t is trained: skipping" in r.stderr
    (tmp_path / "cuts.jsonl.gz").write_text("made again")  # e.g. stage 6 redone under --force true
    r = nnet_train()
    assert r.returncode != 0 and calls() == 1
    assert "exp/t was trained before cuts.jsonl.gz was made again: re-run with --force true" in r.stderr
    r = nnet_train(force="true")
    assert r.returncode == 0 and calls() == 2 and (tmp_path / "exp/t.old/.best.pt.done").exists()
    # other arguments (e.g. --speed-perturb turned off: one --train-cuts fewer): stale as well
    r = subprocess.run(["bash", "-c", (tmp_path / "run.sh").read_text().replace("force=true", "force=false")
                        .replace("--train-cuts cuts.jsonl.gz", "--train-cuts c.yaml")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and calls() == 2
    assert "exp/t was trained with other arguments" in r.stderr and "re-run with --force true" in r.stderr


SP_SCRIPT = r"""
set -euo pipefail
. {root}/utils/log.sh
. {root}/utils/shared_stages.sh
speed_perturb="{sp}"; teacher_conf=conf/teacher.yaml
senone_count() {{ echo 40; }}
nnet_train() {{ echo "train $*" >> trace; }}
python() {{ echo "python $*" >> trace; }}
echo "sets:$(sp_sets train_sup)|csv:train_sup,dev$(sp_sets train_sup ,)|cuts:$(sp_cuts exp/senone train_sup)" >> trace
perturb_speed data/manifests train_sup data/manifests
train_teacher data exp/senone exp/teacher $(sp_cuts exp/senone train_sup)
"""


@pytest.mark.parametrize("sp", ["", "0.9 1.1"])
def test_speed_perturb_steps(tmp_path, sp):
    """The copies' set names and manifests, the perturb_speed step, and the teacher's training data, with
    speed_perturb set and unset (unset: no copy anywhere, the teacher's command as before the option)."""
    script = tmp_path / "run.sh"
    script.write_text(SP_SCRIPT.format(root=ROOT, sp=sp))
    proc = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    trace = (tmp_path / "trace").read_text().splitlines()
    teacher = ("train exp/teacher asrkit.bin.train_nnet --config conf/teacher.yaml --train-cuts "
               "exp/senone/cuts_train_sup.jsonl.gz{} --dev-cuts exp/senone/cuts_dev.jsonl.gz --cmvn data/cmvn.npz "
               "--num-senones 40 --out-dir exp/teacher")
    if not sp:
        assert trace == ["sets:|csv:train_sup,dev|cuts:", teacher.format("")]
        return
    copies = " exp/senone/cuts_train_sup_sp0.9.jsonl.gz exp/senone/cuts_train_sup_sp1.1.jsonl.gz"
    assert trace == [
        "sets: train_sup_sp0.9 train_sup_sp1.1|csv:train_sup,dev,train_sup_sp0.9,train_sup_sp1.1|cuts:" + copies,
        "python -m asrkit.bin.perturb_speed --cuts data/manifests/cuts_train_sup.jsonl.gz --set train_sup "
        "--factors 0.9 1.1 --out-dir data/manifests",
        teacher.format(copies)]
