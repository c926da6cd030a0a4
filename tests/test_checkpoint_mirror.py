"""The copy of the train checkpoint that `blase run --resume` reads, taken while a trainer in
other processes (DDP, Ray Train) swaps in the next epoch's checkpoint."""

from __future__ import annotations

import threading

from blase._fs import replace_dir
from blase.pipeline._train_state import mirror_folder


def _write_epoch(folder, epoch: int) -> None:
    tmp = folder.parent / f".checkpoint.tmp-{epoch}"
    tmp.mkdir()
    for name in ("model.safetensors", "optimizer.safetensors", "state.json"):
        (tmp / name).write_text(str(epoch) * 1000)
    replace_dir(tmp, folder)


def test_a_mirror_taken_during_swaps_is_one_whole_epoch_never_a_mix(tmp_path):
    source, target = tmp_path / "out" / "checkpoint", tmp_path / "kept" / "checkpoint"
    source.parent.mkdir()
    _write_epoch(source, 0)
    stop = threading.Event()

    def trainer() -> None:
        epoch = 0
        while not stop.is_set():
            epoch += 1
            _write_epoch(source, epoch)

    thread = threading.Thread(target=trainer)
    thread.start()
    kept = 0
    try:
        for _ in range(300):
            if mirror_folder(source, target):
                kept += 1
                epochs = {p.read_text() for p in target.iterdir()}
                assert len(epochs) == 1, f"a mirror mixed epochs: {sorted(p.read_text()[:3] for p in target.iterdir())}"
                assert sorted(p.name for p in target.iterdir()) == [
                    "model.safetensors", "optimizer.safetensors", "state.json"]
    finally:
        stop.set()
        thread.join()
    assert kept > 0
    assert not list(target.parent.glob(".checkpoint.tmp-*")), "a failed copy left its temporary folder"


def test_a_mirror_of_a_still_checkpoint_is_taken_first_time(tmp_path):
    source, target = tmp_path / "out" / "checkpoint", tmp_path / "kept" / "checkpoint"
    source.parent.mkdir()
    _write_epoch(source, 3)
    assert mirror_folder(source, target, attempts=1)
    assert (target / "state.json").read_text() == "3" * 1000
    _write_epoch(source, 4)
    assert mirror_folder(source, target, attempts=1)
    assert (target / "state.json").read_text() == "4" * 1000
