"""What each recipe's stages 2-16 run, without running it: every recipe's run.sh on stub programs (python,
torchrun and the job runners record their command lines), so that the data flow that run.sh spells out
through utils/shared_stages.sh's steps is checked in seconds: which dirs each step reads and writes, the LM
weight each test set takes, what goes through $decode_cmd, and what only egs/synth adds (alignment scoring)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

STUB_PYTHON = """#!/usr/bin/env bash
if [ "$1" = -c ]; then echo 5; exit 0; fi   # senone counts, dev cuts kept
echo "python $*" >> "$TRACE"
if [ "$3" = --check ]; then  # perturb_speed --check prints the factors it was given (here: as given)
  while [ "$1" != --factors ]; do shift; done; echo "$2"
fi
"""
STUB_TORCHRUN = """#!/usr/bin/env bash
echo "torchrun $*" >> "$TRACE"
"""
STUB_RUNNER = """#!/usr/bin/env bash
opts=()
while [[ $1 == --* ]]; do opts+=("$1 $2"); shift 2; done
[[ $1 == JOB=* ]] && shift
echo "$RUNNER ${opts[*]} $1" >> "$TRACE.runner"
shift
"$@"
"""
ARGS = {
    "synth": ["--tiny", "true", "--sweep", "true", "--dist", "true"],
    "speechocean762": ["--corpus-dir", "/corpus/so762"],
    "librispeech": ["--tiny", "true"],
    "TEMPLATE": ["--lexicon-type", "graphemic"],
}
EVAL_SETS = {
    "synth": ["dev", "test_clean", "test_noisy"],
    "speechocean762": ["dev", "test"],
    "librispeech": ["dev_clean", "dev_other", "test_clean", "test_other"],
    "TEMPLATE": ["dev", "test"],
}


def dry_run(recipe_tools, tmp_path: Path, name: str, extra=()):
    """Stages 2-16 of egs/<name>/s5 (with options ``extra`` besides ARGS[name]) on stubs: the python command
    lines in order, and the runner calls."""
    work = recipe_tools.copy_recipe(recipe_tools.repo / "egs" / name / "s5", tmp_path / name / "s5")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for prog, text in (("python", STUB_PYTHON), ("torchrun", STUB_TORCHRUN), ("train_runner", STUB_RUNNER),
                       ("decode_runner", STUB_RUNNER)):
        (stubs / prog).write_text(text)
        (stubs / prog).chmod(0o755)
    (work / "cmd.sh").write_text("train_cmd='env RUNNER=train train_runner'\ndecode_cmd='env RUNNER=decode decode_runner'\n")
    (work / "data" / "manifests" / "oracle").mkdir(parents=True)
    (work / "data" / "manifests" / "oracle" / "cuts_train_unsup.jsonl.gz").touch()
    (work / "exp" / "senone").mkdir(parents=True)
    (work / "exp" / "senone" / "occupancy.txt").touch()
    (work / "RESULTS.md").touch()  # stage 16 prints it
    trace = tmp_path / "trace"
    # ASRKIT_ROOT without a .venv: path.sh leaves PATH alone, so the stubs are what runs
    env = {**recipe_tools.env, "PATH": f"{stubs}:/usr/bin:/bin", "ASRKIT_ROOT": str(tmp_path), "TRACE": str(trace)}
    proc = subprocess.run(["./run.sh", "--stage", "2", *ARGS[name], *extra], cwd=work, capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runner = Path(f"{trace}.runner")
    return trace.read_text().splitlines(), runner.read_text().splitlines() if runner.exists() else []


@pytest.fixture(scope="module")
def dry(recipe_tools, tmp_path_factory):
    """dry(name, extra=()): dry_run of recipe <name> with options ``extra``, once per module."""
    done = {}

    def get(name: str, extra=()):
        if (name, extra) not in done:
            done[name, extra] = dry_run(recipe_tools, tmp_path_factory.mktemp("dry"), name, extra)
        return done[name, extra]
    return get


def opt(line: str, name: str) -> str:
    words = line.split()
    return words[words.index(name) + 1]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_stages_run_the_shared_steps_on_the_recipes_dirs(dry, name):
    calls, runs = dry(name)
    tools = [c.split()[2].rsplit(".", 1)[1] for c in calls if c.startswith("python -m ")]
    for tool in ("compute_features", "compute_cmvn", "prepare_lang", "train_lm", "train_gmm", "make_graph",
                 "decode_gmm", "make_senones", "train_nnet", "nnet_forward", "decode", "pseudo_label",
                 "train_student", "report"):
        assert tool in tools, (name, tool)
    gmm = [c for c in calls if "asrkit.bin.train_gmm" in c]
    assert [(opt(c, "--type"), opt(c, "--out-dir")) for c in gmm] == [("mono", "exp/mono"), ("tri", "exp/tri")]
    assert opt(gmm[1], "--ali-dir") == "exp/mono"
    assert all(opt(c, "--cuts") == "data/mfcc/cuts_train_sup.jsonl.gz" for c in gmm)
    senones = [c for c in calls if "asrkit.bin.make_senones" in c]
    assert opt(senones[0], "--ali-dir") == "exp/tri" and opt(senones[0], "--out-dir") == "exp/senone"
    assert opt(senones[-1], "--sets").endswith(",train_unsup_oracle")  # stage 13's oracle targets
    # every decoding of every system goes through $decode_cmd, one log per set in the system's log/
    decodes = [c for c in calls if c.split()[2] in ("asrkit.bin.decode_gmm", "asrkit.bin.decode")]
    decode_logs = [r for r in runs if r.startswith("decode ") and "/log/decode_" in r]
    assert len(decodes) == len(decode_logs) > 0
    trained = [c for c in calls if "asrkit.bin.train_student" in c or "asrkit.bin.train_nnet" in c]
    assert len(trained) == len([r for r in runs if r.startswith("train ") and r.endswith("/log/train.log")])


@pytest.mark.parametrize("name", sorted(ARGS))
def test_lm_weight_swept_on_dev_sets_and_taken_by_test_sets(dry, name):
    calls, _ = dry(name)
    sets = EVAL_SETS[name]
    for system in ("exp/mono", "exp/tri", "exp/teacher"):
        lines = [c for c in calls if c.split()[2] in ("asrkit.bin.decode_gmm", "asrkit.bin.decode")
                 and opt(c, "--out-dir").startswith(f"{system}/decode_")]
        decoded = [opt(c, "--out-dir").split("/decode_")[1] for c in lines]
        assert sorted(decoded) == sorted(sets), (system, decoded)
        assert decoded.index(sets[0]) < min(decoded.index(s) for s in sets if s.startswith("test"))
        for c, s in zip(lines, decoded):
            if s.startswith("dev"):
                assert "--lm-weights" in c and "--lm-weight-from" not in c, c
            else:  # test_X from dev_X where there is one (LibriSpeech), else from dev_set
                src = f"dev_{s[5:]}" if f"dev_{s[5:]}" in sets else sets[0]
                assert opt(c, "--lm-weight-from") == f"{system}/decode_{src}/best_wer", c


@pytest.mark.parametrize("name", sorted(ARGS))
def test_only_synth_scores_gmm_alignments(dry, name):
    calls, _ = dry(name)
    aligned = [opt(c, "--out") for c in calls if "asrkit.bin.align_gmm" in c]
    assert aligned == (["exp/mono/ali_eval/ali.pt", "exp/tri/ali_eval/ali.pt"] if name == "synth" else [])


def _values(line: str, name: str) -> list:
    """The words after option ``name`` up to the next option."""
    words = line.split()
    rest = words[words.index(name) + 1:]
    return rest[:next((i for i, w in enumerate(rest) if w.startswith("--")), len(rest))]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_speed_perturb_feeds_the_copies_to_the_teacher_and_the_supervised_student(dry, name):
    """--speed-perturb "0.9 1.1": checked first; train_sup's copies made in stage 2 with their fbank and MFCC,
    aligned in stage 6 (make_senones --sets), trained on by the teacher and the supervised student, by no
    other network. Without it (the default) the recipe runs exactly the commands it ran before the option."""
    off, _ = dry(name)
    on, _ = dry(name, ("--speed-perturb", "0.9 1.1"))
    assert not [c for c in off if "_sp" in c or "perturb_speed" in c]
    assert [_values(c, "--train-cuts") for c in off if "asrkit.bin.train_nnet" in c] == \
        [["exp/senone/cuts_train_sup.jsonl.gz"]]
    sp = ["train_sup_sp0.9", "train_sup_sp1.1"]
    assert on[0] == "python -m asrkit.bin.perturb_speed --check --option-name=--speed-perturb --factors 0.9 1.1"
    made = [c for c in on[1:] if "asrkit.bin.perturb_speed" in c]
    assert len(made) == 1 and (opt(made[0], "--cuts"), opt(made[0], "--set"), _values(made[0], "--factors"),
                               opt(made[0], "--out-dir")) == (
        "data/manifests/cuts_train_sup.jsonl.gz", "train_sup", ["0.9", "1.1"], "data/manifests")
    # one compute_features per kind, every set of it: --cuts and --set in the same order
    feats = [(opt(c, "--kind"), cuts, opt(c, "--out-dir")) for c in on if "asrkit.bin.compute_features" in c
             for cuts, name in zip(_values(c, "--cuts"), _values(c, "--set"), strict=True) if "_sp" in name]
    assert sorted(feats) == sorted((k, f"data/manifests/cuts_{s}.jsonl.gz", f"data/{k}") for k in ("fbank", "mfcc")
                                   for s in sp)
    senones = [c for c in on if "asrkit.bin.make_senones" in c]
    assert opt(senones[0], "--sets").split(",")[-2:] == sp
    targets = ["exp/senone/cuts_train_sup.jsonl.gz"] + [f"exp/senone/cuts_{s}.jsonl.gz" for s in sp]
    assert [_values(c, "--train-cuts") for c in on if "asrkit.bin.train_nnet" in c] == [targets]
    students = {opt(c, "--out-dir"): _values(c, "--labelled-cuts") for c in on if "asrkit.bin.train_student" in c}
    assert students.pop("exp/student_sup") == targets
    assert students and not [d for d, cuts in students.items() if any("_sp" in x for x in cuts)]
    # the same commands besides the copies' (the lanes may interleave: compared as multisets)
    stripped = [c for c in on[1:] if "perturb_speed" not in c and " --set train_sup_sp" not in c]
    for s in sp:
        stripped = [c.replace(f" exp/senone/cuts_{s}.jsonl.gz", "").replace(f",{s}", "")
                    .replace(f" data/manifests/cuts_{s}.jsonl.gz", "").replace(f" {s} ", " ") for c in stripped]
    assert sorted(stripped) == sorted(off)


@pytest.mark.parametrize("name", sorted(ARGS))
def test_realign_with_teacher(dry, recipe_tools, tmp_path, name):
    """Off by default: no realignment, no second teacher. On: the teacher realigns train_sup and dev into
    exp/senone_realign after its training, a teacher and a supervised student train on those targets (their
    own dirs, validated on the realigned dev) and are decoded with its priors."""
    calls, _ = dry(name)
    assert not [c for c in calls if "realign" in c]
    calls, runs = dry_run(recipe_tools, tmp_path, name, ["--realign-with-teacher", "true"])
    realign = [c for c in calls if "asrkit.bin.realign_nnet" in c]
    assert len(realign) == 1 and opt(realign[0], "--model") == "exp/teacher/best.pt"
    assert (opt(realign[0], "--senone-dir"), opt(realign[0], "--out-dir")) == ("exp/senone", "exp/senone_realign")
    assert opt(realign[0], "--lang") == "data/lang_senone" and opt(realign[0], "--sets").startswith("train_sup,dev")
    assert any(r.startswith("train ") and r.endswith("exp/senone_realign/log/realign.log") for r in runs)
    teachers = [c for c in calls if "asrkit.bin.train_nnet" in c]
    assert [opt(c, "--out-dir") for c in teachers] == ["exp/teacher", "exp/teacher_realign"]
    assert calls.index(teachers[0]) < calls.index(realign[0]) < calls.index(teachers[1])
    assert opt(teachers[1], "--train-cuts") == "exp/senone_realign/cuts_train_sup.jsonl.gz"
    assert opt(teachers[1], "--dev-cuts").startswith("exp/senone_realign/cuts_dev")
    sup = [c for c in calls if "asrkit.bin.train_student" in c and "student_sup_realign" in opt(c, "--out-dir")]
    assert len(sup) == 1 and opt(sup[0], "--labelled-cuts") == "exp/senone_realign/cuts_train_sup.jsonl.gz"
    assert calls.index(realign[0]) < calls.index(sup[0])
    fwd = [c for c in calls if "asrkit.bin.nnet_forward" in c and "exp/teacher_realign/" in c]
    assert fwd and all(opt(c, "--priors") == "exp/senone_realign/senone_counts.npy" for c in fwd)


@pytest.mark.parametrize("name", sorted(ARGS))
def test_teacher_dir_moves_the_teacher_of_stages_7_8_10(dry, name):
    """--teacher-dir exp/teacher_x: the teacher is trained there, decoded from there and labels from there;
    nothing else reads or writes exp/teacher."""
    calls, _ = dry(name, ("--teacher-dir", "exp/teacher_x"))
    teacher = [c for c in calls if "asrkit.bin.train_nnet" in c]
    assert [opt(c, "--out-dir") for c in teacher] == ["exp/teacher_x"]
    forwards = [opt(c, "--model") for c in calls if "asrkit.bin.nnet_forward" in c]
    assert forwards.count("exp/teacher_x/best.pt") == len(EVAL_SETS[name])
    labels = [opt(c, "--model") for c in calls if "asrkit.bin.pseudo_label" in c and "--model" in c]
    assert labels and set(labels) == {"exp/teacher_x/best.pt"}
    assert not [c for c in calls if "exp/teacher " in c + " " or "exp/teacher/" in c]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_sweep_order_reaches_every_subset(dry, name):
    """Stage 14's subsets: the shuffle by default, --sweep-order hash passed to every subset_cuts."""
    default, _ = dry(name, ("--sweep", "true"))
    hashed, _ = dry(name, ("--sweep", "true", "--sweep-order", "hash"))
    for calls, order in ((default, "shuffle"), (hashed, "hash")):
        subsets = [c for c in calls if "asrkit.bin.subset_cuts" in c]
        assert subsets and all(opt(c, "--order") == order for c in subsets), (name, order, subsets)


@pytest.mark.parametrize("name", ["synth", "speechocean762"])
def test_nnet_avg_decodes_and_labels_with_the_averaged_model(dry, name):
    """--nnet-avg 3: each network's avg.pt (averaged from its last 3 epochs just before) is what is decoded
    and what labels; by default best.pt."""
    default, _ = dry(name)
    avg, _ = dry(name, ("--nnet-avg", "3"))
    assert not [c for c in default if "asrkit.bin.average_checkpoints" in c]
    assert {opt(c, "--model").rsplit("/", 1)[1] for c in default if "asrkit.bin.nnet_forward" in c} == {"best.pt"}
    forwards = [i for i, c in enumerate(avg) if "asrkit.bin.nnet_forward" in c]
    assert forwards
    for i in forwards + [i for i, c in enumerate(avg) if "asrkit.bin.pseudo_label" in c and "--model" in c]:
        model = opt(avg[i], "--model")
        assert model.endswith("/avg.pt"), avg[i]
        made = [c for c in avg[:i] if "asrkit.bin.average_checkpoints" in c and opt(c, "--out") == model]
        assert made and opt(made[-1], "--last") == "3" and opt(made[-1], "--dir") == model[:-len("/avg.pt")]
