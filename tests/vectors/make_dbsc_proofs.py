#!/usr/bin/env python3
"""Writes tests/vectors/dbsc_proofs.json: DBSC proofs (compact JWS, `typ`
`dbsc+jwt`) made with the `cryptography` package from the draft's "DBSC
Proof JWT Syntax" (w3c/webappsec-dbsc, spec.bs) and RFC 7515/7517/7518/7638
alone, each with what a server must make of it. tests/dbsc_proofs.rs checks
the library against every one.

The keys are made afresh on each run, so the file changes when it is made
again; the expectations do not.

Usage: python3 tests/vectors/make_dbsc_proofs.py
Needs: pip install cryptography
"""
import base64
import hashlib
import json
import pathlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def ec_jwk(key):
    numbers = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x.to_bytes(32, "big")), "y": b64(numbers.y.to_bytes(32, "big"))}


def rsa_jwk(key):
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "n": b64(uint(numbers.n)), "e": b64(uint(numbers.e))}


def thumbprint(jwk):
    # RFC 7638: the required members, lexicographic order, no whitespace.
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(canonical.encode()).digest())


def sign(key, alg, signing_input, der=False):
    if alg == "ES256":
        signature = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
        if der:
            return signature
        r, s = decode_dss_signature(signature)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def jws(header, claims, key, alg, raw_header=None, der=False, tamper=False, raw_claims=None):
    head = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":"))
    body = raw_claims if raw_claims is not None else json.dumps(claims, separators=(",", ":"))
    signing_input = f"{b64(head.encode())}.{b64(body.encode())}"
    signature = sign(key, alg, signing_input.encode(), der)
    if tamper:
        tampered = dict(claims, jti=claims["jti"] + "x")
        signing_input = f"{b64(head.encode())}.{b64(json.dumps(tampered, separators=(',', ':')).encode())}"
    return f"{signing_input}.{b64(signature)}"


def main():
    device = ec.generate_private_key(ec.SECP256R1())
    other = ec.generate_private_key(ec.SECP256R1())
    device_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    weak_rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk, jwk_rsa = ec_jwk(device), rsa_jwk(device_rsa)
    reg = {"typ": "dbsc+jwt", "alg": "ES256", "jwk": jwk}
    claims = {"jti": "cv", "authorization": "ac"}
    off_curve = dict(jwk, y=b64(((int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big") + 1) % 2**256).to_bytes(32, "big")))

    vectors = []

    def add(name, proof, check="registration", offered=("ES256", "RS256"), authorization="ac", bound=None, expect="ok", jti="cv", key=None):
        vector = {"name": name, "proof": proof, "check": check, "offered": list(offered), "authorization": authorization, "bound_key": bound, "expect": expect}
        if expect == "ok":
            vector["jti"] = jti
            vector["thumbprint"] = thumbprint(key)
        vectors.append(vector)

    add("es256_registration", jws(reg, claims, device, "ES256"), key=jwk)
    add("rs256_registration", jws(dict(reg, alg="RS256", jwk=jwk_rsa), claims, device_rsa, "RS256"), key=jwk_rsa)
    add("registration_without_authorization", jws(reg, {"jti": "c2"}, device, "ES256"), authorization=None, jti="c2", key=jwk)
    add("extra_members_are_ignored", jws(dict(reg, kid="k1"), dict(claims, aud="https://example.com/reg", iat=1725579055), device, "ES256"), key=jwk)
    add("es256_refresh", jws({"typ": "dbsc+jwt", "alg": "ES256"}, {"jti": "r1"}, device, "ES256"), check="refresh", authorization=None, bound="es256", jti="r1", key=jwk)
    add("rs256_refresh", jws({"typ": "dbsc+jwt", "alg": "RS256"}, {"jti": "r2"}, device_rsa, "RS256"), check="refresh", authorization=None, bound="rs256", jti="r2", key=jwk_rsa)

    add("alg_none", jws(dict(reg, alg="none"), claims, device, "ES256"), expect="UnsupportedAlgorithm")
    add("alg_hs256", jws(dict(reg, alg="HS256"), claims, device, "ES256"), expect="UnsupportedAlgorithm")
    add("alg_not_offered", jws(dict(reg, alg="RS256", jwk=jwk_rsa), claims, device_rsa, "RS256"), offered=("ES256",), expect="AlgorithmNotOffered")
    add("typ_jwt", jws(dict(reg, typ="JWT"), claims, device, "ES256"), expect="WrongType")
    add("typ_missing", jws({"alg": "ES256", "jwk": jwk}, claims, device, "ES256"), expect="WrongType")
    add("registration_without_key", jws({"typ": "dbsc+jwt", "alg": "ES256"}, claims, device, "ES256"), expect="MissingKey")
    add("key_of_another_algorithm", jws(dict(reg, alg="RS256"), claims, device_rsa, "RS256"), expect="MissingKey")
    add("signed_by_another_key", jws(reg, claims, other, "ES256"), expect="BadSignature")
    add("payload_changed_after_signing", jws(reg, claims, device, "ES256", tamper=True), expect="BadSignature")
    add("der_signature", jws(reg, claims, device, "ES256", der=True), expect="BadSignature")
    add("authorization_differs", jws(reg, dict(claims, authorization="other"), device, "ES256"), expect="AuthorizationMismatch")
    add("authorization_missing", jws(reg, {"jti": "cv"}, device, "ES256"), expect="AuthorizationMismatch")
    # The payload "MUST contain at least" jti, and authorization only if the
    # header sent one: a claim the server did not ask for is no error.
    add("authorization_not_sent_but_claimed", jws(reg, claims, device, "ES256"), authorization=None, key=jwk)
    add("point_off_the_curve", jws(dict(reg, jwk=off_curve), claims, device, "ES256"), expect="InvalidKey")
    add("rsa_1024_bits", jws(dict(reg, alg="RS256", jwk=rsa_jwk(weak_rsa)), claims, weak_rsa, "RS256"), expect="InvalidKey")
    add("crv_p384", jws(dict(reg, jwk=dict(jwk, crv="P-384")), claims, device, "ES256"), expect="InvalidKey")
    add("kty_oct", jws(dict(reg, jwk={"kty": "oct", "k": "AAAA"}), claims, device, "ES256"), expect="InvalidKey")
    add("crit_header", jws(dict(reg, crit=["b64"], b64=False), claims, device, "ES256"), expect="Malformed")
    duplicate = '{"typ":"dbsc+jwt","alg":"ES256","alg":"ES256","jwk":' + json.dumps(jwk, separators=(",", ":")) + "}"
    add("duplicate_header_member", jws(None, claims, device, "ES256", raw_header=duplicate), expect="Malformed")
    # A member read here, named twice in the payload or the key: refused.
    add("duplicate_payload_member", jws(reg, None, device, "ES256", raw_claims='{"jti":"cv","jti":"other","authorization":"ac"}'), expect="Malformed")
    twice_x = json.dumps(jwk, separators=(",", ":"))[:-1] + ',"x":' + json.dumps(off_curve["x"]) + "}"
    duplicate_key = '{"typ":"dbsc+jwt","alg":"ES256","jwk":' + twice_x + "}"
    add("duplicate_key_member", jws(None, claims, device, "ES256", raw_header=duplicate_key), expect="Malformed")
    # The key belongs in the header ("DBSC Proof JWT Syntax"); one in the
    # payload, as the draft's older example has it, is no key.
    add("jwk_in_payload", jws({"typ": "dbsc+jwt", "alg": "ES256"}, dict(claims, jwk=jwk), device, "ES256"), expect="MissingKey")
    add("jti_missing", jws(reg, {"authorization": "ac"}, device, "ES256"), expect="Malformed")
    add("jti_not_a_string", jws(reg, {"jti": 5, "authorization": "ac"}, device, "ES256"), expect="Malformed")
    good = jws(reg, claims, device, "ES256")
    head, payload, signature = good.split(".")
    add("padded_base64", f"{head}.{payload}.{signature}==", expect="Malformed")
    add("four_parts", f"{good}.x", expect="Malformed")
    add("header_not_json", f"{b64(b'not json')}.{payload}.{signature}", expect="Malformed")
    add("too_long", f"{head}.{b64(json.dumps(dict(claims, pad='x' * 7000)).encode())}.{signature}", expect="TooLong")
    add("refresh_with_a_key", jws(reg, {"jti": "r1"}, device, "ES256"), check="refresh", authorization=None, bound="es256", expect="UnexpectedKey")
    add("refresh_signed_by_another_key", jws({"typ": "dbsc+jwt", "alg": "ES256"}, {"jti": "r1"}, other, "ES256"), check="refresh", authorization=None, bound="es256", expect="BadSignature")
    add("refresh_with_another_algorithm", jws({"typ": "dbsc+jwt", "alg": "RS256"}, {"jti": "r1"}, device_rsa, "RS256"), check="refresh", authorization=None, bound="es256", expect="AlgorithmNotOffered")

    out = {
        "about": "DBSC proofs made by tests/vectors/make_dbsc_proofs.py (Python cryptography); checked by tests/dbsc_proofs.rs",
        "keys": {"es256": jwk, "rs256": jwk_rsa},
        "vectors": vectors,
    }
    path = pathlib.Path(__file__).with_name("dbsc_proofs.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{path}: {len(vectors)} vectors")


if __name__ == "__main__":
    main()
