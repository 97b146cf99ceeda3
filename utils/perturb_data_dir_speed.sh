#!/usr/bin/env bash
# Make a speed-perturbed copy of a data dir (Kaldi's utils/perturb_data_dir_speed.sh semantics).
#
#   utils/perturb_data_dir_speed.sh FACTOR SRC DEST       e.g. 0.9 data/all data/all_sp0.9
#
# DEST gets utterance ids sp<FACTOR>-<utt> and speakers sp<FACTOR>-<spk> (Kaldi's convention: a
# perturbed speaker is a new speaker for CMVN/i-vectors), utt2uniq (perturbed utt -> source utt,
# or the source's own utt2uniq value when SRC already has one), so cross-validation folds can
# follow the source utterance: a perturbed copy belongs to the fold of its utt2uniq.
# text, utt2emo and spk2gender are copied under the new ids; utt2dur is divided by FACTOR;
# spk2utt is rebuilt. wav.scp is lazy: each entry is a pipe running
#   python3 -m ser.bin.speed_perturb --factor FACTOR <src> |
# (a source entry that is itself a pipe is chained through '-'), so the audio is computed when
# the features are extracted; `python3` must be the one with `ser` installed (path.sh).
# Features (feats.scp, utt2num_frames, ...) are not copied: extract them again from DEST.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 FACTOR SRC DEST   (e.g. $0 0.9 data/all data/all_sp0.9)" >&2
  exit 1
fi
factor=$1; src=$2; dest=$3
die() { echo "$0: error: $*" >&2; exit 1; }

[[ $factor =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v f="$factor" 'BEGIN{exit !(f > 0)}' \
  || die "FACTOR must be a positive number like 0.9, got '$factor'"
for f in wav.scp utt2spk; do
  [ -f "$src/$f" ] || die "no such file: $src/$f"
done
[ "$(realpath -m "$src")" != "$(realpath -m "$dest")" ] || die "SRC and DEST are the same directory"
mkdir -p "$(dirname "$dest")"

validator="$(dirname "$0")/validate_data_dir.py"
# validate DIR: utils/validate_data_dir.py without features (and without text when DIR has none)
validate() {
  local opts="--no-feats"
  [ -f "$1/text" ] || opts="$opts --no-text"
  python3 "$validator" $opts "$1" >/dev/null
}
[ -f "$validator" ] || die "$validator not found"
if [ -f "$src/spk2utt" ]; then   # a complete data dir: its own errors name its own lines
  validate "$src" || die "$src is not a valid data dir; nothing written"
fi

export LC_ALL=C
prefix="sp${factor}-"
tmp=$(mktemp -d "${dest%/}.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# Prefix the key (and, for utt2spk, the speaker in the value) of a table.
awk -v p="$prefix" '{ $1 = p $1; $2 = p $2; print }' "$src/utt2spk" | sort > "$tmp/utt2spk"
if [ -f "$src/utt2uniq" ]; then
  awk -v p="$prefix" '{ print p $1, $2 }' "$src/utt2uniq" | sort > "$tmp/utt2uniq"
else
  awk -v p="$prefix" '{ print p $1, $1 }' "$src/utt2spk" | sort > "$tmp/utt2uniq"
fi
for f in text utt2emo; do
  if [ -f "$src/$f" ]; then
    # Keep the value verbatim (a transcript may contain several spaces).
    awk -v p="$prefix" '{ k = $1; sub(/^[^ \t]+/, ""); print p k $0 }' "$src/$f" | sort > "$tmp/$f"
  fi
done
if [ -f "$src/spk2gender" ]; then
  awk -v p="$prefix" '{ print p $1, $2 }' "$src/spk2gender" | sort > "$tmp/spk2gender"
fi
if [ -f "$src/utt2dur" ]; then
  awk -v p="$prefix" -v f="$factor" '{ printf "%s%s %.5f\n", p, $1, $2 / f }' "$src/utt2dur" | sort > "$tmp/utt2dur"
else
  echo "$0: warning: $src/utt2dur not found; $dest will have no utt2dur" >&2
fi

# Lazy audio: a path becomes "python3 -m ser.bin.speed_perturb --factor F path |",
# a pipe "cmd |" becomes "cmd | python3 -m ser.bin.speed_perturb --factor F - |".
awk -v p="$prefix" -v f="$factor" '{
  k = $1; v = $0; sub(/^[^ \t]+[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
  cmd = "python3 -m ser.bin.speed_perturb --factor " f
  if (v ~ /\|$/) print p k, v, cmd, "- |"; else print p k, cmd, v, "|"
}' "$src/wav.scp" | sort > "$tmp/wav.scp"

# spk2utt from utt2spk (both sorted, so utterance lists come out sorted).
awk '{ if ($2 in u) u[$2] = u[$2] " " $1; else u[$2] = $1 } END { for (s in u) print s, u[s] }' "$tmp/utt2spk" \
  | sort > "$tmp/spk2utt"

# The copy replaces DEST only once it validates (a bad source line is reported above, by SRC's line).
validate "$tmp" || die "validation of the copy of $src failed; $dest is unchanged"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "$0: made $dest from $src (speed factor $factor, $(wc -l < "$dest/utt2spk") utterances)"
