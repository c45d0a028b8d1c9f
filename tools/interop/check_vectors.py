# Reproduces the worked example of docs/PROTOCOL.md from the document alone, in Python, as a
# second implementation would: DH, handshake, key schedule, frames, bincode, E2E keys.
# Usage: python3 tools/interop/check_vectors.py docs/PROTOCOL.md   (needs `pip install 'cryptography>=44'`)
import re, hashlib, hmac, struct, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

doc = open(sys.argv[1]).read()
block = doc[doc.index("<!-- vectors:begin -->"):doc.index("<!-- vectors:end -->")]
vals = {}; cur=None
for line in block.splitlines():
    m = re.match(r"^(\w+) \((\d+) bytes\):$", line)
    if m: cur=m.group(1); vals[cur]=""; continue
    if cur and line.startswith("  "): vals[cur]+=line.strip().strip('"')
V = {k:(bytes.fromhex(v) if not k.startswith("e2e_safety") else v) for k,v in vals.items()}
p = int.from_bytes(V["p"], "big"); g=2
enc = lambda x: x.to_bytes(256,"big")
c = int.from_bytes(V["client_secret"],"big"); s=int.from_bytes(V["server_static_secret"],"big"); e=int.from_bytes(V["server_ephemeral_secret"],"big")
e_c=pow(g,c,p); e_s=pow(g,e,p); S=pow(g,s,p)
assert enc(e_c)==V["e_c"] and enc(e_s)==V["e_s"] and enc(S)==V["S"]
ch = b"UCHT"+struct.pack(">H",2)+enc(e_c)+V["client_nonce"]
assert ch==V["client_hello"], "client hello"
name=b"uchat-test"
cert = bytes([1])+struct.pack(">Q",1700000000)+enc(S)+bytes([len(name)])+name
assert cert==V["certificate"]
assert hashlib.sha256(enc(S)).digest()==V["fingerprint"]
flight=V["server_flight"]
sh = b"UCHT"+struct.pack(">HB",2,0)+enc(e_s)+V["server_nonce"]+struct.pack(">H",len(cert))+cert
assert flight[:-32]==sh
TH=hashlib.sha256(ch+sh).digest()
ikm=enc(pow(e_s,c,p))+enc(pow(S,c,p))
assert ikm[:256]==V["dh_ephemeral"] and ikm[256:]==V["dh_static"]
prk=hmac.new(TH, ikm, hashlib.sha256).digest()
def expand(label,n=32): return HKDFExpand(hashes.SHA256(), n, label).derive(prk)
k={n:expand(("uchat v1 "+n.replace("_"," ")).encode()) for n in ["c2s_enc","c2s_mac","s2c_enc","s2c_mac"]}
for n in k: assert k[n]==V[n], n
fin=hmac.new(expand(b"uchat v1 server finished"), TH, hashlib.sha256).digest()
assert fin==flight[-32:], "finished"
def seal(ek, mk, seq, pt, iv):
    pad=16-len(pt)%16; data=pt+bytes([pad])*pad
    ct=Cipher(algorithms.AES(ek), modes.CBC(iv)).encryptor().update(data)
    L=struct.pack(">I",len(ct))
    d=hmac.new(mk, struct.pack(">Q",seq)+L+bytes([pad])+iv+ct, hashlib.md5).hexdigest().encode()
    return L+bytes([pad])+iv+d+ct
# Ping request: ClientMessage::Request{id:1, body: Ping{nonce:42}}
ping = struct.pack("<I",0)+struct.pack("<Q",1)+struct.pack("<I",20)+struct.pack("<Q",42)
assert ping==V["ping_plaintext"], "ping"
pong = struct.pack("<I",0)+struct.pack("<Q",1)+struct.pack("<I",0)+struct.pack("<I",14)+struct.pack("<Q",42)
assert pong==V["pong_plaintext"], "pong"
iva=bytes(range(16)); ivb=bytes(range(16,32))
assert seal(k["c2s_enc"],k["c2s_mac"],0,ping,iva)==V["c2s_frame_seq0"]
assert seal(k["c2s_enc"],k["c2s_mac"],1,ping,iva)==V["c2s_frame_seq1"]
assert seal(k["s2c_enc"],k["s2c_mac"],0,pong,ivb)==V["s2c_frame_seq0"]
# E2E
A=pow(g,c,p); B=S
z=enc(pow(B,c,p))
prk2=hmac.new(b"uchat e2e v1", z, hashlib.sha256).digest()
pw=HKDFExpand(hashes.SHA256(),64,b"uchat e2e v1 pairwise"+struct.pack(">QQ",1,2)).derive(prk2)
assert pw==V["e2e_pairwise_1_2"], "pairwise"
h=hashlib.sha512(b"uchat safety number v1"+struct.pack(">Q",1)+enc(A)+struct.pack(">Q",2)+enc(B)).digest()
sn=" ".join("%05d"%(int.from_bytes(h[i*5:i*5+5],"big")%100000) for i in range(12))
assert sn==V["e2e_safety_number_1_2"], (sn, V["e2e_safety_number_1_2"])
# E2E sealed messages (section 6): user 1 writes "hi 你好" (14 pt, rgb 200 30 30) with
# client_msg_id 16 x 11, to user 2 in conversation 7, and to users 2 and 3 in conversation 9.
def pairwise(secret, other_pub, low, high):
    z = enc(pow(other_pub, secret, p))
    prk = hmac.new(b"uchat e2e v1", z, hashlib.sha256).digest()
    return HKDFExpand(hashes.SHA256(), 64, b"uchat e2e v1 pairwise"+struct.pack(">QQ",low,high)).derive(prk)
C = pow(g, e, p)  # user 3's public key (the server's ephemeral secret is its key here)
pw13 = pairwise(c, C, 1, 3)
assert pw13 == V["e2e_pairwise_1_3"], "pairwise 1-3"
def u64(n): return struct.pack("<Q", n)
def u32(n): return struct.pack("<I", n)
def byts(b): return u64(len(b)) + b
text = "hi 你好".encode()
body = u32(0) + byts(text) + bytes([14, 200, 30, 30])
assert body == V["e2e_body"], "body bincode"
def cbc(key, iv, pt):
    pad = 16 - len(pt) % 16
    return Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor().update(pt + bytes([pad])*pad)
def tag(mac_key, *parts): return hmac.new(mac_key, b"".join(parts), hashlib.md5).digest()
cmid = bytes([0x11])*16
def ctx(conversation): return struct.pack(">QQ", conversation, 1) + cmid
def sealed(key, label, context, pt, iv):
    ct = cbc(key[:32], iv, pt)
    return iv, ct, tag(key[32:], label, context, iv, ct)
iv, ct, mac = sealed(pw, b"uchat-e2e-v1 body", ctx(7), body, bytes([0xc0])*16)
assert u32(0) + iv + byts(ct) + mac == V["e2e_direct_envelope"], "direct envelope"
K = V["e2e_content_key"]
assert K == bytes(range(0x70, 0xb0)), "content key"
biv, bct, bmac = sealed(K, b"uchat-e2e-v1 body", ctx(9), body, bytes([0xd0])*16)
group = u32(1) + biv + byts(bct) + bmac + u64(2)
for r, key in ((2, pw), (3, pw13)):
    wiv, wct, wmac = sealed(key, b"uchat-e2e-v1 wrap", ctx(9) + struct.pack(">Q", r) + bmac, K, bytes([0xd0 + r])*16)
    assert len(wct) == 80
    group += u64(r) + wiv + byts(wct) + wmac
assert group == V["e2e_group_envelope"], "group envelope"
civ, cct, cmac = sealed(K, b"uchat-e2e-v1 chunk", struct.pack(">Q", 0), b"the first chunk", bytes([0xe0])*16)
assert civ + cct + cmac == V["e2e_chunk_0"], "attachment chunk"
# Account keys (section 6.4): the password stretched on the client, the private key wrapped.
password = "correct horse 电池".encode()
assert password == V["account_password"], "account password"
salt = bytes(range(0x90, 0xa0))
params = salt + u32(64) + u32(2) + u32(1)
assert params == V["account_kdf_params"], "kdf params bincode"
master = Argon2id(salt=salt, length=32, iterations=2, lanes=1, memory_cost=64).derive(password)
assert master == V["account_master_key"], "argon2id master key"
def account_key(info, n):
    return HKDF(hashes.SHA256(), n, b"uchat account v2", info).derive(master)
auth = account_key(b"uchat account v2 auth", 32)
assert auth == V["account_auth_key"], "auth key"
wrap = account_key(b"uchat account v2 key wrap", 64)
assert wrap == V["account_wrap_key"], "wrap key"
wiv, wct, wmac = sealed(wrap, b"uchat-key-wrap-v1", struct.pack(">QI", 1, 1), V["client_secret"], bytes([0xf0])*16)
assert u32(1) + wiv + byts(wct) + wmac == V["account_wrapped_key"], "wrapped private key"
print("all vectors reproduced independently")
