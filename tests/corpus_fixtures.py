"""Small fixture trees in the official layouts of the licensed corpora (IEMOCAP, MSP-IMPROV,
CREMA-D), for testing the recipes' data preparation without the corpora.

Audio is a 0.3 s, 16 kHz 16-bit tone per file. Each generator writes the label/metadata files in
the release's own formats, with the edge cases the preparation must handle (labels to drop,
evaluator lines, extra white space, a labelled utterance without audio, stray files), and
returns the corpus root to point the recipe's variable at. What each tree holds is spelled out
next to its generator, so tests can state their expectations by hand.
"""
import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


# --------------------------------------------------------------------------------------------
# Helpers of the preparation tests: reading a written table, loading a recipe's local/ script
# as a module, running a recipe's command.
def read_table(path):
    """A Kaldi table file as {key: rest of the line}."""
    return dict(line.rstrip("\n").split(" ", 1) for line in open(path, encoding="utf-8"))


def load_script(path, name):
    """The Python script `path` (e.g. a recipe's local/prepare_*.py) imported as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_in(cwd, cmd, env):
    """Run `cmd` in directory `cwd` with environment `env`; the CompletedProcess (text output)."""
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def write_wav(path, seconds=0.3, sr=SR, freq=220.0):
    """A short tone as 16-bit PCM WAV (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * freq * t), sr, subtype="PCM_16")
    return path


# --------------------------------------------------------------------------------------------
# IEMOCAP: IEMOCAP_full_release/SessionN/{dialog/EmoEvaluation,dialog/transcriptions,
# sentences/wav/<dialog>}. Every session N has two dialogs, each speaker (F, M) talking in both:
#   SesNF_impro01:      F000 neu, M000 ang, F001 exc, M001 sad, F002 xxx, M002 fru
#   SesNM_script01_1:   F000 hap, M000 hap, F001 sad, M001 neu, F002 ang, M002 exc
# Session 1 also has: impro01 M003 neu without a WAV file; the label line of impro01 M000 with
# spaces instead of tabs; the transcript of script01_1 M001 missing; the transcript of impro01
# M000 with runs of spaces; a Categorical/ subdir and a macOS `._` file in EmoEvaluation holding
# conflicting label-like lines (both must be ignored).
# 4 classes (exc -> happiness): 10 utterances per session with audio, 5 per speaker.
IEMOCAP_DIALOGS = {
    "impro01": [("F000", "neu"), ("M000", "ang"), ("F001", "exc"), ("M001", "sad"),
                ("F002", "xxx"), ("M002", "fru")],
    "script01_1": [("F000", "hap"), ("M000", "hap"), ("F001", "sad"), ("M001", "neu"),
                   ("F002", "ang"), ("M002", "exc")],
}
IEMOCAP_EVALUATOR_LINES = ("C-E2:\tNeutral;\t()\nC-E3:\tNeutral;\t()\nC-F1:\tNeutral;\t(curious)\n"
                           "A-E3:\tval 3; act 2; dom  2;\t()\nA-F1:\tval 3; act 2; dom  1;\t()\n")


def iemocap_dialog(session, name):
    """Dialog name: the impro dialog is recorded with the female actor in the mocap suit, the
    script one with the male (the letter after SesNN)."""
    return f"Ses{session:02d}{'F' if name.startswith('impro') else 'M'}_{name}"


def make_iemocap(dest, sessions=(1, 2, 3, 4, 5)):
    root = Path(dest) / "IEMOCAP_full_release"
    for s in sessions:
        sdir = root / f"Session{s}"
        for name, turns in IEMOCAP_DIALOGS.items():
            dialog = iemocap_dialog(s, name)
            turns = list(turns) + ([("M003", "neu")] if s == 1 and name == "impro01" else [])
            evals = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            trans = []
            for i, (suffix, label) in enumerate(turns):
                utt = f"{dialog}_{suffix}"
                start, end = 1.5 * i + 0.1234, 1.5 * i + 1.0321
                line = f"[{start:.4f} - {end:.4f}]\t{utt}\t{label}\t[2.5000, 3.0000, 2.5000]"
                if s == 1 and utt.endswith("impro01_M000"):
                    line = f"[{start:.4f} -  {end:.4f}]   {utt}  {label}   [2.5000, 3.0000, 2.5000]  "
                evals += [line, IEMOCAP_EVALUATOR_LINES]
                text = "Excuse me." if (s, name, suffix) == (1, "impro01", "F000") else f"Line {i} of {utt}."
                if s == 1 and utt.endswith("impro01_M000"):
                    text = "Do   you  have your   forms?"
                if not (s == 1 and utt.endswith("script01_1_M001")):
                    trans.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}")
                if i == 2:
                    trans.append("M: [LAUGHTER]")  # not an utterance line
                    trans.append("")
                if not (s == 1 and suffix == "M003"):
                    write_wav(sdir / "sentences" / "wav" / dialog / f"{utt}.wav", freq=200 + 10 * i)
            (sdir / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (sdir / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(evals) + "\n")
            (sdir / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (sdir / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(trans) + "\n")
        cat = sdir / "dialog" / "EmoEvaluation" / "Categorical"
        cat.mkdir(parents=True, exist_ok=True)
        (cat / f"Ses{s:02d}F_impro01_e2_cat.txt").write_text(
            f"[0.1234 - 1.0321]\tSes{s:02d}F_impro01_F000\tang\t[1.0, 1.0, 1.0]\n")
        (sdir / "dialog" / "EmoEvaluation" / f"._Ses{s:02d}F_impro01.txt").write_bytes(
            b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X\n"
            + f"[0.1234 - 1.0321]\tSes{s:02d}F_impro01_F000\tsad\t[1.0, 1.0, 1.0]\n".encode())
    return root


# --------------------------------------------------------------------------------------------
# MSP-IMPROV: ROOT/Evalution.txt (the release's spelling) and
# ROOT/Audio/sessionN/S<nn><E>/<scenario>/MSP-IMPROV-<id>.wav. Six sessions, speakers F0N, M0N.
# Per speaker (ids S01A-<spk>-T-<pp>01 etc., pp = FM for F speakers, MF for M):
#   S01A .. T .. 01 -> A,  S01A .. R .. 01 -> H,  S02H .. S .. 01 -> N,  S02H .. P .. 01 -> S,
#   S03S .. S .. 02 -> X (no agreement, dropped),  S03S .. P .. 02 -> O (other, dropped)
# Each consensus line is followed by evaluator lines and a blank line. Session 1 also has: a
# labelled N utterance of F01 without audio (S04N-F01-P-FM03), the consensus line of F01's
# S02H-S-FM01 with extra white space, and a line with NaN dimensional values (M01's P-MF01).
# 4 per speaker, 48 utterances with audio, 12 speakers.
MSP_ITEMS = [("S01A", "T", "01", "A"), ("S01A", "R", "01", "H"), ("S02H", "S", "01", "N"),
             ("S02H", "P", "01", "S"), ("S03S", "S", "02", "X"), ("S03S", "P", "02", "O")]


def msp_id(sent, spk, scen, num):
    return f"{sent}-{spk}-{scen}-{'FM' if spk[0] == 'F' else 'MF'}{num}"


def make_msp_improv(dest, label_name="Evalution.txt"):
    root = Path(dest) / "MSP-IMPROV"
    lines = []
    for n in range(1, 7):
        for spk in (f"F{n:02d}", f"M{n:02d}"):
            items = list(MSP_ITEMS) + ([("S04N", "P", "03", "N")] if spk == "F01" else [])
            for i, (sent, scen, num, label) in enumerate(items):
                rest = msp_id(sent, spk, scen, num)
                dims = "A:3.000000; V:2.600000; D:3.000000 ; N:4.000000;"
                if spk == "M01" and scen == "P" and num == "01":
                    dims = "A:NaN; V:NaN; D:NaN ; N:NaN;"
                line = f"UTD-IMPROV-{rest}.avi; {label}; {dims}"
                if spk == "F01" and sent == "S02H" and scen == "S":
                    line = f"  UTD-IMPROV-{rest}.avi ;   {label} ;  {dims}   "
                lines += [line,
                          "rater-p01; Neutral; ; A:3.000000; V:3.000000; D:3.000000; N:4.000000;",
                          "rater-p02; Happy; Excited; A:4.000000; V:4.000000; D:3.000000; N:3.000000;",
                          ""]
                if (spk, sent, scen, num) != ("F01", "S04N", "P", "03"):
                    write_wav(root / "Audio" / f"session{n}" / sent / scen / f"MSP-IMPROV-{rest}.wav",
                              freq=200 + 15 * i)
    (root / label_name).write_text("\n".join(lines) + "\n")
    return root


# --------------------------------------------------------------------------------------------
# CREMA-D: ROOT/AudioWAV/<actor>_<sentence>_<emotion>_<level>.wav, ROOT/VideoDemographics.csv,
# ROOT/SentenceFilenames.csv. Ten actors, 5 male (1001 1005 1011 1014 1040), 5 female
# (1002 1003 1012 1013 1076), each with 8 clips:
#   DFA_{ANG,HAP,NEU,SAD,DIS,FEA}_XX, IEO_ANG_HI, IEO_SAD_LO  (6 of them in the 4 classes)
# except: 1040's ITH_SAD clip is named with the single-X level of the release's misnamed file
# (1040_ITH_SAD_X.wav) instead of IEO_SAD_LO; 1076 has MTI_SAD_XX (a known-broken clip listed in
# local/exclude.txt) instead of IEO_SAD_LO; 1003_DFA_FEA_XX.wav is empty (header only);
# AudioWAV also holds a stray 1001_DFA_ANG_XX (copy).wav and a README.txt.
# SentenceFilenames.csv lists every clip plus 1002_TIE_NEU_XX, which has no audio.
# VideoDemographics.csv has one row with extra white space (1011).
CREMA_MALE = ("1001", "1005", "1011", "1014", "1040")
CREMA_FEMALE = ("1002", "1003", "1012", "1013", "1076")
CREMA_CLIPS = ("DFA_ANG_XX", "DFA_HAP_XX", "DFA_NEU_XX", "DFA_SAD_XX", "DFA_DIS_XX", "DFA_FEA_XX",
               "IEO_ANG_HI", "IEO_SAD_LO")


def crema_clips(actor):
    clips = list(CREMA_CLIPS)
    if actor == "1040":
        clips[-1] = "ITH_SAD_X"
    if actor == "1076":
        clips[-1] = "MTI_SAD_XX"
    return [f"{actor}_{c}" for c in clips]


def make_crema_d(dest):
    root = Path(dest) / "CREMA-D"
    wav = root / "AudioWAV"
    names = []
    for actor in sorted(CREMA_MALE + CREMA_FEMALE):
        for i, name in enumerate(crema_clips(actor)):
            names.append(name)
            if name == "1003_DFA_FEA_XX":
                write_wav(wav / f"{name}.wav", seconds=0.0)
            else:
                write_wav(wav / f"{name}.wav", freq=180 + 20 * i)
    write_wav(wav / "1001_DFA_ANG_XX (copy).wav")
    (wav / "README.txt").write_text("not audio\n")
    rows = ['"ActorID","Age","Sex","Race","Ethnicity"']
    for actor in sorted(CREMA_MALE + CREMA_FEMALE):
        sex = "Male" if actor in CREMA_MALE else "Female"
        row = f'{actor},30,"{sex}","Caucasian","Not Hispanic"'
        if actor == "1011":
            row = f' {actor} , 32 , "{sex}" ,"Caucasian","Not Hispanic"'
        rows.append(row)
    (root / "VideoDemographics.csv").write_text("\n".join(rows) + "\n")
    # The study's list spells the misnamed clip with the level XX.
    listed = [n + "X" if n.endswith("_X") else n for n in names] + ["1002_TIE_NEU_XX"]
    (root / "SentenceFilenames.csv").write_text(
        '"Stimulus_Number","Filename"\n' + "".join(f'{i},"{n}"\n' for i, n in enumerate(listed, 1)))
    return root
