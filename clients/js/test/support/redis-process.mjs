// A real redis-server on a free loopback port, for tests that need a cluster.

import { execFileSync, spawn } from "node:child_process";
import net from "node:net";

export function redisAvailable() {
  try {
    execFileSync("which", ["redis-server"]);
    return true;
  } catch {
    return false;
  }
}

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export class RedisProcess {
  #child;

  static async start() {
    const redis = new RedisProcess();
    redis.port = await freePort();
    redis.#child = spawn("redis-server", ["--port", String(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    const reap = () => redis.#child.kill("SIGKILL");
    process.once("exit", reap);
    redis.#child.once("exit", () => process.off("exit", reap));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const open = await new Promise((resolve) => {
        const socket = net.connect(redis.port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
      if (open) return redis;
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  stop() {
    this.#child.kill("SIGKILL");
  }
}
