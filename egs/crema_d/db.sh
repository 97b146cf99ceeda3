# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   CREMA_D=/data/CREMA-D ./run.sh --stop_stage 1
CREMA_D=${CREMA_D:-}    # CREMA-D root holding AudioWAV/ (fetched with git lfs) and VideoDemographics.csv
NOISE=${NOISE:-}        # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=CREMA_D
