# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   EMODB=/data/emodb ./run.sh
EMODB=${EMODB:-}        # EmoDB root holding wav/ (official layout); empty: download in stage 0
NOISE=${NOISE:-}        # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=EMODB
