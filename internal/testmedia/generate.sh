#!/bin/sh
# generate.sh makes the small media files of this package with Debian's
# tools (apt-get install sox opus-tools vpx-tools; perl is in every Debian).
# Nothing is downloaded. Run it from this directory; the output is
# deterministic enough for the tests, which only need valid, non-silent
# media of a known shape:
#
#   alice.ogg  3 s of Opus (48 kHz mono, 20 ms frames): a 440 Hz tone with a
#              little noise, so that no two packets are alike.
#   bob.ogg    the same with a 660 Hz tone.
#   test.ivf   3 s of VP8 (IVF container), 64x48 at 15 fps: a moving
#              gradient with seeded noise, a key frame every 15 frames.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for spec in alice:440 bob:660; do
	name=${spec%%:*}
	freq=${spec#*:}
	sox -n -r 48000 -c 1 -b 16 "$tmp/$name.wav" \
		synth 3 sine "$freq" synth 3 whitenoise mix gain -n -6
	opusenc --quiet --bitrate 24 --framesize 20 --max-delay 100 \
		--comment "generator=jinglekit internal/testmedia/generate.sh" \
		"$tmp/$name.wav" "$name.ogg"
done

# A Y4M (YUV 4:2:0) clip: 45 frames of 64x48 whose luma gradient moves by
# 2 pixels a frame under seeded noise, and whose chroma changes slowly.
perl -e '
	my ($w, $h, $n) = (64, 48, 45);
	srand(1);
	binmode STDOUT;
	print "YUV4MPEG2 W$w H$h F15:1 Ip A1:1 C420jpeg\n";
	for my $f (0 .. $n - 1) {
		print "FRAME\n";
		my $y = "";
		for my $r (0 .. $h - 1) {
			for my $c (0 .. $w - 1) { $y .= chr((($c + $r + 2 * $f) * 4 + int(rand(24))) % 256) }
		}
		print $y;
		print chr((64 + 4 * $f) % 256) x (($w / 2) * ($h / 2));
		print chr((192 - 4 * $f) % 256) x (($w / 2) * ($h / 2));
	}
' > "$tmp/clip.y4m"
vpxenc --quiet --codec=vp8 --ivf --target-bitrate=100 --kf-max-dist=15 \
	--lag-in-frames=0 --good -o test.ivf "$tmp/clip.y4m" 2>/dev/null
ls -l alice.ogg bob.ogg test.ivf
