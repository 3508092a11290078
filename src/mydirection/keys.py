"""The pseudonymisation key: where it comes from, how strong it must be, its fingerprint.

Light on purpose (standard library only): the pre-flight check (:mod:`mydirection.preflight`)
runs it while the Snakefile is parsed, before any job is scheduled.

Rules (documented in ``workflow/schemas/config.schema.yaml``, section ``pseudonymisation``):

- synthetic extracts (``raw_dir`` null) always use the public :data:`SYNTHETIC_KEY`; real
  extracts never do;
- real extracts: the environment variable ``key_env`` (default ``MYDIRECTION_PSEUDO_KEY``),
  else the file ``key_file``, which must lie outside the workflow directory (and outside the
  installed package's checkout); a key file group- or world-readable gets a warning;
- one normalisation for both sources (:func:`normalise_key`): the UTF-8 bytes with
  surrounding whitespace (spaces, tabs, line ends) removed, so the same secret gives the same
  person ids whether it is exported or kept in a file;
- strength (:func:`key_problem`): at least :data:`MIN_KEY_BYTES` bytes, at least
  :data:`MIN_DISTINCT` different characters, and not one short pattern repeated;
- the fingerprint (:func:`fingerprint`): the first 12 hex characters of
  HMAC-SHA256(key, "mydirection-key-fingerprint"). It tells a reviewer whether two builds
  used the same key without revealing it; it is a parameter of every cleaning rule, so a key
  change reruns the cleaning.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

log = logging.getLogger("mydirection.keys")

#: The fixed key used on synthetic extracts (``raw_dir: null``). It is not a secret: the
#: synthetic people do not exist. Real extracts need a key of their own.
SYNTHETIC_KEY = b"mydirection-synthetic-extracts-not-a-secret"

#: A real key must have at least this many bytes (a short key is easy to brute-force
#: against the small space of CRNs: one letter and six digits).
MIN_KEY_BYTES = 16
#: ... and at least this many different characters (refuses "aaaa..." and "    ...").
MIN_DISTINCT = 8

DEFAULT_KEY_ENV = "MYDIRECTION_PSEUDO_KEY"
FINGERPRINT_MESSAGE = b"mydirection-key-fingerprint"

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class KeyProblem(Exception):
    """The key is missing, weak or kept in the wrong place (message says how to fix it)."""


def how_to_set(env_name: str) -> str:
    return (
        f"set the environment variable {env_name} to a long random secret "
        f"(e.g. `export {env_name}=$(python3 -c 'import secrets; print(secrets.token_hex(32))')`) "
        f"or set pseudonymisation.key_file to a file outside the repository holding it "
        f"(`chmod 600` it); keep the same key to keep person ids stable across runs"
    )


def normalise_key(raw: bytes | str) -> bytes:
    """The key as used: UTF-8 bytes without surrounding whitespace (both sources alike)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    return raw.strip(b" \t\r\n\x0b\x0c")


def key_problem(key: bytes) -> str | None:
    """Why ``key`` is too weak, or None."""
    if len(key) < MIN_KEY_BYTES:
        return f"too short ({len(key)} bytes after trimming spaces; at least {MIN_KEY_BYTES})"
    distinct = len(set(key))
    if distinct < MIN_DISTINCT:
        return f"too little variety ({distinct} different characters; at least {MIN_DISTINCT})"
    for p in range(1, len(key) // 2 + 1):
        if len(key) % p == 0 and key[:p] * (len(key) // p) == key:
            return f"one {p}-character pattern repeated"
    return None


def fingerprint(key: bytes) -> str:
    """First 12 hex characters of HMAC-SHA256(key, "mydirection-key-fingerprint")."""
    return hmac.new(key, FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:12]


def _inside(path: Path, root: Path) -> bool:
    root = root.resolve()
    return path == root or root in path.parents


def load_key(
    settings: Mapping | None,
    *,
    synthetic: bool,
    workflow_dir: str | Path | None = None,
    repo_root: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The pseudonymisation key (see the module docstring); raises :class:`KeyProblem`.

    ``workflow_dir`` is the directory of the workflow being run (the Snakefile's folder,
    default the current directory); ``repo_root`` the checkout holding the installed package.
    A key file inside either is refused.
    """
    if synthetic:
        return SYNTHETIC_KEY
    settings = settings or {}
    environ = os.environ if environ is None else environ
    env_name = settings.get("key_env") or DEFAULT_KEY_ENV
    how = how_to_set(env_name)
    value = environ.get(env_name)
    if value is not None and normalise_key(value):
        key = normalise_key(value)
        source = f"the environment variable {env_name}"
    elif settings.get("key_file"):
        given = settings["key_file"]
        path = Path(given).expanduser()
        try:
            path = path.resolve(strict=True)
        except FileNotFoundError:
            raise KeyProblem(f"pseudonymisation.key_file {given}: file not found; {how}") from None
        except (OSError, RuntimeError) as err:  # a symlink loop, a permission problem
            raise KeyProblem(
                f"pseudonymisation.key_file {given}: cannot be read ({err}); {how}"
            ) from None
        roots = [Path(workflow_dir or Path.cwd()), Path(repo_root or PACKAGE_ROOT)]
        for root in roots:
            if _inside(path, root):
                raise KeyProblem(
                    f"pseudonymisation.key_file {given}: the key file is inside the workflow "
                    f"directory or repository ({root.resolve()}), where it could be committed or "
                    f"copied with the project; move it outside and point key_file at the new place"
                )
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise KeyProblem(f"pseudonymisation.key_file {given}: not a regular file; {how}")
            raw = path.read_bytes()
        except OSError as err:
            raise KeyProblem(
                f"pseudonymisation.key_file {given}: cannot be read ({err.strerror}); {how}"
            ) from None
        if info.st_mode & 0o077:
            log.warning(
                "pseudonymisation.key_file %s can be read by other users (mode %o); "
                "restrict it with `chmod 600 %s`",
                given,
                stat.S_IMODE(info.st_mode),
                given,
            )
        key = normalise_key(raw)
        source = f"the key file {given}"
    elif value is not None:
        raise KeyProblem(
            f"pseudonymisation key: the environment variable {env_name} is blank; {how}"
        )
    else:
        raise KeyProblem(f"no pseudonymisation key for real extracts: {how}")
    problem = key_problem(key)
    if problem:
        raise KeyProblem(f"pseudonymisation key from {source} is {problem}: {how}")
    return key


#: Hex characters of a person id (64 bits of the HMAC).
PSEUDONYM_HEX = 16


def pseudonymiser(key: bytes) -> Callable[[str], str]:
    """The person id of a CRN: HMAC-SHA256(key, crn) as hex, first 16 characters. The keyed
    state is made once and copied per value (the batched form of :func:`pseudonym`)."""
    base = hmac.new(key, digestmod=hashlib.sha256)

    def person_id(value: str) -> str:
        h = base.copy()
        h.update(value.encode("utf-8"))
        return h.hexdigest()[:PSEUDONYM_HEX]

    return person_id


def pseudonym(value: str, key: bytes) -> str:
    """The person id of one CRN (:func:`pseudonymiser`)."""
    return pseudonymiser(key)(value)


def source_key_pseudonymiser(key: bytes, domain: str) -> Callable[[str], str]:
    """A source-system key (event, contact, plan, ... id) of ``domain``: keyed BLAKE2b,
    16 hex characters, the domain as BLAKE2's personalisation (distinct per domain)."""
    base = hashlib.blake2b(digest_size=8, key=_domain_key(key), person=domain.encode()[:16])

    def one(value: str) -> str:
        h = base.copy()
        h.update(value.encode("utf-8"))
        return h.hexdigest()

    return one


def source_key_pseudonym(value: str, key: bytes, domain: str) -> str:
    """One source-system key's pseudonym (:func:`source_key_pseudonymiser`)."""
    return source_key_pseudonymiser(key, domain)(value)


def _domain_key(key: bytes) -> bytes:
    # BLAKE2b takes keys up to 64 bytes; longer keys are first reduced with SHA-256.
    return key if len(key) <= 64 else hashlib.sha256(key).digest()
