"""Class lists and descriptions in every accepted form, and the synthetic data of the embedded default."""

from __future__ import annotations

import json

import pytest

from core import config as cfg
from core.data import catalog
from core.io import read_class_list as read_class_names
from core.io import read_descriptions
from core.training.data import resolve_data


@pytest.mark.parametrize("name, text", [
    ("list.txt", "abseiling\nair drumming\n\n"),
    ("labels.csv", "id,name\n0,abseiling\n1,air drumming\n"),
    ("plain.csv", "0,abseiling\n1,air drumming\n"),
    ("list.json", json.dumps(["abseiling", "air drumming"])),
    ("ids.json", json.dumps({"1": "air drumming", "0": "abseiling"})),
])
def test_class_list_files(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert read_class_names(path) == ["abseiling", "air drumming"]


def test_class_list_errors_and_catalog(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,a\n0,b\n")
    with pytest.raises(ValueError, match="ids must be 0..C-1"):
        read_class_names(bad)
    with pytest.raises(FileNotFoundError, match="catalog dataset"):
        read_class_names(tmp_path / "missing.txt")
    assert read_class_names("ucf101:base") == catalog.class_names("ucf101", "base")
    assert len(read_class_names("ucf101")) == 101


def test_descriptions(tmp_path):
    csv_file = tmp_path / "d.csv"
    csv_file.write_text('SNo,Class Name,GPT3 discription\n1,abseiling,"rope\ndescent"\n')
    assert read_descriptions(csv_file) == {"abseiling": "ropedescent"}  # T2L deletes newlines
    json_file = tmp_path / "d.json"
    json_file.write_text(json.dumps({"abseiling": "rope descent"}))
    assert read_descriptions(json_file) == {"abseiling": "rope descent"}
    table = read_descriptions("ucf101:t2l")
    assert list(table) == catalog.class_names("ucf101") and all(table.values())


def test_synthetic_run_data(train_cache):
    data = resolve_data(cfg.resolve_config("vifi", None, []))
    assert data.synthetic and data.train_size == 288 and len(data.class_names) == 48
    base, novel = data.eval_sets
    assert (base.name, len(base.class_names), novel.name, len(novel.class_names)) == ("val_base", 48, "val_novel", 24)
    assert base.class_names == data.class_names  # base validation uses the training label space
    for eval_set in data.eval_sets:  # reversal pairs index the split's own labels: "... left" <-> "... right"
        for a, b in eval_set.reversal_pairs:
            name_a, name_b = eval_set.class_names[a], eval_set.class_names[b]
            assert name_a.split()[:2] == name_b.split()[:2] and name_a != name_b
    assert len(base.reversal_pairs) + len(novel.reversal_pairs) == 36  # 3 colours x 3 shapes x 4 pairs
