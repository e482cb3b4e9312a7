// A file that appears under its final name only when complete: written under a temporary name
// beside the target, renamed at the end, removed on failure.
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../format/errors.js';
import { forgetTemporary, registerTemporary } from '../io/direct-writer.js';

/** `.NAME.mram-tmp-PID` in the target's directory (same filesystem, so rename is atomic). */
export function tempPathFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.mram-tmp-${process.pid}`);
}

export class OutputFile {
  private done = false;

  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private readonly force: boolean,
  ) {}

  /** Refuses an existing target unless `force`; creates the empty temporary file. */
  static async create(target: string, force = false): Promise<OutputFile> {
    const existing = fs.statSync(target, { throwIfNoEntry: false });
    if (existing && !force) throw new UsageError(`${target} exists (use --force to overwrite it)`);
    // --force replaces a file, never a device, pipe or directory that happens to have the name.
    if (existing && !existing.isFile()) throw new UsageError(`${target} exists and is not a regular file`);
    const tmp = tempPathFor(target);
    // Guest memory is private: 0600, as QEMU creates its migration files.
    const h = await fsp.open(tmp, 'wx', 0o600).catch(async (e: NodeJS.ErrnoException) => {
      // A leftover of this very PID (earlier attempt in the same process) is ours to replace.
      if (e.code !== 'EEXIST') throw e;
      await fsp.rm(tmp, { force: true });
      return fsp.open(tmp, 'wx', 0o600);
    });
    await h.close();
    registerTemporary(tmp, target);
    return new OutputFile(target, tmp, force);
  }

  /** Moves the finished temporary file over the target and makes the rename durable. */
  async commit(): Promise<void> {
    if (!this.force && fs.existsSync(this.target)) throw new UsageError(`${this.target} appeared while converting (use --force to overwrite it)`);
    await fsp.rename(this.tempPath, this.target);
    this.done = true;
    forgetTemporary(this.tempPath);
    const dir = await fsp.open(path.dirname(this.target), 'r').catch(() => null);
    if (dir) {
      await dir.sync().catch(() => undefined);
      await dir.close();
    }
  }

  /** Removes the temporary file (no-op after commit). */
  async discard(): Promise<void> {
    if (!this.done) await fsp.rm(this.tempPath, { force: true });
    this.done = true;
    forgetTemporary(this.tempPath);
  }
}
