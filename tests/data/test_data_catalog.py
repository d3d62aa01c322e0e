"""The dataset catalog: shipped class lists and splits, and the readers of the reference file formats."""

from __future__ import annotations

import gzip

import pytest

from core.data import catalog


def test_class_lists_in_official_order():
    assert catalog.list_datasets() == ["hmdb51", "kinetics400", "kinetics600", "ssv2", "ucf101"]
    k400 = catalog.class_names("kinetics400")
    assert len(k400) == 400 and k400[:3] == ["abseiling", "air drumming", "answering questions"]
    assert k400[-1] == "zumba"
    assert len(catalog.class_names("kinetics600")) == 600
    assert len(catalog.class_names("ucf101")) == 101 and catalog.class_names("ucf101")[0] == "ApplyEyeMakeup"
    assert len(catalog.class_names("hmdb51")) == 51
    ssv2 = catalog.class_names("ssv2")
    assert len(ssv2) == 174 and ssv2[0] == "Approaching something with your camera"
    for name, (base, novel) in {"kinetics400": (200, 200), "hmdb51": (26, 25), "ucf101": (51, 50),
                                "ssv2": (87, 87)}.items():
        b, n = catalog.class_names(name, "base"), catalog.class_names(name, "novel")
        assert (len(b), len(n)) == (base, novel)
        assert sorted(b + n) == sorted(catalog.class_names(name))  # a partition of the classes


def test_kinetics600_zero_shot_classes():
    k400 = set(catalog.class_names("kinetics400"))
    k600 = catalog.class_names("kinetics600")
    exclusive = catalog.class_names("kinetics600", "exclusive")
    assert len(exclusive) == 220 and not set(exclusive) & k400 and set(exclusive) <= set(k600)
    assert exclusive == [n for n in k600 if n in set(exclusive)]  # K600 order
    t2l = catalog.class_names("kinetics600", "exclusive_t2l")  # T2L's list also keeps 12 renamed K400 classes
    assert len(t2l) == 232 and set(exclusive) < set(t2l)
    for split in (1, 2, 3):
        names = catalog.class_names("kinetics600", f"zs_split{split}")
        assert len(names) == 160 and set(names) <= set(exclusive)


def test_descriptions_and_rephrased_names():
    ucf = catalog.descriptions("ucf101")
    assert len(ucf) == 101 and ucf[0].startswith("ApplyEyeMakeup is an action") and "\n" not in "".join(ucf)
    assert len(catalog.descriptions("kinetics600", "t2l_exclusive", "exclusive_t2l")) == 232
    assert len(catalog.descriptions("ssv2")) == 174
    rephrased = catalog.rephrased_names("kinetics400")
    assert len(rephrased) == 400 and rephrased[0].startswith("Abseiling: ")
    assert len(catalog.rephrased_names("hmdb51", "novel")) == 25


def test_shipped_splits_index_their_class_lists():
    entries, names = catalog.read_split("hmdb51", "few_shot/train1_2shot")
    assert len(entries) == 102 and len(names) == 51  # exactly K = 2 videos per class
    assert sorted({e.label for e in entries}) == list(range(51))
    entries, names = catalog.read_split("ucf101", "base2novel/novel_val")
    assert names == catalog.class_names("ucf101", "novel") and max(e.label for e in entries) == 49
    entries, names = catalog.read_split("kinetics600", "zero_shot/split1")
    assert entries[0].path.startswith("train/") and len(names) == 160
    with pytest.raises(ValueError, match="no splits entry"):
        catalog.read_split("ucf101", "zero_shot/val9")


def test_readers_of_reference_formats(tmp_path):
    (tmp_path / "d.csv").write_text('SNo,Class Name,GPT3 discription\n1,Archery,"\n\nArchery is\nshooting, with a bow."\n'
                                    '2,"tying knot (not on a tie)","\n\nA knot."\n')
    assert catalog.read_t2l_descriptions(tmp_path / "d.csv") == {
        "Archery": "Archery isshooting, with a bow.", "tying knot (not on a tie)": "A knot."}
    (tmp_path / "l.csv").write_text('id,name\n0,"Pushing something, then it falls"\n1,abseiling\n')
    assert catalog.read_label_csv(tmp_path / "l.csv") == ["Pushing something, then it falls", "abseiling"]
    (tmp_path / "bad.csv").write_text("id,name\n1,abseiling\n")
    with pytest.raises(ValueError, match="ids = row order"):
        catalog.read_label_csv(tmp_path / "bad.csv")
    (tmp_path / "t2l.txt.gz").write_bytes(gzip.compress(b"/media/x/HMDB/clip_a.avi 77 3\n/m/UCF/v_b 120 0\n"))
    assert catalog.read_split_file(tmp_path / "t2l.txt.gz", "t2l") == [
        catalog.SplitEntry("clip_a", 3, 77), catalog.SplitEntry("v_b", 0, 120)]
    (tmp_path / "p.txt").write_text("val/a b.mp4 12\n\n154139.webm 19\n")
    assert catalog.read_split_file(tmp_path / "p.txt") == [catalog.SplitEntry("val/a b.mp4", 12),
                                                          catalog.SplitEntry("154139.webm", 19)]
    (tmp_path / "r.json").write_text('{"1": "B: two", "0": "A: one"}')
    assert catalog.read_rephrased_json(tmp_path / "r.json") == ["A: one", "B: two"]
