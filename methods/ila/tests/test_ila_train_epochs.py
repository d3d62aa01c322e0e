"""ILA under ``core.train``: the trainer's epoch hook gives the official mask-jitter decay (spec §6)."""

from __future__ import annotations

from chronoclip_ila import ILAModel, jitter_delta_at

from core.train import main

EPOCHS = 33  # the official decay starts at epoch 30 (0-based) and has no config knob: run past it


def test_jitter_decays_at_the_official_epoch_under_core_train(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "cache"))
    seen: list[float] = []
    forward = ILAModel.training_forward

    def spy(self, batch):
        seen.append(self.jitter_delta)  # the delta this training step's masks are jittered with
        return forward(self, batch)

    monkeypatch.setattr(ILAModel, "training_forward", spy)
    # one 2-clip step per epoch on the test CLIP; no validation until the end
    args = ["--method", "ila", "clip.model=test", "clip.pretrained=null", "data.train_size=2", "train.batch_size=2",
            "train.micro_batch_size=2", f"schedule.epochs={EPOCHS}", "schedule.warmup_epochs=0",
            "eval.every_epochs=0", "eval.batch_size=56", "checkpoint.every_steps=1000", "data.num_workers=0",
            "log.every_steps=100", "--output-dir", str(tmp_path / "run")]
    assert main(args) == 0
    assert seen == [jitter_delta_at(epoch) for epoch in range(EPOCHS)]
    assert seen[29] == 0.2 and seen[30:] == [0.1, 0.05, 0.025]
