"""Readers on the real file formats: small PTB-XL / CPSC2018 / Chapman trees built in tmp_path,
the real records in ../shared/realdata, and hostile inputs that must fail with a named file."""
from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import wfdb

from beat_ray.data.cinc import ChapmanSource, CPSC2018Source
from beat_ray.data.errors import RecordError
from beat_ray.data.leads import LEADS
from beat_ray.data.ptbxl import PTBXLSource
from beat_ray.data.sources import SOURCES
from beat_ray.data.wfdb_io import parse_dx, read_challenge, read_dx, read_wfdb

PTBXL_LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def realdata() -> Path:
    """``<repo>/../shared/realdata`` (CI clones the repo beside ``shared/``); skip only if absent."""
    path = Path(__file__).resolve().parents[2] / "shared" / "realdata"
    if not path.is_dir():
        pytest.skip(f"real records not found at {path} (expected <repo>/../shared/realdata)")
    return path


def raises_record_error(reason: str, names: str, fn, *args, **kwargs) -> RecordError:
    """Assert fn raises RecordError with this exact reason and a message naming ``names``."""
    with pytest.raises(RecordError) as info:
        fn(*args, **kwargs)
    assert info.value.reason == reason, str(info.value)
    assert names in str(info.value), str(info.value)
    return info.value


def digital(n_leads: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-3000, 3000, size=(n_leads, n)).astype(np.int16)


def write_wfdb(directory: Path, name: str, names: list[str], d: np.ndarray, fs: int,
               units: str = "mV", gain: float = 1000.0) -> Path:
    """A format-16 WFDB record written by wfdb itself; returns the path without extension."""
    directory.mkdir(parents=True, exist_ok=True)
    k = len(names)
    wfdb.wrsamp(name, fs=fs, units=[units] * k, sig_name=names, d_signal=d.T.astype(np.int64),
                fmt=["16"] * k, adc_gain=[gain] * k, baseline=[0] * k, write_dir=str(directory))
    return directory / name


def write_challenge(directory: Path, name: str, dx: str | None, n: int = 1000, fs: int = 500,
                    leads: list[str] = list(LEADS), seed: int = 0, mat_format: str = "4") -> np.ndarray:
    """A Challenge record: MATLAB ``val`` (int16, 1000/mV) + header with ``# Dx:``; returns ``val``."""
    directory.mkdir(parents=True, exist_ok=True)
    val = digital(len(leads), n, seed)
    scipy.io.savemat(directory / f"{name}.mat", {"val": val}, format=mat_format)
    lines = [f"{name} {len(leads)} {fs} {n}"]
    for lead, row in zip(leads, val):
        checksum = (int(row.astype(np.int64).sum()) + 32768) % 65536 - 32768
        lines.append(f"{name}.mat 16x1+24 1000.0(0)/mV 16 0 {row[0]} {checksum} 0 {lead}")
    lines += ["# Age: 53", "# Sex: Male"] + ([f"# Dx: {dx}"] if dx is not None else [])
    lines += ["# Rx: Unknown", "# Hx: Unknown", "# Sx: Unknown"]
    (directory / f"{name}.hea").write_text("\n".join(lines) + "\n")
    return val


# ----------------------------------------------------------------------------------- PTB-XL
# A subset of the real scp_statements.csv rows (v1.0.3), columns and values unchanged.
SCP_STATEMENTS = """\
,description,diagnostic,form,rhythm,diagnostic_class,diagnostic_subclass,Statement Category,SCP-ECG Statement Description,AHA code,aECG REFID,CDISC Code,DICOM Code
NDT,non-diagnostic T abnormalities,1.0,1.0,,STTC,STTC,other ST-T descriptive statements,non-diagnostic T abnormalities,,,,
NST_,non-specific ST changes,1.0,1.0,,STTC,NST_,Basic roots for coding ST-T changes and abnormalities,non-specific ST changes,145,MDC_ECG_RHY_STHILOST,,
NORM,normal ECG,1.0,,,NORM,NORM,Normal/abnormal,normal ECG,1,,,F-000B7
IMI,inferior myocardial infarction,1.0,,,MI,IMI,Myocardial Infarction,inferior myocardial infarction,161,,,
ASMI,anteroseptal myocardial infarction,1.0,,,MI,AMI,Myocardial Infarction,anteroseptal myocardial infarction,165,,,
LVH,left ventricular hypertrophy,1.0,,,HYP,LVH,Ventricular Hypertrophy,left ventricular hypertrophy,142,,C71076,
1AVB,first degree AV block,1.0,,,CD,_AVB,"Sinus node dysfunction, atrial and AV-conduction defects",first degree AV block,,MDC_ECG_RHY_AV_HEART_BLK_DEG_1,C111088,
CLBBB,complete left bundle branch block,1.0,,,CD,CLBBB,Intraventricular and intra-atrial Conduction disturbances,(complete) left bundle branch block,104,MDC_ECG_BEAT_LBB_BLK_COMP,C62269,D3-33120 or 122752
ILMI,inferolateral myocardial infarction,1.0,,,MI,IMI,Myocardial Infarction,inferolateral myocardial infarction,,,,
ABQRS,abnormal QRS,,1.0,,,,Normal/abnormal,abnormal QRS,,,,
PVC,ventricular premature complex,,1.0,,,,Statements related to ectopic rhythm abnormalities,ventricular premature complex (beat),60,MDC_ECG_BEAT_V_P_C,,
LOWT,low amplitude T-waves,,1.0,,,,other ST-T descriptive statements,low amplitude T-waves,366,,,
LVOLT,low QRS voltages in the frontal and horizontal leads,,1.0,,,,Other QRS morphology descriptive statements,low QRS voltages in the frontal and horizontal leads,,,,
SR,sinus rhythm,,,1.0,,,Statements related to impulse formation (abnormalities),sinus rhythm,20,MDC_ECG_RHY_SINUS_RHY,,
AFIB,atrial fibrillation,,,1.0,,,Statements related to impulse formation (abnormalities),atrial fibrillation,50,MDC_ECG_RHY_ATR_FIB,,D3-31520
STACH,sinus tachycardia,,,1.0,,,Statements related to impulse formation (abnormalities),sinus tachycardia,21,MDC_ECG_RHY_SINUS_TACHY,,
SBRAD,sinus bradycardia,,,1.0,,,Statements related to impulse formation (abnormalities),sinus bradycardia,22,MDC_ECG_RHY_SINUS_BRADY,,
"""
DB_COLUMNS = ["ecg_id", "patient_id", "age", "sex", "height", "weight", "nurse", "site", "device",
              "recording_date", "report", "scp_codes", "heart_axis", "infarction_stadium1",
              "infarction_stadium2", "validated_by", "second_opinion", "initial_autogenerated_report",
              "validated_by_human", "baseline_drift", "static_noise", "burst_noise", "electrodes_problems",
              "extra_beats", "pacemaker", "strat_fold", "filename_lr", "filename_hr"]
# ecg_id -> (patient_id, scp_codes cell, strat_fold)
DB_ROWS = {
    1: (15709.0, "{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}", 3),
    2: (13243.0, "{'NORM': 80.0, 'SBRAD': 0.0}", 2),
    3: (13243.0, "{'IMI': 35.0, 'ASMI': 100.0, 'ABQRS': 0.0, 'SR': 0.0}", 9),
    4: (20372.0, "{'LVH': 50.0, 'NDT': 100.0, 'AFIB': 0.0}", 10),
    5: (17014.0, "{'1AVB': 100.0, 'CLBBB': 100.0, 'PVC': 100.0, 'STACH': 0.0}", 1),
    6: (17448.0, "{'PVC': 100.0}", 8),
    7: (19005.0, "{'ILMI': 100.0, 'NST_': 50.0, 'LOWT': 0.0, 'SR': 0.0}", 5),
    8: (11111.0, "NORM", 4),
    9: (12222.0, "{}", 6),
    10: (12223.0, "['NORM']", 7),
}
BAD_SCP = {8: "bad_scp_codes", 10: "bad_scp_codes"}
EXPECTED = {   # task -> ecg_id -> labels (the others are dropped: BAD_SCP, or no_label_in_task)
    "all": {1: ("LVOLT", "NORM", "SR"), 2: ("NORM", "SBRAD"), 3: ("ABQRS", "ASMI", "IMI", "SR"),
            4: ("AFIB", "LVH", "NDT"), 5: ("1AVB", "CLBBB", "PVC", "STACH"), 6: ("PVC",),
            7: ("ILMI", "LOWT", "NST_", "SR")},
    "diagnostic": {1: ("NORM",), 2: ("NORM",), 3: ("ASMI", "IMI"), 4: ("LVH", "NDT"), 5: ("1AVB", "CLBBB"),
                   7: ("ILMI", "NST_")},
    "subdiagnostic": {1: ("NORM",), 2: ("NORM",), 3: ("AMI", "IMI"), 4: ("LVH", "STTC"), 5: ("CLBBB", "_AVB"),
                      7: ("IMI", "NST_")},
    "superdiagnostic": {1: ("NORM",), 2: ("NORM",), 3: ("MI",), 4: ("HYP", "STTC"), 5: ("CD",), 7: ("MI", "STTC")},
    "form": {1: ("LVOLT",), 3: ("ABQRS",), 4: ("NDT",), 5: ("PVC",), 6: ("PVC",), 7: ("LOWT", "NST_")},
    "rhythm": {1: ("SR",), 2: ("SBRAD",), 3: ("SR",), 4: ("AFIB",), 5: ("STACH",), 7: ("SR",)},
}


@pytest.fixture(scope="module")
def ptbxl_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ptbxl")
    (root / "scp_statements.csv").write_text(SCP_STATEMENTS)
    rows = []
    for ecg_id, (pid, scp, fold) in DB_ROWS.items():
        lr, hr = f"records100/00000/{ecg_id:05d}_lr", f"records500/00000/{ecg_id:05d}_hr"
        write_wfdb(root / "records100" / "00000", f"{ecg_id:05d}_lr", PTBXL_LEADS, digital(12, 1000, ecg_id), 100)
        write_wfdb(root / "records500" / "00000", f"{ecg_id:05d}_hr", PTBXL_LEADS, digital(12, 5000, ecg_id), 500)
        row = dict.fromkeys(DB_COLUMNS)
        row.update(ecg_id=ecg_id, patient_id=pid, age=56.0, sex=1, nurse=2.0, site=0.0, device="CS-12   E",
                   recording_date="1984-11-09 09:17:34", report="sinusrhythmus normales ekg", scp_codes=scp,
                   validated_by_human=True, second_opinion=False, initial_autogenerated_report=False,
                   strat_fold=fold, filename_lr=lr, filename_hr=hr)
        rows.append(row)
    pd.DataFrame(rows, columns=DB_COLUMNS).to_csv(root / "ptbxl_database.csv", index=False)
    return root


@pytest.mark.parametrize("task", list(EXPECTED))
def test_ptbxl_labels_folds_classes_and_drops(ptbxl_root, task):
    index = SOURCES["ptbxl"]().index(ptbxl_root, task)
    got = {int(r.record_id): r.labels for r in index.refs}
    assert got == EXPECTED[task]
    assert index.classes == sorted({c for labs in EXPECTED[task].values() for c in labs})
    assert {int(r.record_id): r.fold for r in index.refs} == {k: DB_ROWS[k][2] for k in EXPECTED[task]}
    patients = {k: str(int(DB_ROWS[k][0])) for k in EXPECTED[task]}
    assert {int(r.record_id): r.patient_id for r in index.refs} == patients
    no_label = {k: "no_label_in_task" for k in DB_ROWS if k not in BAD_SCP and k not in EXPECTED[task]}
    assert {int(rid): reason for rid, reason, _ in index.dropped} == {**BAD_SCP, **no_label}
    if task == "superdiagnostic":
        assert index.classes == ["CD", "HYP", "MI", "NORM", "STTC"]


@pytest.mark.parametrize("fs,folder,n", [(100, "records100", 1000), (500, "records500", 5000),
                                         (250, "records100", 1000), (360, "records500", 5000)])
def test_ptbxl_fs_picks_nearest_stored_rate_and_reads_mv(ptbxl_root, fs, folder, n):
    src = PTBXLSource(fs=fs)
    ref = next(r for r in src.index(ptbxl_root, "superdiagnostic").refs if r.record_id == "3")
    assert folder in ref.path
    sig, fs_in = src.read(ref)
    assert fs_in == (100 if folder == "records100" else 500) and sig.shape == (12, n) and sig.dtype == np.float32
    np.testing.assert_allclose(sig, digital(12, n, 3) / 1000.0, atol=1e-6)


@pytest.mark.parametrize("csv,column", [("ptbxl_database.csv", "strat_fold"), ("ptbxl_database.csv", "scp_codes"),
                                        ("scp_statements.csv", "diagnostic_class")])
def test_ptbxl_csv_missing_column(ptbxl_root, tmp_path, csv, column):
    root = tmp_path / "broken"
    shutil.copytree(ptbxl_root, root, ignore=shutil.ignore_patterns("records*"))
    path = root / csv
    df = pd.read_csv(path, index_col=0 if csv == "scp_statements.csv" else None)
    df.drop(columns=[column]).to_csv(path, index=csv == "scp_statements.csv")
    err = raises_record_error("missing_columns", csv, PTBXLSource().index, root, "all")
    assert column in str(err)


def test_ptbxl_missing_csv_and_unknown_task(tmp_path, ptbxl_root):
    raises_record_error("missing_file", "ptbxl_database.csv", PTBXLSource().index, tmp_path, "all")
    with pytest.raises(ValueError, match="unknown task"):
        PTBXLSource().index(ptbxl_root, "beats")


# ----------------------------------------------------------------------------- CPSC2018 / Chapman
CPSC = {  # record -> (subfolder, Dx field as written, expected labels or drop reason)
    "A0001": ("", "426783006", ("NSR",)),
    "A0002": ("", "164889003,59118001", ("AF", "RBBB")),
    "A0003": ("", "713427006, 284470004", ("PAC", "RBBB")),
    "A0004": ("", "270492004,,164909002,", ("I-AVB", "LBBB")),
    "A0005": ("g2", "427172004,429622005,164931005,10370003", ("PVC", "STD", "STE")),
    "A0006": ("g2", "10370003", "no_label_in_task"),
    "A0007": ("g2/deeper", None, "missing_dx"),
}


@pytest.fixture(scope="module")
def cpsc_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cpsc")
    for i, (rec, (sub, dx, _)) in enumerate(CPSC.items()):
        write_challenge(root / sub, rec, dx, n=3000 + 500 * i, seed=i)
    write_challenge(root, "Q0001", "426783006")            # another database of the 2020 release: ignored
    return root


def test_cpsc2018_index(cpsc_root):
    src = SOURCES["cpsc2018"]()
    index = src.index(cpsc_root, "all")
    assert index.classes == ["AF", "I-AVB", "LBBB", "NSR", "PAC", "PVC", "RBBB", "STD", "STE"]
    expected = {k: v[2] for k, v in CPSC.items()}
    assert {r.record_id: r.labels for r in index.refs} == {k: v for k, v in expected.items() if isinstance(v, tuple)}
    assert {rid: why for rid, why, _ in index.dropped} == {k: v for k, v in expected.items() if isinstance(v, str)}
    assert all(r.patient_id == r.record_id and r.fold is None for r in index.refs)
    assert src.unknown_codes == Counter({"10370003": 2})


def test_cpsc2018_read_gain_and_length(cpsc_root):
    src = CPSC2018Source()
    ref = next(r for r in src.index(cpsc_root, "all").refs if r.record_id == "A0005")
    sig, fs = src.read(ref)
    assert fs == 500 and sig.shape == (12, 5000)
    np.testing.assert_allclose(sig, digital(12, 5000, 4) / 1000.0, atol=1e-6)


def test_challenge_empty_directory(tmp_path):
    raises_record_error("empty_directory", str(tmp_path), CPSC2018Source().index, tmp_path, "all")
    raises_record_error("missing_file", "nowhere", ChapmanSource().index, tmp_path / "nowhere", "rhythm")


CHAPMAN = {  # record -> Dx
    "JS00001": "426177001", "JS00002": "164889003,164890007", "JS00003": "427084000,59118001",
    "JS00004": "426783006,427393009", "JS00005": "713422000,233896004", "JS00006": "59118001",
    "JS00007": "426783006,59118001,,",
}


@pytest.fixture(scope="module")
def chapman_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chapman") / "WFDBRecords"
    for i, (rec, dx) in enumerate(CHAPMAN.items()):
        write_challenge(root / "01" / f"01{i // 4}", rec, dx, n=500, seed=10 + i)
    return root


@pytest.mark.parametrize("task,kwargs,expected,classes", [
    ("rhythm", {}, {"JS00001": ("SB",), "JS00002": ("AFIB", "AFL"), "JS00003": ("ST",), "JS00004": ("SA", "SR"),
                    "JS00005": ("AT", "AVNRT"), "JS00007": ("SR",)},
     ["AFIB", "AFL", "AT", "AVNRT", "SA", "SB", "SR", "ST"]),
    ("rhythm_groups", {}, {"JS00001": ("SB",), "JS00002": ("AFIB",), "JS00003": ("GSVT",), "JS00004": ("SR",),
                           "JS00005": ("GSVT",), "JS00007": ("SR",)}, ["AFIB", "GSVT", "SB", "SR"]),
    ("dx", {"min_count": 2}, {"JS00003": ("59118001",), "JS00004": ("426783006",), "JS00006": ("59118001",),
                              "JS00007": ("426783006", "59118001")}, ["426783006", "59118001"]),
    ("dx", {"min_count": 3}, {"JS00003": ("59118001",), "JS00006": ("59118001",), "JS00007": ("59118001",)},
     ["59118001"]),
])
def test_chapman_tasks(chapman_root, task, kwargs, expected, classes):
    index = SOURCES["chapman"](**kwargs).index(chapman_root.parent, task)
    assert {r.record_id: r.labels for r in index.refs} == expected
    assert index.classes == classes
    assert [(rid, why) for rid, why, _ in index.dropped] == [(k, "no_label_in_task")
                                                              for k in sorted(set(CHAPMAN) - set(expected))]
    assert all(r.patient_id == r.record_id and r.fold is None for r in index.refs)
    sig, fs = SOURCES["chapman"]().read(index.refs[0])
    assert fs == 500 and sig.shape == (12, 500) and np.isfinite(sig).all()


# --------------------------------------------------------------------------------- Dx parsing
@pytest.mark.parametrize("lines,codes", [
    (["# Dx: 164889003,59118001"], ["164889003", "59118001"]),
    (["# Dx: 164889003,59118001,"], ["164889003", "59118001"]),
    (["# Dx: 164889003,,59118001"], ["164889003", "59118001"]),
    (["#Dx:  164889003 , 59118001 ,, "], ["164889003", "59118001"]),
    (["Dx: 426783006"], ["426783006"]),                          # wfdb's comment form (no '#')
    (["# dx: 426783006,426783006"], ["426783006"]),
    (["# Age: 3", "# Dx: 1", "# Rx: x", "# Dx: 2,1"], ["1", "2"]),
    (["# Dx:"], []),
    (["# Dx: ,, "], []),
])
def test_parse_dx(lines, codes):
    assert parse_dx(lines, "rec.hea") == codes


def test_parse_dx_without_dx_line():
    raises_record_error("missing_dx", "rec.hea", parse_dx, ["# Age: 3", "# Sex: F"], "rec.hea")


# ------------------------------------------------------------------------------- real records
def test_real_mitdb_100_two_leads():
    rec = realdata() / "mitdb" / "100"
    sig, fs = read_wfdb(rec, require_all=False)
    assert fs == 360 and sig.shape == (12, 650000) and sig.dtype == np.float32
    filled = [LEADS[i] for i in range(12) if np.isfinite(sig[i]).all()]
    assert filled == ["II", "V5"] and np.isnan(np.delete(sig, [1, 10], axis=0)).all()
    raw = wfdb.rdrecord(str(rec)).p_signal
    np.testing.assert_allclose(sig[1], raw[:, 0], atol=1e-6)       # MLII -> II
    np.testing.assert_allclose(sig[10], raw[:, 1], atol=1e-6)      # V5
    assert 0.05 < np.median(np.abs(sig[1])) < 5 and np.abs(sig[1]).max() < 10   # mV, not digital units
    raises_record_error("missing_leads", "100", read_wfdb, rec)


def test_real_ptb_s0010_re_twelve_leads():
    sig, fs = read_wfdb(realdata() / "ptbdb" / "s0010_re")
    assert fs == 1000 and sig.shape == (12, 38400) and sig.dtype == np.float32 and np.isfinite(sig).all()
    # lead order after mapping i, ii, ... v6: Einthoven (I + III = II) and aVR + aVL + aVF = 0 up to 1 LSB
    assert np.abs(sig[0] + sig[2] - sig[1]).max() < 2e-3
    assert np.abs(sig[3] + sig[4] + sig[5]).max() < 2e-3
    assert 0.3 < np.abs(sig).max() < 5                             # mV (gain 2000/mV in the header)


REAL_DX = {
    "E07500": "67741000119109,426177001", "E07501": "253352002,427084000", "E07502": "427084000",
    "E07503": "253352002,427084000", "E07504": "111975006", "E07505": "164873001", "E07506": "426783006",
    "E07507": "428750005,111975006", "E07508": "253352002,427084000", "E07509": "59118001,426177001",
    "HR06000": "164934002,426783006", "HR06001": "426783006,55930002", "HR06002": "426177001,426783006,713426002",
    "HR06003": "426783006,427084000", "HR06004": "426783006", "JS20000": "284470004,427084000,698252002,55930002",
    "JS20001": "284470004,427084000,698252002", "JS20002": "284470004,251187003,164934002,59931005",
    "JS20003": "284470004,427084000,55827005,164934002,427172004", "JS20004": "284470004,427084000,55827005,427172004",
    "JS20005": "284470004,89792004,427084000,427172004", "JS20006": "284470004,427084000,55827005,164934002,427172004",
    "JS20007": "284470004,426177001,59931005,164934002", "JS20008": "284470004,427393009",
    "JS20009": "284470004,427084000,55930002",
}


def test_real_cinc2021_records():
    root = realdata() / "cinc2021"
    assert sorted(p.stem for p in root.glob("*.hea")) == sorted(REAL_DX)
    for rec, codes in REAL_DX.items():
        assert read_dx(root / rec) == codes.split(",")
        sig, fs = read_challenge(root / f"{rec}.hea")
        assert fs == 500 and sig.shape == (12, 5000) and sig.dtype == np.float32 and np.isfinite(sig).all()
        if rec.startswith("HR"):
            val = scipy.io.loadmat(root / f"{rec}.mat")["val"]
            np.testing.assert_allclose(sig, val / 1000.0, atol=1e-6)     # 1000/mV ('/mv' in HR headers)
    index = ChapmanSource().index(root, "rhythm")
    assert {r.record_id: r.labels for r in index.refs} == {
        "JS20000": ("ST",), "JS20001": ("ST",), "JS20003": ("ST",), "JS20004": ("ST",), "JS20005": ("ST",),
        "JS20006": ("ST",), "JS20007": ("SB",), "JS20008": ("SA",), "JS20009": ("ST",)}
    assert [(rid, why) for rid, why, _ in index.dropped] == [("JS20002", "no_label_in_task")]


# ----------------------------------------------------------------------------------- hostile
@pytest.fixture
def rec12(tmp_path) -> Path:
    return write_wfdb(tmp_path, "r12", list(LEADS), digital(12, 1000, 7), 250)


def test_missing_files_and_garbage_header(tmp_path, rec12):
    raises_record_error("missing_file", "nope.hea", read_wfdb, tmp_path / "nope")
    (tmp_path / "junk.hea").write_text("this is not a header\n")
    raises_record_error("bad_header", "junk.hea", read_wfdb, tmp_path / "junk")
    (tmp_path / "r12.dat").unlink()
    raises_record_error("missing_file", "r12.dat", read_wfdb, rec12)


def test_truncated_dat(rec12):
    dat = rec12.with_suffix(".dat")
    dat.write_bytes(dat.read_bytes()[:5000])
    raises_record_error("header_data_mismatch", "r12.dat", read_wfdb, rec12)


@pytest.mark.parametrize("claimed", [2000, 900])
def test_header_with_wrong_sample_count(rec12, claimed):
    hea = rec12.with_suffix(".hea")
    hea.write_text(hea.read_text().replace("r12 12 250 1000", f"r12 12 250 {claimed}", 1))
    raises_record_error("header_data_mismatch", "r12.dat", read_wfdb, rec12)


def test_unknown_lead_and_eleven_leads(tmp_path):
    bad = write_wfdb(tmp_path, "bad", [*LEADS[:11], "X9"], digital(12, 500, 1), 500)
    raises_record_error("unknown_lead", "bad.hea", read_wfdb, bad)
    eleven = write_wfdb(tmp_path, "eleven", list(LEADS[:11]), digital(11, 500, 2), 500)
    raises_record_error("missing_leads", "eleven.hea", read_wfdb, eleven)
    sig, _ = read_wfdb(eleven, require_all=False)
    assert np.isnan(sig[11]).all() and np.isfinite(sig[:11]).all()


def test_lead_order_units_and_bad_units(tmp_path):
    order = ["V6", "aVF", "I", "V1", "III", "aVR", "II", "V2", "aVL", "V3", "V5", "V4"]
    d = digital(12, 400, 3)
    sig, fs = read_wfdb(write_wfdb(tmp_path, "uv", order, d, 500, units="uV", gain=1.0))
    assert fs == 500
    for row, name in zip(d, order):
        np.testing.assert_allclose(sig[LEADS.index(name)], row / 1000.0, atol=1e-6)   # uV -> mV
    degc = write_wfdb(tmp_path, "degc", list(LEADS), d, 500, units="degC")
    raises_record_error("bad_units", "degc.hea", read_wfdb, degc)


def test_challenge_hostile_mat(tmp_path):
    write_challenge(tmp_path, "A9001", "426783006", n=800, seed=5)
    mat = tmp_path / "A9001.mat"
    mat.write_bytes(mat.read_bytes()[:-100])
    raises_record_error("header_data_mismatch", "A9001.mat", read_challenge, tmp_path / "A9001")
    mat.unlink()
    raises_record_error("missing_file", "A9001.mat", read_challenge, tmp_path / "A9001")


def test_challenge_mat_v5_fallback(tmp_path):
    val = write_challenge(tmp_path, "A9002", "426783006", n=600, seed=6, mat_format="5")
    sig, fs = read_challenge(tmp_path / "A9002")
    assert fs == 500
    np.testing.assert_allclose(sig, val / 1000.0, atol=1e-6)
    scipy.io.savemat(tmp_path / "A9002.mat", {"signal": val})
    raises_record_error("bad_mat", "A9002.mat", read_challenge, tmp_path / "A9002")
    scipy.io.savemat(tmp_path / "A9002.mat", {"val": val[:, :500]})
    raises_record_error("header_data_mismatch", "A9002.mat", read_challenge, tmp_path / "A9002")
