#!/usr/bin/env python3
"""Checks tests/vectors/v1.json and v2.json with libsodium (through PyNaCl)
and an HKDF-SHA256 written from RFC 5869, and tests/vectors/csrf.json with
HMAC-SHA256, following docs/FORMAT.md and nothing else.

Usage: python3 tests/vectors/verify_libsodium.py [FILE.json ...]
Needs: pip install pynacl
"""
import base64
import binascii
import hashlib
import hmac
import json
import pathlib
import re
import sys

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
from nacl.exceptions import CryptoError

INFO = b"sealed-session v1 token xchacha20poly1305"
# FORMAT.md section 1, written here, not read from the files this checks.
CSRF_INFO = b"sealed-session v1 csrf hmac-sha256"
CSRF_MAC_PREFIX = b"sealed-session csrf v1"
B64URL = re.compile(r"[A-Za-z0-9_-]*")


def hkdf_sha256(ikm, salt, info, length):
    prk = hmac.new(salt or b"\0" * 32, ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def decode_canonical(text):
    """Canonical unpadded base64url, or None."""
    if not B64URL.fullmatch(text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
        return None  # non-zero unused bits
    return raw


class Reader:
    """Strict postcard reader: raises ValueError on anything FORMAT.md refuses."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("envelope too short")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def varint(self, bits=64):
        value = 0
        for index in range(-(-bits // 7)):
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << (7 * index)
            if not byte & 0x80:
                if index > 0 and byte == 0:
                    raise ValueError("varint not minimal")
                if value >> bits:
                    raise ValueError("varint overflows its type")
                return value
        raise ValueError("varint too long")

    def string(self):
        return self.take(self.varint()).decode("utf-8")


def open_token(vectors, text, purpose, now, versioned=False, opener=None):
    """Returns (envelope dict, plaintext, key and profile) or the name of the error. The
    application's data type is {name, visits}, wrapped in the crate's
    Versioned framing if `versioned`. `opener` may take away the file's
    remember-me profile ("remember_me": false) or device-bound lifetime
    ("device_bound": false)."""
    opener = opener or {}
    has_remember = "remember_absolute_timeout" in vectors and opener.get("remember_me", True)
    has_bound = "device_bound_lifetime" in vectors and opener.get("device_bound", True)
    keys = {k["id"]: k for k in vectors["keys"]}
    if len(text.encode()) > vectors["max_token_len"]:  # bytes, as FORMAT.md step 1 counts
        return "TooLarge"
    raw = decode_canonical(text)
    if raw is None or len(raw) < 45:
        return "Malformed"
    if raw[0] not in (1, 2):
        return f"UnsupportedVersion({raw[0]})"
    prefix = 5 if raw[0] == 1 else 6
    if len(raw) < prefix + 24 + 16:
        return "Malformed"
    flags = raw[1] if raw[0] == 2 else 0
    if flags & ~0x07:
        return "Malformed"
    key_id = int.from_bytes(raw[prefix - 4:prefix], "big")
    if key_id not in keys:
        return f"UnknownKey({key_id})"
    if keys[key_id]["state"] == "retired" or now >= keys[key_id].get("retire_at", now + 1):
        return f"RetiredKey({key_id})"
    if keys[key_id]["state"] == "active" and keys[key_id].get("activate_at", now) > now + vectors["leeway"]:
        return "NotYetValid"  # a key scheduled to seal later (a primary key's date counts for nothing)
    remembered = bool(flags & 0x01)
    if remembered and not has_remember:
        return "Invalid"  # this opener has no remember-me profile
    if raw[0] == 2 and bool(flags & 0x02) != versioned:
        return "Invalid"  # not the kind of data this opener reads
    device_bound = bool(flags & 0x04)
    if device_bound and not has_bound:
        return "Invalid"  # this opener takes no device-bound sessions
    key = hkdf_sha256(bytes.fromhex(keys[key_id]["secret"]), b"", INFO, 32)
    if raw[0] == 1:
        # Version 1 says the profile and the kind of data in the purpose:
        # the standard profile first, then the remember-me one if this
        # opener has it; the one that authenticates decides the timeouts.
        suffix = "+versioned" if versioned else ""
        candidates = [(purpose + suffix, False)]
        if has_remember:
            candidates.append((purpose + "+remember" + suffix, True))
    else:
        candidates = [(purpose, remembered)]
    plaintext = None
    for candidate, profile in candidates:
        if len(candidate.encode()) > 123:
            continue  # a purpose longer than 123 bytes in the associated data never opens
        aad = raw[:prefix] + candidate.encode()
        try:
            plaintext = crypto_aead_xchacha20poly1305_ietf_decrypt(raw[prefix + 24:], aad, raw[prefix:prefix + 24], key)
        except CryptoError:
            continue
        remembered = profile
        break
    if plaintext is None:
        return "Invalid"
    r = Reader(plaintext)
    try:
        env = {"issued_at": r.varint(), "expires_at": r.varint(), "last_seen": r.varint(),
               "session_id": r.take(16).hex()}
        tag = r.take(1)[0]
        if tag not in (0, 1):
            raise ValueError("option tag")
        env["user_id"] = r.string() if tag == 1 else None
        env["epoch"] = r.varint()
    except (ValueError, UnicodeDecodeError):
        return "Malformed"
    try:
        if versioned:
            env["data_version"] = r.varint(32)
            if env["data_version"] != vectors["data_version"]:
                raise ValueError("a data version the application does not read")
            inner = Reader(r.take(r.varint()))
            env["data"] = {"name": inner.string(), "visits": inner.varint(32)}
            if inner.pos != len(inner.data):
                raise ValueError("bytes left over in the versioned data")
        else:
            env["data"] = {"name": r.string(), "visits": r.varint(32)}
    except (ValueError, UnicodeDecodeError):
        return "DataMismatch"
    if r.pos != len(plaintext):
        return "DataMismatch"
    absolute = vectors["remember_absolute_timeout"] if remembered else vectors["absolute_timeout"]
    idle = vectors["remember_idle_timeout"] if remembered else vectors["idle_timeout"]
    if device_bound:
        idle = vectors["device_bound_lifetime"]  # counted from the last proof
    if env["issued_at"] > now + vectors["leeway"] or env["last_seen"] > now + vectors["leeway"]:
        return "NotYetValid"
    if now >= env["expires_at"] or now >= env["issued_at"] + absolute:
        return "Expired(Absolute)"
    if now >= env["last_seen"] + idle:
        return "Expired(Idle)"
    meta = {"key_id": key_id, "remembered": remembered}
    if raw[0] == 2:
        meta.update(flags=flags, device_bound=device_bound)
    return env, plaintext, meta


def check(path):
    vectors = json.loads(path.read_text())
    failures = 0
    for v in vectors["valid"]:
        versioned = "data_version" in v
        result = open_token(vectors, v["token"], v.get("purpose", vectors["purpose"]), v.get("now", vectors["now"]), versioned)
        fields = ["issued_at", "expires_at", "last_seen", "session_id", "user_id", "epoch", "data"]
        expected = {k: v[k] for k in fields + (["data_version"] if versioned else [])}
        # What this verifier found out itself: the key, and the profile that
        # authenticated (in version 1, which purpose did; in version 2, the flags).
        profile = {k: v[k] for k in ("key_id", "remembered", "flags", "device_bound") if k in v}
        if isinstance(result, str) or result[0] != expected or result[1].hex() != v["plaintext"] or result[2] != profile:
            print(f"FAIL {path.name} valid {v['name']!r}: {result}")
            failures += 1
    for v in vectors["invalid"]:
        opener = v.get("opener", {})
        result = open_token(vectors, v["token"], v.get("purpose", vectors["purpose"]), v.get("now", vectors["now"]),
                            opener.get("versioned", False), opener)
        if result != v["error"]:
            print(f"FAIL {path.name} invalid {v['name']!r}: expected {v['error']}, got {result if isinstance(result, str) else 'success'}")
            failures += 1
    total = len(vectors["valid"]) + len(vectors["invalid"])
    print(f"libsodium, {path.name}: {total - failures} passed, {failures} failed")
    return failures


def verify_csrf(vectors, session_id, token, now):
    """None if `token` (48 characters, or 96 masked) is the session's CSRF
    token under a key that takes it at `now`; else the name of the error."""
    if token == "":
        return "Missing"
    if len(token) not in (48, 96):
        return "Invalid"
    raw = decode_canonical(token)
    if raw is None:
        return "Invalid"
    if len(raw) == 72:  # masked: pad, then pad XOR token
        raw = bytes(p ^ m for p, m in zip(raw[:36], raw[36:]))
    keys = {k["id"]: k for k in vectors["keys"]}
    key = keys.get(int.from_bytes(raw[:4], "big"))
    if key is None or key["state"] == "retired" or now >= key.get("retire_at", now + 1):
        return "Invalid"
    if key["state"] == "active" and key.get("activate_at", now) > now + vectors["leeway"]:
        return "Invalid"
    csrf_key = hkdf_sha256(bytes.fromhex(key["secret"]), b"", CSRF_INFO, 32)
    mac = hmac.new(csrf_key, CSRF_MAC_PREFIX + session_id, hashlib.sha256).digest()
    return None if hmac.compare_digest(mac, raw[4:]) else "Invalid"


def check_csrf(path):
    vectors = json.loads(path.read_text())
    # The file names the constants too; it must agree with FORMAT.md's.
    assert vectors["hkdf_info"].encode() == CSRF_INFO, vectors["hkdf_info"]
    assert vectors["mac_prefix"].encode() == CSRF_MAC_PREFIX, vectors["mac_prefix"]
    session_id = bytes.fromhex(vectors["session_id"])
    failures = 0
    for v in vectors["valid"]:
        pad = base64.urlsafe_b64decode(v["masked"] + "==")[:36].hex()
        for form in ("token", "masked"):
            result = verify_csrf(vectors, session_id, v[form], v["now"])
            if result is not None or pad != v["pad"]:
                print(f"FAIL {path.name} valid {v['name']!r} ({form}): {result}")
                failures += 1
    for v in vectors["invalid"]:
        result = verify_csrf(vectors, session_id, v["token"], v.get("now", vectors["now"]))
        if result != v["error"]:
            print(f"FAIL {path.name} invalid {v['name']!r}: expected {v['error']}, got {result or 'success'}")
            failures += 1
    total = 2 * len(vectors["valid"]) + len(vectors["invalid"])
    print(f"HMAC, {path.name}: {total - failures} passed, {failures} failed")
    return failures


def main():
    here = pathlib.Path(__file__).parent
    paths = [pathlib.Path(p) for p in sys.argv[1:]] or [here / "v1.json", here / "v2.json", here / "csrf.json"]
    failures = sum(check_csrf(path) if path.name == "csrf.json" else check(path) for path in paths)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
