#!/usr/bin/env bash
# make-sample-media.sh — synthesize a small but varied evidence-media test corpus.
#
# The project's own copy of the shared generator, so a newcomer can build test media from this repository
# alone. Differences from the shared script: SAMPLE_SECONDS / SAMPLE_SIZE make small fast clips for tests,
# and the MOV really carries a 90-degree clockwise rotation (see (d) below).
#
# Usage:
#   make-sample-media.sh OUTDIR            # the short corpus (a..i), ~160 MB, ~50 s on 2 cores
#   SAMPLE_SECONDS=3 SAMPLE_SIZE=640x360 make-sample-media.sh OUTDIR   # what the tests use: ~2 MB, a few s
#   make-sample-media.sh --long OUTDIR     # short corpus + 10-min 1080p30 H.264 body-cam clip (+616 MB, +35 s)
#   make-sample-media.sh --long-only OUTDIR
#
# Environment knobs:
#   LONG_MINUTES=10      length of the long clip
#   LONG_MODE=loop       loop: encode a 60 s unique segment, then stream-copy-loop it to LONG_MINUTES
#                              (~1 min of CPU; the burned-in clock repeats every 60 s)
#                        full: encode every frame (clock never repeats; ~7 min on 2 cores)
#   LONG_BITRATE=8M      target video bitrate of the long clip
#   EPOCH=1718028180     recording start, Unix seconds (2024-06-10T14:03:00Z); the JPEG's EXIF time is EPOCH+125
#   SAMPLE_SECONDS=30    length of the body-cam clips (a, b); the AVI is half, the MOV a third, the audio twice it
#   SAMPLE_SIZE=1920x1080  frame size of the body-cam clips and the MOV (tests use 640x360; the file names keep
#                        saying 1080p so they match the shared corpus)
#
# Reproducibility: noise sources use fixed seeds, so the short corpus is byte-identical between runs on the
# same ffmpeg build. Exception: the long clip uses x264 VBV (-maxrate/-bufsize), and x264 VBV + frame
# threading is not bit-exact run to run (same for (a) if you add -maxrate); pin -threads 1 if you need that.
#
# Needs: ffmpeg (built with libx264, libx265, libmp3lame, drawtext/freetype), coreutils.
# Optional: exiftool (Debian: libimage-exiftool-perl) to write EXIF into the JPEG; without it
#           the JPEG has no EXIF (ffmpeg cannot write EXIF) and a warning is printed.
#
# Files produced (all content is synthetic: testsrc2 pattern + sensor-like noise + tones):
#   a_bodycam_h264_aac_1080p30.mp4     H.264 High/AAC-LC mono 48k, 30 s, burned-in UTC clock, creation_time, faststart
#   b_bodycam_hevc_aac_1080p30.mp4     same content as HEVC (hvc1 tag) — needs transcode for Firefox/most Chrome builds
#   c_legacy_mjpeg_pcm_640x480.avi     MJPEG + PCM s16le 16 kHz mono, 15 s (older recorders)
#   d_camera_h264_rotate90.mov         QuickTime, H.264 1920x1080 + AAC stereo, display-matrix rotation 90, make/model/location
#   e_photo_exif.jpg                   4032x3024 JPEG, EXIF DateTimeOriginal/Make/Model/GPS (if exiftool)
#   f_interview.wav / f_interview.mp3  60 s audio-only recording (PCM 48k mono / MP3 64k mono)
#   g_corrupt_missing_moov.mp4         non-faststart MP4 truncated at 60 % -> no moov atom at all
#   g_corrupt_mdat_hole.mp4            faststart MP4 with 10 % of bytes cut out of the middle of mdat
#   h_zero_length.mp4                  0 bytes
#   i_bodycam_moov_at_end.mp4          stream copy of (a) with moov after mdat (not faststart)
#   long_bodycam_h264_1080p30_10min.mp4  (--long) 1080p30 H.264 ~8 Mbit/s + AAC, moov at end (as recorders write it)
set -euo pipefail

LONG=0; SHORT=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --long) LONG=1; shift ;;
    --long-only) LONG=1; SHORT=0; shift ;;
    -h|--help) awk 'NR>1 && /^#/{sub(/^# ?/,"");print;next} NR>1{exit}' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
OUT="${1:?usage: $0 [--long|--long-only] OUTDIR}"
mkdir -p "$OUT"

FFMPEG="${FFMPEG:-ffmpeg}"
FF=("$FFMPEG" -hide_banner -nostdin -loglevel error -y)
EPOCH="${EPOCH:-1718028180}"
LONG_MINUTES="${LONG_MINUTES:-10}"
LONG_MODE="${LONG_MODE:-loop}"
LONG_BITRATE="${LONG_BITRATE:-8M}"
SECS="${SAMPLE_SECONDS:-30}"
SIZE="${SAMPLE_SIZE:-1920x1080}"
[[ $SECS =~ ^[1-9][0-9]*$ ]] || { echo "SAMPLE_SECONDS must be a positive integer" >&2; exit 2; }
[[ $SIZE =~ ^([1-9][0-9]*)x([1-9][0-9]*)$ ]] || { echo "SAMPLE_SIZE must look like 640x360" >&2; exit 2; }
W="${BASH_REMATCH[1]}"; H="${BASH_REMATCH[2]}"
HALF="$(awk -v s="$SECS" 'BEGIN{printf "%g", s/2}')"     # the AVI
THIRD="$(awk -v s="$SECS" 'BEGIN{printf "%g", s/3}')"    # the MOV
DOUBLE=$((SECS * 2))                                      # the audio recording
# Keep the look of the 1080p corpus at other sizes: bitrates and the burned-in text scale with the frame.
kbps() { awk -v k="$1" -v w="$W" -v h="$H" 'BEGIN{v=int(k*w*h/(1920*1080)); if (v<200) v=200; printf "%dk", v}'; }
FONTSIZE=$(( H * 42 / 1080 > 10 ? H * 42 / 1080 : 10 ))
CT="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%S.000000Z)"        # creation_time tag
EXIFDATE="$(date -u -d "@$((EPOCH + 125))" +'%Y:%m:%d %H:%M:%S')"

FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
if [[ -f "$FONT" ]]; then FONTARG="fontfile=$FONT"; else FONTARG="font=Mono"; fi

# Body-cam look: test pattern + temporal sensor noise + burned-in UTC clock and device id.
# pts:gmtime:EPOCH renders "YYYY-MM-DD HH:MM:SS" from the frame timestamp.
bodycam_vf() {  # $1 = device label
  echo "noise=alls=10:allf=t:all_seed=4711,drawtext=${FONTARG}:text='$1  %{pts\\:gmtime\\:${EPOCH}} Z':x=40*w/1920:y=h-90*h/1080:fontsize=${FONTSIZE}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=8"
}
# Audio: a tone plus pink noise (room tone), mono 48 kHz.
AUDIO_SRC="sine=frequency=310:sample_rate=48000[s];anoisesrc=color=pink:amplitude=0.05:sample_rate=48000:seed=4711[n];[s][n]amix=inputs=2:duration=first"

step() { printf '  %-40s' "$1"; }
done_() { printf '%10s bytes\n' "$(stat -c %s "$1")"; }

if [[ $SHORT == 1 ]]; then
  echo "Writing short corpus into $OUT"

  # (a) body-cam H.264/AAC 1080p30, 30 s, faststart (SAMPLE_SIZE, SAMPLE_SECONDS)
  f="$OUT/a_bodycam_h264_aac_1080p30.mp4"; step "$(basename "$f")"
  "${FF[@]}" -f lavfi -i "testsrc2=size=${SIZE}:rate=30,$(bodycam_vf 'BC-4711 OFC 0815')" \
    -f lavfi -i "$AUDIO_SRC" -t "$SECS" \
    -c:v libx264 -preset superfast -profile:v high -pix_fmt yuv420p -b:v "$(kbps 8000)" -g 30 \
    -c:a aac -b:a 96k -ac 1 \
    -metadata creation_time="$CT" -metadata title="BC-4711 event 000123" \
    -metadata comment="device=BC-4711;officer=0815;agency=TESTPD" \
    -movflags +faststart "$f"
  done_ "$f"

  # (b) same content, HEVC in MP4 (hvc1 tag so Safari accepts it; Chrome/Firefox often will not)
  f="$OUT/b_bodycam_hevc_aac_1080p30.mp4"; step "$(basename "$f")"
  "${FF[@]}" -f lavfi -i "testsrc2=size=${SIZE}:rate=30,$(bodycam_vf 'BC-4712 OFC 0816')" \
    -f lavfi -i "$AUDIO_SRC" -t "$SECS" \
    -c:v libx265 -preset ultrafast -b:v "$(kbps 4000)" -pix_fmt yuv420p -tag:v hvc1 -x265-params log-level=error \
    -c:a aac -b:a 96k -ac 1 \
    -metadata creation_time="$CT" -metadata title="BC-4712 event 000124" \
    -movflags +faststart "$f"
  done_ "$f"

  # (c) legacy recorder: MJPEG + PCM in AVI
  f="$OUT/c_legacy_mjpeg_pcm_640x480.avi"; step "$(basename "$f")"
  "${FF[@]}" -f lavfi -i "testsrc2=size=640x480:rate=30,noise=alls=8:allf=t:all_seed=4711,drawtext=${FONTARG}:text='CAM2 %{pts\\:gmtime\\:${EPOCH}}':x=10:y=h-40:fontsize=22:fontcolor=yellow" \
    -f lavfi -i "sine=frequency=500:sample_rate=16000" -t "$HALF" \
    -c:v mjpeg -q:v 6 -pix_fmt yuvj420p -c:a pcm_s16le -ac 1 \
    -metadata creation_time="$CT" -metadata date="${CT%%T*}" -metadata title="legacy DVR export" "$f"
  done_ "$f"

  # (d) digital-camera MOV: H.264 + AAC stereo, rotation in the display matrix, QuickTime make/model/location
  # The display matrix must say "turn 90 degrees clockwise to show" (a phone held upright: exiftool reports
  # Rotation 90, ffprobe's side-data 'rotation' reports -90 because it counts counter-clockwise, and ffmpeg's
  # autorotate applies transpose=clock). ffmpeg 5.1 writes the matrix only on a stream-copy pass, and its
  # '-metadata:s:v rotate=N' override there is applied counter-clockwise: rotate=90 (what the shared script
  # uses) yields a 270-degree clockwise file (exiftool 270, ffprobe 90). So ask for -90 on 5.1.
  # ffmpeg >= 6 removed the override; its input option -display_rotation is counter-clockwise by definition.
  # tests/test_media.py checks the direction on real pixels, so a change in either convention shows up there.
  f="$OUT/d_camera_h264_rotate90.mov"; step "$(basename "$f")"
  tmp="$OUT/.d_tmp.mov"
  "${FF[@]}" -f lavfi -i "testsrc2=size=${SIZE}:rate=30000/1001,noise=alls=6:allf=t:all_seed=4711" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$THIRD" \
    -c:v libx264 -preset superfast -pix_fmt yuv420p -b:v "$(kbps 12000)" -c:a aac -b:a 128k -ac 2 "$tmp"
  major="$("$FFMPEG" -hide_banner -version | sed -n '1s/^ffmpeg version n\{0,1\}\([0-9]*\).*/\1/p')"
  if [[ -n $major && $major -lt 6 ]]; then rot_in=(); rot_out=(-metadata:s:v:0 rotate=-90)
  else rot_in=(-display_rotation:v:0 -90); rot_out=(); fi
  "${FF[@]}" "${rot_in[@]}" -i "$tmp" -map 0 -c copy "${rot_out[@]}" \
    -metadata creation_time="$CT" -metadata make="Canon" -metadata model="Canon EOS R6" \
    -metadata location="+52.5200+013.4050/" \
    -metadata com.apple.quicktime.make="Canon" -metadata com.apple.quicktime.model="Canon EOS R6" \
    -metadata com.apple.quicktime.location.ISO6709="+52.5200+013.4050+034.000/" \
    -movflags use_metadata_tags "$f"
  rm -f "$tmp"
  done_ "$f"

  # (e) JPEG photo + EXIF
  f="$OUT/e_photo_exif.jpg"; step "$(basename "$f")"
  "${FF[@]}" -f lavfi -i "testsrc2=size=4032x3024:rate=1,noise=alls=6:allf=t:all_seed=4711" -frames:v 1 -q:v 3 "$f"
  if command -v exiftool >/dev/null 2>&1; then
    exiftool -q -overwrite_original \
      -DateTimeOriginal="$EXIFDATE" -CreateDate="$EXIFDATE" -ModifyDate="$EXIFDATE" \
      -OffsetTimeOriginal="+00:00" -Make="Canon" -Model="Canon EOS R6" -Orientation#=1 \
      -SerialNumber="032021001234" -Artist="Evidence Tech 42" \
      -GPSLatitude=52.52 -GPSLatitudeRef=N -GPSLongitude=13.405 -GPSLongitudeRef=E "$f"
  else
    echo "(WARNING: exiftool not found; JPEG has no EXIF)" >&2
  fi
  done_ "$f"

  # (f) audio-only interview recording (WAV PCM + MP3)
  f="$OUT/f_interview.wav"; step "$(basename "$f")"
  "${FF[@]}" -f lavfi -i "aevalsrc=0.3*sin(2*PI*(180+60*sin(2*PI*0.5*t))*t)*(0.5+0.5*sin(2*PI*0.3*t)):s=48000" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.03:sample_rate=48000:seed=4711" \
    -filter_complex "[0][1]amix=inputs=2:duration=first" -t "$DOUBLE" -c:a pcm_s16le -ac 1 \
    -metadata date="${CT%%T*}" -metadata title="Interview room 3" -metadata artist="Det. Example" "$f"
  done_ "$f"
  f2="$OUT/f_interview.mp3"; step "$(basename "$f2")"
  "${FF[@]}" -i "$f" -c:a libmp3lame -b:a 64k -ac 1 -id3v2_version 3 \
    -metadata date="${CT%%T*}" -metadata title="Interview room 3" "$f2"
  done_ "$f2"

  # (i) moov at end: plain stream copy of (a) without +faststart (the muxer default)
  f="$OUT/i_bodycam_moov_at_end.mp4"; step "$(basename "$f")"
  "${FF[@]}" -i "$OUT/a_bodycam_h264_aac_1080p30.mp4" -map 0 -c copy -map_metadata 0 "$f"
  done_ "$f"

  # (g1) truncated mid-recording (battery died): moov never written
  f="$OUT/g_corrupt_missing_moov.mp4"; step "$(basename "$f")"
  src="$OUT/i_bodycam_moov_at_end.mp4"; sz=$(stat -c %s "$src")
  head -c $((sz * 6 / 10)) "$src" > "$f"
  done_ "$f"

  # (g2) bytes cut out of the middle of mdat (moov intact at the front, chunk offsets now wrong)
  f="$OUT/g_corrupt_mdat_hole.mp4"; step "$(basename "$f")"
  src="$OUT/a_bodycam_h264_aac_1080p30.mp4"; sz=$(stat -c %s "$src")
  { head -c $((sz * 4 / 10)) "$src"; tail -c +$((sz * 5 / 10 + 1)) "$src"; } > "$f"
  done_ "$f"

  # (h) zero-length upload
  f="$OUT/h_zero_length.mp4"; step "$(basename "$f")"
  : > "$f"
  done_ "$f"
fi

if [[ $LONG == 1 ]]; then
  secs=$((LONG_MINUTES * 60))
  f="$OUT/long_bodycam_h264_1080p30_${LONG_MINUTES}min.mp4"
  echo "Writing long clip ($LONG_MINUTES min, mode=$LONG_MODE, ${LONG_BITRATE}bit/s) into $OUT"
  step "$(basename "$f")"
  enc=(-c:v libx264 -preset superfast -profile:v high -pix_fmt yuv420p
       -b:v "$LONG_BITRATE" -maxrate "$LONG_BITRATE" -bufsize 16M -g 30 -c:a aac -b:a 96k -ac 1)
  if [[ $LONG_MODE == full || $secs -le 60 ]]; then
    "${FF[@]}" -f lavfi -i "testsrc2=size=1920x1080:rate=30,$(bodycam_vf 'BC-4711 OFC 0815')" \
      -f lavfi -i "$AUDIO_SRC" -t "$secs" "${enc[@]}" -metadata creation_time="$CT" "$f"
  else
    seg="$OUT/.long_segment_60s.mp4"
    "${FF[@]}" -f lavfi -i "testsrc2=size=1920x1080:rate=30,$(bodycam_vf 'BC-4711 OFC 0815')" \
      -f lavfi -i "$AUDIO_SRC" -t 60 "${enc[@]}" "$seg"
    "${FF[@]}" -stream_loop $((LONG_MINUTES - 1)) -i "$seg" -map 0 -c copy -t "$secs" \
      -metadata creation_time="$CT" "$f"
    rm -f "$seg"
  fi
  done_ "$f"
fi
echo "done."
