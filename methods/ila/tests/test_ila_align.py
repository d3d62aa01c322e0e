"""Points, masks, pair merging and the alignment loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
from chronoclip_ila import InteractivePointAlignment, alignment_loss, alignment_masks, trapezoid
from chronoclip_ila.align import JITTER_DIRECTIONS, merge_pairs, point_head

# 4-token grid: centres at -1, -1/3, 1/3, 1. Hand values of f(c - p) for p = 0.5 and p = -0.25:
#   p = 0.5:   u = (-1.5, -0.833, -0.167, 0.5)  -> (0, 1 - 1.5*0.583 = 0.125, 1, 1 - 1.5*0.25 = 0.625)
#   p = -0.25: u = (-0.75, 0.083, 0.583, 1.25)  -> (1 - 1.5*0.5 = 0.25, 1, 1 - 1.5*0.333 = 0.5, 0)
PROFILE_HALF = [0.0, 0.125, 1.0, 0.625]
PROFILE_MINUS_QUARTER = [0.25, 1.0, 0.5, 0.0]


def test_trapezoid_profile() -> None:
    u = torch.tensor([0.0, 0.25, -0.25, 0.5, -0.75, 0.9, 1.0, -3.0])
    expected = torch.tensor([1.0, 1.0, 1.0, 0.625, 0.25, 1 - 1.5 * 0.65, 0.0, 0.0])
    torch.testing.assert_close(trapezoid(u), expected)


def test_mask_is_separable_with_x_on_columns() -> None:
    mask = alignment_masks(torch.tensor([0.5, -0.25]), grid=4)  # (x, y)
    # M[h, w] = f(c_h - y) * f(c_w - x): rows follow y = -0.25, columns follow x = 0.5
    expected = torch.tensor([[r * c for c in PROFILE_HALF] for r in PROFILE_MINUS_QUARTER])
    torch.testing.assert_close(mask, expected, atol=1e-6, rtol=0)


def test_mask_on_a_seven_grid() -> None:
    # centres -1, -2/3, ..., 1; point x = 0.5, y = -0.75 (the corner case |u| = 0.25 exactly on row 0)
    mask = alignment_masks(torch.tensor([[0.5, -0.75]]), grid=7)[0]
    f_x = [0.0, 0.0, 0.125, 0.625, 1.0, 1.0, 0.625]
    f_y = [1.0, 1.0, 0.75, 0.25, 0.0, 0.0, 0.0]
    torch.testing.assert_close(mask, torch.tensor([[r * c for c in f_x] for r in f_y]), atol=1e-6, rtol=0)


def test_training_jitter_averages_nine_masks() -> None:
    point, delta, grid = (0.1, -0.3), 0.2, 5

    def f(u: float) -> float:  # plain oracle of the profile
        return 1.0 if abs(u) <= 0.25 else max(0.0, 1 - 1.5 * (abs(u) - 0.25))

    centres = [2 * i / (grid - 1) - 1 for i in range(grid)]
    expected = torch.zeros(grid, grid)
    for ox, oy in JITTER_DIRECTIONS:
        x, y = point[0] + delta * ox, point[1] + delta * oy
        expected += torch.tensor([[f(ch - y) * f(cw - x) for cw in centres] for ch in centres]) / 9
    got = alignment_masks(torch.tensor(point), grid, jitter_delta=delta)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    assert not torch.allclose(got, alignment_masks(torch.tensor(point), grid))


def test_merge_pairs_first_middle_last() -> None:
    first = torch.tensor([[1.0, 2.0, 3.0]])  # frame j of pair j
    second = torch.tensor([[10.0, 20.0, 30.0]])  # frame j+1 of pair j
    torch.testing.assert_close(merge_pairs(first, second), torch.tensor([[1.0, 6.0, 11.5, 30.0]]))


def test_alignment_loss_by_hand() -> None:
    pre = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (B=1, P=2, d=2)
    cur = torch.tensor([[[1.0, 1.0], [0.0, -3.0]]])
    expected = ((1 - 1 / math.sqrt(2)) + (1 - (-1))) / 2
    assert alignment_loss(pre, cur).item() == pytest.approx(expected, abs=1e-6)


def _identity_point_head(num_pairs: int) -> torch.nn.Sequential:
    """Point head whose points are 0.75 * tanh of the global max of trunk channels 0, 1 (pre) and 64, 65 (cur)."""
    head = point_head(num_pairs).eval()
    with torch.no_grad():
        for conv, bn in ((head[0], head[1]), (head[4], head[5])):
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(128):
                conv.weight[c, c, 1, 1] = 1.0
            bn.eps = 0.0  # running stats 0 / 1 and affine 1 / 0: exact identity
        head[10].weight.zero_()
        head[10].bias.zero_()
        for j in range(32):  # group 0: hidden j <- pooled j; group 1: hidden 32 + j <- pooled 64 + j
            head[10].weight[j, j, 0] = 1.0
            head[10].weight[32 + j, j, 0] = 1.0
        head[12].weight.zero_()
        head[12].bias.zero_()
        for out, hidden in ((0, 0), (1, 1), (2, 0), (3, 1)):  # group 1 reads hidden 32.. as its inputs 0..
            head[12].weight[out, hidden, 0] = 1.0
    return head


def test_point_head_groups_pooling_and_scale() -> None:
    b, p, grid = 2, 3, 4
    features = torch.zeros(b * p, 256, grid, grid)
    values = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2],
                           [-0.1, 0.3, 0.2, 0.0], [0.4, 0.0, 0.6, 0.3], [0.2, 0.2, 0.2, 0.2]])
    rows = torch.tensor([0, 3, 1, 2, 0, 3])
    for n in range(b * p):  # each value sits at one position; everything else is 0 or negative
        for k, channel in enumerate((0, 1, 64, 65)):
            features[n, channel] = -1.0
            features[n, channel, rows[n], (n + k) % grid] = values[n, k]
    points = point_head(p).eval()  # fresh head: last layer zero -> all points at the centre
    assert torch.equal(points(features), torch.zeros(b, 4, p))
    points = _identity_point_head(p)(features).transpose(1, 2) * 0.75  # (B, P, 4)
    expected = 0.75 * torch.tanh(values.clamp(min=0)).view(b, p, 4)  # ReLU before the max: negatives -> 0
    torch.testing.assert_close(points, expected, atol=1e-6, rtol=0)


def test_aligned_frames_and_pooled_vectors_by_hand() -> None:
    """Known points (0.5, -0.25) for every pre frame and (-0.25, 0.5) for every cur frame, 3 frames, 4x4 grid."""
    torch.manual_seed(0)
    module = InteractivePointAlignment(width=4, num_frames=3, grid=4).eval()
    with torch.no_grad():
        module.prediction_block[12].bias.copy_(torch.atanh(torch.tensor([0.5, -0.25, -0.25, 0.5]) / 0.75))
    m = torch.randn(1, 3, 17, 4)
    out = module(m)
    torch.testing.assert_close(out.points, torch.tensor([0.5, -0.25, -0.25, 0.5]).expand(1, 2, 4), atol=1e-6, rtol=0)
    mask_pre = torch.tensor([[r * c for c in PROFILE_HALF] for r in PROFILE_MINUS_QUARTER]).flatten()
    mask_cur = torch.tensor([[r * c for c in PROFILE_MINUS_QUARTER] for r in PROFILE_HALF]).flatten()
    # token n is at row n // 4, column n % 4
    patches = m[0, :, 1:]  # (T, N, d)
    expected = torch.stack([mask_pre[:, None] * patches[0],
                            (mask_pre[:, None] * patches[1] + mask_cur[:, None] * patches[1]) / 2,
                            mask_cur[:, None] * patches[2]])
    torch.testing.assert_close(out.aligned[0, :, 1:], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.aligned[0, :, 0], m[0, :, 0])  # CLS row: the projected CLS, unmasked
    torch.testing.assert_close(out.interactive[0, :, 0], m[0, :, 0])
    pooled_pre = torch.stack([(mask_pre[:, None] * patches[j]).sum(0) for j in (0, 1)])
    pooled_cur = torch.stack([(mask_cur[:, None] * patches[j]).sum(0) for j in (1, 2)])
    torch.testing.assert_close(out.pooled_pre[0], pooled_pre, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.pooled_cur[0], pooled_cur, atol=1e-6, rtol=0)


def test_small_grid_and_single_frame_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 4x4"):
        InteractivePointAlignment(width=4, num_frames=3, grid=3)
    with pytest.raises(ValueError, match="at least 2 frames"):
        InteractivePointAlignment(width=4, num_frames=1, grid=4)


def test_batch_norm_trains_with_half_parameters_and_fp32_statistics() -> None:
    """DeepSpeed's bf16 training casts parameters, not buffers: ILA's BatchNorms must still run, in fp32.

    Against ``nn.BatchNorm2d`` in fp32 on the same (bf16-rounded) input: the running statistics update in
    fp32 to within 1e-5, the output agrees to bf16 rounding (1e-2 on values of about 1), and the parameters
    get gradients.
    """
    from chronoclip_ila.align import BatchNorm2d

    torch.manual_seed(0)
    ref, bn = torch.nn.BatchNorm2d(6), BatchNorm2d(6)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    bn.load_state_dict(ref.state_dict())
    for p in bn.parameters():
        p.data = p.data.bfloat16()
    x = (torch.randn(4, 6, 5, 5) * 3 + 1).bfloat16()
    out = bn(x)
    expected = ref(x.float())
    assert out.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=1e-2)
    torch.testing.assert_close(bn.running_mean, ref.running_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(bn.running_var, ref.running_var, atol=1e-5, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    out.float().square().sum().backward()
    assert bn.weight.grad is not None and bn.weight.grad.dtype == torch.bfloat16 and bn.weight.grad.abs().sum() > 0
    bn.eval(), ref.eval()
    torch.testing.assert_close(bn(x).float(), ref(x.float()), atol=1e-2, rtol=1e-2)
