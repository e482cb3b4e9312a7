// libuv's threadpool runs every asynchronous file operation; its size is fixed when the pool
// starts, from UV_THREADPOOL_SIZE (libuv: default 4, at most 1024). bin/mram.js sets it early.

/** Threads in libuv's pool, as libuv reads UV_THREADPOOL_SIZE (read before the pool started, it is the pool's size). */
export function threadpoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number.parseInt(env.UV_THREADPOOL_SIZE ?? '', 10);
  return n > 0 ? Math.min(n, 1024) : 4;
}
