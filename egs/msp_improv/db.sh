# Corpus locations: one variable per corpus, each overridable from the environment, e.g.
#   MSP_IMPROV=/data/MSP-IMPROV ./run.sh
MSP_IMPROV=${MSP_IMPROV:-}  # MSP-IMPROV release root (Evalution.txt, Audio/session1..6); licensed: no download
NOISE=${NOISE:-}            # real-noise root: NOISE/<type>/*.wav (for noisy test sets)

# Which variable above is this recipe's corpus (run.sh reads it; the rest of run.sh is the same
# in every recipe).
corpus_var=MSP_IMPROV
