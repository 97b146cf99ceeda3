"""The report's title and provenance line (date and git commit)."""
import subprocess
from datetime import datetime


def git_revision(path):
    """`git rev-parse --short HEAD` of the repository holding `path`, or 'unknown'."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else "unknown"


def header_section(layout):
    """'# title' and 'Generated <date> from commit <revision> ...' lines."""
    inputs = layout.inputs
    date = inputs.date or datetime.now().strftime("%Y-%m-%d %H:%M")
    revision = inputs.revision or git_revision(layout.out_dir)
    return [f"# {inputs.title}", "", f"Generated {date} from commit `{revision}` by `python -m ser.bin.report`.", ""]
