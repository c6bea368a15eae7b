"""asrkit.report on hand-made decode dirs: the table, the relative reduction, the gap, the plot."""
from __future__ import annotations

from pathlib import Path

from asrkit.report import collect, read_wer, write_report


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
    assert "none (intervals overlap)" in text


def test_missing_systems_are_absent(tmp_path):
    assert collect(tmp_path, ["dev"]) == {}
