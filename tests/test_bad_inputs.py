"""Library functions refuse bad input with a ValueError that names the argument, before any work."""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import utils
from utils import (
    benchmark,
    check,
    counting,
    datasets,
    denoising,
    functional,
    gradcheck,
    grade,
    measure,
    memory_wall,
    models,
    modules,
    plotting,
    reference,
    runtime,
    saliency,
    stats,
    student,
    train_video,
    training,
    validate,
    vit,
    workspace,
)


@pytest.mark.parametrize("call, message", [
    (lambda: counting.se_parameter_overhead((1,), (16,), 0), "reduction must be a positive"),
    (lambda: counting.se_parameter_overhead((1,), (16,), 2.0), "reduction must be a positive"),
    (lambda: counting.se_parameter_overhead((-1,), (16,), 4), "blocks and channels must hold"),
    (lambda: reference.eca_kernel_size(256, gamma=-2), "gamma must be >= 1"),
    (lambda: reference.eca_kernel_size(256, gamma=0), "gamma must be >= 1"),
    (lambda: reference.eca_kernel_size(256, b=-1), "b must be >= 0"),
    (lambda: reference.max_pool_spatial(np.ones((4, 4))), "x must have 3 or 4 or 5 dim"),
    (lambda: reference.max_pool_spatial(np.ones((1, 1, 1, 1))), "at least 2 wide"),
    (lambda: reference.max_pool_spatial(np.ones((1, 1, 1))), "at least 2 wide"),
    (lambda: datasets.attention_in_box(np.zeros((1, 4, 4)), np.array([[0, 0, 8, 8]]), 16),
     "positive total weight"),
    (lambda: datasets.attention_in_box(np.ones((1, 4, 4)), np.array([[0, 0, 8, 8]]), 0),
     "image_size must be >= 1"),
])
def test_bad_input_is_refused_with_the_argument_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_guarded_functions_still_answer_good_input():
    assert counting.se_parameter_overhead((1,), (16,), 4) == 2 * 16 * 4 + 4 + 16
    assert reference.eca_kernel_size(256) == 5
    assert reference.max_pool_spatial(np.arange(16.0).reshape(1, 1, 4, 4)).tolist() == [
        [[[5.0, 7.0], [13.0, 15.0]]]]
    maps = np.ones((1, 4, 4))
    assert datasets.attention_in_box(maps, np.array([[0, 0, 8, 8]]), 16)[0] == 0.25


def test_more_bad_inputs_are_refused_before_any_work():
    from utils import models, modules, saliency

    with pytest.raises(ValueError, match="levels must be at most 9 for a 64 x 64"):
        saliency.gaussian_pyramid(np.zeros((64, 64)), levels=10**7)
    assert len(saliency.gaussian_pyramid(np.zeros((64, 64)))) == 9      # Itti-Koch's scales
    with pytest.raises(ValueError, match="levels must be at most 11 for a 1024 x 8"):
        saliency.gaussian_pyramid(np.zeros((1024, 8)), levels=12)
    with pytest.raises(ValueError, match="fixations must be at most the number of map pixels"):
        saliency.scanpath(np.zeros((8, 8)), fixations=10**9)
    with pytest.raises(ValueError, match="attention must be None or a callable"):
        models.resnet50(attention="se")
    with pytest.raises(ValueError, match="params must be a dict holding 'w1'"):
        modules.SqueezeExcitation(16, reduction=4).load_reference({"w": np.ones(3)})
    with pytest.raises(ValueError, match="params must be a dict holding 'w'"):
        modules.SpatialAttention().load_reference([1, 2])


def test_the_non_local_block_refuses_an_affinity_past_its_memory_limit():
    import torch

    from utils import modules

    block = modules.NonLocalBlock(4, mode="embedded", dim=2)
    x = torch.zeros(1, 4, 256, 256)
    with pytest.raises(ValueError, match=r"N = 65536 positions and 65536 keys: the explicit "
                                         r"affinity needs about 32\.00 GiB") as err:
        block.max_affinity_bytes = 2**30
        block(x)
    assert "subsample=True" in str(err.value) and "backend='sdpa'" in str(err.value)
    huge = torch.zeros(1, 4, 512, 512)        # 2 x 262,144^2 x 4 B = 512 GiB: past any machine
    for mode in ("gaussian", "dot", "concat"):
        with pytest.raises(ValueError, match="max_affinity_bytes"):
            modules.NonLocalBlock(4, mode=mode, dim=2)(huge)   # default: free memory
    small = modules.NonLocalBlock(4, mode="embedded", dim=2)
    small.max_affinity_bytes = 2**20
    assert small(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)   # 2 x 64 x 64 x 4 B fits
    fused = modules.NonLocalBlock(4, mode="embedded", dim=2, backend="sdpa")
    fused.max_affinity_bytes = 1
    assert fused(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)   # no N x N matrix to guard


def test_the_benchmark_refuses_a_bad_memory_limit():
    from utils import benchmark

    for bad in (-1, 0, float("nan"), float("inf"), "4"):
        with pytest.raises(ValueError, match="max_affinity_gib must be a positive"):
            benchmark.run([(8, 4, 4)], max_affinity_gib=bad)


# ---------------------------------------------------------------------------------------------
# Every public function and class of the library, each with at least one bad call.

X4 = np.ones((2, 8, 4, 4))
R = np.random.default_rng(0)


def _se_cache():
    return reference.se_forward(X4, reference.init_mlp(8, 2, R))[1]


def _axes():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    plt.close(fig)
    return ax


def _row():
    return benchmark.Row("SE", "8x4x4", "cpu", "float32", 1, 1.0, 1.0, 1.0)


deploy = importlib.import_module("utils.deploy")     # its entries open BAD_CALLS below

# name -> [(call, message the ValueError must contain; SystemExit for command lines)]
BAD_CALLS = {
    "deploy.export_onnx": [
        (lambda: deploy.export_onnx("net", torch.zeros(1, 1, 8, 8), "m.onnx"),
         "model must be a torch.nn.Module"),
        (lambda: deploy.export_onnx(torch.nn.Identity(), torch.zeros(2, 3), "/tmp/m.pt"),
         "path must end in .onnx")],
    "deploy.onnx_session": [(lambda: deploy.onnx_session("/nonexistent/m.onnx"),
                             "path must be an existing .onnx file")],
    "deploy.run_onnx": [(lambda: deploy.run_onnx("session", np.zeros((1, 1, 4, 4))),
                         "session must be an onnxruntime.InferenceSession")],
    "deploy.operators": [(lambda: deploy.operators("/nonexistent/m.onnx"),
                          "path must be an existing .onnx file")],
    "deploy.quantize_int8": [(lambda: deploy.quantize_int8("/nonexistent/m.onnx", "/tmp/q.onnx",
                                                           None),
                              "src must be an existing .onnx file")],
    "deploy.measure": [(lambda: deploy.measure("/nonexistent/m.onnx", np.zeros((1, 1, 4, 4)),
                                               None), "path must be an existing .onnx file")],
    "deploy.peak_memory_mib": [(lambda: deploy.peak_memory_mib("/nonexistent/m.onnx", (1, 4)),
                                "path must be an existing .onnx file")],
    "deploy.measure_torch": [(lambda: deploy.measure_torch(torch.nn.Identity(), np.zeros((2, 3)),
                                                           None, repeats=0),
                              "repeats must be >= 1")],
    "deploy.deploy_table": [(lambda: deploy.deploy_table([]),
                             "rows must be a non-empty list of DeployRow")],
    "deploy.DeployRow": [(lambda: deploy.DeployRow("m", "ONNX Runtime fp32", -1.0, 1.0),
                          "size_kib must be a non-negative number")],
    "deploy.nonlocal_resnet": [(lambda: deploy.nonlocal_resnet("flash"), "backend must be one of"),
                               (lambda: deploy.nonlocal_resnet(stage=4),
                                "stage must be between 1 and 3")],
    "deploy.deployment_study": [(lambda: deploy.deployment_study({}, X4, np.zeros(2, int), X4,
                                                                 "/tmp"),
                                 "models must be a non-empty dict")],
    "deploy.nonlocal_scaling": [(lambda: deploy.nonlocal_scaling("/nonexistent"),
                                 "folder must be an existing folder")],
    "deploy.interleaved_latency": [(lambda: deploy.interleaved_latency({}, X4),
                                    "runs must be a non-empty dict")],
    "deploy.study_sizes": [(lambda: deploy.study_sizes("medium"),
                            "mode must be None, 'fast' or 'full'")],
    "benchmark.PlainSE": [(lambda: benchmark.PlainSE("se"), "se must be a SqueezeExcitation")],
    "benchmark.PlainECA": [(lambda: benchmark.PlainECA(3), "eca must be an EfficientChannel")],
    "benchmark.PlainGC": [(lambda: benchmark.PlainGC(None), "gc must be a GlobalContext")],
    "benchmark.run": [(lambda: benchmark.run([(8, 4)]), "shapes must be (C, H, W)"),
                      (lambda: benchmark.run([(8, 4, 4)], modules=["xx"]), "unknown modules")],
    "benchmark.markdown": [(lambda: benchmark.markdown([1, 2]), "rows must be a non-empty list")],
    "benchmark.to_csv": [(lambda: benchmark.to_csv("rows"), "rows must be a non-empty list")],
    "benchmark.main": [(lambda: benchmark.main(["--bogus"]), SystemExit)],
    "check.Exercise": [(lambda: check.Exercise("x", 0, "idea", "hint"),
                        "points must be a positive intege")],
    "check.exercise": [(lambda: check.exercise(points=0, idea="i", hint="h"),
                        "points must be a positive intege"),
                       (lambda: check.exercise(points=1, idea="", hint="h"),
                        "idea must be a non-empty string")],
    "check.hint": [(lambda: check.hint("nope"), "name must be one of the course's exercises")],
    "check.Case": [(lambda: check.Case(args=[1, 2]), "args must be a tuple")],
    "check.compare": [(lambda: check.compare(1.0, 1.0, rtol=-1), "rtol and atol must be")],
    "check.check_exercise": [(lambda: check.check_exercise(abs, abs, [], title="t", idea="i"),
                              "cases a non-empty sequence of Case")],
    "check.check_module": [(lambda: check.check_module(abs, abs, [], [], title="t", idea="i"),
                            "reference must be a torch.nn.Module class, builds a non-empty")],
    "counting.count_parameters": [(lambda: counting.count_parameters("m"), "model must be")],
    "counting.count_macs": [(lambda: counting.count_macs(torch.nn.Linear(2, 2), (0, 2)),
                             "input_shape must be a tuple of positive integers")],
    "datasets.DigitScenes": [(lambda: datasets.DigitScenes(np.ones(3), np.ones(3), np.ones(3)),
                              "images must be a numpy array with 4 dimensions")],
    "datasets.cluttered_digits": [(lambda: datasets.cluttered_digits(10, split="val"),
                                   "split must be one of")],
    "datasets.cued_digits": [(lambda: datasets.cued_digits(5, "colour"), "cue must be one of"),
                             (lambda: datasets.cued_digits(5, "location", canvas=12, others=1),
                              "has room for")],
    "datasets.box_mask": [(lambda: datasets.box_mask(np.ones((2, 4)), (4, 4), 0),
                           "image_size must be >= 1"),
                          (lambda: datasets.box_mask(np.ones((2, 4)), (4,), 16),
                           "map_shape must be a pai")],
    "datasets.segment_indices": [(lambda: datasets.segment_indices(4, 8),
                                  "segments (8) must not exceed num_frames (4)")],
    "datasets.VideoClips": [(lambda: datasets.VideoClips(np.ones((2, 1, 4, 8, 8)), np.ones(3),
                                                         np.ones((2, 2, 4, 2))),
                             "every field must hold the same number of examples")],
    "datasets.moving_digits": [(lambda: datasets.moving_digits(10, split="val"),
                                "split must be one of")],
    "counting.se_parameter_overhead": [(lambda: counting.se_parameter_overhead((1,), (16,), 0),
                                        "reduction must be a positive integer")],
    "datasets.attention_in_box": [(lambda: datasets.attention_in_box(
        np.zeros((1, 4, 4)), np.array([[0, 0, 8, 8]]), 16), "positive total weight")],
    "denoising.nlmeans_weights": [(lambda: denoising.nlmeans_weights(np.ones(3), h=0),
                                   "h must be a finite positive number")],
    "denoising.nl_means": [(lambda: denoising.nl_means(np.ones((8, 8)), patch_size=4),
                            "patch_size must be odd")],
    "denoising.psnr": [(lambda: denoising.psnr(np.ones((3, 3)), np.ones((3, 3)), data_range=0),
                        "data_range must be a finite positive number")],
    "functional.sigmoid": [(lambda: functional.sigmoid("x"), "x must hold real numbers")],
    "functional.softmax": [(lambda: functional.softmax(np.ones(3), axis=1), "axis=1 is out of")],
    "functional.reweight_channels": [(lambda: functional.reweight_channels(X4, np.ones(3)),
                                      "gains must have shape (2, 8)")],
    "functional.reweight_positions": [(lambda: functional.reweight_positions(X4, np.ones((3, 3))),
                                       "weights must have shape (2, 4, 4)")],
    "functional.attention_pool": [(lambda: functional.attention_pool(np.ones((2, 3, 3)),
                                                                     np.ones((3, 4))),
                                   "scores must have shape (3, 3)")],
    "gradcheck.rel_error": [(lambda: gradcheck.rel_error(np.ones(2), np.ones(3)),
                             "a and b must have the same shape")],
    "gradcheck.numerical_gradient": [(lambda: gradcheck.numerical_gradient(abs, np.ones(3,
                                                                                  np.float32)),
                                      "x must be a float64 numpy array")],
    "gradcheck.gradient_check": [(lambda: gradcheck.gradient_check(3, {"x": np.ones(3)},
                                                                   {"x": np.ones(3)}, np.ones(3)),
                                  "f must be callable"),
                                 (lambda: gradcheck.gradient_check(abs, [1], {}, np.ones(3)),
                                  "inputs must be a dict")],
    "grade.main": [(lambda: grade.main(["no/such/submission"]), SystemExit)],
    "memory_wall.affinity_bytes": [(lambda: memory_wall.affinity_bytes(0), "n must be >= 1")],
    "memory_wall.measure": [(lambda: memory_wall.measure(16, 4, "bogus"),
                             "variant must be one of")],
    "memory_wall.main": [(lambda: memory_wall.main(["--n", "0"]), SystemExit)],
    "memory_wall.write_recorded": [(lambda: memory_wall.write_recorded([], "/tmp/x.csv", "cpu"),
                                    "rows must be a non-empty list")],
    "memory_wall.read_recorded": [(lambda: memory_wall.read_recorded("/nonexistent.csv"),
                                   "path must be a recorded measurement file")],
    "measure.peak_bytes": [(lambda: measure.peak_bytes(np.ones(3)), "fn must be callable")],
    "measure.device_name": [(lambda: measure.device_name("cuda"), "device must be a torch.device")],
    "models.conv_bn": [(lambda: models.conv_bn(0, 4, 3), "cin must be >= 1"),
                       (lambda: models.conv_bn(4, 4, 2), "kernel must be odd")],
    "models.BasicBlock": [(lambda: models.BasicBlock(4, 0), "width must be >= 1"),
                          (lambda: models.BasicBlock(4, 4, stride_in="1x9"),
                           "stride_in must be '3x3' or '1x1'")],
    "models.Bottleneck": [(lambda: models.Bottleneck(4, 4, stride=0), "stride must be >= 1"),
                          (lambda: models.Bottleneck(4, 4, attention="se"),
                           "attention must be None or a callable")],
    "models.ResNet": [(lambda: models.ResNet(models.BasicBlock, [1, 1], [16], 10),
                       "blocks and widths must be equal-length")],
    "models.resnet50": [(lambda: models.resnet50(attention="se"), "attention must be None")],
    "models.small_resnet": [(lambda: models.small_resnet(num_classes=0),
                             "num_classes must be >= 1")],
    "models.PyramidAttentionNet": [(lambda: models.PyramidAttentionNet(maps=0),
                                    "maps must be >= 1"),
                                   (lambda: models.PyramidAttentionNet(pooling="max"),
                                    "pooling must be one of"),
                                   (lambda: models.PyramidAttentionNet(ia_weight=0.1,
                                                                       pooling="average"),
                                    "ia_weight must be 0 with pooling='average'")],
    "models.conv_bn3d": [(lambda: models.conv_bn3d(1, 4, (3, 3)), "kernel must be three"),
                         (lambda: models.conv_bn3d(1, 4, (3, 2, 3)), "kernel must be odd")],
    "models.FrameWise": [(lambda: models.FrameWise("se"), "module must be a torch.nn.Module")],
    "models.sinusoidal_position_code": [
        (lambda: models.sinusoidal_position_code(4, 2, 2, 2), "channels must be at least 6"),
        (lambda: models.sinusoidal_position_code(12, 0, 2, 2), "frames must be"),
        (lambda: models.sinusoidal_position_code(12, 2, 2, 2, base=1), "base must be a number")],
    "models.VideoNonLocal": [(lambda: models.VideoNonLocal(4, position=True),
                              "position=True needs channels >= 6"),
                             (lambda: models.VideoNonLocal(8, position="yes"),
                              "position must be True or False"),
                             (lambda: models.VideoNonLocal(8, affinity="xx"),
                              "affinity must be one of")],
    "models.VideoNet": [(lambda: models.VideoNet(arch="x"), "arch must be one of"),
                        (lambda: models.VideoNet(attention="x"), "attention must be one of")],
    "models.SegmentPyramidNet": [(lambda: models.SegmentPyramidNet(segments=0),
                                  "segments must be >= 1")],
    "models.video_models": [(lambda: models.video_models()["i3d"]()(torch.ones(1, 1, 4, 8)),
                             "VideoNet expects x of shape (B, C, T, H, W)")],
    "modules.SqueezeExcitation": [(lambda: modules.SqueezeExcitation(8, reduction=16),
                                   "reduction (16) must not exceed channels (8)"),
                                  (lambda: modules.SqueezeExcitation(8, 2)(torch.ones(1, 4, 3, 3)),
                                   "was built for 8 channels")],
    "modules.ChannelAttention": [(lambda: modules.ChannelAttention(0), "channels must be >= 1")],
    "modules.SpatialAttention": [(lambda: modules.SpatialAttention(kernel_size=4),
                                  "kernel_size must be odd"),
                                 (lambda: modules.SpatialAttention(variant="x"),
                                  "variant must be one of")],
    "modules.CBAM": [(lambda: modules.CBAM(8, order="x"), "order must be one of")],
    "modules.GlobalContext": [(lambda: modules.GlobalContext(8, reduction=0),
                               "reduction must be >= 1")],
    "modules.EfficientChannelAttention": [(lambda: modules.EfficientChannelAttention(8, 2),
                                           "kernel_size must be odd")],
    "modules.available_memory_bytes": [(lambda: modules.available_memory_bytes("tpu9"),
                                        "device must be a torch.device"),
                                       (lambda: modules.available_memory_bytes(3),
                                        "device must be a torch.device")],
    "modules.NonLocalBlock": [(lambda: modules.NonLocalBlock(8, mode="x"), "mode must be one of"),
                              (lambda: modules.NonLocalBlock(8, dim=4), "dim must be 1, 2 or 3"),
                              (lambda: modules.NonLocalBlock(8)(torch.ones(1, 4, 3, 3)),
                               "was built for 8 channels")],
    "modules.interaction_terms": [(lambda: modules.interaction_terms(torch.ones(2, 3),
                                                                     torch.ones(2, 4, 3)),
                                   "maps must be a tensor (B, K, N)")],
    "modules.interaction_loss": [(lambda: modules.interaction_loss(torch.ones(2, 3, 5),
                                                                   torch.ones(2, 4, 2, 3)),
                                  "features must be a tensor (B, C, *S) with B = 2 and "
                                  "prod(S) = N = 5")],
    "modules.InteractionAwareAttention": [(lambda: modules.InteractionAwareAttention(8, maps=0),
                                           "maps must be >= 1")],
    "plotting.interact": [(lambda: plotting.interact(print, row=(9, 0, 4)),
                           "slider 'row' must be (start, low, high)"),
                          (lambda: plotting.interact(None), "function must be callable")],
    "plotting.show_image": [(lambda: plotting.show_image(_axes(), np.ones(3), "t"),
                             "image must be (H, W) or (H, W, 3)")],
    "plotting.map_grid": [(lambda: plotting.map_grid([("a", np.ones(3))]),
                           "image must be (H, W) or (H, W, 3)")],
    "plotting.learning_curves": [(lambda: plotting.learning_curves({"a": []}),
                                  "results must map model names to runs with a history")],
    "stats.t_interval": [(lambda: stats.t_interval([0.5, 0.6], confidence=1),
                          "confidence must be a number strictly between 0 and 1")],
    "stats.paired_difference": [(lambda: stats.paired_difference([0.5, 0.6], [0.5]),
                                 "a and b must pair up")],
    "reference.mlp_shapes": [(lambda: reference.mlp_shapes(8, 16), "reduction (16) must not")],
    "reference.init_mlp": [(lambda: reference.init_mlp(8, 2, rng=3), "rng must be a numpy")],
    "reference.se_forward": [(lambda: reference.se_forward(X4, {"w1": 1}),
                              "params must be a dict holding 'w1'")],
    "reference.se_backward": [(lambda: reference.se_backward(X4, ()),
                               "cache must be the cache that se_forward returned"),
                              (lambda: reference.se_backward(np.ones((2, 8, 4, 3)), _se_cache()),
                               "dout must have the shape of x")],
    "reference.channel_attention_forward": [(lambda: reference.channel_attention_forward(
        np.ones(3), {}), "x must have 4 dimensions")],
    "reference.channel_attention_backward": [(lambda: reference.channel_attention_backward(
        X4, None), "cache must be the cache that channel_attention_forward returned")],
    "reference.conv2d_same": [(lambda: reference.conv2d_same(X4, np.ones((1, 8, 4, 4)),
                                                             np.ones(1)),
                               "w must be (Cout, 8, k, k) with odd k"),
                              (lambda: reference.conv2d_same(X4, np.ones((1, 8, 3, 3)),
                                                             np.ones(2)),
                               "b must have shape (1,)")],
    "reference.conv2d_same_backward": [(lambda: reference.conv2d_same_backward(
        np.ones(3), np.ones((1, 2, 4, 4, 3, 3)), np.ones((1, 2, 3, 3))),
        "dout must have 4 dimensions"),
        (lambda: reference.conv2d_same_backward(np.ones((1, 1, 4, 4)),
                                                np.ones((1, 2, 4, 4, 3, 3)),
                                                np.ones((1, 3, 3, 3))),
         "w must be (Cout, 2, 3, 3)")],
    "reference.spatial_attention_forward": [(lambda: reference.spatial_attention_forward(
        X4, {"w": np.ones((1, 2, 7, 7)), "b": np.ones(1)}, pool_order="x"),
        "pool_order must be one of")],
    "reference.spatial_attention_backward": [(lambda: reference.spatial_attention_backward(
        X4, "cache"), "cache must be the cache that spatial_attention_forward returned")],
    "reference.cbam_forward": [(lambda: reference.cbam_forward(X4, {"channel": {}}),
                                "params must be a dict with 'channel' and 'spatial'")],
    "reference.cbam_backward": [(lambda: reference.cbam_backward(X4, 5),
                                 "cache must be the cache that cbam_forward returned")],
    "reference.max_pool_spatial": [(lambda: reference.max_pool_spatial(np.ones((4, 4))),
                                    "x must have 3 or 4 or 5 dim")],
    "reference.tiled_attention": [
        (lambda: reference.tiled_attention(np.ones((1, 3, 4)), np.ones((1, 5, 3)),
                                           np.ones((1, 5, 2))), "k must be (B, N_p, d)"),
        (lambda: reference.tiled_attention(np.ones((1, 3, 4)), np.ones((1, 5, 4)),
                                           np.ones((1, 4, 2))), "v must be (B, N_p, d_v)"),
        (lambda: reference.tiled_attention(np.ones((1, 3, 4)), np.ones((1, 5, 4)),
                                           np.ones((1, 5, 2)), tile=0), "tile must be"),
    ],
    "reference.embedded_attention": [
        (lambda: reference.embedded_attention(np.ones((1, 3, 4)), np.ones((1, 5, 3)),
                                              np.ones((1, 5, 2))),
         "phi must be (B, N_p, d) = (1, N_p, 4)"),
        (lambda: reference.embedded_attention(np.ones((1, 3, 4)), np.ones((1, 5, 4)),
                                              np.ones((1, 6, 2))),
         "g must be (B, N_p, d_v) with (B, N_p) = (1, 5)"),
        (lambda: reference.embedded_attention(np.ones((3, 4)), np.ones((1, 5, 4)),
                                              np.ones((1, 5, 2))),
         "theta must have 3 dimensions"),
        (lambda: reference.embedded_attention(np.ones((2, 3, 4)), np.ones((1, 5, 4)),
                                              np.ones((1, 5, 2))),
         "phi must be (B, N_p, d) = (2, N_p, 4)")],
    "reference.dot_attention": [
        (lambda: reference.dot_attention(np.ones((1, 3, 4)), np.ones((1, 5, 3)),
                                         np.ones((1, 5, 2))), "phi must be"),
        (lambda: reference.dot_attention(np.ones((1, 3, 4)), np.ones((1, 5, 4)),
                                         np.ones((5, 2))), "g must have 3 dimensions")],
    "reference.nl_param_shapes": [(lambda: reference.nl_param_shapes(8, 4, "x"),
                                   "mode must be one of")],
    "reference.init_nonlocal": [(lambda: reference.init_nonlocal(8, 4, "embedded", rng=None),
                                 "rng must be a numpy Generator")],
    "reference.nonlocal_forward": [(lambda: reference.nonlocal_forward(X4, {}),
                                    "params must be a dict holding 'w_g'")],
    "reference.fix_signs": [(lambda: reference.fix_signs(np.ones(3)),
                             "components must have 2 dimensions")],
    "reference.covariance": [(lambda: reference.covariance(np.ones((1, 3))),
                              "x must be at least (2, 1)")],
    "reference.top_components": [(lambda: reference.top_components(np.ones((5, 3)), 4),
                                  "k (4) must not exceed the number of features (3)")],
    "reference.orthogonality_penalty": [(lambda: reference.orthogonality_penalty(
        np.zeros((2, 3))), "w must not have an all-zero row")],
    "reference.interaction_terms": [(lambda: reference.interaction_terms(np.ones((2, 3)),
                                                                         np.zeros((3, 4))),
                                     "x must not be all zero when normalise=True"),
                                    (lambda: reference.interaction_terms(np.ones((2, 3)),
                                                                         np.ones((3, 4)), 1),
                                     "normalise must be True or False")],
    "reference.interaction_loss": [(lambda: reference.interaction_loss(np.ones((2, 3)),
                                                                       np.ones((4, 4))),
                                    "x must have one row per position of the maps, N = 3"),
                                   (lambda: reference.interaction_loss(np.zeros((2, 3)),
                                                                       np.ones((3, 4))),
                                    "maps must not have an all-zero row")],
    "reference.ia_attention_forward": [(lambda: reference.ia_attention_forward(
        X4, np.ones((2, 7)), np.ones(2)), "w must be (K, 8) and b (K,)")],
    "reference.map_diversity": [(lambda: reference.map_diversity(np.ones((2, 1, 5))),
                                 "at least two maps"),
                                (lambda: reference.map_diversity(np.zeros((2, 2, 5))),
                                 "maps has an all-zero map")],
    "reference.affinity_mask": [(lambda: reference.affinity_mask(2, 2, 2, "spacetim"),
                                 "affinity must be one of")],
    "reference.attention_similarity": [(lambda: reference.attention_similarity(np.ones((1, 4))),
                                        "weights must hold at least two queries")],
    "reference.top_attended": [(lambda: reference.top_attended(np.ones(8), (2, 2, 3), 1),
                                "shape must be (T, H, W) with T*H*W = 8")],
    "reference.gc_param_shapes": [(lambda: reference.gc_param_shapes(8, 16),
                                   "reduction (16) must not exceed channels (8)")],
    "reference.init_gc": [(lambda: reference.init_gc(8, 2, rng=""), "rng must be a numpy")],
    "reference.gc_forward": [(lambda: reference.gc_forward(X4, {"w1": np.ones((4, 8))}),
                              "params is missing"),
                             (lambda: reference.gc_forward(X4, "p"), "params must hold 'w_k'")],
    "reference.gc_context": [(lambda: reference.gc_context(X4, np.ones(7), 0.0),
                              "w_k must have shape (8,)"),
                             (lambda: reference.gc_context(X4, np.ones(8), "zero"),
                              "b_k must hold real numbers")],
    "reference.gc_as_nonlocal": [(lambda: reference.gc_as_nonlocal(X4, "p"),
                                  "params must hold 'w_k'"),
                                 (lambda: reference.gc_as_nonlocal(
                                     X4, reference.init_gc(8, 2, np.random.default_rng(0)),
                                     eps=0.0), "eps must be a finite positive number")],
    "reference.eca_kernel_size": [(lambda: reference.eca_kernel_size(256, gamma=0),
                                   "gamma must be >= 1")],
    "reference.eca_forward": [(lambda: reference.eca_forward(X4, np.ones(2)),
                               "w must have an odd length")],
    "runtime.seed_everything": [(lambda: runtime.seed_everything(-1),
                                 "seed must be a non-negative intege")],
    "runtime.get_device": [(lambda: runtime.get_device("tpu"), "prefer must be one of")],
    "saliency.blur": [(lambda: saliency.blur(np.ones(3)), "x must have 2 or 3 or 4 dim")],
    "saliency.pyr_reduce": [(lambda: saliency.pyr_reduce(np.ones(5)),
                             "x must have 2 or 3 or 4 dimensions")],
    "saliency.gaussian_pyramid": [(lambda: saliency.gaussian_pyramid(np.ones((8, 8)), levels=0),
                                   "levels must be >= 1")],
    "saliency.upsample": [(lambda: saliency.upsample(np.ones((4, 4)), (0, 3)),
                           "shape must be a pair of positive integers")],
    "saliency.center_surround": [(lambda: saliency.center_surround(np.ones((4, 4)),
                                                                   np.ones((8, 8))),
                                  "surround (8, 8) must be the coarser map")],
    "saliency.local_maxima": [(lambda: saliency.local_maxima(np.ones(3)), "m must have 2 or 3 or 4 dimensions")],
    "saliency.normalize_map": [(lambda: saliency.normalize_map(np.ones((4, 4)), M=-1),
                                "M must be a finite positive number")],
    "saliency.color_channels": [(lambda: saliency.color_channels(np.ones((4, 4))),
                                 "rgb must be a colour image")],
    "saliency.gabor_kernels": [(lambda: saliency.gabor_kernels(size=0), "size must be >= 1"),
                               (lambda: saliency.gabor_kernels(wavelength=-1),
                                "wavelength must be a finite positive number"),
                               (lambda: saliency.gabor_kernels(orientations=()),
                                "orientations must")],
    "saliency.orientation_energy": [(lambda: saliency.orientation_energy(np.ones((8, 8)),
                                                                         np.ones((3, 3))),
                                     "kernels must be (K, k, k) with odd k")],
    "saliency.itti_koch": [(lambda: saliency.itti_koch(np.full((32, 32, 3), 2.0)),
                            "image must have values in [0, 1]")],
    "saliency.channel_conspicuity": [(lambda: saliency.channel_conspicuity(np.ones(3)),
                                      "image must have 2 or 3 dimensions")],
    "saliency.top_down_saliency": [(lambda: saliency.top_down_saliency(
        np.ones((64, 64, 3)), gains={"colour": 1}), "gains has unknown channel(s)")],
    "saliency.scanpath": [(lambda: saliency.scanpath(np.zeros((8, 8)), fixations=0),
                           "fixations must be >= 1")],
    "saliency.spectral_residual_raw": [(lambda: saliency.spectral_residual_raw(np.ones(3)),
                                        "image must have 2 dimensions")],
    "saliency.spectral_residual": [(lambda: saliency.spectral_residual(np.ones((8, 8)), width=0),
                                    "width must be >= 8")],
    "saliency.draw_bars": [(lambda: saliency.draw_bars([], size=0, length=1, width=1),
                            "size must be >= 1")],
    "saliency.search_array": [(lambda: saliency.search_array("colo"), "kind must be one of")],
    "saliency.two_singleton_array": [(lambda: saliency.two_singleton_array(grid=1),
                                      "grid must be >= 3")],
    "saliency.map_to_pixels": [(lambda: saliency.map_to_pixels((1, 2), (0, 4), (8, 8)),
                                "map_shape and image_shape must start with positive")],
    "student.blank_solutions": [(lambda: student.blank_solutions(3), "source must be a cell's"),
                                (lambda: student.blank_solutions("x", cell_type="raw"),
                                 "cell_type must be 'code' or 'markdown'")],
    "student.with_grading_metadata": [(lambda: student.with_grading_metadata({"cells": 3}),
                                       "nb must be a notebook")],
    "student.student_notebook": [(lambda: student.student_notebook("nb"),
                                  "nb must be a notebook")],
    "student.sync": [(lambda: student.sync(Path("/nonexistent"), Path("/tmp/x")),
                      "src must be a folder of solution notebooks")],
    "student.main": [(lambda: student.main(["--bogus"]), SystemExit)],
    "train_video.video_experiment": [(lambda: train_video.video_experiment(fast="yes"),
                                      "fast must be True, False or None")],
    "train_video.checkpoint_name": [(lambda: train_video.checkpoint_name("", 0, "fast"),
                                     "model must")],
    "train_video.load_checkpoint": [(lambda: train_video.load_checkpoint(Path("/no/such.pt")),
                                     "is not a file")],
    "train_video.parse_args": [(lambda: train_video.parse_args(["--model", "c2d", "--l", "0"]),
                                SystemExit)],
    "train_video.main": [(lambda: train_video.main(["--epochs", "0"]), SystemExit)],
    "train_video.append_result": [(lambda: train_video.append_result(Path("/tmp/x.csv"),
                                                                     {"model": "c2d"}),
                                   "row lacks the columns")],
    "train_video.sweep_results": [(lambda: train_video.sweep_results([{"model": "c2d"}]),
                                   "rows must be a list of result rows"),
                                  (lambda: train_video.sweep_results([], mode="slow"),
                                   "mode must be 'fast' or 'full'")],
    "train_video.read_results": [(lambda: train_video.read_results(Path("/no/such.csv")),
                                  "is not a file")],
    "training.cued_experiment": [(lambda: training.cued_experiment("shape"),
                                  "cue must be one of")],
    "training.train_one_epoch": [(lambda: training.train_one_epoch(torch.nn.Linear(2, 2), [],
                                                                   "adam"),
                                  "optimizer must be a torch.optim.Optimizer")],
    "training.evaluate_epoch": [(lambda: training.evaluate_epoch(torch.nn.Linear(2, 2), []),
                                 "batches must hold at least one example")],
    "training.evaluate": [(lambda: training.evaluate("m", None), "model must be a torch")],
    "training.Progress": [(lambda: training.Progress(0, "x"), "total must be >= 1"),
                          (lambda: training.Progress(3, "x", mode="y"), "progress must be one")],
    "training.train_classifier": [(lambda: training.train_classifier(
        torch.nn.Linear(2, 2), None, None, epochs=0), "epochs must be >= 1"),
        (lambda: training.train_classifier("net", None, None, epochs=1), "model must be")],
    "training.compare_models": [(lambda: training.compare_models({}, None, None, seeds=[],
                                                                 epochs=1),
                                 "builders and seeds must not be empty")],
    "training.versus_baseline": [(lambda: training.versus_baseline({"a": [1]}, "a"),
                                  "results must map model names")],
    "training.results_table": [(lambda: training.results_table({}, "b"),
                                "results must map model names")],
    "training.per_class_table": [(lambda: training.per_class_table({"a": []}, ["x"]),
                                  "results must map model names")],
    "validate.as_float_array": [(lambda: validate.as_float_array([[1], [1, 2]], "v"),
                                 "v must be array-like")],
    "validate.image_array": [(lambda: validate.image_array(np.ones((2, 2, 4))),
                              "image must be (H, W) or (H, W, 3)")],
    "validate.boolean": [(lambda: validate.boolean(1, "normalise"),
                          "normalise must be True or False")],
    "validate.positive_int": [(lambda: validate.positive_int(1.5, "n"), "n must be an intege")],
    "validate.positive_float": [(lambda: validate.positive_float(float("nan"), "h"),
                                 "h must be a finite positive number")],
    "validate.axis_index": [(lambda: validate.axis_index(3, 2), "axis=3 is out of range")],
    "vit.PatchEmbedding": [(lambda: vit.PatchEmbedding(0, 1, 8), "patch_size must be >= 1"),
                           (lambda: vit.PatchEmbedding(4, 1, 8)(torch.ones(1, 2, 8, 8)),
                            "PatchEmbedding was built for 1 channels")],
    "vit.MultiHeadAttention": [(lambda: vit.MultiHeadAttention(10, heads=4),
                                "dim (10) must be divisible by heads (4)"),
                               (lambda: vit.MultiHeadAttention(8, backend="flash"),
                                "backend must be one of"),
                               (lambda: vit.MultiHeadAttention(8)(torch.ones(2, 8)),
                                "expects tokens x of shape (B, N, D)")],
    "vit.EncoderBlock": [(lambda: vit.EncoderBlock(8, 2, mlp_dim=0), "mlp_dim must be >= 1")],
    "vit.TinyViT": [(lambda: vit.TinyViT(image_size=40, patch_size=3),
                     "image_size (40, 40) must be a multiple of patch_size (3)"),
                    (lambda: vit.TinyViT(image_size=(8, 8, 8)), "image_size must be an integer"),
                    (lambda: vit.TinyViT(40, 5)(torch.ones(1, 1, 20, 20)),
                     "TinyViT was built for images (B, C, 40, 40)")],
    "vit.vit_parameter_count": [(lambda: vit.vit_parameter_count(40, 5, 1, 10, 64, 0, 128),
                                 "depth must be >= 1")],
    "vit.vit_macs": [(lambda: vit.vit_macs(40, 6, 1, 10, 64, 2, 128),
                      "must be a multiple of patch_size (6)")],
    "workspace.read_record": [(lambda: workspace.read_record(42), "path must be a path")],
    "workspace.write_record": [(lambda: workspace.write_record(Path("/tmp/r.json"), {"a": 3}),
                                "record must be a dict from notebook names to SHA-256")],
    "workspace.sync_workspace": [(lambda: workspace.sync_workspace(Path("/nonexistent"),
                                                                   Path("/tmp/w")),
                                  "course must be the folder of the student edition")],
    "workspace.main": [(lambda: workspace.main(["--bogus"]), SystemExit)],
    # temporal attention and its experiment (notebook 08)
    "reference.temporal_param_shapes": [(lambda: reference.temporal_param_shapes(4, 8),
                                         "reduction (8) must not exceed channels (4)")],
    "reference.init_temporal": [(lambda: reference.init_temporal(8, 2, rng=3),
                                 "rng must be a numpy")],
    "reference.temporal_weights": [(lambda: reference.temporal_weights(np.ones((2, 8)), {}),
                                    "s must have 3 dimensions")],
    "reference.temporal_attention": [(lambda: reference.temporal_attention(X4, {}),
                                      "x must have 5 dimensions")],
    "reference.temporal_attention_backward": [
        (lambda: reference.temporal_attention_backward(X4, ()),
         "cache must be the cache that temporal_attention returned")],
    "modules.TemporalAttention": [(lambda: modules.TemporalAttention(8, reduction=16),
                                   "reduction (16) must not exceed channels (8)"),
                                  (lambda: modules.TemporalAttention(8)(torch.ones(1, 8, 3, 3)),
                                   "expects x of shape (B, C, T, H, W)")],
    "models.event_models": [(lambda: models.event_models()["c2d+temporal"]()(
        torch.ones(1, 1, 4, 8)), "expects x of shape (B, C, T, H, W)")],
    "datasets.brief_event_clips": [(lambda: datasets.brief_event_clips(10, split="val"),
                                    "split must be one of"),
                                   (lambda: datasets.brief_event_clips(10, frames=3),
                                    "frames must be >= 4")],
    "datasets.event_experiment": [(lambda: datasets.event_experiment(fast="yes"),
                                   "fast must be True, False or None")],
}

# Public names with no argument a learner could get wrong (no arguments, records that the
# library builds, exception types), each with the reason.
NO_INPUT = {
    "runtime.fast_mode": "reads ACV_FAST; no arguments",
    "runtime.grading_mode": "reads ACV_GRADING; no arguments",
    "runtime.mode_name": "no arguments",
    "runtime.live_frontend": "reads the current execute request; no arguments",
    "measure.PeakRSS": "no arguments: start() then extra_kib()",
    "runtime.environment_report": "no arguments",
    "runtime.pick": "returns one of two values of any type; nothing to refuse",
    "training.digit_experiment": "no arguments",
    "stats.Interval": "a result record that t_interval and paired_difference build",
    "benchmark.Row": "a result record that run builds; markdown and to_csv refuse non-Rows",
    "check.ExerciseOpen": "an exception type, raised by the checkers",
    "grade.Row": "a result record built by python -m utils.grade",
    "grade.Check": "a record built by python -m utils.grade from the course notebook",
    "plotting.use_course_style": "no arguments",
    "saliency.IttiKochResult": "a result record that itti_koch builds",
    "saliency.SearchItem": "a record; draw_bars refuses anything that is not one",
    "training.TrainResult": "a result record; the table functions refuse anything else",
    "student.MarkerError": "an exception type, raised for unbalanced solution markers",
}

# utils.reid (notebook 08, video re-identification), kept in one block.
reid = importlib.import_module("utils.reid")
BAD_CALLS.update({
    "reid.ReidClips": [(lambda: reid.ReidClips(np.zeros((2, 1, 4, 8, 8)), np.zeros(2, int),
                                               np.zeros(2, int)), "clips must be (N, 3, T, S, S)")],
    "reid.reid_clips": [(lambda: reid.reid_clips(3, 1), "clips_per_identity must be >= 2"),
                        (lambda: reid.reid_clips(3, 2, split="val"), "split must be one of")],
    "reid.query_gallery": [(lambda: reid.query_gallery(np.zeros(3, int), np.zeros(2, int)),
                            "camera must hold 3 values")],
    "reid.cmc": [(lambda: reid.cmc(np.ones((2, 3)), np.zeros(2, int), np.zeros(3, int), ranks=()),
                  "ranks must be a non-empty sequence")],
    "reid.mean_average_precision": [(lambda: reid.mean_average_precision(
        np.ones((2, 3)), np.zeros(2, int), np.zeros(3, int), query_cams=np.zeros(2, int)),
        "query_cams and gallery_cams must be given together")],
    "reid.evaluate_retrieval": [(lambda: reid.evaluate_retrieval(np.ones(3), np.zeros(3, int),
                                                                 np.zeros(3, int)),
                                 "distances must have 2 dimensions")],
    "reid.batch_hard_triplet_loss": [(lambda: reid.batch_hard_triplet_loss(
        torch.ones(4), torch.zeros(4, dtype=torch.long)), "embeddings must be a tensor (B, D)")],
    "reid.PKSampler": [(lambda: reid.PKSampler(np.arange(4), p=2, k=1), "k must be >= 2")],
    "reid.ReidNet": [(lambda: reid.ReidNet(non_local=3), "non_local must be 0, 1 or 2")],
    "reid.train_reid": [(lambda: reid.train_reid("net", None, epochs=1, p=2, k=2),
                         "model must be a torch.nn.Module")],
    "reid.embed_clips": [(lambda: reid.embed_clips(torch.nn.Linear(2, 2), np.zeros(3)),
                          "data must be ReidClips")],
    "reid.euclidean_distances": [(lambda: reid.euclidean_distances(np.ones((2, 3)), np.ones((2, 4))),
                                  "a and b must have the same width")],
    "reid.evaluate_reid": [(lambda: reid.evaluate_reid(torch.nn.Linear(2, 2), None),
                            "test must be ReidClips")],
    "reid.draw_retrieval": [(lambda: reid.draw_retrieval(np.zeros((3, 4, 8, 8)),
                                                         np.zeros((2, 3, 4, 8, 8)), np.array([1, 0])),
                             "correct must be a bool array")],
})
BAD_CALLS.update({
    "reid.cosine_distances": [(lambda: reid.cosine_distances(np.ones((2, 3)), np.ones((2, 4))),
                               "a and b must have the same width")],
    "reid.retrieval_per_query": [(lambda: reid.retrieval_per_query(
        np.ones(3), np.zeros(3, int), np.zeros(3, int)), "distances must have 2 dimensions")],
    "reid.identity_clothing": [(lambda: reid.identity_clothing(3, split="val"),
                                "split must be one of")],
    "reid.reid_experiment": [(lambda: reid.reid_experiment(fast="yes"),
                              "fast must be True, False or None")],
    "reid.study_run": [(lambda: reid.study_run(True, "resnet", 0), "model must be one of")],
    "reid.load_study": [(lambda: reid.load_study(42), "path must be")],
    "reid.load_queries": [(lambda: reid.load_queries(42), "path must be")],
    "reid.load_curves": [(lambda: reid.load_curves(42), "path must be")],
    "reid.main": [(lambda: reid.main(["--occluder", "2"]), SystemExit)],
})
NO_INPUT.update({
    "reid.ReidResult": "a result record that train_reid builds",
})
# utils.event_study (notebook 08, the recorded temporal-attention study).
event_study = importlib.import_module("utils.event_study")
BAD_CALLS.update({
    "event_study.event_steps": [(lambda: event_study.event_steps(np.zeros((2, 8))),
                                 "positions must be")],
    "event_study.frame_weights": [(lambda: event_study.frame_weights(torch.nn.Linear(2, 2),
                                                                     np.zeros((1, 1, 8, 4, 4))),
                                   "model must hold a TemporalAttention block")],
    "event_study.run_one": [(lambda: event_study.run_one("x3d", 0, {}), "name must be one of")],
    "event_study.load": [(lambda: event_study.load(42), "path must be")],
    "event_study.main": [(lambda: event_study.main(["--model", "x3d"]), SystemExit)],
})


BAD_CALLS.update({   # notebook 07: the derivation, the timing spread, the ViT study
    "reference.query_free_nonlocal": [(lambda: reference.query_free_nonlocal(X4, "p"),
                                       "params must be a dict holding 'w_g'")],
    "benchmark.time_spread": [(lambda: benchmark.time_spread("SE", torch.zeros(1, 4, 2, 2)),
                               "module must be a torch.nn.Module"),
                              (lambda: benchmark.time_spread(torch.nn.Identity(), torch.zeros(1),
                                                             repeats=0), "repeats must be")],
    "vit.HybridViT": [(lambda: vit.HybridViT(stem_channels=0), "stem_channels")],
    "vit.study_model": [(lambda: vit.study_model("ResNet"), "model must be one of")],
    "vit.warmup_cosine": [(lambda: vit.warmup_cosine(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), 5, 5), "warmup_steps")],
    "vit.study_run": [(lambda: vit.study_run("ResNet", 0, None, None), "model must be one of"),
                      (lambda: vit.study_run("CNN", 0, None, None, epochs=2, stop_after=3),
                       "stop_after")],
    "vit.read_study": [(lambda: vit.read_study("no/such/file.csv"), "path must be")],
    "vit.main": [(lambda: vit.main(["--model", "ResNet"]), SystemExit)],
})


BAD_CALLS.update({   # notebook 06: the folding, the grid code, the recorded sweep's clips; stats
    "models.grid_position_code": [(lambda: models.grid_position_code(5, 2, 2, 2),
                                   "channels must be at least 6"),
                                  (lambda: models.grid_position_code(6, 0, 2, 2), "frames")],
    "reference.fold_attention": [(lambda: reference.fold_attention(np.ones((1, 2, 2, 2)), "space"),
                                  "x must have 5 dimensions"),
                                 (lambda: reference.fold_attention(np.ones((1, 2, 2, 2, 2)),
                                                                   "spaces"),
                                  "affinity must be one of")],
    "reference.masked_attention": [(lambda: reference.masked_attention(np.ones((1, 2, 2, 2, 2)),
                                                                       np.ones((3, 3), bool)),
                                    "mask must be a (8, 8) bool array")],
    "train_video.recorded_correctness": [(lambda: train_video.recorded_correctness([], (0, 1), 0),
                                          "clips_per_class must be a positive integer"),
                                         (lambda: train_video.recorded_correctness([], (0, 1), 5),
                                          "runs must hold at least one run")],
    "stats.bootstrap_interval": [(lambda: stats.bootstrap_interval([0.5, 0.6]),
                                  "per_item must have 2 dimensions"),
                                 (lambda: stats.bootstrap_interval([[0.5]]),
                                  "at least one seed and two items")],
})


def _public_names() -> set[str]:
    names = set()
    for info in pkgutil.iter_modules(utils.__path__):
        module = importlib.import_module(f"utils.{info.name}")
        for name, obj in vars(module).items():
            home = getattr(obj, "__module__", "") or ""
            if (not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
                    and (home == module.__name__ or home.startswith(module.__name__ + "."))):
                names.add(f"{info.name}.{name}")
    return names


def test_every_public_function_and_class_has_a_bad_input_test():
    public = _public_names()
    exercise_checkers = {f"check.{name}" for name in check.EXERCISES}
    covered = set(BAD_CALLS) | set(NO_INPUT) | exercise_checkers
    assert public - covered == set(), "public names without a bad-input test"
    assert covered - public == set(), "tests for names that are no longer public"


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_bad_calls_raise_a_clear_error_naming_the_argument(name, capsys):
    for call, expected in BAD_CALLS[name]:
        if expected is SystemExit:
            with pytest.raises(SystemExit) as stop:
                call()
            assert stop.value.code == 2
            assert "error:" in capsys.readouterr().err
        else:
            with pytest.raises((ValueError, student.MarkerError), match=re.escape(expected)):
                call()


@pytest.mark.parametrize("name", sorted(check.EXERCISES))
def test_every_exercise_checker_refuses_a_non_function_clearly(name):
    with pytest.raises(ValueError, match=f"the exercise function for {name!r} must be callable"):
        getattr(check, name)(42)
