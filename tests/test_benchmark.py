"""The benchmark suite: every module measured, tables written, bad input named."""

import math

import pytest
import torch

from utils import benchmark
from utils.modules import EfficientChannelAttention, GlobalContext, SqueezeExcitation


@pytest.fixture(scope="module")
def rows():
    return benchmark.run([(32, 8, 8), (32, 2, 4, 4)], repeats=1, warmup=0, progress="off")


def test_every_module_is_measured_at_every_shape(rows):
    names = set(benchmark._specs(32, video=False))
    assert {r.module for r in rows} == names
    assert len(rows) == 2 * len(names)
    for r in rows:
        assert r.params >= 0 and r.ms > 0 and r.mmacs >= 0, r
        assert math.isnan(r.peak_mib) or r.peak_mib >= 0


def test_fused_and_explicit_non_local_count_the_same_macs(rows):
    by = {(r.module, r.shape): r for r in rows}
    for shape in ("32x8x8", "32x2x4x4"):
        assert by["NL sdpa", shape].mmacs == by["NL matmul", shape].mmacs
        assert by["NL sdpa", shape].vs_plain is not None
        assert by["NL sdpa + subsample", shape].mmacs < by["NL sdpa", shape].mmacs


def test_tables_have_one_line_per_row(rows):
    table = benchmark.markdown(rows)
    assert len(table.splitlines()) == len(rows) + 2
    csv_text = benchmark.to_csv(rows)
    assert csv_text.splitlines()[0].startswith("module,shape,device")
    assert len(csv_text.splitlines()) == len(rows) + 1


def test_explicit_attention_too_large_is_skipped_not_run():
    rows = benchmark.run([(8, 16, 16)], modules=["NL matmul", "NL sdpa"], repeats=1, warmup=0,
                         progress="off", max_affinity_gib=1e-6)
    by = {r.module: r for r in rows}
    assert math.isnan(by["NL matmul"].ms) and by["NL sdpa"].ms > 0


def test_plain_twins_compute_the_same_function():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 5, 6)
    se = SqueezeExcitation(16, 4)
    plain = benchmark.PlainSE(se)
    plain.fc1.weight.data = se.fc1.weight.data[:, :, None, None]
    plain.fc1.bias.data = se.fc1.bias.data
    plain.fc2.weight.data = se.fc2.weight.data[:, :, None, None]
    plain.fc2.bias.data = se.fc2.bias.data
    torch.testing.assert_close(plain(x), se(x))
    eca = EfficientChannelAttention(16, 3)
    plain_eca = benchmark.PlainECA(eca)
    plain_eca.conv.weight.data = eca.conv.weight.data
    torch.testing.assert_close(plain_eca(x), eca(x))
    gc = GlobalContext(16, 4)
    torch.nn.init.normal_(gc.transform[-1].weight)
    torch.testing.assert_close(benchmark.PlainGC(gc)(x), gc(x))


def test_bad_input_is_named(capsys):
    with pytest.raises(ValueError, match="unknown modules"):
        benchmark.run([(8, 4, 4)], modules=["SK"], progress="off")
    with pytest.raises(ValueError, match="shapes"):
        benchmark.run([(8, 4)], progress="off")
    with pytest.raises(SystemExit):
        benchmark.main(["--shapes", "8x4x4"])
    assert "--shapes must be" in capsys.readouterr().err


def test_command_line_writes_markdown_and_csv(tmp_path):
    md, csv_path = tmp_path / "t.md", tmp_path / "t.csv"
    assert benchmark.main(["--shapes", "16,4,4", "--modules", "SE", "ECA", "--repeats", "1",
                           "--progress", "off", "--markdown", str(md), "--csv",
                           str(csv_path)]) == 0
    assert "| SE | 16x4x4 |" in md.read_text()
    assert len(csv_path.read_text().splitlines()) == 3


def test_malloc_thresholds_are_raised_again_after_measuring(monkeypatch):
    """The peak-memory measurement needs every allocation above 64 KiB mmapped; left so, later
    training in the same kernel would fault in fresh pages for every tensor."""
    import ctypes

    calls = []

    class FakeLibc:
        def mallopt(self, option, value):
            calls.append((option, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    benchmark.run([(32, 4, 4)], modules=["SE"], repeats=1, warmup=0, progress="off")
    assert calls[:2] == [(-3, 64 * 1024), (-1, 0)]                  # while measuring
    assert calls[2:] == [(-3, 32 * 2**20), (-1, 64 * 2**20)]        # afterwards
    calls.clear()
    with pytest.raises(RuntimeError), benchmark._mmap_every_allocation():
        raise RuntimeError("a measurement failed")
    assert calls[-2:] == [(-3, 32 * 2**20), (-1, 64 * 2**20)]       # also after an error


def test_module_and_plain_twin_are_timed_in_turn_with_their_spread(monkeypatch):
    """Each repeat times one pass of the module, then one of its twin; the ratio is the median
    of the per-pair ratios, with their quartiles, and the time's interquartile range."""
    calls = []
    real = benchmark._times

    def recording(modules, x, warmup, repeats):
        calls.append(len(modules))
        return real(modules, x, warmup, repeats)

    monkeypatch.setattr(benchmark, "_times", recording)
    rows = benchmark.run([(16, 4, 4)], modules=["SE", "CBAM"], repeats=5, warmup=0,
                         progress="off")
    by = {r.module: r for r in rows}
    assert calls == [2, 1]                                   # SE with its twin; CBAM alone
    se = by["SE"]
    assert se.vs_plain_low <= se.vs_plain <= se.vs_plain_high and se.ms_iqr >= 0
    assert by["CBAM"].vs_plain is None and by["CBAM"].ms_iqr >= 0
    table = benchmark.markdown(rows)
    assert "ms (IQR)" in table.splitlines()[0] and f"{se.vs_plain:.2f} (" in table
    low, mid, high = benchmark.time_spread(SqueezeExcitation(16, 4), torch.randn(1, 16, 4, 4))
    assert 0 < low <= mid <= high


def test_a_batch_runs_every_module_on_that_many_inputs(tmp_path):
    rows = benchmark.run([(16, 4, 4)], modules=["SE", "NL sdpa"], repeats=1, warmup=0,
                         progress="off", batch=3)
    assert all(r.batch == 3 and r.ms > 0 for r in rows)
    with pytest.raises(ValueError, match="batch"):
        benchmark.run([(16, 4, 4)], modules=["SE"], progress="off", batch=0)
    md = tmp_path / "b.md"
    assert benchmark.main(["--shapes", "16,4,4", "--modules", "SE", "--repeats", "1",
                           "--progress", "off", "--batch", "2", "--markdown", str(md)]) == 0
    assert "batch 2" in md.read_text()


def test_no_pass_is_timed_inside_the_memory_measurement_mode(monkeypatch):
    """Memory is measured in a pass of its own: with every allocation served from fresh pages
    a CPU forward pass runs several times slower, so timing inside that mode would inflate
    the times (and make them disagree with time_spread, which never enters it)."""
    import contextlib

    inside = []
    timed_inside = []
    real = benchmark._times

    @contextlib.contextmanager
    def marking():
        inside.append(True)
        try:
            yield
        finally:
            inside.pop()

    def recording(modules, x, warmup, repeats):
        timed_inside.append(bool(inside))
        return real(modules, x, warmup, repeats)

    monkeypatch.setattr(benchmark, "_mmap_every_allocation", marking)
    monkeypatch.setattr(benchmark, "_times", recording)
    rows = benchmark.run([(16, 4, 4), (16, 8, 8)], modules=["SE", "NL sdpa", "NL matmul"],
                         repeats=2, warmup=0, progress="off")
    assert len(rows) == 6 and all(r.ms > 0 and r.peak_mib >= 0 for r in rows)
    assert timed_inside and not any(timed_inside)
