"""`render`: the report's sections in order, as one markdown text."""
from ser.eval.report.attack_table import attack_section
from ser.eval.report.bar_charts import bar_chart_section
from ser.eval.report.confusions import confusion_section
from ser.eval.report.ensembles import ensemble_section
from ser.eval.report.environment import environment_section
from ser.eval.report.header import header_section
from ser.eval.report.layout import Layout
from ser.eval.report.models_table import models_section
from ser.eval.report.noise_table import noise_section
from ser.eval.report.protocol import protocol_section
from ser.eval.report.claims import claims_section
from ser.eval.report.score_tables import per_class_section, per_fold_section, score_tables_section
from ser.eval.report.synthetic import synthetic_section


def notes_section(layout):
    """'## Notes': the recipe's reading of its results (local/results_note.md), verbatim."""
    notes = (layout.inputs.notes or "").strip("\n")
    return ["## Notes", "", notes, ""] if notes.strip() else []


SECTIONS = (header_section, protocol_section, notes_section, environment_section, score_tables_section,
            ensemble_section, noise_section, attack_section, claims_section, bar_chart_section, models_section,
            per_fold_section, per_class_section, confusion_section)


def render(inputs):
    """The markdown text of the report of `inputs` (a layout.ReportInputs). The synthetic-data
    section copies the mel grids it links next to the report (or into inputs.fig_dir)."""
    layout = Layout(inputs)
    text = "\n".join(line for section in SECTIONS for line in section(layout))
    synthetic = synthetic_section(inputs.exp_dirs, inputs.out_path, inputs.fig_dir, inputs.summaries, inputs.descs)
    if synthetic:
        text = text.rstrip("\n") + "\n\n" + "\n".join(synthetic).rstrip("\n") + "\n"
    return text
