"""asrkit.report on hand-made decode dirs: the table, the relative reduction, the gap, the plot."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrkit.report import collect, collect_dist, collect_sweep, fmt_bytes, read_wer, write_report


def _decode_dir(exp: Path, system: str, s: str, hyps: dict, refs: dict) -> None:
    d = exp / system / f"decode_{s}"
    d.mkdir(parents=True)
    from asrkit.decode.score import compute_wer, write_best_wer, write_wer_files

    res = compute_wer(refs, hyps, bootstrap=False)
    write_wer_files(res, d, 10)
    write_best_wer({10: res}, d)
    (d / "hyp.txt").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in hyps.items()))


def test_report_from_decode_dirs(tmp_path):
    refs = {f"u{i:03d}": ["A", "B", "C", "D"] for i in range(60)}
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in refs.items()))
    exp = tmp_path / "exp"
    # supervised: one error in every utterance (25%); semi-supervised: in one of six; oracle: none
    _decode_dir(exp, "student_sup", "test", {u: ["A", "B", "C", "X"] for u in refs}, refs)
    _decode_dir(exp, "student_ssl_inter", "test",
                {u: (["A", "B", "C", "X"] if i % 6 == 0 else ["A", "B", "C", "D"]) for i, u in enumerate(refs)}, refs)
    _decode_dir(exp, "student_oracle", "test", dict(refs), refs)
    assert read_wer(exp / "student_sup" / "decode_test").wer == 25.0
    table = collect(exp, ["test"])
    assert list(table) == ["student_sup", "student_ssl_inter", "student_oracle"]
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "RESULTS.md")
    # 25% -> 4.17%: a relative reduction of 83.3%, the whole gap to 0% less the remaining 4.17: 83%
    assert "| `student_ssl_inter` | test | 25.00" in text and "83.3%" in text and "| 83% |" in text
    assert (tmp_path / "RESULTS.png").stat().st_size > 0
    assert (tmp_path / "RESULTS.md").read_text() == text


def test_overlapping_intervals_report_no_reduction(tmp_path):
    refs = {f"u{i}": ["A", "B"] for i in range(6)}
    data = tmp_path / "data" / "dev"
    data.mkdir(parents=True)
    (data / "text").write_text("".join(f"{u} A B\n" for u in refs))
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_sup", "dev", {u: (["A", "X"] if u in ("u0", "u1") else ["A", "B"]) for u in refs}, refs)
    _decode_dir(exp, "student_ssl_seg", "dev", {u: (["A", "X"] if u == "u0" else ["A", "B"]) for u in refs}, refs)
    text = write_report(exp, tmp_path / "data", ["dev"], tmp_path / "R.md", plot=False)
    assert "none (0 in the interval)" in text  # some resamplings hold neither u0 nor u1


def _texts(tmp_path, refs, hyps1, hyps2):
    for name, t in (("ref", refs), ("h1", hyps1), ("h2", hyps2)):
        (tmp_path / name).write_text("".join(f"{u} {' '.join(w)}\n" for u, w in t.items()))
    return tmp_path / "ref", tmp_path / "h1", tmp_path / "h2"


def test_paired_difference_exact_cases(tmp_path):
    from asrkit.report import paired_difference

    refs = {f"u{i}": ["A", "B", "C", "D"] for i in range(10)}
    same = paired_difference(*_texts(tmp_path, refs, refs, refs))
    assert same == {"delta": 0.0, "rel": 0.0, "delta_lo": 0.0, "delta_hi": 0.0, "rel_lo": 0.0, "rel_hi": 0.0}
    # every utterance: two errors -> one error. Any resampling gives 25 points less, half the errors
    two, one = {u: ["A", "B", "X", "X"] for u in refs}, {u: ["A", "B", "C", "X"] for u in refs}
    d = paired_difference(*_texts(tmp_path, refs, two, one))
    assert d["delta"] == d["delta_lo"] == d["delta_hi"] == 25.0
    assert d["rel"] == d["rel_lo"] == d["rel_hi"] == 50.0


def test_a_consistent_gain_is_significant_though_the_intervals_overlap(tmp_path):
    """The supervised student errs in utterances 0-29, the semi-supervised one only in 0-19 of them: each
    system's interval overlaps the other's, but no resampling favours the supervised one."""
    refs = {f"u{i:02d}": ["A", "B", "C", "D"] for i in range(60)}
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "text").write_text("".join(f"{u} A B C D\n" for u in refs))
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_sup", "test", {u: (["A", "B", "C", "X"] if i < 30 else ["A", "B", "C", "D"])
                                             for i, u in enumerate(refs)}, refs)  # 12.5%
    _decode_dir(exp, "student_ssl_inter", "test", {u: (["A", "B", "C", "X"] if i < 20 else ["A", "B", "C", "D"])
                                                   for i, u in enumerate(refs)}, refs)  # 8.33%
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "R.md", plot=False)
    row = next(line for line in text.splitlines() if line.startswith("| `student_ssl_inter` | test"))
    cells = [c.strip() for c in row.split("|")]
    sup_lo = float(cells[3].split("[")[1].split(",")[0])  # the supervised interval's lower end...
    ssl_hi = float(cells[4].split(",")[1].rstrip("]"))  # ...below the semi-supervised one's upper end
    assert sup_lo < ssl_hi, row
    assert cells[6] == "33.3%", row  # (30 - 20) / 30 errors
    lo, hi = (float(x) for x in cells[5].split("[")[1].rstrip("]").split(","))
    assert 0 < lo <= 33.3 <= hi <= 100, row


def test_a_worse_student_and_a_worse_oracle_are_not_reported_as_gains(tmp_path):
    refs = {f"u{i}": ["A", "B", "C", "D"] for i in range(24)}
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "text").write_text("".join(f"{u} A B C D\n" for u in refs))
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_sup", "test", {u: (["A", "B", "C", "X"] if u == "u0" else ["A", "B", "C", "D"])
                                             for u in refs}, refs)  # 1.04% WER
    _decode_dir(exp, "student_ssl_seg", "test", {u: ["A", "B", "C", "X"] for u in refs}, refs)  # 25%
    _decode_dir(exp, "student_oracle", "test", {u: ["A", "B", "X", "X"] for u in refs}, refs)  # 50%
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "R.md", plot=False)
    row = next(line for line in text.splitlines() if line.startswith("| `student_ssl_seg` | test"))
    assert "none (worse by" in row and "- (oracle not better)" in row, row


def test_missing_systems_are_absent(tmp_path):
    assert collect(tmp_path, ["dev"]) == {}


# ----------------------------------------------------------------------------- stages 14 and 15

def _sweep_json(exp: Path, system: str, ratio: float, hours: float, **over) -> None:
    info = {"source": "data/fbank/cuts_train_unsup.jsonl.gz", "source_cuts": 40, "source_hours": 4.0, "seed": 0,
            "hours_requested": ratio * 1.0, "cuts": int(10 * hours), "hours": hours, "ratio_requested": ratio,
            "ratio_of": "exp/senone/cuts_train_sup.jsonl.gz", "labelled_hours": 1.0, "ratio": hours / 1.0}
    info.update(over)
    (exp / system / "sweep.json").write_text(json.dumps(info))


def _refs_and_data(tmp_path, n=20):
    refs = {f"u{i:03d}": ["A", "B", "C", "D"] for i in range(n)}
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "text").write_text("".join(f"{u} {' '.join(w)}\n" for u, w in refs.items()))
    return refs


def _with_errors(refs, every):
    """One substitution in every ``every``-th utterance."""
    return {u: (["A", "B", "C", "X"] if i % every == 0 else ["A", "B", "C", "D"]) for i, u in enumerate(refs)}


def test_sweep_section_and_plot(tmp_path):
    refs = _refs_and_data(tmp_path)  # 20 utterances of 4 words: one error is 1.25%
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_sup", "test", _with_errors(refs, 1), refs)  # 25%
    _decode_dir(exp, "sweep/x1", "test", _with_errors(refs, 2), refs)  # 12.5%
    _sweep_json(exp, "sweep/x1", 1, 1.02)
    _decode_dir(exp, "sweep/x2", "test", _with_errors(refs, 4), refs)  # 6.25%
    _sweep_json(exp, "sweep/x2", 2, 2.01)
    _decode_dir(exp, "student_ssl_inter", "test", _with_errors(refs, 5), refs)  # 5%
    pts = collect_sweep(exp, ["test"])
    assert [(p.system, p.requested) for p in pts] == [("student_sup", "0"), ("sweep/x1", "1"),
                                                      ("sweep/x2", "2"), ("student_ssl_inter", "all")]
    assert [p.ratio for p in pts] == [0.0, 1.02, 2.01, 4.0]
    assert [p.wers["test"].wer for p in pts] == [25.0, 12.5, 6.25, 5.0]
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "RESULTS.md")
    assert "| 0.00 | 0 | 0 | `student_sup` | 25.00 |" in text
    assert "| 1.02 | 1 | 1.02 | `sweep/x1` | 12.50 |" in text
    assert "| 2.01 | 2 | 2.01 | `sweep/x2` | 6.25 |" in text
    assert "| 4.00 | all | 4 | `student_ssl_inter` | 5.00 |" in text
    assert "![WER against the amount of unlabelled data](RESULTS_sweep.png)" in text
    assert (tmp_path / "RESULTS_sweep.png").read_bytes()[:4] == b"\x89PNG"
    # the sweep points stay out of the main table, which says where they are
    main = text.split("\n## ")[0]
    assert "sweep/x1" not in main.replace("`sweep/x<R>`", "")
    assert "| LSTM student, semi-supervised, interleaved (`student_ssl_inter`) | 5.00 |" in main
    assert "Reported in their own sections below: the sweep over the amount of unlabelled data (`sweep/x<R>`)." in main


def test_sweep_needs_its_json_and_one_source(tmp_path):
    refs = _refs_and_data(tmp_path, 4)
    exp = tmp_path / "exp"
    _decode_dir(exp, "sweep/x1", "test", dict(refs), refs)
    with pytest.raises(ValueError, match=r"sweep/x1/sweep.json: not found"):
        collect_sweep(exp, ["test"])
    (exp / "sweep/x1" / "sweep.json").write_text("{}")
    with pytest.raises(ValueError, match=r"sweep.json: missing ratio, ratio_requested"):
        collect_sweep(exp, ["test"])
    _sweep_json(exp, "sweep/x1", 1, 1.0)
    _decode_dir(exp, "sweep/x2", "test", dict(refs), refs)
    _sweep_json(exp, "sweep/x2", 2, 2.0, seed=7)
    with pytest.raises(ValueError, match=r"x2/sweep.json: seed 7 differs from 0"):
        collect_sweep(exp, ["test"])
    assert collect_sweep(tmp_path / "nothing", ["test"]) == []


def _comm_json(exp: Path, mode: str, payload, dense, wire, seconds=12.34, steps=20, steps_this_run=20,
               name=None) -> None:
    d = exp / (name or f"dist_{mode}")
    d.mkdir(parents=True, exist_ok=True)
    per_rank = [{"payload_bytes": p, "dense_bytes": dn, "wire_bytes": w} for p, dn, w in zip(payload, dense, wire)]
    (d / "comm.json").write_text(json.dumps({
        "mode": mode, "world_size": len(payload), "steps": steps, "steps_this_run": steps_this_run,
        "train_seconds": seconds, "payload_bytes": payload[0], "dense_bytes": dense[0], "wire_bytes": wire[0],
        "compression_ratio": dense[0] / payload[0] if payload[0] else None, "per_rank": per_rank}))


def test_dist_section(tmp_path):
    refs = _refs_and_data(tmp_path)
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_ssl_inter", "test", _with_errors(refs, 5), refs)  # 5%
    (exp / "student_ssl_inter" / "history.jsonl").write_text('{"epoch": 1, "step": 20}\n{"epoch": 2, "step": 40}\n')
    _decode_dir(exp, "dist_gtc", "test", _with_errors(refs, 4), refs)  # 6.25%
    _decode_dir(exp, "dist_ddp", "test", _with_errors(refs, 5), refs)
    _decode_dir(exp, "dist_bmuf", "test", _with_errors(refs, 2), refs)  # 12.5%
    # ddp: 2 MB each rank, all dense; gtc: 10 kB and 30 kB of codes against 2 MB dense each (x100);
    # bmuf: one parameter exchange per 5 steps (x5), resumed mid-run
    _comm_json(exp, "ddp", [2_000_000] * 2, [2_000_000] * 2, [2_000_000] * 2)
    _comm_json(exp, "gtc", [10_000, 30_000], [2_000_000] * 2, [30_000, 30_000], seconds=9.5)
    _comm_json(exp, "bmuf", [400_000] * 2, [2_000_000] * 2, [400_000] * 2, seconds=3.0, steps_this_run=8)
    runs = collect_dist(exp, ["test"])
    assert [r.mode for r in runs] == ["ddp", "gtc", "bmuf"]
    assert runs[1].payload_per_worker == 20_000 and runs[1].compression == 100.0
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "RESULTS.md", plot=False)
    sec = text.split("## Distributed training (stage 15)")[1]
    assert "| none: one process (`student_ssl_inter`) | 1 | 5.00 | - | - | - | 40 | - |" in sec
    assert "| ddp (`dist_ddp`) | 2 | 5.00 | 2 MB | 2 MB | x1 | 20 | 12.3 |" in sec
    assert "| gtc (`dist_gtc`) | 2 | 6.25 | 20 kB | 30 kB | x100 | 20 | 9.5 |" in sec
    assert ("| bmuf (`dist_bmuf`) | 2 | 12.50 | 400 kB | 400 kB | x5 | 20 | 3.0 (last launch: 8 of 20 "
            "steps) |") in sec
    main = text.split("\n## ")[0]
    assert "dist_gtc" not in main.replace("`dist_<mode>`", "") and "dist_ddp" not in main
    assert "Reported in their own sections below: the distributed runs (`dist_<mode>`)." in main  # no sweep named
    assert not (tmp_path / "RESULTS_sweep.png").exists()  # no sweep, no sweep plot


def test_simulated_workers_sorted_by_number_and_plotted(tmp_path):
    refs = _refs_and_data(tmp_path, 8)
    exp = tmp_path / "exp"
    for n, errs in ((1, 1), (4, 2), (16, 3)):
        for mode in ("bmuf", "ddp"):
            name = f"dist_sim_{mode}_n{n}"
            _decode_dir(exp, name, "test", _with_errors(refs, errs), refs)
            _comm_json(exp, mode, [100] * n, [100] * n, [100] * n, name=name)
    _decode_dir(exp, "dist_gtc", "test", _with_errors(refs, 1), refs)
    _comm_json(exp, "gtc", [10, 10], [100, 100], [10, 10])
    runs = collect_dist(exp, ["test"])
    assert [r.system for r in runs] == ["dist_gtc", "dist_sim_ddp_n1", "dist_sim_bmuf_n1", "dist_sim_ddp_n4",
                                        "dist_sim_bmuf_n4", "dist_sim_ddp_n16", "dist_sim_bmuf_n16"]
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "RESULTS.md", plot=True)
    assert "![WER against the number of simulated workers](RESULTS_dist.png)" in text
    assert (tmp_path / "RESULTS_dist.png").read_bytes()[:4] == b"\x89PNG"


def test_dist_comm_json_problems_name_the_file(tmp_path):
    refs = _refs_and_data(tmp_path, 4)
    exp = tmp_path / "exp"
    _decode_dir(exp, "dist_gtc", "test", dict(refs), refs)
    with pytest.raises(ValueError, match=r"dist_gtc/comm.json: not found"):
        collect_dist(exp, ["test"])
    (exp / "dist_gtc" / "comm.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"dist_gtc/comm.json: cannot read it as json"):
        collect_dist(exp, ["test"])
    _comm_json(exp, "gtc", [0, 0], [100, 100], [0, 0])
    assert collect_dist(exp, ["test"])[0].compression is None  # nothing sent: no ratio
    assert fmt_bytes(999) == "999 B" and fmt_bytes(1_234_567) == "1.23 MB" and fmt_bytes(2.5e9) == "2.5 GB"


# ----------------------------------------------------------------------------- seeds, headlines, conditions

def _seeded(exp: Path, system: str, s: str, per_seed: dict, refs: dict, steps: int = 40) -> None:
    for seed, hyps in per_seed.items():
        _decode_dir(exp, f"{system}/seed{seed}", s, hyps, refs)
        h = exp / system / f"seed{seed}" / "history.jsonl"
        if not h.exists():
            h.write_text(json.dumps({"epoch": 1, "step": steps // 2}) + "\n"
                         + json.dumps({"epoch": 2, "step": steps, "max_updates": steps}) + "\n")


def test_seeded_systems_mean_std_updates_and_test_first(tmp_path):
    """Three seeds per system: mean ± std, updates, test sets before the dev (tuning) set; one error fewer
    in every utterance of every seed: the exact reduction, significant over seeds and utterances."""
    refs = {f"u{i:02d}": ["A", "B", "C", "D"] for i in range(20)}
    for s in ("dev", "test"):
        d = tmp_path / "data" / s
        d.mkdir(parents=True)
        (d / "text").write_text("".join(f"{u} A B C D\n" for u in refs))
    (tmp_path / "data" / "test" / "utt2cond").write_text(
        "".join(f"{u} {'clean' if i < 10 else 'noisy_reverb'}\n" for i, u in enumerate(refs)))
    exp = tmp_path / "exp"
    two = lambda u: ["A", "B", "X", "X"]  # noqa: E731
    one = lambda u: ["A", "B", "C", "X"]  # noqa: E731
    for s in ("dev", "test"):
        # supervised: 2 errors per utterance in every seed but seed 3, where utterance u00 has 3
        sup = {k: {u: two(u) for u in refs} for k in (1, 2, 3)}
        sup[3]["u00"] = ["A", "X", "X", "X"]
        _seeded(exp, "student_sup", s, sup, refs)
        _seeded(exp, "student_ssl_inter", s, {k: {u: one(u) for u in refs} for k in (1, 2, 3)}, refs)
        _seeded(exp, "student_ssl_seg", s, {k: {u: (one(u) if i % 2 else two(u)) for i, u in enumerate(refs)}
                                            for k in (1, 2, 3)}, refs)
    table = collect(exp, ["dev", "test"])
    assert set(table["student_sup"]["test"].runs) == {"1", "2", "3"}
    text = write_report(exp, tmp_path / "data", ["dev", "test"], tmp_path / "R.md", plot=False)
    assert "| system | test | dev (tuning) | updates |" in text
    # 50% in seeds 1 and 2, 51.25% in seed 3: mean 50.42, std 0.72
    assert "| LSTM student, supervised only (`student_sup`) | 50.42 ± 0.72 | 50.42 ± 0.72 | 40 (x3) |" in text
    assert "| LSTM student, semi-supervised, interleaved (`student_ssl_inter`) | 25.00 ± 0.00 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `student_ssl_inter` | test |"))
    cells = [c.strip() for c in row.split("|")]
    # errors 40, 40, 41 -> 20 each: (40.33 - 20) / 40.33 = 50.4%; every draw at least 20/40.. -> significant
    assert cells[3] == "50.42 ± 0.72" and cells[4] == "25.00 ± 0.00"
    assert cells[5].startswith("50.4% [") and cells[6] == "50.4%" and cells[7] == "1.000", row
    assert text.index("| `student_ssl_inter` | test |") < text.index("| `student_ssl_inter` | dev (tuning) |")
    # interleaved against segregated: reductions (50.42 - 25) / 50.42 = 50.4% and (50.42 - 37.5) / 50.42 =
    # 25.6%: larger by 97%; interleaved over segregated: 30 -> 20 errors in every seed, 33.3%
    sec = text.split("## Interleaved against segregated")[1].split("\n## ")[0]
    assert "| test | 50.4% | 25.6% | 97% | 33.3% [" in sec
    # per condition: clean (u00-u09) and noisy_reverb (u10-u19) of the test set
    cond = text.split("## Per condition")[1]
    assert "| `student_ssl_inter` | test | clean | 10 | 50.83 | 25.00 | 25.83 |" in cond
    assert "| `student_ssl_inter` | test | noisy_reverb | 10 | 50.00 | 25.00 | 25.00 |" in cond
    # seg: odd utterances better: u01..u09 odd in clean (5 of 10), the same in noisy
    claim = next(line for line in cond.splitlines() if line.startswith("- `student_ssl_inter`"))
    assert "noisy_reverb" in claim and "clean" in claim and "holds here" not in claim


def test_a_single_seed_keeps_the_layout_and_the_paired_bootstrap(tmp_path):
    refs = {f"u{i}": ["A", "B", "C", "D"] for i in range(10)}
    d = tmp_path / "data" / "test"
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} A B C D\n" for u in refs))
    exp = tmp_path / "exp"
    _decode_dir(exp, "student_sup", "test", {u: ["A", "B", "X", "X"] for u in refs}, refs)
    _decode_dir(exp, "student_ssl_inter", "test", {u: ["A", "B", "C", "X"] for u in refs}, refs)
    (exp / "student_sup" / "history.jsonl").write_text('{"epoch": 1, "step": 7}\n')
    text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "R.md", plot=False)
    assert "| LSTM student, supervised only (`student_sup`) | 50.00 | 7 |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `student_ssl_inter` | test |"))
    assert "| 50.00 [" in row and "| 50.0% [50.0, 50.0] | 50.0% |" in row, row  # per-system intervals, exact
    assert not [line for line in text.splitlines() if line.startswith("|") and "±" in line]  # no seeds: no std
    assert "Per condition" not in text  # no utt2cond: no such section


def test_the_noisier_data_claim(tmp_path):
    """Clean: no reduction; noisy_reverb: half the errors in every utterance: the claim holds; the other way
    round it does not."""
    refs = {f"u{i:02d}": ["A", "B", "C", "D"] for i in range(20)}
    d = tmp_path / "data" / "test"
    d.mkdir(parents=True)
    (d / "text").write_text("".join(f"{u} A B C D\n" for u in refs))
    (d / "utt2cond").write_text("".join(f"{u} {'clean' if i < 10 else 'noisy_reverb'}\n" for i, u in enumerate(refs)))
    for flip, want in ((False, "holds here"), (True, "does not hold here")):
        exp = tmp_path / f"exp{flip}"
        helped = (lambda i: i < 10) if flip else (lambda i: i >= 10)  # noqa: E731
        _decode_dir(exp, "student_sup", "test", {u: ["A", "X", "X", "D"] for u in refs}, refs)
        _decode_dir(exp, "student_ssl_inter", "test", {u: (["A", "B", "X", "D"] if helped(i) else ["A", "X", "X", "D"])
                                                       for i, u in enumerate(refs)}, refs)
        text = write_report(exp, tmp_path / "data", ["test"], tmp_path / "R.md", plot=False)
        claim = next(line for line in text.splitlines() if line.startswith("- `student_ssl_inter`"))
        assert claim.startswith(f"- `student_ssl_inter`: {want}"), claim
        gap = "50.0" if not flip else "-50.0"
        assert f"difference {gap} points [{gap}, {gap}]" in claim, claim
    bad = tmp_path / "data" / "test" / "utt2cond"
    bad.write_text("u00 clean extra\n")
    with pytest.raises(ValueError, match=r"utt2cond:1: expected"):
        write_report(exp, tmp_path / "data", ["test"], tmp_path / "R.md", plot=False)
