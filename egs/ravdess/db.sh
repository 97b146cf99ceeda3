# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   RAVDESS=/data/ravdess ./run.sh
RAVDESS=${RAVDESS:-}    # RAVDESS speech root holding Actor_01 ... Actor_24 (no download: set it)
NOISE=${NOISE:-}        # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=RAVDESS
