# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   IEMOCAP=/data/IEMOCAP_full_release ./run.sh --four_class true
IEMOCAP=${IEMOCAP:-}    # the IEMOCAP_full_release directory (Session1..Session5); licensed: no download
NOISE=${NOISE:-}        # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=IEMOCAP
