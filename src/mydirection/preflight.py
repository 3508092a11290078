"""The pre-flight check: run while the Snakefile is parsed, before any job is scheduled.

Light on purpose (standard library and PyYAML only, no pandas): a dry run stays fast.
Everything it finds is reported at once, one line each, then the run stops:

- ``raw_dir``: an empty value (``--config raw_dir=`` from an unset shell variable) is
  refused rather than silently analysing synthetic data; ``{``, ``}``, ``<`` or ``>`` in it
  (Snakemake wildcard syntax) are refused with the fix; the folder must exist;
- the key (real extracts): present, strong enough, outside the workflow directory
  (:mod:`mydirection.keys`); its fingerprint is returned for the rules' ``params``;
- the ten files: present under their exact names (a ``People.csv`` is named), regular
  files (not a folder, a named pipe or a looping link), readable, and with a header holding
  every contract column;
- content checksums of the raw extracts (:func:`checksums`), cached by path, size,
  modification and change time and inode, so an unchanged national extract is not re-hashed
  on every dry run; a copied-back file (``cp -p``) still changes its change time. Each is
  written to a stamp file (:func:`write_stamps`, ``results/clean/raw/<extract>.sha256``,
  rewritten only when the checksum changes) that the clean rules take as input, beside the
  raw file itself as ``ancient()``: a changed extract reruns exactly what depends on it, an
  unchanged one with a new date reruns nothing; the key fingerprint likewise;
- an interrupted run (SIGKILL, power loss) that left Snakemake's lock or incomplete-output
  markers behind: the first error line gives the recovery command.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import re
import stat
import sys
from pathlib import Path

from mydirection.contract import EXTRACTS, extract_schema
from mydirection.keys import SYNTHETIC_KEY, KeyProblem, fingerprint, load_key

#: Where the checksum cache lives (inside Snakemake's own folder of the working directory).
CACHE = Path(".snakemake") / "mydirection" / "checksums.json"
SYNTHETIC_DIR = "data/synthetic"
WILDCARD_CHARS = "{}<>"
MAX_HEADER = 1 << 20


class PreflightError(Exception):
    """The run cannot start; the message lists every problem found (one line each)."""


def _lines(problems: list[str]) -> str:
    if len(problems) == 1:
        return problems[0]
    return "\n".join(
        [f"{len(problems)} problems stop the run before it starts; fix them all, then re-run:"]
        + [f"  - {p}" for p in problems]
    )


def raw_dir_of(config: dict) -> tuple[str, bool]:
    """(folder of the raw extracts, synthetic?) from the config; refuses an empty raw_dir."""
    raw = config.get("raw_dir")
    if raw is None and any(re.fullmatch(r"raw_dir=\s*(''|\"\")?\s*", a) for a in sys.argv[1:]):
        raw = ""  # `--config raw_dir=` (an unset shell variable) reads as null: refuse it
    if raw is None:
        return SYNTHETIC_DIR, True
    text = str(raw)
    if not text.strip():
        raise PreflightError(
            "config setting raw_dir is empty (e.g. `--config raw_dir=$DIR` with DIR unset): "
            "give the folder holding the ten extracts, or leave raw_dir unset (null) for the "
            "synthetic demonstration data"
        )
    bad = sorted({c for c in text if c in WILDCARD_CHARS})
    if bad:
        raise PreflightError(
            f"config setting raw_dir {text!r}: the characters {' '.join(bad)} cannot be used in "
            f"a Snakemake input path (they are wildcard syntax); rename the folder, or make a "
            f"link without them (`ln -s {text!r} /path/extracts`) and set raw_dir to the link"
        )
    return text.rstrip("/") or "/", False


def key_fingerprint(config: dict, synthetic: bool, workflow_dir) -> str:
    """Fingerprint of the key the cleaning will use (raises PreflightError on a key problem)."""
    if synthetic:
        return fingerprint(SYNTHETIC_KEY)
    try:
        key = load_key(
            config.get("pseudonymisation") or {}, synthetic=False, workflow_dir=workflow_dir
        )
    except KeyProblem as err:
        raise PreflightError(str(err)) from None
    return fingerprint(key)


def file_problems(folder: str) -> list[str]:
    """Missing, misnamed, unreadable or header-broken extracts in ``folder`` (all of them)."""
    base = Path(folder)
    try:
        info = base.stat()
    except OSError as err:
        if err.errno == errno.ENOENT:
            return [
                f"raw_dir {folder}: folder not found; set raw_dir to the folder holding the ten extracts"
            ]
        return [
            f"raw_dir {folder}: cannot be reached ({err.strerror}); check the path and its permissions"
        ]
    if not stat.S_ISDIR(info.st_mode):
        return [
            f"raw_dir {folder}: not a folder; set raw_dir to the folder holding the ten extracts"
        ]
    try:
        present = {p.name for p in base.iterdir()}
    except OSError as err:
        return [
            f"raw_dir {folder}: cannot be listed ({err.strerror}); give read access (`chmod u+rx`)"
        ]
    problems = []
    for name in EXTRACTS:
        file = extract_schema(name)["file"]
        path = base / file
        problem = _one_file(path, file, present)
        if problem:
            problems.append(problem)
            continue
        problems.extend(_header(path, name))
    return problems


def _one_file(path: Path, file: str, present: set[str]) -> str | None:
    try:
        info = os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{path}: a symbolic link that loops; point it at the real file and re-run"
        if err.errno == errno.ENOENT:
            near = sorted(p for p in present if p.lower().replace(" ", "") == file and p != file)
            if near:
                return (
                    f"{path}: file not found, but the folder has {near[0]!r}: file names must be "
                    f"exactly {file!r} (lower case); rename it and re-run"
                )
            if os.path.islink(path):
                return f"{path}: a symbolic link to a file that does not exist; fix the link and re-run"
            return f"{path}: file not found; every one of the ten extracts must be in raw_dir"
        return f"{path}: cannot be reached ({err.strerror}); check its folder's permissions"
    if stat.S_ISDIR(info.st_mode):
        return f"{path}: is a folder, not a file; put the extract itself at this path"
    if not stat.S_ISREG(info.st_mode):
        kind = "a named pipe (FIFO)" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
        return f"{path}: is {kind}; save the extract as a regular file at this path"
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as err:
        return f"{path}: cannot be read ({err.strerror}); give read access (`chmod u+r`) and re-run"
    return None


def _header(path: Path, name: str) -> list[str]:
    """Header problems found from the first line alone (the full check runs in a job)."""
    with open(path, "rb") as fh:
        first = fh.readline(MAX_HEADER + 1).split(b"\r", 1)[0].rstrip(b"\n")
    if not first.strip() or len(first) > MAX_HEADER or b"\x00" in first:
        return []  # the validation job names these with their fix
    try:
        header = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []
    counts = {d: header.count(d) for d in ",;\t"}
    delimiter = max(counts, key=lambda d: (counts[d], d == ","))
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        names = {n.strip() for n in next(csv.reader([header], delimiter=delimiter), [])}
    finally:
        csv.field_size_limit(limit)
    columns = list(extract_schema(name)["columns"])
    missing = [c for c in columns if c not in names]
    if not missing:
        return []
    return [
        f"{path}, column {missing[0]}: missing from the header ({len(missing)} contract "
        f"column(s) missing: {', '.join(missing)}); add them (the columns are listed in "
        f"docs/data-contract.md) and re-export"
    ]


# --------------------------------------------------------------------------- checksums


def _signature(info: os.stat_result) -> list:
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(paths: dict[str, str], cache_path: str | Path = CACHE) -> dict[str, str]:
    """sha256 of each file (``"missing"`` where absent), re-hashed only when its
    (size, mtime_ns, ctime_ns, inode, device) changed since the cached value."""
    cache_path = Path(cache_path)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    out, changed = {}, False
    for name, path in paths.items():
        try:
            real = str(Path(path).resolve())
            info = os.stat(real)
        except (OSError, RuntimeError):
            out[name] = "missing"
            continue
        if not stat.S_ISREG(info.st_mode):
            out[name] = "missing"
            continue
        sig = _signature(info)
        hit = cache.get(real)
        if hit and hit.get("signature") == sig:
            out[name] = hit["sha256"]
            continue
        try:
            value = sha256_file(Path(real))
        except OSError:
            out[name] = "unreadable"
            continue
        cache[real] = {"signature": sig, "sha256": value}
        out[name] = value
        changed = True
    if changed:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cache, indent=0, sort_keys=True))
            os.replace(tmp, cache_path)
        except OSError:
            pass  # a read-only working directory: hash again next time
    return out


STAMPS = Path("results") / "clean" / "raw"


def write_stamps(sums: dict[str, str], key_fp: str | None, folder: str | Path = STAMPS) -> None:
    """One small file per raw extract holding its sha256 (and one with the key fingerprint),
    rewritten only when the value changes: the clean rules take them as inputs, so a
    changed extract or key reruns exactly what depends on it, whatever the files' dates."""
    folder = Path(folder)
    values = {f"{name}.sha256": value for name, value in sums.items()}
    if key_fp:
        values["key.fingerprint"] = key_fp
    for file, value in values.items():
        path = folder / file
        try:
            if path.is_file() and path.read_text().strip() == value:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(value + "\n")
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only working directory: the rules then rerun by date


# --------------------------------------------------------------------------- interrupted runs

_NO_LOCK = {"--unlock", "-n", "--dry-run", "--dryrun", "--lint", "--cleanup-metadata",
            "--cm", "--list", "-l", "--list-target-rules", "--lt", "--summary", "-S",
            "--detailed-summary", "-D", "--rulegraph", "--dag", "--d3dag", "--filegraph",
            "--list-changes", "--lc", "--touch", "-t", "--nolock", "--export-cwl",
            "--print-compilation", "--containerize", "--generate-unit-tests"}  # fmt: skip
_RERUN_INCOMPLETE = {"--rerun-incomplete", "--ri"}


def interrupted_run(argv: list[str] | None = None, workdir: str | Path = ".") -> str | None:
    """The recovery command when a killed run left a lock or incomplete outputs, else None."""
    argv = sys.argv[1:] if argv is None else argv
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    if flags & _NO_LOCK:
        return None
    meta = Path(workdir) / ".snakemake"
    locked = any((meta / "locks").glob("*.lock")) if (meta / "locks").is_dir() else False
    incomplete = []
    if (meta / "incomplete").is_dir() and not flags & _RERUN_INCOMPLETE:
        incomplete = [p for p in (meta / "incomplete").iterdir() if p.is_file()]
    if not locked and not incomplete:
        return None
    again = " ".join(["snakemake", *argv]) if argv else "snakemake --cores all"
    steps = (["snakemake --unlock"] if locked else []) + [
        again if "--rerun-incomplete" in again else f"{again} --rerun-incomplete"
    ]
    what = " and ".join(
        (["its lock"] if locked else [])
        + ([f"{len(incomplete)} incomplete output(s)"] if incomplete else [])
    )
    return (
        f"an earlier run in this folder was interrupted (killed?) and left {what}; if no other "
        f"Snakemake is running here, recover with: {' && '.join(steps)}"
    )


# --------------------------------------------------------------------------- the whole check


def check(config: dict, workflow_dir=".", *, main_process: bool = True) -> dict:
    """Run every check; return what the rules need (``raw_dir``, ``synthetic``,
    ``key_fingerprint``, ``checksums``) or raise :class:`PreflightError` listing all
    problems."""
    raw_dir, synthetic = raw_dir_of(config)
    problems = []
    if main_process:
        recovery = interrupted_run()
        if recovery:
            raise PreflightError(recovery)
    try:
        fp = key_fingerprint(config, synthetic, workflow_dir)
    except PreflightError as err:
        problems.append(str(err))
        fp = None
    sums = {}
    if not synthetic:
        problems.extend(file_problems(raw_dir))
        if not problems:
            sums = checksums({n: f"{raw_dir}/{extract_schema(n)['file']}" for n in EXTRACTS})
    if problems:
        raise PreflightError(_lines(problems))
    write_stamps(sums, fp)
    return {"raw_dir": raw_dir, "synthetic": synthetic, "key_fingerprint": fp, "checksums": sums}
