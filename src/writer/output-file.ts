// A file that appears under its final name only when complete: written under a temporary name
// beside the target, published at the end, removed on failure or interruption.
import { nodeCrypto } from '../io/builtins.js';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../format/errors.js';
import { forgetTemporary, registerTemporary } from '../io/temporaries.js';

// A name of up to 255 bytes must leave room for the prefix and suffix (extract --all cuts names at 244).
const MAX_NAMED_TEMP = 200;

/**
 * `.NAME.mram-tmp-PID` in the target's directory (same filesystem, so the publish is atomic);
 * `.mram-tmp-PID-HASH` when NAME is too long to carry along.
 */
export function tempPathFor(target: string): string {
  const base = path.basename(target);
  if (Buffer.byteLength(base) <= MAX_NAMED_TEMP) return path.join(path.dirname(target), `.${base}.mram-tmp-${process.pid}`);
  const h = nodeCrypto().createHash('sha256').update(base).digest('hex').slice(0, 16);
  return path.join(path.dirname(target), `.mram-tmp-${process.pid}-${h}`);
}

/** Refuses to write `output` when it is the file `input` (same device and inode: a hard link or another spelling). */
export function refuseSameFile(input: string, output: string): void {
  const a = fs.statSync(input, { throwIfNoEntry: false });
  const b = fs.statSync(output, { throwIfNoEntry: false });
  if (a && b && a.dev === b.dev && a.ino === b.ino) throw new UsageError(`${output} is the input file ${input} (the input is never overwritten)`);
}

/**
 * Whether `target` exists for the purpose of --force: anything under the name counts, a dangling
 * symbolic link included (publishing replaces the link itself, never the file it points to).
 */
function existingTarget(target: string): fs.Stats | undefined {
  const l = fs.lstatSync(target, { throwIfNoEntry: false });
  if (!l?.isSymbolicLink()) return l;
  return fs.statSync(target, { throwIfNoEntry: false }) ?? l;
}

/** An error creating the temporary file, said about the target and its directory. */
function createFailure(e: NodeJS.ErrnoException, target: string): unknown {
  const dir = path.dirname(target) || '.';
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return Object.assign(new Error(`cannot create ${target}: directory ${dir} does not exist`), { code: e.code });
  if (e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS') return Object.assign(new Error(`cannot create ${target}: ${dir} is not writable (${e.code})`), { code: e.code });
  return Object.assign(new Error(`cannot create ${target}: ${e.message}`), { code: e.code });
}

/** A file written under a temporary name and published under its target's name when complete. */
export class OutputFile {
  private done = false;

  private constructor(
    readonly target: string,
    readonly tempPath: string,
    private readonly force: boolean,
  ) {}

  /** Refuses an existing target unless `force`; creates the empty temporary file. */
  static async create(target: string, force = false): Promise<OutputFile> {
    const existing = existingTarget(target);
    if (existing && !force) throw new UsageError(`${target} exists (use --force to overwrite it)`);
    // --force replaces a file, never a device, pipe or directory that happens to have the name.
    if (existing && !existing.isFile() && !existing.isSymbolicLink()) throw new UsageError(`${target} exists and is not a regular file`);
    const tmp = tempPathFor(target);
    // Registered before it exists: a signal arriving while it is created still removes it.
    registerTemporary(tmp);
    try {
      // Guest memory is private: 0600, as QEMU creates its migration files.
      const h = await fsp.open(tmp, 'wx', 0o600).catch(async (e: NodeJS.ErrnoException) => {
        // A leftover of this very PID (earlier attempt in the same process) is ours to replace.
        if (e.code !== 'EEXIST') throw createFailure(e, target);
        await fsp.rm(tmp, { force: true });
        return fsp.open(tmp, 'wx', 0o600).catch((e2: NodeJS.ErrnoException) => {
          throw createFailure(e2, target);
        });
      });
      await h.close();
    } catch (e) {
      forgetTemporary(tmp);
      throw e;
    }
    return new OutputFile(target, tmp, force);
  }

  /**
   * Publishes the finished temporary file under the target's name and makes that durable. Without
   * `force` the publish is a hard link, which fails if the name appeared meanwhile (two writers
   * racing for one name: exactly one wins); with `force`, a rename replaces what is there.
   */
  async commit(): Promise<void> {
    if (this.force) await fsp.rename(this.tempPath, this.target);
    else await this.linkNoReplace();
    this.done = true;
    forgetTemporary(this.tempPath);
    const dir = await fsp.open(path.dirname(this.target), 'r').catch(() => null);
    if (dir) {
      await dir.sync().catch(() => undefined);
      await dir.close();
    }
  }

  private async linkNoReplace(): Promise<void> {
    try {
      await fsp.link(this.tempPath, this.target);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new UsageError(`${this.target} appeared while writing it (use --force to overwrite it)`);
      // Filesystems without hard links (vfat, some FUSE): check, then rename (not atomic there).
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EMLINK') throw e;
      if (existingTarget(this.target)) throw new UsageError(`${this.target} appeared while writing it (use --force to overwrite it)`);
      await fsp.rename(this.tempPath, this.target);
      return;
    }
    await fsp.rm(this.tempPath, { force: true });
  }

  /** Removes the temporary file (no-op after commit). */
  async discard(): Promise<void> {
    if (!this.done) await fsp.rm(this.tempPath, { force: true });
    this.done = true;
    forgetTemporary(this.tempPath);
  }
}
