#!/usr/bin/env bash
# Creates the recipe of a new corpus, egs/NAME: the links to the shared stage scripts (run.sh,
# path.sh, cmd.sh -> ../TEMPLATE/, utils -> ../../utils), db.sh with the corpus variable,
# local/data.sh, a documented local/prepare_NAME.py skeleton (ser.data.prepare), a one-line
# local/corpus_note.txt, and conf/ with classes.txt and folds.yaml. Every other config comes from
# egs/TEMPLATE/conf until the recipe has its own; --from RECIPE copies RECIPE's own configs
# (those it keeps instead of the shared ones: not its classes, folds, results or notes).
#   utils/new_recipe.sh [--from emodb] [--classes "anger happiness neutral sadness"] NAME
# Then edit local/prepare_NAME.py, conf/classes.txt, conf/folds.yaml, and run
#   cd egs/NAME && NAME_UPPER=/path/to/corpus ./run.sh
set -euo pipefail

from=                                        # recipe whose own configs are copied (default: none)
classes="anger happiness neutral sadness"   # conf/classes.txt: the corpus's labels
egs_dir=                                     # where recipes live (default: egs/ of this checkout)
help_message=$(sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//')
help_options=true
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

die() { echo "new_recipe.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: utils/new_recipe.sh [--from RECIPE] [--classes \"...\"] NAME"
name=$1
[[ $name =~ ^[a-z][a-z0-9_]*$ ]] || die "recipe name '$name': use lower-case letters, digits and _"
egs=${egs_dir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/egs}
[ -d "$egs/TEMPLATE" ] || die "--egs_dir $egs: no TEMPLATE/ (the shared stage scripts)"
[ ! -e "$egs/$name" ] || die "$egs/$name exists already"
src=
if [ -n "$from" ]; then
  src=$egs/$from/conf
  [ -d "$src" ] && [ "$from" != TEMPLATE ] || die "--from $from: no such recipe ($src)"
fi
var=$(echo "$name" | tr 'a-z' 'A-Z')

# Built under a temporary name and renamed: an interrupted run leaves no half recipe behind.
tmp=$egs/.$name.tmp
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/local" "$tmp/conf"
for f in run.sh path.sh cmd.sh; do ln -s ../TEMPLATE/$f "$tmp/$f"; done
ln -s ../../utils "$tmp/utils"

# --from: that recipe's own configs (classes and folds are the corpus's own: skeletons below).
if [ -n "$src" ]; then
  # links (e.g. a variant dir's link to a shared TEMPLATE config) stay links: relative to egs/
  # fold schemes (folds*.yaml) name the source corpus's speakers: not copied
  (cd "$src" && find . \( -type f -o -type l \) ! -name classes.txt ! -name 'folds*.yaml') | while read -r f; do
    mkdir -p "$(dirname "$tmp/conf/$f")"
    cp -P "$src/$f" "$tmp/conf/$f"
  done
  # Their comments may quote measurements of the source corpus: say where they come from.
  find "$tmp/conf" -type f -name '*.yaml' | while read -r f; do
    { echo "# Copied from egs/$from/conf by utils/new_recipe.sh (comments about $from's data describe $from)."
      cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
  done
fi
printf '%s\n' $classes > "$tmp/conf/classes.txt"
cat > "$tmp/conf/folds.yaml" <<EOF
# Validation speaker pairing for the leave-one-speaker-out folds of $name (make_folds --valid pair):
# in the fold that tests on one speaker of a pair, the other validates (early stopping, learning
# rate). Pair every speaker once, ideally a male with a female speaker (see egs/emodb/conf/folds.yaml).
# A corpus whose folds are not speaker pairs brings an executable local/make_folds.sh DATA FOLDS.
pairs: []   # e.g. ["spk01:spk02", "spk03:spk04"]
EOF

cat > "$tmp/db.sh" <<EOF
# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   $var=/data/$name ./run.sh
$var=\${$var:-}        # the $name corpus root (what local/prepare_$name.py reads)
NOISE=\${NOISE:-}        # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=$var
EOF

cat > "$tmp/local/data.sh" <<EOF
#!/usr/bin/env bash
# $name data preparation: writes a validated Kaldi data dir.
#   local/data.sh [--four-class true|false] CORPUS_DIR DATA_DIR
exec utils/corpus_data.sh "\$0" local/prepare_$name.py "\$@"
EOF
chmod +x "$tmp/local/data.sh"

cat > "$tmp/local/prepare_$name.py" <<EOF
#!/usr/bin/env python3
"""Writes a Kaldi data dir for $name (a skeleton made by utils/new_recipe.sh: edit it).

As written it reads the layout CORPUS/<speaker>/<emotion>/<file>.wav: speaker and emotion from
the directory names, utterance id <speaker>-<file stem> (ids start with their speaker id, so
that sorting by utterance groups speakers). Replace the loop with the corpus's own naming.

Tables (egs/README.md, "Data directories"): wav.scp, utt2spk, utt2emo (a label of
conf/classes.txt), utt2dur, and text, the transcript. A corpus without transcripts writes an
empty text for every utterance (as here): the tables stay complete, and paper 2's diffusion
conditioning then gets "| emotion: E | speaker: S" without a sentence.
"""
import argparse
import os

from ser.data.prepare import add_utterance, audio_duration, new_tables, write_data_dir
from ser.errors import SerError, run_main

FOUR_CLASS = ("anger", "happiness", "neutral", "sadness")
CORPUS_VAR = "$var"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--four-class", choices=["true", "false"], default="false",
                   help="keep only anger, happiness, neutral, sadness (the papers' 4 classes)")
    p.add_argument("corpus", help="the corpus root")
    p.add_argument("data_dir")
    args = p.parse_args(argv)

    if not os.path.isdir(args.corpus):
        raise SerError(f"{CORPUS_VAR}={args.corpus}: no such directory")
    tables = new_tables()
    for spk in sorted(os.listdir(args.corpus)):
        spk_dir = os.path.join(args.corpus, spk)
        if not os.path.isdir(spk_dir):
            continue
        for emotion in sorted(os.listdir(spk_dir)):
            label = emotion.lower()
            if args.four_class == "true" and label not in FOUR_CLASS:
                continue
            emo_dir = os.path.join(spk_dir, emotion)
            for name in sorted(f for f in os.listdir(emo_dir) if f.lower().endswith(".wav")):
                wav = os.path.abspath(os.path.join(emo_dir, name))
                add_utterance(tables, f"{spk}-{os.path.splitext(name)[0]}", wav, spk, "", label,
                              audio_duration(wav))
    if not tables["wav.scp"]:
        raise SerError(f"{CORPUS_VAR}={args.corpus}: no <speaker>/<emotion>/*.wav files "
                       f"(edit local/prepare_$name.py for this corpus's layout)")
    write_data_dir(args.data_dir, tables)
    print(f"prepare_$name: {len(tables['wav.scp'])} utterances of {len(set(tables['utt2spk'].values()))} "
          f"speakers -> {args.data_dir}")
    return 0


if __name__ == "__main__":
    run_main(main)
EOF
chmod +x "$tmp/local/prepare_$name.py"
echo "$name (describe the copy used: sample rate, what was kept or dropped)" > "$tmp/local/corpus_note.txt"

mv "$tmp" "$egs/$name"
trap - EXIT
echo "new_recipe.sh: created $egs/$name; edit local/prepare_$name.py, conf/classes.txt and conf/folds.yaml, then"
echo "  cd $egs/$name && $var=/path/to/corpus ./run.sh"
