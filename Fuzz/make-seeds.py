#!/usr/bin/env python3
"""Writes the seed corpora of Fuzz/ (all but FuzzJWT's, which make-jwt-seeds.py writes): client
frames from docs/PROTOCOL.md, WebSocket frames as browsers and servers send them, Redis replies
captured from a real redis-server (started here on a free port), HTTP requests, and decimals as
exchanges send them. Run it again after a protocol change:

    python3 Fuzz/make-seeds.py
"""
import base64, hashlib, hmac, os, pathlib, socket, struct, subprocess, tempfile, time

corpus = pathlib.Path(__file__).resolve().parent / "Corpus"


def write(target, name, data):
    folder = corpus / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


frames = [
    '{"action":"subscribe","channel":"prices","symbols":["BTC","ETH"],"request_id":"r1"}',
    '{"action":"unsubscribe","channel":"prices","symbols":["SOL"]}',
    '{"action":"subscribe","channel":"notifications","user_id":"alice","since":"1733900000000-0","request_id":7}',
    '{"action":"unsubscribe","channel":"notifications","user_id":"alice"}',
    '{"action":"ping","request_id":"p-1"}',
    '{"action":"auth","token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}',
    '{"action":"subscribe","channel":"prices","symbols":[]}',
    '{"action":"publish"}',
    '{"action":"subscribe","channel":"prices","symbols":["btc\\u0000"]}',
    '[1,2,3]',
]
for index, frame in enumerate(frames):
    write("FuzzClientMessages", f"frame-{index:02}", frame)
    write("FuzzJSONDifferential", f"frame-{index:02}", frame)
for index, text in enumerate(['{"a":1.5e10,"b":[true,false,null],"c":"\\ud83d\\ude00 \\n"}', '-0.0', '"\\u00e9"',
                              '{"a":{"a":{"a":[[[]]]}}}', '123456789012345678901234567890', ' [ 1 , "x" ] ']):
    write("FuzzJSONDifferential", f"json-{index:02}", text)


def ws_frame(opcode, payload, fin=True, mask=True):
    header = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    bit = 0x80 if mask else 0
    if length < 126:
        header += bytes([bit | length])
    elif length < 65536:
        header += bytes([bit | 126]) + struct.pack("!H", length)
    else:
        header += bytes([bit | 127]) + struct.pack("!Q", length)
    if not mask:
        return header + payload
    key = b"\x37\xfa\x21\x3d"
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# The first byte chooses the role (even: frames a client sends, masked) and the read split.
client = [
    ws_frame(1, frames[0].encode()),
    ws_frame(1, b'{"action":', fin=False) + ws_frame(9, b"hi") + ws_frame(0, b'"ping"}'),
    ws_frame(2, bytes(range(200))),
    ws_frame(8, struct.pack("!H", 1000) + b"bye"),
    ws_frame(10, b""),
    ws_frame(1, "h\u00e9llo \U0001F600".encode()),
    ws_frame(1, b"x" * 70000),
]
for index, stream in enumerate(client):
    write("FuzzWebSocketFrames", f"client-{index:02}", bytes([index * 2 % 256]) + stream)
server = [ws_frame(1, b'{"type":"connected"}', mask=False) + ws_frame(9, b"", mask=False),
          ws_frame(8, struct.pack("!H", 4001), mask=False)]
for index, stream in enumerate(server):
    write("FuzzWebSocketFrames", f"server-{index:02}", bytes([index * 2 + 1]) + stream)

decimals = ["67187.3358936566 0.000012345679", "1.5e-5 -3", "61696.68 100", "-0.00 +12.",
            "99999999999999999999999999999999999999 1", "123456789012345678901234567890.123456789 .5",
            "1e400 2", "3.64 -1.23e-10"]
for index, text in enumerate(decimals):
    write("FuzzDecimalDifferential", f"decimal-{index:02}", text)

requests = [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/prices HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\nHEAD /readyz HTTP/1.1\r\nHost: x\r\n\r\n",
    b'POST /api/v1/publish HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer fuzz-api-key-0123456789abcdef\r\nContent-Type: application/json\r\nContent-Length: 84\r\n\r\n{"user_id":"alice","event":"balance","data":{"asset":"BTC","available":"1.5","total":"1.5"}}',
    b"POST /api/v1/prices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET /metrics HTTP/1.0\r\n\r\n",
    b"DELETE /api/v1/publish HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
]
# A plain upgrade with a valid token and a frame behind it, the common case FirstRequestHandler takes
# without the HTTP pipeline (HS256 with FuzzHTTP's secret, sub "fuzz", exp in 2100).
def base64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=")
signing_input = base64url(b'{"alg":"HS256","typ":"JWT"}') + b"." + base64url(b'{"sub":"fuzz","exp":4102444800}')
token = signing_input + b"." + base64url(hmac.new(b"fuzz-jwt-secret-0123456789abcdefghij", signing_input, hashlib.sha256).digest())
subscribe = b'{"action":"subscribe","channel":"prices","symbols":["BTC"]}'
requests.append(
    b"GET /ws?token=" + token + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    + bytes([0x81, 0x80 | len(subscribe), 1, 2, 3, 4]) + bytes(byte ^ (1, 2, 3, 4)[i % 4] for i, byte in enumerate(subscribe)))
# The first byte steers how FuzzHTTP splits the rest into reads: 21 gives one read of it all.
for index, request in enumerate(requests):
    write("FuzzHTTP", f"request-{index:02}", bytes([21]) + request)

# Redis replies, as a real redis-server sends them (RESP2, then RESP3 after HELLO 3).
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
workdir = tempfile.mkdtemp()
server_process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--dir", workdir],
                                  stdout=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            connection = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.05)

    def command(*parts):
        request = f"*{len(parts)}\r\n" + "".join(f"${len(p.encode())}\r\n{p}\r\n" for p in parts)
        connection.sendall(request.encode())
        time.sleep(0.05)
        return connection.recv(65536)

    replies = [
        command("PING"), command("SET", "k", "v"), command("GET", "k"), command("GET", "missing"),
        command("INCR", "n"), command("LPUSH", "l", "a", "b"), command("LRANGE", "l", "0", "-1"),
        command("XADD", "s", "*", "event", "balance", "data", "{}"), command("XRANGE", "s", "-", "+"),
        command("EVAL", "return {1, 'two', {3}}", "0"), command("NOPE"),
        command("HELLO", "3"), command("HSET", "h", "f", "1"), command("HGETALL", "h"),
        command("SMEMBERS", "l"), command("SUBSCRIBE", "prices"),
    ]
    publisher = socket.create_connection(("127.0.0.1", port))
    publisher.sendall(b"*3\r\n$7\r\nPUBLISH\r\n$6\r\nprices\r\n$13\r\n{\"BTC\":\"1.0\"}\r\n")
    time.sleep(0.05)
    replies.append(connection.recv(65536))
    for index, reply in enumerate(replies):
        write("FuzzRESP", f"reply-{index:02}", bytes([index]) + reply)
    write("FuzzRESP", "all", b"\x07" + b"".join(replies))
    write("FuzzRESP", "resp3-types", b"\x03" + b"_\r\n#t\r\n,3.14\r\n(3492890328409238509324850943850943825024385\r\n=15\r\ntxt:Some string\r\n~2\r\n+a\r\n:1\r\n!5\r\nERROR\r\n")
finally:
    server_process.kill()
print(f"seeds written to {corpus}")
