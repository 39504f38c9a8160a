"""Write an `ECGDataset` as a PTB-XL v1.0.3 release tree (WFDB records + the two CSVs).

Why: it lets the real PTB-XL reader be exercised end to end on thousands of records
(benchmarks, integration tests) without the real download, and lets `synth` be handed to
tools that only read PTB-XL. Synth classes map onto real SCP codes whose `scp_statements`
rows aggregate to the same superdiagnostic class (e.g. AMI -> ASMI -> MI).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import wfdb

from beat_ray.data.dataset import ECGDataset
from beat_ray.progress import progress_bar

PTBXL_LEAD_NAMES = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]

# Rows of the real scp_statements.csv (v1.0.3) for the codes used below; columns as released.
SCP_STATEMENTS_CSV = """\
,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass,Statement Category,SCP-ECG Statement Description,AHA code,aECG REFID,CDISC Code,DICOM Code
NDT,non-diagnostic T abnormalities,1.0,1.0,,STTC,STTC,other ST-T descriptive statements,non-diagnostic T abnormalities,,,,
NST_,non-specific ST changes,1.0,1.0,,STTC,NST_,Basic roots for coding ST-T changes and abnormalities,non-specific ST changes,145,MDC_ECG_RHY_STHILOST,,
NORM,normal ECG,1.0,,,NORM,NORM,Normal/abnormal,normal ECG,1,,,F-000B7
IMI,inferior myocardial infarction,1.0,,,MI,IMI,Myocardial Infarction,inferior myocardial infarction,161,,,
ASMI,anteroseptal myocardial infarction,1.0,,,MI,AMI,Myocardial Infarction,anteroseptal myocardial infarction,165,,,
LVH,left ventricular hypertrophy,1.0,,,HYP,LVH,Ventricular Hypertrophy,left ventricular hypertrophy,142,,C71076,
CLBBB,complete left bundle branch block,1.0,,,CD,CLBBB,Intraventricular and intra-atrial Conduction disturbances,(complete) left bundle branch block,104,MDC_ECG_BEAT_LBB_BLK_COMP,C62269,D3-33120 or 122752
CRBBB,complete right bundle branch block,1.0,,,CD,CRBBB,Intraventricular and intra-atrial Conduction disturbances,(complete) right bundle branch block,105,MDC_ECG_BEAT_RBB_BLK_COMP,C62261,
PVC,ventricular premature complex,,1.0,,,,Statements related to ectopic rhythm abnormalities,ventricular premature complex (beat),60,MDC_ECG_BEAT_V_P_C,,
SR,sinus rhythm,,,1.0,,,Statements related to impulse formation (abnormalities),sinus rhythm,20,MDC_ECG_RHY_SINUS_RHY,,
AFIB,atrial fibrillation,,,1.0,,,Statements related to impulse formation (abnormalities),atrial fibrillation,50,MDC_ECG_RHY_ATR_FIB,,D3-31520
STACH,sinus tachycardia,,,1.0,,,Statements related to impulse formation (abnormalities),sinus tachycardia,21,MDC_ECG_RHY_SINUS_TACHY,,
SBRAD,sinus bradycardia,,,1.0,,,Statements related to impulse formation (abnormalities),sinus bradycardia,22,MDC_ECG_RHY_SINUS_BRADY,,
"""
SYNTH_TO_SCP = {"SR": "SR", "SBRAD": "SBRAD", "STACH": "STACH", "AFIB": "AFIB", "PVC": "PVC",
                "LVH": "LVH", "STD": "NST_", "TINV": "NDT", "IMI": "IMI", "AMI": "ASMI",
                "RBBB": "CRBBB", "LBBB": "CLBBB", "NORM": "NORM"}
DIAGNOSTIC_SCP = {"NORM", "LVH", "NST_", "NDT", "IMI", "ASMI", "CRBBB", "CLBBB"}


def scp_codes_for(classes: list[str], row: np.ndarray) -> dict[str, float]:
    """SCP codes of one record; NORM is added when no diagnostic code is present, as in PTB-XL."""
    codes = {SYNTH_TO_SCP[c]: 100.0 for c, on in zip(classes, row) if on and c in SYNTH_TO_SCP}
    if not DIAGNOSTIC_SCP & set(codes):
        codes["NORM"] = 100.0
    return codes


def write_ptbxl(ds: ECGDataset, root: str | Path, classes: list[str] | None = None,
                labels: np.ndarray | None = None, progress: bool = False) -> Path:
    """Write `ds` at its own fs as records100/ (fs=100) or records500/ (otherwise) plus the CSVs.

    `classes`/`labels` default to the dataset's own; pass synth's fine-grained "all" labels
    to get the full code set.
    """
    root = Path(root)
    classes = list(classes if classes is not None else ds.classes)
    labels = np.asarray(labels if labels is not None else ds.labels)
    sub, suffix = ("records100", "lr") if ds.fs == 100 else ("records500", "hr")
    rows = []
    for i in progress_bar(range(len(ds)), desc="write ptbxl", disable=not progress):
        ecg_id = i + 1
        rel = f"{sub}/{ecg_id // 1000 * 1000:05d}/{ecg_id:05d}_{suffix}"
        folder = root / Path(rel).parent
        folder.mkdir(parents=True, exist_ok=True)
        digital = np.round(np.asarray(ds.signals[i], dtype=np.float64) * 1000.0).astype(np.int64)
        wfdb.wrsamp(Path(rel).name, fs=ds.fs, units=["mV"] * 12, sig_name=PTBXL_LEAD_NAMES,
                    d_signal=np.clip(digital, -32767, 32767).T, fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, write_dir=str(folder))
        pid = str(ds.patient_ids[i]).lstrip("p") or str(i)
        rows.append({"ecg_id": ecg_id, "patient_id": float(int(pid)) if pid.isdigit() else pid,
                     "scp_codes": str(scp_codes_for(classes, labels[i])), "strat_fold": int(ds.folds[i]),
                     "filename_lr": rel, "filename_hr": rel})
    pd.DataFrame(rows).to_csv(root / "ptbxl_database.csv", index=False)
    (root / "scp_statements.csv").write_text(SCP_STATEMENTS_CSV)
    return root
