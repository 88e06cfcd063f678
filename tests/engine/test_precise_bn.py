"""Precise BN: running statistics become the exact mean and variance of each BatchNorm's inputs."""

import pytest
import torch

import laps
from laps.engine.precise_bn import batch_norms, recompute_bn_stats
from laps.engine.trainer import Trainer
from tests.helpers import tiny_config


def _visformer():
    return laps.create_model("visformer_tiny", temporal="laps", num_frames=2, num_classes=3, img_size=32)


def _inputs_of(model, layer, batches):
    """Every input ``layer`` receives when the batches run through ``model`` in train mode, as (C, n)."""
    seen = []
    hook = layer.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    model.train()
    with torch.no_grad():
        for batch in batches:
            model(batch)
    hook.remove()
    return torch.cat([x.transpose(0, 1).flatten(1) for x in seen], dim=1).double()


def test_running_stats_are_the_exact_moments_of_the_inputs_over_the_batches():
    model = _visformer()
    batches = [torch.randn(2, 2, 3, 32, 32) * (1 + i) + i for i in range(4)]
    layers = batch_norms(model)
    assert len(layers) > 3
    state = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {i: _inputs_of(model, layers[i], batches[:3]) for i in (0, len(layers) // 2, len(layers) - 1)}
    model.load_state_dict(state)  # the reference runs moved the running stats: start again from the same state
    model.eval()
    assert recompute_bn_stats(model, iter(batches), num_batches=3) == 3
    assert not model.training  # mode restored
    for i, inputs in expected.items():
        torch.testing.assert_close(layers[i].running_mean.double(), inputs.mean(1), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(layers[i].running_var.double(), inputs.var(1), rtol=1e-4, atol=1e-5)


def test_without_it_the_running_stats_are_a_moving_average_that_misses():
    model = _visformer()
    batches = [torch.randn(2, 2, 3, 32, 32) * (1 + i) + i for i in range(3)]
    first = batch_norms(model)[0]
    inputs = _inputs_of(model, first, batches)  # plain train-mode forwards: momentum 0.1 updates
    assert not torch.allclose(first.running_mean.double(), inputs.mean(1), atol=1e-3)


def test_a_model_without_batch_norm_is_left_alone():
    model = laps.create_model("vit_tiny_patch16_224", num_frames=2, num_classes=3, img_size=32, patch_size=16, depth=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert recompute_bn_stats(model, [torch.randn(1, 2, 3, 32, 32)], 5) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_the_trainer_applies_it_to_the_model_and_the_ema_model_before_evaluating(tiny_data, tmp_path, monkeypatch):
    calls = []
    import laps.engine.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "recompute_bn_stats",
                        lambda model, batches, n, forward: calls.append((type(model).__name__, n)) or 0)
    config = tiny_config(tiny_data, tmp_path, **{"optim.epochs": 2, "optim.precise_bn_iters": 7, "optim.ema_decay": 0.5})
    Trainer(config).fit()
    assert calls == [("VideoClassifier", 7)] * 4  # model and EMA model, at each of the two evaluations


def _rank_batches(rank):
    generator = torch.Generator().manual_seed(rank)
    return [torch.randn(3, 2, 8, 8, generator=generator) * (1 + rank) + 2 * rank for _ in range(2)]


def _conv_bn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 3, 3), torch.nn.BatchNorm2d(3))


def _precise_bn_rank(rank, world, port, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = _conv_bn()
        recompute_bn_stats(model, iter(_rank_batches(rank)), num_batches=2)
        torch.save({k: v for k, v in model.state_dict().items() if "running" in k}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_under_ddp_the_statistics_cover_the_batches_of_every_process(tmp_path):
    """Two gloo processes see different batches; both end with the moments of all of them."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_precise_bn_rank, args=(2, port, str(tmp_path)), nprocs=2)
    model = _conv_bn()
    layers = batch_norms(model)
    every = [b for rank in (0, 1) for b in _rank_batches(rank)]
    expected = [_inputs_of(model, layer, every) for layer in layers]
    solo = _conv_bn()
    alone = _inputs_of(solo, batch_norms(solo)[0], _rank_batches(0))
    for rank in (0, 1):
        stats = torch.load(tmp_path / f"rank{rank}.pt")
        for i, inputs in enumerate(expected):
            torch.testing.assert_close(stats[f"{[1, 4][i]}.running_mean"].double(), inputs.mean(1), rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(stats[f"{[1, 4][i]}.running_var"].double(), inputs.var(1), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(stats["1.running_mean"].double(), alone.mean(1), atol=1e-3)  # not one rank's alone
