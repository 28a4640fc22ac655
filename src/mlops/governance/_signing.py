"""Ed25519 signatures over artifact digests: key pairs, fingerprints, sign and verify.

A signature covers the UTF-8 bytes of a digest's hex string (what the registry records
for every artifact), so verifying needs the digest and the signer's public key only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from mlops.errors import InvalidInput, NotFound

__all__ = [
    "PrivateKeyLike",
    "PublicKeyLike",
    "generate_keypair",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
    "sign_digest",
    "verify_digest",
    "write_keypair",
]

#: A private key object, its PEM (bytes or text), or the path of a PEM file.
PrivateKeyLike = Ed25519PrivateKey | bytes | str | Path
#: A public key object, its PEM (bytes or text), or the path of a PEM file.
PublicKeyLike = Ed25519PublicKey | bytes | str | Path

_PEM_BEGIN = "-----BEGIN"
_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


def generate_keypair() -> tuple[bytes, bytes]:
    """A new Ed25519 key pair as (private PEM, PKCS#8 unencrypted; public PEM, SPKI)."""
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return private_pem, public_key_pem(private_key.public_key())


def write_keypair(folder: str | Path, name: str = "mlops") -> tuple[Path, Path]:
    """Write a new key pair as ``<name>.key`` (mode 0600) and ``<name>.pub`` in ``folder``.

    Returns:
        The paths of the private and the public key file.

    Raises:
        InvalidInput: either file exists already (nothing is overwritten), or ``name``
            is empty or contains a path separator.
    """
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or (os.sep in name)
    ):
        raise InvalidInput(
            f"key name {name!r} is not a file name; give a plain name such as 'mlops'"
        )
    directory = Path(folder)
    private_path = directory / f"{name}.key"
    public_path = directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise InvalidInput(_exists_message(path))
    directory.mkdir(parents=True, exist_ok=True)
    private_pem, public_pem = generate_keypair()
    _write_new_file(private_path, private_pem, _PRIVATE_MODE)
    try:
        _write_new_file(public_path, public_pem, _PUBLIC_MODE)
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def _write_new_file(path: Path, content: bytes, mode: int) -> None:
    # O_EXCL closes the race with a concurrent writer; the mode is set at creation so the
    # private key is never readable by others, even for a moment.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as error:
        raise InvalidInput(_exists_message(path)) from error
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    os.chmod(path, mode)  # the umask may have narrowed the mode given to os.open


def _exists_message(path: Path) -> str:
    return (
        f"key file {str(path)!r} already exists and is not overwritten; "
        "choose another name or folder, or remove the old key pair first"
    )


def load_private_key(path_or_pem: PrivateKeyLike) -> Ed25519PrivateKey:
    """An Ed25519 private key from a key object, PEM bytes/text, or a PEM file's path.

    Raises:
        InvalidInput: the PEM does not parse, is encrypted, or is not an Ed25519 key.
        NotFound: the file does not exist.
    """
    if isinstance(path_or_pem, Ed25519PrivateKey):
        return path_or_pem
    pem, source = _read_pem(path_or_pem, "private")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError as error:
        raise InvalidInput(
            f"{source} is encrypted; give an unencrypted PKCS#8 key (as written by `write_keypair`)"
        ) from error
    except (ValueError, UnsupportedAlgorithm) as error:
        hint = ""
        if b"PUBLIC KEY" in pem:
            hint = " (it holds a public key; signing needs the private .key file)"
        raise InvalidInput(
            f"{source} is not a PEM private key{hint}; give the .key file written by "
            "`write_keypair`"
        ) from error
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(
            f"{source} is not an Ed25519 key (found {_key_kind(key)}); "
            "create one with `write_keypair`"
        )
    return key


def load_public_key(path_or_pem: PublicKeyLike) -> Ed25519PublicKey:
    """An Ed25519 public key from a key object, PEM bytes/text, or a PEM file's path.

    Raises:
        InvalidInput: the PEM does not parse or is not an Ed25519 public key.
        NotFound: the file does not exist.
    """
    if isinstance(path_or_pem, Ed25519PublicKey):
        return path_or_pem
    pem, source = _read_pem(path_or_pem, "public")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        hint = ""
        if b"PRIVATE KEY" in pem:
            hint = " (it holds a private key; share and verify with the .pub file only)"
        raise InvalidInput(
            f"{source} is not a PEM public key{hint}; give the .pub file written by `write_keypair`"
        ) from error
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(
            f"{source} is not an Ed25519 key (found {_key_kind(key)}); "
            "create one with `write_keypair`"
        )
    return key


def _read_pem(path_or_pem: bytes | str | Path, kind: str) -> tuple[bytes, str]:
    """The PEM bytes and a description of where they came from (for messages)."""
    if isinstance(path_or_pem, bytes):
        return path_or_pem, f"the given {kind} key PEM"
    if isinstance(path_or_pem, str) and path_or_pem.lstrip().startswith(_PEM_BEGIN):
        return path_or_pem.encode("utf-8"), f"the given {kind} key PEM"
    if not isinstance(path_or_pem, str | Path):
        raise InvalidInput(
            f"a {kind} key must be a key object, PEM bytes or text, or a file path; "
            f"got {type(path_or_pem).__name__}"
        )
    path = Path(path_or_pem)
    source = f"key file {str(path)!r}"
    try:
        return path.read_bytes(), source
    except FileNotFoundError as error:
        raise NotFound(
            f"{source} does not exist; create a key pair with `write_keypair`"
        ) from error
    except OSError as error:
        raise InvalidInput(f"{source} cannot be read: {error.strerror or error}") from error


def _key_kind(key: object) -> str:
    name = type(key).__name__.lstrip("_")
    for suffix in ("PrivateKey", "PublicKey"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


def public_key_pem(public_key: PublicKeyLike | Ed25519PrivateKey) -> bytes:
    """The SubjectPublicKeyInfo PEM of a public key (or of a private key's public half)."""
    key = (
        public_key.public_key()
        if isinstance(public_key, Ed25519PrivateKey)
        else load_public_key(public_key)
    )
    return key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )


def key_fingerprint(public_key: PublicKeyLike | Ed25519PrivateKey) -> str:
    """The hex SHA-256 of the raw 32-byte public key (64 characters)."""
    key = (
        public_key.public_key()
        if isinstance(public_key, Ed25519PrivateKey)
        else load_public_key(public_key)
    )
    raw = key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()


def sign_digest(private_key: PrivateKeyLike, digest_hex: str) -> str:
    """The base64 Ed25519 signature of the UTF-8 bytes of ``digest_hex``."""
    if not isinstance(digest_hex, str) or not digest_hex:
        raise InvalidInput(f"the digest to sign must be a non-empty hex string; got {digest_hex!r}")
    key = load_private_key(private_key)
    return base64.b64encode(key.sign(digest_hex.encode("utf-8"))).decode("ascii")


def verify_digest(public_key: PublicKeyLike, digest_hex: str, signature_b64: str) -> bool:
    """Whether ``signature_b64`` is the key's signature of ``digest_hex``.

    A wrong, tampered or malformed signature gives False; only an unusable public key
    raises (InvalidInput or NotFound, as ``load_public_key``).
    """
    key = load_public_key(public_key)
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        message = digest_hex.encode("utf-8")
    except (binascii.Error, ValueError, TypeError, AttributeError):
        return False  # not base64, or not text at all
    try:
        key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
