"""asrkit.report.ablation on hand-made exp dirs: best_wer files as the decoders write them and config.yaml
files as the trainers write them; the rows, their labels and their numbers, exactly."""
from __future__ import annotations

from pathlib import Path

import yaml

from asrkit.report import collect, write_report
from asrkit.report.ablation import ablation_section, config_diff, read_run_config

SENONE = "exp/senone/cuts_{}.jsonl.gz"
REALIGN = "exp/senone_realign/cuts_{}.jsonl.gz"


def _wer(d: Path, wer: float) -> None:
    d.mkdir(parents=True, exist_ok=True)
    errors = round(wer)  # 100 reference words
    (d / "best_wer").write_text(f"%WER {wer:.2f} [ {errors} / 100, 0 ins, 0 del, {errors} sub ] {d}/wer_10\n")


def _run(exp: Path, name: str, wers: dict, train: dict, data=None, ssl=None, runtime=None) -> Path:
    d = exp / name
    d.mkdir(parents=True, exist_ok=True)
    for s, w in wers.items():
        _wer(d / f"decode_{s}", w)
    rec = {"train": {**train, "num_threads": 1, "device": "cpu", **(runtime or {})}, "model": {"hidden_size": 64}}
    if data is not None:
        rec["data"] = data
    if ssl is not None:
        rec["ssl"] = ssl
    (d / "config.yaml").write_text(yaml.safe_dump(rec, sort_keys=False))
    return d


def _data(fmt: str, as_list: bool = False) -> dict:
    tr = fmt.format("train_sup")
    return {"train_cuts": [tr] if as_list else tr, "dev_cuts": fmt.format("dev")}


TEACHER = {"role": "teacher", "lr": 0.002, "specaug_time_masks": 0, "specaug_freq_masks": 0}
STUDENT = {"role": "student", "lr": 0.001, "label_smoothing": 0.0}
SSL = {"mode": "supervised", "labelled_lr_mult": 2.0, "equal_updates": True}


def _exp(tmp_path: Path) -> Path:
    exp = tmp_path / "exp"
    spec = {"specaug_time_masks": 2, "specaug_freq_masks": 2}
    _run(exp, "teacher", {"dev": 10.0, "test": 20.0}, TEACHER, _data(SENONE))
    _run(exp, "teacher_specaug", {"dev": 9.0, "test": 18.0}, {**TEACHER, **spec}, _data(SENONE))
    _run(exp, "teacher_realign", {"dev": 9.5, "test": 19.0}, TEACHER, _data(REALIGN))
    _run(exp, "teacher_specaug_realign", {"test": 17.0}, {**TEACHER, **spec}, _data(REALIGN))
    _run(exp, "student_sup", {"dev": 25.0, "test": 30.0}, STUDENT, _data(SENONE, True), SSL)
    # threads and device differ too: how a run is executed is not a technique
    _run(exp, "student_sup_ls", {"dev": 25.0, "test": 27.0}, {**STUDENT, "label_smoothing": 0.1},
         _data(SENONE, True), SSL, runtime={"num_threads": 4, "device": "cuda"})
    _run(exp, "student_oracle", {"dev": 20.0, "test": 24.0}, STUDENT, _data(SENONE, True), SSL)  # not a variant
    return exp


def test_ablation_rows_labels_and_numbers(tmp_path):
    exp = _exp(tmp_path)
    sets = ["dev", "test"]
    lines = ablation_section(exp, collect(exp, sets), sets)
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| network")]
    realign = "data.dev_cuts, data.train_cuts: exp/senone/ → exp/senone_realign/"  # the same files elsewhere
    spec = "specaug_freq_masks, specaug_time_masks: 0 → 2"  # keys with the same change together
    assert rows == [
        "| BLSTM teacher | `teacher` | baseline | 20.00 | 10.00 |",
        f"| BLSTM teacher | `teacher_realign` | {realign} | 19.00 (-5.0%) | 9.50 (-5.0%) |",
        f"| BLSTM teacher | `teacher_specaug` | {spec} | 18.00 (-10.0%) | 9.00 (-10.0%) |",
        f"| BLSTM teacher | `teacher_specaug_realign` | {realign}; {spec} | 17.00 (-15.0%) |  |",
        "| LSTM student, supervised only | `student_sup` | baseline | 30.00 | 25.00 |",
        "| LSTM student, supervised only | `student_sup_ls` | label_smoothing: 0.0 → 0.1 | 27.00 (-10.0%) | "
        "25.00 (+0.0%) |",
    ]
    header = next(ln for ln in lines if ln.startswith("| network"))
    assert header == "| network | run | differs from the baseline | test | dev (tuning) |"
    # the report carries the section (and the oracle student stays out of it)
    text = write_report(exp, tmp_path / "data", sets, tmp_path / "RESULTS.md", plot=False)
    assert "## Ablation" in text and all(r in text for r in rows) and "student_oracle" not in "".join(rows)


def test_no_variant_no_section(tmp_path):
    exp = tmp_path / "exp"
    _run(exp, "teacher", {"dev": 10.0}, TEACHER, _data(SENONE))
    _run(exp, "student_sup", {"dev": 25.0}, STUDENT, _data(SENONE, True), SSL)
    _run(exp, "teacher_undecoded", {}, TEACHER)  # trained, not decoded: not in the report
    assert ablation_section(exp, collect(exp, ["dev"]), ["dev"]) == []
    assert "## Ablation" not in write_report(exp, tmp_path / "data", ["dev"], tmp_path / "R.md", plot=False)


def test_older_records_and_seeds(tmp_path):
    """A baseline recorded before label_smoothing existed compares with the default it was trained with,
    one recorded before the data section shows it as ``?``; a variant trained with several seeds is read
    from its first seed, its seeds not counted as a difference; a best.pt's train_config stands in for a
    missing yaml."""
    from asrkit.report.ablation import UNRECORDED

    import torch

    exp = tmp_path / "exp"
    old = {k: v for k, v in STUDENT.items() if k != "label_smoothing"}
    _run(exp, "student_sup", {"dev": 20.0}, {**old, "seed": 0}, ssl=SSL)
    for seed, w in ((1, 18.0), (2, 19.0)):
        _run(exp / "student_sup_ls", f"seed{seed}", {"dev": w}, {**STUDENT, "label_smoothing": 0.2, "seed": seed},
             _data(SENONE, True), SSL)
    assert read_run_config(exp / "student_sup")["label_smoothing"] == 0.0
    assert config_diff(read_run_config(exp / "student_sup"), read_run_config(exp / "student_sup_ls")) == [
        ("data.dev_cuts", UNRECORDED, "exp/senone/cuts_dev.jsonl.gz"),
        ("data.train_cuts", UNRECORDED, ["exp/senone/cuts_train_sup.jsonl.gz"]), ("label_smoothing", 0.0, 0.2)]
    _wer(exp / "teacher" / "decode_dev", 10.0)
    from asrkit.nnet.checkpoint import FORMAT

    torch.save({"format": FORMAT, "model_config": {}, "train_config": {**TEACHER, "lr": 0.004}},
               exp / "teacher" / "best.pt")
    _run(exp, "teacher_lr", {"dev": 12.0}, TEACHER)
    rows = [ln for ln in ablation_section(exp, collect(exp, ["dev"]), ["dev"]) if ln.startswith("| ")][1:]
    assert rows == ["| BLSTM teacher | `teacher` | baseline | 10.00 |",
                    "| BLSTM teacher | `teacher_lr` | lr: 0.004 → 0.002 | 12.00 (+20.0%) |",
                    "| LSTM student, supervised only | `student_sup` | baseline | 20.00 |",
                    "| LSTM student, supervised only | `student_sup_ls` | data.dev_cuts, data.train_cuts: ? → "
                    "exp/senone/; label_smoothing: 0.0 → 0.2 | 18.50 ± 0.71 (-7.5%) |"]


def test_labels_of_data_changes():
    from asrkit.report.ablation import UNRECORDED, _label

    assert _label([]) == "no difference in the recorded config"
    assert _label([("data.train_cuts", ["a/x.gz"], ["b/x.gz"]), ("lr", 0.1, 0.2)]) == \
        "data.train_cuts: a/ → b/; lr: 0.1 → 0.2"
    assert _label([("data.train_cuts", UNRECORDED, "a/x.gz"), ("ssl.mode", UNRECORDED, "supervised")]) == \
        "data.train_cuts: ? → a/; ssl.mode: ? → supervised"
    # other file names, or files from several folders: the paths themselves
    assert _label([("data.train_cuts", "a/x.gz", "b/y.gz")]) == "data.train_cuts: a/x.gz → b/y.gz"
    assert _label([("data.train_cuts", ["a/x.gz", "c/z.gz"], ["b/x.gz", "b/z.gz"])]) == \
        "data.train_cuts: a/x.gz + c/z.gz → b/x.gz + b/z.gz"
    # several manifests against an unrecorded baseline (train_sup and its speed-perturbed copies): the list
    sp = ["s/cuts_train_sup.jsonl.gz", "s/cuts_train_sup_sp0.9.jsonl.gz"]
    assert _label([("data.train_cuts", UNRECORDED, sp)]) == \
        "data.train_cuts: ? → s/cuts_train_sup.jsonl.gz + s/cuts_train_sup_sp0.9.jsonl.gz"


def test_labels_from_configs_the_trainer_wrote(tmp_path):
    """Two tiny teachers trained by asrkit.bin.train_nnet (the second with label smoothing, on a copy of the
    targets in another folder, with other threads): the row reads exactly those two changes."""
    from asrkit.bin import train_nnet
    from asrkit.testing.cuts import make_toy_cmvn, write_toy_cuts

    cuts = write_toy_cuts(tmp_path / "senone", num_cuts=4, num_senones=6, lengths=[60, 61, 62, 90], seed=0)
    make_toy_cmvn(cuts).save(tmp_path / "cmvn.npz")
    (tmp_path / "senone_realign").mkdir()
    (tmp_path / "senone_realign" / "cuts.jsonl.gz").symlink_to(tmp_path / "senone" / "cuts.jsonl.gz")
    exp = tmp_path / "exp"
    common = ["--role", "teacher", "--preset", "tiny", "--num-epochs", "1", "--num-workers", "0", "--progress",
              "false", "--tensorboard", "false", "--cmvn", str(tmp_path / "cmvn.npz"), "--num-senones", "6"]
    for name, folder, extra in (("teacher", "senone", ["--num-threads", "1"]),
                                ("teacher_ls_realign", "senone_realign", ["--label-smoothing", "0.1",
                                                                          "--num-threads", "2"])):
        m = str(tmp_path / folder / "cuts.jsonl.gz")
        assert train_nnet.main([*common, *extra, "--train-cuts", m, "--dev-cuts", m,
                                "--out-dir", str(exp / name)]) == 0
        _wer(exp / name / "decode_dev", 10.0 if name == "teacher" else 8.0)
    rows = [ln for ln in ablation_section(exp, collect(exp, ["dev"]), ["dev"]) if ln.startswith("| BLSTM")]
    folders = f"{tmp_path}/senone/ → {tmp_path}/senone_realign/"
    assert rows == ["| BLSTM teacher | `teacher` | baseline | 10.00 |",
                    f"| BLSTM teacher | `teacher_ls_realign` | data.dev_cuts, data.train_cuts: {folders}; "
                    "label_smoothing: 0.0 → 0.1 | 8.00 (-20.0%) |"]
