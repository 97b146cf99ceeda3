"""What a report is made from (ReportInputs) and how its tables are laid out (Layout): the
corpora and conditions as columns, the models (experiment tags) as rows in paper order, their
labels, and the text of a score cell."""
import os
from dataclasses import dataclass, field
from typing import Optional

from ser.augment.settings import order as aug_order
from ser.eval.conditions import sort_key as condition_sort_key
from ser.eval.config_diff import config_differences, describe_values
from ser.eval.report.markdown import pm

# Row order of paper 1's tables; other models follow alphabetically.
MODEL_ORDER = ["cnn", "cnn_lstm", "densenet", "densenet_lstm", "densenet_lstm_highway", "cnn_blstm"]


@dataclass
class ReportInputs:
    """The aggregated results and the options of one report (ser.bin.report gathers them)."""
    summaries: list                      # ser.eval.aggregate.Summary, one per (corpus, tag, condition)
    descs: dict                          # (corpus, tag) -> description (ser.eval.aggregate.tag_config)
    out_path: str                        # the markdown file: links are relative to its directory
    title: str = "Results"
    corpus_notes: dict = field(default_factory=dict)     # corpus -> text
    protocol_note: Optional[str] = None  # an extra line of the protocol section
    folds_note: Optional[str] = None     # how the folds were made (default: leave-one-speaker-out)
    notes: Optional[str] = None          # markdown of a '## Notes' section after the protocol
    confusion_paths: dict = field(default_factory=dict)  # (corpus, tag, condition) -> PNG
    bar_charts: dict = field(default_factory=dict)       # (corpus, condition) -> PNG
    exp_dirs: dict = field(default_factory=dict)         # corpus -> exp dir (diffusion models: paper 2)
    fig_dir: Optional[str] = None        # where figures are copied to (default: next to the report)
    digits: int = 1                      # decimals of percentages
    date: Optional[str] = None           # default: now
    revision: Optional[str] = None       # default: the git commit of the report's directory


def model_sort_key(desc):
    """Paper order of a tag description: model (MODEL_ORDER), augmentation (the registry's), name."""
    m, a = str(desc.get("model")), desc.get("aug_key")
    return (MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER), m,
            aug_order(a)[0], str(desc.get("augmentation")), desc["name"])


def plain_label(d):
    """'model (features[, augmentation][; setting])' of a tag description (setting: from tag.yaml)."""
    extra = [str(d.get("features"))] + ([str(d["augmentation"])] if d.get("augmentation") not in (None, "none") else [])
    setting = f"; {d['setting']}" if d.get("setting") else ""
    return f"{d.get('model')} ({', '.join(extra)}{setting})"


def _repeats(labels):
    counts = {}
    for lab in labels.values():
        counts[lab] = counts.get(lab, 0) + 1
    return {lab for lab, n in counts.items() if n > 1}


def setting_labels(descs):
    """tag -> 'model (features, augmentation)'; tags that would share one get the config settings they
    differ in (e.g. 'model (spec; label_smoothing 0.1)'). Equal labels left are the same setting
    (e.g. on two corpora)."""
    labels = {tag: plain_label(d) for tag, d in descs.items()}
    for lab in _repeats(labels):
        tags = [t for t in labels if labels[t] == lab and not descs[t].get("setting")]
        if len(tags) > 1:
            diffs = config_differences([descs[t].get("config") for t in tags])
            for i, t in enumerate(tags):
                if diffs:
                    labels[t] = f"{lab[:-1]}; {describe_values(diffs, i)})"
    return labels


def row_labels(settings):
    """tag -> display label: its setting label (setting_labels), with the tag where that repeats."""
    repeated = _repeats(settings)
    return {tag: (lab if lab not in repeated else f"{lab} `{tag}`") for tag, lab in settings.items()}


class Layout:
    """The rows and columns of a report: corpora in first-seen order, columns (corpus, condition)
    in condition order, tags in paper order with their labels, summaries by (corpus, tag,
    condition), and whether the spreads are over seeds, folds or both (mixed)."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.summaries = summaries = inputs.summaries
        self.digits = inputs.digits
        self.out_dir = os.path.dirname(os.path.abspath(inputs.out_path))
        self.by_key = {(s.corpus, s.tag, s.condition): s for s in summaries}
        self.corpora = list(dict.fromkeys(s.corpus for s in summaries))
        self.columns = [(c, cond) for c in self.corpora
                        for cond in sorted({s.condition for s in summaries if s.corpus == c}, key=condition_sort_key)]
        self.tag_desc = {}
        for s in summaries:
            self.tag_desc.setdefault(s.tag, inputs.descs[(s.corpus, s.tag)])
        self.tags = sorted(dict.fromkeys(s.tag for s in summaries), key=lambda t: model_sort_key(self.tag_desc[t]))
        self.setting_labels = setting_labels(self.tag_desc)   # one per setting: rows may merge corpora
        self.labels = row_labels(self.setting_labels)           # one per tag
        self.modes = {s.mode for s in summaries}
        self.mixed = len(self.modes) > 1
        self.partial = any(not s.complete for s in summaries)

    def column_summaries(self, corpus, condition):
        """The summaries of one column, in row order."""
        return [self.by_key[(corpus, t, condition)] for t in self.tags if (corpus, t, condition) in self.by_key]

    def cell(self, s, mean, std):
        """'mean ± std' of a summary, marked † (over folds among rows over seeds), * (incomplete)
        and '(partial: k of n folds)'; '–' without a summary."""
        if s is None:
            return "–"
        text = pm(mean, std, self.digits)
        if self.mixed and s.mode == "folds":
            text += " †"
        if not s.complete:
            text += " *"
        if s.missing_folds:  # reported with --allow-partial only: say so in the cell itself
            text += f" (partial: {len(s.folds)} of {len(s.folds) + len(s.missing_folds)} folds)"
        return text

    def uar_cell(self, s):
        return self.cell(s, s.uar_mean, s.uar_std)
