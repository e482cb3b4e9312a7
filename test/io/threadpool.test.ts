import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { threadpoolSize } from '../../src/io/threadpool.js';
import { REPO_ROOT } from '../support/fixtures.js';
import { buildCli } from '../convert/support.js';

describe('threadpoolSize', () => {
  it('reads UV_THREADPOOL_SIZE the way libuv does', () => {
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: '12' })).toBe(12);
    expect(threadpoolSize({})).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: '0' })).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: 'many' })).toBe(4);
    expect(threadpoolSize({ UV_THREADPOOL_SIZE: '5000' })).toBe(1024);
  });

  it('bin/mram.js gives libuv 12 threads before the pool starts, unless the user chose a size', () => {
    buildCli();
    // A preload counts the process's threads at exit; the pool starts with the command's first file read.
    const probe = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mram-pool-')), 'probe.cjs');
    fs.writeFileSync(probe, "process.on('exit', () => require('fs').writeSync(2, `threads ${require('fs').readdirSync('/proc/self/task').length}\\n`));\n");
    const threads = (env: NodeJS.ProcessEnv) => {
      const r = spawnSync(process.execPath, ['--require', probe, path.join(REPO_ROOT, 'bin/mram.js'), 'inspect', path.join(REPO_ROOT, 'samples/guest-8m.mig')], { encoding: 'utf8', env });
      expect(r.status).toBe(0);
      return Number(/threads (\d+)/.exec(r.stderr)?.[1]);
    };
    const { UV_THREADPOOL_SIZE: _, ...env } = process.env;
    expect(threads(env) - threads({ ...env, UV_THREADPOOL_SIZE: '4' })).toBe(8);
    fs.rmSync(path.dirname(probe), { recursive: true });
  });
});
