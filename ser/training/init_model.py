"""Start training from the weights of a trained model (ESPnet's `--init_param`), e.g. a model
trained on another corpus, fine-tuned on this one.

The training config's `init` section:

    init:
      model: ../ravdess/exp/all/<tag>/fold.1/seed1/model.pt   # a model.pt, or a dir holding one
      exclude: [classifier]    # parameter-name prefixes that keep their random initialisation

Every parameter and buffer of the new model is copied from the source model except those under
an `exclude` prefix (a prefix matches whole dotted components: `classifier` matches
`classifier.weight`, not `classifier2.weight`). The source must have been trained on the same
features (its `feat_conf`) and hold every copied tensor with the same shape; a source with other
classes (or another class order) must leave the output layer, `classifier`, to random
initialisation. The input normalisation is always this run's, from its training data.

The source must not have trained or validated on an utterance this fold tests on (a source from
another fold of the same leave-one-speaker-out scheme would put the test speaker into the weights):
its fold dir's train.list and valid.list (the source's config, resolved from its recipe dir) are
compared with this fold's test.list, ids also matched without one leading corpus prefix
(`emodb-03-03a01Fa` is `03-03a01Fa`, as the cross-corpus recipe names them). A source file
without a training config (not written by ser.bin.train) cannot be checked and says so in train.log.

`sha256` is the source file's checksum. ser.bin.train fills it in (a value given in the config
must match the file), so it is part of the resolved config and of the experiment hash: a
re-trained source model gives a new experiment instead of silently reusing the old outputs.
"""
import os

from ser.data.checksum import file_hexdigest
from ser.data.fold_dir import read_fold_lists
from ser.errors import SerError
from ser.eval.aggregate import resolve_path
from ser.runtime.config import config_diff
from ser.runtime.torch_files import MODEL_FILE
from ser.training.model_io import read_model_file

DEFAULT = {"model": "", "exclude": [], "sha256": ""}
OUTPUT_LAYER = "classifier"        # the output layer's name in every model of ser.models


def source_path(model):
    """The model file named by `init.model`: the path itself, or `<dir>/model.pt`."""
    return os.path.join(model, MODEL_FILE) if os.path.isdir(model) else model


def resolve(init):
    """The `init` section with `sha256` filled in from the source file (SerError naming the key
    when the section is malformed, the file is missing or the given checksum differs)."""
    exclude = init["exclude"]
    if not isinstance(exclude, list) or not all(isinstance(p, str) and p for p in exclude):
        raise SerError(f"init.exclude must be a list of parameter-name prefixes, got {exclude!r}")
    if not init["model"]:
        raise SerError("init: set init.model (a model.pt or a dir holding one) or leave the section out")
    path = source_path(init["model"])
    if not os.path.isfile(path):
        members = os.path.join(init["model"], "models")
        if os.path.isdir(members):     # a packed model (ser.bin.pack): an ensemble, not one model
            example = min(os.listdir(members), default="fold.1.seed1.pt")
            raise SerError(f"init.model: {init['model']} is a packed ensemble: name one of its members, "
                           f"e.g. {os.path.join(members, example)}")
        raise SerError(f"init.model: {path}: no such file (train the source model first)")
    sha = file_hexdigest(path, "sha256")
    if init["sha256"] and init["sha256"] != sha:
        raise SerError(f"init.sha256: {path} has checksum {sha}, the config expects {init['sha256']}")
    return {**init, "sha256": sha}


def excluded(key, prefixes):
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _without_corpus_prefix(utt):
    return utt.split("-", 1)[1] if "-" in utt else utt


def source_fold_dir(path, meta):
    """The fold dir the source model at `path` was trained on (its config's data.fold_dir, relative
    to the recipe dir that holds its exp/), or None for a model file without a training config."""
    fold_dir = ((meta.get("train_config") or {}).get("data") or {}).get("fold_dir")
    if not fold_dir:
        return None
    return resolve_path(str(fold_dir), os.path.dirname(os.path.abspath(path)))


def check_source_held_out(path, meta, test_utts):
    """SerError when the source model trained or validated on one of `test_utts`; the note's
    words on the check."""
    fold_dir = source_fold_dir(path, meta)
    if fold_dir is None:
        return "not checked against the test speakers (no training config in the file)"
    try:
        lists = read_fold_lists(fold_dir)
    except SerError as e:
        raise SerError(f"init.model: {path}: cannot check that it never saw this fold's test utterances: "
                       f"{e}") from None
    seen = set(lists["train"]) | set(lists["valid"])
    seen_unprefixed = {_without_corpus_prefix(u) for u in seen}   # a source with corpus-prefixed ids
    for utt in test_utts:
        if utt in seen or utt in seen_unprefixed or _without_corpus_prefix(utt) in seen:
            raise SerError(f"init.model: {path} was trained or validated on '{utt}', which this fold tests on "
                           f"(its folds: {fold_dir}): initialise from a model that never saw this fold's test speakers")
    return "never saw this fold's test utterances"


def initialise(model, init, classes, feat_conf, test_utts=()):
    """Copy the source model's tensors into `model` (see the module docstring); returns the
    one-line note for train.log. `classes`, `feat_conf` and `test_utts` (its test.list) are this run's."""
    path = source_path(init["model"])
    source = read_model_file(path)
    meta, weights = source["meta"], source["state_dict"]
    checked = check_source_held_out(path, meta, test_utts)
    differing = config_diff(meta["feat_conf"], feat_conf)
    if differing:
        raise SerError(f"init.model: {path} was trained on other features "
                       f"(differing: {', '.join(key for key, _, _ in differing)})")
    target = model.state_dict()
    prefixes = init["exclude"]
    unmatched = [p for p in prefixes if not any(excluded(k, [p]) for k in target)]
    if unmatched:
        raise SerError(f"init.exclude: {', '.join(unmatched)} matches no parameter of model {type(model).__name__}")
    copied = [k for k in target if not excluded(k, prefixes)]
    if list(meta["classes"]) != list(classes) and any(excluded(k, [OUTPUT_LAYER]) for k in copied):
        raise SerError(f"init.model: {path} has classes ({' '.join(meta['classes'])}) other than this run's "
                       f"({' '.join(classes)}): add {OUTPUT_LAYER} to init.exclude")
    for k in copied:
        if k not in weights:
            raise SerError(f"init.model: {path} has no tensor '{k}' (another model? exclude it with init.exclude)")
        if weights[k].shape != target[k].shape:
            raise SerError(f"init.model: {path}: '{k}' has shape {tuple(weights[k].shape)}, this model's is "
                           f"{tuple(target[k].shape)}")
    model.load_state_dict({**target, **{k: weights[k] for k in copied}})
    kept = len(target) - len(copied)
    unused = sum(1 for k in weights if k not in target)
    return (f"init from {path} (sha256 {init['sha256'][:12]}, model {meta['model_name']}, classes "
            f"{' '.join(meta['classes'])}): {len(copied)} tensors copied, {kept} under "
            f"{' '.join(prefixes) or '(none)'} initialised at random"
            + (f", {unused} of the source unused" if unused else "") + f"; {checked}")
