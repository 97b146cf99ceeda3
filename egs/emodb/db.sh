# Corpus locations. Each may be overridden from the environment, e.g.
#   EMODB=/data/emodb ./run.sh
# EMODB is the directory holding wav/ (the official archive's layout). When it is empty, stage 0
# tries to download the official archive into downloads/emodb.
EMODB=${EMODB:-}
