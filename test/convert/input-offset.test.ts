// Inputs whose QEMU stream starts at byte N (`migrate file:IN,offset=N`): convert --input-offset N
// reads them; without it every command names where the stream starts instead of only the magic.
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { getFixture } from '../support/fixtures.js';
import { describeQemu, loadGuest } from '../support/qemu.js';
import { convertSuite, firstDifferentPage, runCli } from './support.js';

const scratch = convertSuite();
const oneLine = (s: string) => expect(s.trimEnd().split('\n')).toHaveLength(1);

describeQemu('a QEMU stream at an offset of the input', () => {
  it('plain stream saved with file:IN,offset=1M: convert --input-offset 1M writes mapped-ram that QEMU loads byte for byte', async () => {
    const fx = await getFixture('stream-off-32m');
    expect(fx.meta.offset).toBe(1048576);
    const out = path.join(scratch(), `off-${fx.meta.generation ?? '10'}.mram`);
    const r = runCli(['convert', fx.file, out, '--input-offset', '1M']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The output's own offset is separate: 0 here.
    expect(fs.readFileSync(out).subarray(0, 4).toString('latin1')).toBe('QEVM');
    const { ram } = await loadGuest({ file: out, mappedRam: true, memMiB: 32 });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('--input-offset and --offset together: the input read at one offset, the output written at another', async () => {
    const fx = await getFixture('stream-off-32m');
    const out = path.join(scratch(), 'off-both.mram');
    expect(runCli(['convert', fx.file, out, '--input-offset', String(fx.meta.offset), '--offset', '4096']).status).toBe(0);
    const { ram } = await loadGuest({ file: out, offset: 4096, mappedRam: true, memMiB: 32 });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('mapped-ram saved at an offset: convert --input-offset N --to stream, QEMU loads the stream', async () => {
    const fx = await getFixture('mr-off-32m');
    const out = path.join(scratch(), 'mr-off.stream');
    const r = runCli(['convert', fx.file, out, '--input-offset', String(fx.meta.offset)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { ram } = await loadGuest({ file: out, mappedRam: false, memMiB: 32 });
    expect(firstDifferentPage(ram, fs.readFileSync(fx.ramImage))).toBe(-1);
  });

  it('without an offset, convert, inspect, verify and extract name where the stream starts, in one line', async () => {
    const fx = await getFixture('stream-off-32m');
    const out = path.join(scratch(), 'never.mram');
    const c = runCli(['convert', fx.file, out]);
    expect(c.status).toBe(1);
    oneLine(c.stderr);
    expect(c.stderr).toMatch(/found 0x58585858; a QEMU stream starts at offset 1048576: use --input-offset 1048576$/m);
    expect(fs.existsSync(out)).toBe(false);
    for (const args of [['inspect', fx.file], ['extract', fx.file, '--block', 'mem', '-o', path.join(scratch(), 'x.ram')]]) {
      const r = runCli(args);
      expect(r.status).toBe(1);
      oneLine(r.stderr);
      expect(r.stderr).toMatch(/a QEMU stream starts at offset 1048576: use --offset 1048576$/m);
    }
    const v = runCli(['verify', fx.file]);
    expect(v.status).toBe(1);
    expect(v.stdout.toString() + v.stderr).toMatch(/E_MAGIC .*a QEMU stream starts at offset 1048576: use --offset 1048576/);
    // And with --offset the same file inspects cleanly.
    expect(runCli(['inspect', fx.file, '--offset', '1048576']).status).toBe(0);
  });

  it('a file with no stream anywhere in the searched prefix keeps the plain magic error', () => {
    const bad = path.join(scratch(), 'no-stream.bin');
    fs.writeFileSync(bad, Buffer.alloc(3 << 20, 'H'));
    const r = runCli(['inspect', bad]);
    expect(r.status).toBe(1);
    oneLine(r.stderr);
    expect(r.stderr).toMatch(/found 0x48484848$/m);
  });

  it('usage: --input-offset with stdin, or beyond the file, is refused', async () => {
    const fx = await getFixture('stream-off-32m');
    expect(runCli(['convert', '-', path.join(scratch(), 'p.mram'), '--input-offset', '4096'], Buffer.alloc(0)).status).toBe(64);
    const r = runCli(['convert', fx.file, path.join(scratch(), 'q.mram'), '--input-offset', '1G']);
    expect(r.status).toBe(64);
    expect(r.stderr).toMatch(/--input-offset 1073741824 is outside/);
  });
});
