"""Test media, generated at test time by tests/make-sample-media.sh (small, seeded, synthetic).

``make_samples`` runs the script once; callers cache the result per session or module.
"""

import os
import random
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).with_name("make-sample-media.sh")

EPOCH = 1718028180  # 2024-06-10T14:03:00Z: the recording start the generator stamps into the clips
PHOTO_EPOCH = EPOCH + 125  # the JPEG's EXIF DateTimeOriginal
PHOTO_GPS = (52.52, 13.405)
MOV_GPS = (52.52, 13.405)

_FILES = {
    "h264": "a_bodycam_h264_aac_1080p30.mp4",
    "hevc": "b_bodycam_hevc_aac_1080p30.mp4",
    "mjpeg_avi": "c_legacy_mjpeg_pcm_640x480.avi",
    "mov_rotate": "d_camera_h264_rotate90.mov",
    "photo": "e_photo_exif.jpg",
    "wav": "f_interview.wav",
    "mp3": "f_interview.mp3",
    "missing_moov": "g_corrupt_missing_moov.mp4",
    "mdat_hole": "g_corrupt_mdat_hole.mp4",
    "zero": "h_zero_length.mp4",
    "moov_at_end": "i_bodycam_moov_at_end.mp4",
}


def have_exiftool() -> bool:
    """The generator writes the JPEG's EXIF with exiftool (Debian: libimage-exiftool-perl)."""
    return shutil.which("exiftool") is not None


def make_samples(out_dir: Path, seconds: int = 3, size: str = "640x360") -> dict[str, Path]:
    """Generate the corpus into ``out_dir``; keys are short names ("h264", "mdat_hole", ...).

    Besides the generator's files: "random" (seeded noise named .mp4) and "text" (prose named .mp4),
    the uploads that are not media at all.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SAMPLE_SECONDS": str(seconds), "SAMPLE_SIZE": size, "EPOCH": str(EPOCH)}
    subprocess.run(["bash", str(SCRIPT), str(out_dir)], env=env, check=True, capture_output=True, timeout=300)
    samples = {name: out_dir / filename for name, filename in _FILES.items()}
    samples["random"] = out_dir / "random_bytes.mp4"
    samples["random"].write_bytes(random.Random(4711).randbytes(64 * 1024))
    samples["text"] = out_dir / "notes.mp4"
    samples["text"].write_text("Hello, this is not a video.\nIt is a note someone saved as .mp4.\n")
    return samples


def make_orientation_clip(out_path: Path, *, codec_args: tuple[str, ...] = ()) -> Path:
    """A 1 s 320x180 clip with a red block in the top-left corner, flagged "turn 90 degrees clockwise".

    Shown upright, the block must end up in the top-right corner. Rotation is written the same way the
    generator writes the camera MOV's (see make-sample-media.sh, section d). ``codec_args`` override the
    default H.264 encode (e.g. 4:4:4 H.264, which forces a transcode).
    """
    plain = out_path.with_suffix(".plain.mp4")
    ff = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    picture = "color=blue:s=320x180:d=1:r=30,drawbox=x=0:y=0:w=60:h=40:color=red:t=fill"
    encode = codec_args or ("-c:v", "libx264", "-pix_fmt", "yuv420p")
    subprocess.run([*ff, "-f", "lavfi", "-i", picture, *encode, str(plain)], check=True, timeout=60)
    major = _ffmpeg_major()
    rotate_in: list[str] = [] if major < 6 else ["-display_rotation:v:0", "-90"]
    rotate_out: list[str] = ["-metadata:s:v:0", "rotate=-90"] if major < 6 else []
    subprocess.run(
        [*ff, *rotate_in, "-i", str(plain), "-c", "copy", *rotate_out, str(out_path)], check=True, timeout=60
    )
    plain.unlink()
    return out_path


def _ffmpeg_major() -> int:
    first = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True, check=True).stdout
    version = first.split()[2].lstrip("n")  # "ffmpeg version 5.1.9-0+deb12u1 ..."
    return int(version.split(".")[0]) if version[:1].isdigit() else 99
