"""The cost of a variant beside its speed (bench/resources.py): memory high-water mark, files on disk, and the phases
up to the first answer, each timed apart."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.resources import STARTUP_SHAPE, Startup, disk_bytes

REPO = Path(__file__).resolve().parent.parent


class Slow:
    """An adapter whose phases take known times."""

    model_files = ()

    def __init__(self):
        self.shapes = []

    def load(self, *args):
        time.sleep(0.05)

    def encode(self, texts, max_length, pad_to_max):
        self.shapes.append((len(texts), max_length))
        time.sleep(0.02)
        return texts

    def forward(self, batch):
        time.sleep(0.03)
        return np.zeros(1)


def test_startup_times_load_prepare_and_first_forward_apart_and_sums_them():
    adapter, startup = Slow(), Startup()
    startup.load(adapter)
    startup.first(adapter, ["a", "b"], (2, 16))
    startup.first(adapter, ["a"], (1, 8))  # only the first call counts
    fields = startup.fields(adapter)["startup"]
    assert adapter.shapes == [(2, 16)] and fields["shape"] == [2, 16]
    assert fields["load_s"] >= 0.05 and fields["prepare_s"] >= 0.02 and fields["first_forward_s"] >= 0.03
    assert fields["first_inference_s"] == fields["load_s"] + fields["prepare_s"] + fields["first_forward_s"]


def test_a_cell_without_a_shape_starts_at_the_latency_shape():
    adapter, startup = Slow(), Startup()
    startup.first(adapter, ["one sentence"], (0, 0))
    assert adapter.shapes == [STARTUP_SHAPE]


def test_without_a_first_forward_first_inference_is_unknown_not_zero():
    startup = Startup()
    startup.load(Slow())
    fields = startup.fields(Slow())
    assert fields["startup"]["first_inference_s"] is None and fields["model_disk_bytes"] is None


def test_peak_memory_is_the_high_water_mark_and_stays_after_the_memory_is_freed():
    # a fresh interpreter, so the 64 MiB block is above anything it held before
    code = ("import numpy as np; from bench.resources import peak_rss_bytes, rss_bytes\n"
            "before, source = peak_rss_bytes(); block = np.ones(64 * 2**20, np.uint8); del block\n"
            "after, _ = peak_rss_bytes(); print(source, (after - before) >> 20, (after - rss_bytes()) >> 20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    source, grew_mib, above_now_mib = out.stdout.split()
    assert source == "VmHWM" and int(grew_mib) >= 60 and int(above_now_mib) >= 60


def test_disk_bytes_counts_files_and_directories_and_refuses_a_missing_one(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "b.onnx").write_bytes(b"y" * 5)
    assert disk_bytes([tmp_path / "m", tmp_path / "b.onnx"]) == 15
    assert disk_bytes([tmp_path / "gone.onnx"]) is None and disk_bytes([]) is None
