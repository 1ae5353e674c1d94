"""A dead worker's metric files are folded into one archive per kind: counts kept, files not piling up."""

from __future__ import annotations

from prometheus_client.mmap_dict import MmapedDict

from handlers.multiprocess import fold_into_archive


def write(path, counts: dict[str, float]) -> None:
    written = MmapedDict(str(path))
    for key, value in counts.items():
        written.write_value(key, value, 0.0)
    written.close()


def test_dead_workers_counts_are_summed_into_one_archive(tmp_path):
    write(tmp_path / "counter_101.db", {"a": 2.0, "b": 1.0})
    write(tmp_path / "counter_102.db", {"a": 5.0})
    archive = tmp_path / "counter_archive.db"
    for pid in (101, 102, 103):  # 103 left no file: nothing to do
        fold_into_archive(tmp_path / f"counter_{pid}.db", archive)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_archive.db"]
    folded = {key: value for key, value, _, _ in MmapedDict.read_all_values_from_file(str(archive))}
    assert folded == {"a": 7.0, "b": 1.0}
