// A tiny WebSocket server for tests, no dependencies: Node's `http` upgrade and RFC 6455
// framing by hand. It does what a real gateway cannot be made to do on demand: fall
// silent, drop the TCP connection in the middle of a frame, close with any code.

import crypto from "node:crypto";
import http from "node:http";
import { waitFor } from "./harness.mjs";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa };

/** One server frame (servers never mask). */
export function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true } = {}) {
  const length = payload.length;
  let header;
  if (length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, length]);
  } else if (length < 65536) {
    header = Buffer.alloc(4);
    header.writeUInt16BE(length, 2);
    header[1] = 126;
  } else {
    header = Buffer.alloc(10);
    header.writeBigUInt64BE(BigInt(length), 2);
    header[1] = 127;
  }
  header[0] = (fin ? 0x80 : 0) | opcode;
  return Buffer.concat([header, payload]);
}

function closePayload(code, reason = "") {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code, 0);
  payload.write(reason, 2);
  return payload;
}

/** Parses the (masked) client frames out of a byte stream. */
class FrameReader {
  #buffer = Buffer.alloc(0);

  push(chunk) {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const frames = [];
    for (let frame = this.#next(); frame; frame = this.#next()) frames.push(frame);
    return frames;
  }

  #next() {
    const b = this.#buffer;
    if (b.length < 2) return null;
    const fin = (b[0] & 0x80) !== 0;
    const opcode = b[0] & 0x0f;
    const masked = (b[1] & 0x80) !== 0;
    let length = b[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return null;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return null;
      length = Number(b.readBigUInt64BE(2));
      offset = 10;
    }
    const maskLength = masked ? 4 : 0;
    if (b.length < offset + maskLength + length) return null;
    const mask = masked ? b.subarray(offset, offset + 4) : null;
    const payload = Buffer.from(b.subarray(offset + maskLength, offset + maskLength + length));
    if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
    this.#buffer = b.subarray(offset + maskLength + length);
    return { fin, opcode, payload };
  }
}

/** The server end of one WebSocket connection. */
export class ServerSocket {
  /** Every text message received, parsed as JSON (or the raw text when it is not JSON). */
  received = [];
  closed = false;
  /** The code of the client's close frame, if one came. */
  clientCloseCode = null;
  #socket;
  #reader = new FrameReader();
  #fragments = [];
  #listeners = new Set();

  constructor(socket, request) {
    this.#socket = socket;
    this.url = new URL(request.url, "http://localhost");
    this.headers = request.headers;
    socket.on("data", (chunk) => this.#read(chunk));
    socket.on("close", () => {
      this.closed = true;
    });
    socket.on("error", () => {});
  }

  /** Called with each parsed message; returns a function that removes the listener. */
  onMessage(fn) {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  send(value) {
    this.sendText(JSON.stringify(value));
  }

  sendText(text) {
    this.sendRaw(encodeFrame(OPCODE.text, Buffer.from(text)));
  }

  sendRaw(bytes) {
    if (!this.closed) this.#socket.write(bytes);
  }

  /** Starts the close handshake with `code`, and drops the TCP connection shortly after in any case. */
  close(code = 1000, reason = "") {
    this.sendRaw(encodeFrame(OPCODE.close, closePayload(code, reason)));
    setTimeout(() => this.#socket.destroy(), 200).unref();
  }

  /** Drops the TCP connection without a close frame. */
  destroy() {
    this.#socket.destroy();
  }

  /** The first received message matching `predicate`, waiting for it. */
  async waitForMessage(predicate, options = {}) {
    return waitFor(() => this.received.find(predicate), { message: "a client message", ...options });
  }

  #read(chunk) {
    for (const frame of this.#reader.push(chunk)) this.#frame(frame);
  }

  #frame({ fin, opcode, payload }) {
    if (opcode === OPCODE.close) {
      this.clientCloseCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      this.sendRaw(encodeFrame(OPCODE.close, payload.subarray(0, 2)));
      this.#socket.end();
      return;
    }
    if (opcode === OPCODE.ping) {
      this.sendRaw(encodeFrame(OPCODE.pong, payload));
      return;
    }
    if (opcode === OPCODE.pong) return;
    this.#fragments.push(payload);
    if (!fin) return;
    const text = Buffer.concat(this.#fragments).toString("utf8");
    this.#fragments = [];
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      message = text;
    }
    this.received.push(message);
    for (const fn of [...this.#listeners]) fn(message);
  }
}

/** A WebSocket server on 127.0.0.1; `onConnection(socket)` runs for each upgraded connection. */
export class WebSocketTestServer {
  sockets = [];
  onConnection = () => {};
  #server;
  #tcp = new Set();

  static async start(options = {}) {
    const server = new WebSocketTestServer();
    await server.listen(options.port ?? 0);
    return server;
  }

  async listen(port) {
    this.#server = http.createServer((request, response) => {
      response.writeHead(426).end();
    });
    this.#server.on("connection", (socket) => {
      this.#tcp.add(socket);
      socket.on("close", () => this.#tcp.delete(socket));
    });
    this.#server.on("upgrade", (request, socket) => this.#upgrade(request, socket));
    await new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", resolve);
    });
    this.port = this.#server.address().port;
    this.url = `ws://127.0.0.1:${this.port}/ws`;
  }

  #upgrade(request, socket) {
    const key = request.headers["sec-websocket-key"];
    const accept = crypto.createHash("sha1").update(key + GUID).digest("base64");
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const ws = new ServerSocket(socket, request);
    this.sockets.push(ws);
    this.onConnection(ws);
  }

  /** Waits for the n-th connection (1-based) and returns it. */
  async connection(n, options = {}) {
    return waitFor(() => this.sockets[n - 1], { message: `connection #${n}`, ...options });
  }

  /** Stops listening and drops every connection: the port then refuses connections. */
  async stop() {
    for (const socket of this.#tcp) socket.destroy();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}
