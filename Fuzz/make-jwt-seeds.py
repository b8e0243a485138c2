#!/usr/bin/env python3
"""Makes FuzzJWT's keys and seed tokens: a fresh key of each kind (RSA 2048, P-256, Ed25519, and an
HMAC secret), tokens signed with each accepted algorithm, and Sources/FuzzJWT/Keys.swift with the
public keys and every signing input that was signed, so the target can tell a forgery from a real
token. The private keys are thrown away. Needs only python3 and the openssl command.

    python3 Fuzz/make-jwt-seeds.py
"""
import base64, json, os, pathlib, secrets, subprocess, tempfile

here = pathlib.Path(__file__).resolve().parent
corpus = here / "Corpus" / "FuzzJWT"
keys_swift = here / "Sources" / "FuzzJWT" / "Keys.swift"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, data=b""):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def der_to_raw(der: bytes) -> bytes:
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JOSE's r || s, 32 bytes each."""
    assert der[0] == 0x30
    index = 2
    parts = []
    for _ in range(2):
        assert der[index] == 0x02
        length = der[index + 1]
        value = der[index + 2:index + 2 + length]
        parts.append(value.lstrip(b"\0").rjust(32, b"\0"))
        index += 2 + length
    return b"".join(parts)


work = pathlib.Path(tempfile.mkdtemp())
openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(work / "rsa.pem"))
openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(work / "ec.pem"))
openssl("genpkey", "-algorithm", "ED25519", "-out", str(work / "ed.pem"))
public = {name: openssl("pkey", "-in", str(work / f"{name}.pem"), "-pubout").decode() for name in ("rsa", "ec", "ed")}
secret = secrets.token_urlsafe(32)


def sign(algorithm: str, signing_input: bytes) -> bytes:
    bits = algorithm[2:]
    if algorithm.startswith("HS"):
        return openssl("dgst", f"-sha{bits}", "-mac", "HMAC", "-macopt", f"key:{secret}", "-binary", data=signing_input)
    if algorithm.startswith("RS"):
        return openssl("dgst", f"-sha{bits}", "-sign", str(work / "rsa.pem"), "-binary", data=signing_input)
    if algorithm == "ES256":
        return der_to_raw(openssl("dgst", "-sha256", "-sign", str(work / "ec.pem"), "-binary", data=signing_input))
    (work / "input").write_bytes(signing_input)
    return openssl("pkeyutl", "-sign", "-inkey", str(work / "ed.pem"), "-rawin", "-in", str(work / "input"))


far, past = 4102444800, 1600000000  # 2100-01-01, 2020-09-13
claims_variants = [
    {"sub": "alice", "exp": far},
    {"sub": "bob", "exp": far, "iat": past, "nbf": past, "iss": "https://auth.example", "aud": "tickwire"},
    {"sub": "carol", "exp": past},
    {"sub": "dave", "exp": far, "nbf": far - 10},
    {"exp": far},
    {"sub": "erin"},
    {"sub": "x" * 129, "exp": far},
    {"sub": "frank", "exp": "soon"},
]
signed = []
valid = []
count = 0
for algorithm, kid in [("HS256", None), ("HS384", "hmac"), ("HS512", None), ("RS256", "rsa"), ("RS384", None),
                       ("RS512", None), ("ES256", "ec"), ("EdDSA", "ed")]:
    for claims in claims_variants:
        header = {"alg": algorithm, "typ": "JWT"}
        if kid:
            header["kid"] = kid
        signing_input = f"{b64(json.dumps(header, separators=(',', ':')).encode())}.{b64(json.dumps(claims, separators=(',', ':')).encode())}"
        token = f"{signing_input}.{b64(sign(algorithm, signing_input.encode()))}"
        signed.append(signing_input)
        if claims is claims_variants[0]:
            valid.append(token)
        (corpus / f"{algorithm}-{count:02}").write_text(token)
        count += 1
# Tokens no key signed: alg none, an HMAC token keyed with the RSA public key (algorithm confusion).
mallory = b64(b'{"sub":"mallory","exp":4102444800}')
none_input = b64(b'{"alg":"none"}') + "." + mallory
(corpus / "none").write_text(none_input + ".")
confused_input = b64(b'{"alg":"HS256","kid":"rsa"}') + "." + mallory
confused = openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt", f"key:{public['rsa']}", "-binary", data=confused_input.encode())
(corpus / "confused").write_text(f"{confused_input}.{b64(confused)}")

lines = ["// Made by Fuzz/make-jwt-seeds.py: the keys FuzzJWT verifies with, and every signing input",
         "// their private keys (thrown away) signed. A token accepted with any other is a forgery.",
         f"let hmacSecret = {json.dumps(secret)}",
         f"let rsaPublicKey = \"\"\"\n{public['rsa']}\"\"\"",
         f"let p256PublicKey = \"\"\"\n{public['ec']}\"\"\"",
         f"let ed25519PublicKey = \"\"\"\n{public['ed']}\"\"\"",
         "let signedInputs: Set<String> = ["]
lines += [f"    \"{item}\"," for item in signed]
lines += ["]", "/// One token per algorithm that must be accepted: without them the forgery check could pass", "/// with keys that accept nothing.", "let validTokens = ["]
lines += [f"    \"{item}\"," for item in valid]
lines += ["]", ""]
keys_swift.write_text("\n".join(lines))
print(f"{count + 2} seed tokens in {corpus}, keys in {keys_swift}")
