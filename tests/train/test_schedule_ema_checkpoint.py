"""LR schedule values, EMA arithmetic, atomic writes, top-k bookkeeping and weight averaging."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sfc.train import checkpoint as ckpt
from sfc.train.config import recipe_config
from sfc.train.ema import EMA
from sfc.train.schedule import WarmupStepDecay, build_scheduler


def test_paper_mss_schedule():
    f = WarmupStepDecay(5_000, 60_500, 220, 0.98)
    assert f(0) == pytest.approx(1 / 5_000) and f(2_499) == pytest.approx(0.5) and f(4_999) == 1.0
    assert f(5_000) == 1.0 and f(60_499) == 1.0
    assert (
        f(60_500) == pytest.approx(0.98)
        and f(60_719) == pytest.approx(0.98)
        and f(60_720) == pytest.approx(0.98**2)
    )
    assert 1e-3 * f(98_999) == pytest.approx(2.9e-5, rel=0.02)  # spec §8: final lr ~2.9e-5


def test_paper_cass_schedule_final_lr():
    f = WarmupStepDecay(5_000, 101_550, 1_354, 0.96)
    assert f(101_549) == 1.0 and f(101_550) == pytest.approx(0.96)
    assert 1e-3 * f(203_099) == pytest.approx(4.7e-5, rel=0.02)  # spec §8: final lr ~4.7e-5


def test_scheduler_steps_per_optimizer_step():
    cfg = recipe_config("paper", "mss")
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3 * k / 5_000 for k in (1, 2, 3)])


def test_ema_update_is_the_moving_average():
    live = nn.Linear(3, 2)
    ema = EMA(live, decay=0.9)
    before = ema.module.weight.detach().clone()
    with torch.no_grad():
        live.weight.add_(1.0)
    ema.update(live)
    assert torch.allclose(ema.module.weight, 0.9 * before + 0.1 * live.weight)
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "x.pt"
    ckpt.atomic_save({"a": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ckpt.atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt"]  # no temporary left behind


def test_topk_keeps_the_lowest_losses():
    top: list[ckpt.TopEntry] = []
    evicted_all = []
    for step, loss in [(1, 5.0), (2, 3.0), (3, 4.0), (4, 1.0), (5, 4.0)]:
        top, evicted = ckpt.update_topk(top, ckpt.TopEntry(step, loss, f"top/{step}.pt"), k=3)
        evicted_all += [e.step for e in evicted]
    assert [e.step for e in top] == [4, 2, 3]  # tie 3 vs 5 at loss 4.0: the earlier step stays
    assert evicted_all == [1, 5]
    assert ckpt.topk_from_list(ckpt.topk_to_list(top)) == top


def test_average_state_dicts():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(3)}
    avg = ckpt.average_state_dicts([a, b])
    assert torch.equal(avg["w"], torch.tensor([2.0, 4.0])) and avg["w"].dtype == torch.float32
    assert torch.equal(avg["n"], torch.tensor(3))


def test_remove_orphans(tmp_path):
    (tmp_path / "top").mkdir()
    for name in ("step_1.pt", "step_2.pt"):
        (tmp_path / "top" / name).write_bytes(b"x")
    (tmp_path / ".last.pt.abc.tmp").write_bytes(b"x")
    ckpt.remove_orphans(tmp_path, [ckpt.TopEntry(2, 0.0, "top/step_2.pt")])
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["step_2.pt"]
