"""The `original` plan's damage check fed through ffmpeg's standard input (real ffmpeg): what the
verification read hands it is judged as a ranged read would judge it, and a writer is never left
hanging by an ffmpeg that stopped reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.media.ffmpeg import PipedCheck, probe, proxy_is_original
from tests.media_samples import make_samples


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_samples(tmp_path_factory.mktemp("media"), seconds=3, size="640x360")


def fed(path: Path, data: bytes | None = None, chunk: int = 1024 * 1024) -> bool:
    facts = probe(str(path))
    check = PipedCheck(facts, stall_s=30, timeout_s=120)
    data = path.read_bytes() if data is None else data
    for i in range(0, len(data), chunk):
        check.write(data[i : i + chunk])
    ok = check.close()
    assert check.written == len(data)
    return ok


def test_a_good_original_is_judged_clean_from_the_pipe(samples: dict[str, Path]) -> None:
    assert proxy_is_original(probe(str(samples["h264"])))  # H.264/AAC, index first
    assert fed(samples["h264"], chunk=64 * 1024)


def test_media_data_cut_out_of_the_middle_is_caught(samples: dict[str, Path]) -> None:
    assert proxy_is_original(probe(str(samples["mdat_hole"])))  # its index still says "fine"
    assert not fed(samples["mdat_hole"])


def test_a_truncated_read_is_caught(samples: dict[str, Path], tmp_path: Path) -> None:
    data = samples["h264"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 7 // 10])  # what a read that stopped early hands on
    assert not fed(samples["h264"], data=cut.read_bytes())


def test_garbage_after_the_index_is_caught_and_the_writer_never_hangs(samples: dict[str, Path]) -> None:
    data = bytearray(samples["h264"].read_bytes())
    head = 64 * 1024
    data[head:] = bytes(len(data) - head)  # media data zeroed: ffmpeg may give up early
    assert not fed(samples["h264"], data=bytes(data) * 4, chunk=16 * 1024)
