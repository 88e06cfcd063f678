import numpy as np
import pytest
import torch

from laps.data.transforms import Normalize, TestTransform, TrainTransform
from laps.errors import ConfigError
from laps.models.feed import norm_presets


def same_frames(num=4, height=60, width=80, seed=0):
    """Identical textured frames -> uint8 (T, H, W, 3)."""
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return np.broadcast_to(image, (num, height, width, 3)).copy()


def test_train_output_is_uint8_and_normalise_gives_the_norm():
    frames = np.full((3, 40, 50, 3), (255, 0, 128), dtype=np.uint8)
    out = TrainTransform(32, (32, 48))(frames, np.random.default_rng(0))
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.uint8 and out.is_contiguous()
    assert out[:, :, 5, 7].tolist() == [[255, 0, 128]] * 3
    normalised = Normalize("imagenet")(out)
    mean, std = norm_presets()["imagenet"]
    expected = (np.array([255, 0, 128]) / 255 - mean) / std
    assert normalised.dtype == torch.float32
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.tensor(expected, dtype=torch.float32), atol=1e-4)


@pytest.mark.parametrize("norm", ["imagenet", "half", ((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))])
def test_normalize_on_a_batch_equals_per_clip_float_normalisation(norm):
    """A uint8 batch normalised at once (as on the device) equals the float normalisation of each
    clip computed in float64, to 1e-6."""
    batch = torch.randint(0, 256, (2, 3, 4, 3, 8, 8), dtype=torch.uint8)  # (B, V, T, C, H, W)
    mean, std = (torch.tensor(v, dtype=torch.float64).view(-1, 1, 1) for v in (norm_presets()[norm] if isinstance(norm, str) else norm))
    expected = (batch.double() / 255 - mean) / std
    got = Normalize(norm)(batch.permute(0, 1, 2, 4, 5, 3).contiguous().permute(0, 1, 2, 5, 3, 4))  # any layout
    assert got.dtype == torch.float32 and got.is_contiguous()
    torch.testing.assert_close(got.double(), expected, atol=1e-6, rtol=0)


def test_normalize_ships_to_workers_without_device_tensors():
    import pickle

    normalize = Normalize("half")
    normalize(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))
    assert pickle.loads(pickle.dumps(normalize))._on_device == {}


@pytest.mark.parametrize("seed", range(6))
def test_train_crop_and_flip_identical_for_every_frame(seed):
    out = TrainTransform(32, (32, 64), flip=True)(same_frames(), np.random.default_rng(seed))
    assert all(torch.equal(out[0], frame) for frame in out[1:])


def test_flip_switch():
    frames = same_frames(2)
    flipped = 0
    for seed in range(20):
        plain = TrainTransform(32, (40, 40), flip=False)(frames, np.random.default_rng(seed))
        maybe = TrainTransform(32, (40, 40), flip=True)(frames, np.random.default_rng(seed))
        assert torch.equal(maybe, plain) or torch.equal(maybe, plain.flip(-1))
        flipped += not torch.equal(maybe, plain)
    assert 0 < flipped < 20


def test_randaugment_applies_the_same_op_to_every_frame():
    out = TrainTransform(32, (32, 48), randaugment=True)(same_frames(), np.random.default_rng(0))
    assert all(torch.equal(out[0], frame) for frame in out[1:])


def test_randaugment_changes_the_clip_as_the_clips_generator_says():
    frames = same_frames()
    plain, augmented = (TrainTransform(32, (32, 48), flip=False, randaugment=on) for on in (False, True))

    def run(transform, seed, torch_seed=0):
        torch.manual_seed(torch_seed)
        return transform(frames, np.random.default_rng(seed))

    outs = [run(augmented, seed) for seed in range(8)]
    changed = [not torch.equal(out, run(plain, seed)) for seed, out in enumerate(outs)]  # the same crop, then the ops
    assert sum(changed) >= 7, changed
    assert len({out.numpy().tobytes() for out in outs}) == 8  # another seed, other ops
    assert all(torch.equal(run(augmented, seed, torch_seed=3), out) for seed, out in enumerate(outs))  # torch's RNG: no part
    state = torch.get_rng_state()
    augmented(frames, np.random.default_rng(0))
    assert torch.equal(torch.get_rng_state(), state)  # and left as it was


def test_test_transform_three_crops_along_long_side():
    gradient = np.broadcast_to(np.linspace(0, 255, 90).astype(np.uint8)[None, None, :, None], (2, 30, 90, 3)).copy()
    out = TestTransform(20, 3)(gradient)  # resized to 20x60, crops at x = 0, 20, 40
    assert out.shape == (3, 2, 3, 20, 20) and out.dtype == torch.uint8
    means = out.float().mean(dim=(1, 2, 3, 4))
    assert means[0] < means[1] < means[2]
    assert torch.equal(TestTransform(20, 1)(gradient)[0], out[1])  # one crop = the centre one
    tall = np.ascontiguousarray(gradient.transpose(0, 2, 1, 3))
    tall_means = TestTransform(20, 3)(tall).float().mean(dim=(1, 2, 3, 4))
    assert tall_means[0] < tall_means[1] < tall_means[2]


def test_half_norm_range():
    out = Normalize("half")(TestTransform(16, 1)(np.array([[[[0, 255, 0]] * 16] * 16], dtype=np.uint8)))
    assert (out.min().item(), out.max().item()) == pytest.approx((-1, 1))


def test_custom_norm_and_errors():
    out = Normalize(((0, 0, 0), (1, 1, 1)))(TestTransform(8, 1)(np.full((1, 8, 8, 3), 255, dtype=np.uint8)))
    assert torch.allclose(out, torch.ones_like(out))
    with pytest.raises(ConfigError, match="unknown normalisation"):
        Normalize("kinetics")
    with pytest.raises(ConfigError, match="scale_range"):
        TrainTransform(224, (200, 256))
    with pytest.raises(ConfigError, match="1 or 3"):
        TestTransform(224, 2)
    with pytest.raises(ValueError, match="uint8"):
        TestTransform(8)(np.zeros((1, 8, 8, 3), dtype=np.float32))


@pytest.mark.parametrize("img_size, expected", [(224, (256, 320)), (112, (128, 160)), (32, (37, 46))])
def test_default_scale_jitter_follows_the_crop_size(img_size, expected):
    from laps.data.transforms import default_scale_range
    from laps.engine.config import load_config, scale_range

    assert default_scale_range(img_size) == expected
    assert scale_range(load_config(None, {"model.img_size": img_size})) == expected
    transform = TrainTransform(img_size)
    rng = np.random.default_rng(0)
    # a crop always sees between img/max and img/min of the short side, never a third of it
    sides = [transform.crop_box(img_size, 2 * img_size, rng)[2] for _ in range(200)]
    assert min(sides) >= round(img_size * img_size / expected[1]) - 1 and max(sides) <= round(img_size * img_size / expected[0]) + 1
