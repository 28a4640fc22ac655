"""Ed25519 signing of artifact digests: keys, fingerprints, sign and verify."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mlops.errors import InvalidInput, NotFound
from mlops.governance import (
    generate_keypair,
    key_fingerprint,
    load_private_key,
    load_public_key,
    public_key_pem,
    sign_digest,
    verify_digest,
    write_keypair,
)

DIGEST = hashlib.sha256(b"model bytes").hexdigest()


def test_generated_keys_are_pem() -> None:
    private_pem, public_pem = generate_keypair()
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert public_key_pem(load_private_key(private_pem)) == public_pem


def test_round_trip_with_pem_bytes_text_and_objects() -> None:
    private_pem, public_pem = generate_keypair()
    signature = sign_digest(private_pem, DIGEST)
    assert len(base64.b64decode(signature)) == 64
    assert verify_digest(public_pem, DIGEST, signature)
    assert verify_digest(public_pem.decode(), DIGEST, signature)
    assert verify_digest(load_public_key(public_pem), DIGEST, signature)
    # Ed25519 is deterministic: the same key and digest give the same signature.
    assert sign_digest(load_private_key(private_pem.decode()), DIGEST) == signature


def test_round_trip_with_key_files(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path, name="release")
    assert (private_path.name, public_path.name) == ("release.key", "release.pub")
    signature = sign_digest(private_path, DIGEST)
    assert verify_digest(public_path, DIGEST, signature)
    assert verify_digest(str(public_path), DIGEST, signature)


def test_tampered_digest_or_signature_does_not_verify() -> None:
    private_pem, public_pem = generate_keypair()
    signature = sign_digest(private_pem, DIGEST)
    tampered_digest = ("0" if DIGEST[0] != "0" else "1") + DIGEST[1:]
    assert not verify_digest(public_pem, tampered_digest, signature)
    raw = bytearray(base64.b64decode(signature))
    raw[0] ^= 0x01
    assert not verify_digest(public_pem, DIGEST, base64.b64encode(bytes(raw)).decode())
    assert not verify_digest(public_pem, DIGEST, base64.b64encode(bytes(raw[:-1])).decode())


@pytest.mark.parametrize("signature", ["", "not base64!", "%%%%", "YQ", "YWJj"])
def test_malformed_signature_does_not_verify(signature: str) -> None:
    _, public_pem = generate_keypair()
    assert verify_digest(public_pem, DIGEST, signature) is False


def test_wrong_key_does_not_verify() -> None:
    private_pem, _ = generate_keypair()
    _, other_public_pem = generate_keypair()
    assert not verify_digest(other_public_pem, DIGEST, sign_digest(private_pem, DIGEST))


def test_fingerprint_is_stable_hex_sha256_of_the_raw_key() -> None:
    private_pem, public_pem = generate_keypair()
    fingerprint = key_fingerprint(public_pem)
    assert len(fingerprint) == 64
    assert all(char in "0123456789abcdef" for char in fingerprint)
    assert key_fingerprint(public_pem) == fingerprint
    assert key_fingerprint(load_public_key(public_pem.decode())) == fingerprint
    assert key_fingerprint(load_private_key(private_pem)) == fingerprint
    raw = load_public_key(public_pem).public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    assert fingerprint == hashlib.sha256(raw).hexdigest()
    assert key_fingerprint(generate_keypair()[1]) != fingerprint


def test_write_keypair_protects_the_private_key(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path / "keys")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert (private_path.name, public_path.name) == ("mlops.key", "mlops.pub")
    assert public_key_pem(load_private_key(private_path)) == public_path.read_bytes()


def test_write_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path)
    before = (private_path.read_bytes(), public_path.read_bytes())
    with pytest.raises(InvalidInput, match="already exists"):
        write_keypair(tmp_path)
    assert (private_path.read_bytes(), public_path.read_bytes()) == before
    # A lone public key blocks the pair too, and nothing is left half-written.
    (tmp_path / "other.pub").write_text("keep me")
    with pytest.raises(InvalidInput, match=r"other\.pub"):
        write_keypair(tmp_path, name="other")
    assert not (tmp_path / "other.key").exists()
    assert (tmp_path / "other.pub").read_text() == "keep me"


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_write_keypair_rejects_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        write_keypair(tmp_path, name=name)


@pytest.mark.parametrize("garbage", [b"", b"garbage", "-----BEGIN PRIVATE KEY-----\nxx\n"])
def test_garbage_pem_is_invalid_input(garbage: bytes | str) -> None:
    with pytest.raises(InvalidInput):
        load_private_key(garbage)
    with pytest.raises(InvalidInput):
        load_public_key(garbage)


def test_garbage_key_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "broken.pub"
    path.write_bytes(b"\x00\x01 not a key")
    with pytest.raises(InvalidInput, match=r"broken\.pub"):
        load_public_key(path)
    with pytest.raises(NotFound):
        load_public_key(tmp_path / "missing.pub")


def test_rsa_and_ec_keys_are_rejected() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    for key in (rsa_key, ec_key):
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(InvalidInput, match="is not an Ed25519 key"):
            load_private_key(private_pem)
        with pytest.raises(InvalidInput, match="is not an Ed25519 key"):
            load_public_key(public_pem)
        with pytest.raises(InvalidInput, match="is not an Ed25519 key"):
            verify_digest(public_pem, DIGEST, "AAAA")


def test_private_and_public_keys_are_not_confused() -> None:
    private_pem, public_pem = generate_keypair()
    with pytest.raises(InvalidInput, match="private key"):
        load_public_key(private_pem)
    with pytest.raises(InvalidInput, match="public key"):
        load_private_key(public_pem)


def test_encrypted_private_key_is_invalid_input() -> None:
    private_key = load_private_key(generate_keypair()[0])
    encrypted = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(InvalidInput, match="encrypted"):
        load_private_key(encrypted)


def test_empty_digest_cannot_be_signed() -> None:
    with pytest.raises(InvalidInput):
        sign_digest(generate_keypair()[0], "")
