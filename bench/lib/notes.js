// Hand-written findings for the "## End to end" section (kept here so a re-run regenerates the
// figures without losing the analysis). Figures quoted here come from the runs named in the text.
export const FINDINGS = `### What keeps mram from its targets

I found these with \`node --cpu-prof\` (above), an in-process write timeline of \`mram convert\` and
\`strace -T\` of the peers' \`fdatasync\`, not by guessing. The A/B sweeps ran on the same 2 GiB input, interleaved with dd. The machine was
shared (load average 5–7 from other jobs during these runs), so the same command varies by up to
±40% from one run to the next. Read only the pairwise ratios, and only differences larger than that.

**convert (write): not limited by the CPU or by the format. What remains is start-up plus filling and draining the write pipeline (≈ 0.5 s per run here).**

- *Before the convert owner's hot-path work* (dist before 538b522/8c20921; one 2 GiB run): 6.05 s
  for 1 GiB of pages, 0.38× dd. The main thread was CPU-bound: 15% garbage collector, 13.5%
  \`PageStager.put\`, about 18% record decoding (\`readRamPayload\`, \`readRecords\`,
  \`readRamWord\`, \`readBytes\`, \`PrefetchFileCursor.fill\`), and only 29% idle. Every 4 KiB page
  went through two async-generator levels, 3–4 promises and several small objects.
- *After* 538b522 ("await-free hot path") and 8c20921 ("pages handed to the stager without a
  generator round trip"), main-thread CPU fell from about 3.7 s to 0.75–1.35 s per GiB. convert
  now takes 2.9–4.4 s, about 1.7× faster. The main thread is 64–72% idle. What CPU remains is
  \`putPage\` (7–9%: each stream page is copied into the O_DIRECT arena and scanned; the copy
  cannot be avoided because a plain stream puts an 8-byte header between pages), the prefetch
  copy (3%) and GC (3%).
- *The mapped-ram layout is not the gap.* Writing the same bytes at their mapped-ram slots, with
  holes between the runs, one O_DIRECT write of up to 1 MiB at a time (the "at the mapped-ram
  slots" row, a 30-line C writer built at run time), runs as fast as dd: 0.93× and 1.17× the
  speed of dd in the two full runs. The final
  \`fdatasync\` is not the gap either: it costs 0.3–0.75 s in all three writers (mram, dd, and
  the layout writer). That is the virtio disk's flush.
- *Timeline of one convert* (in process, with \`PageAreaFile.write\`, \`FileSource.readInto\` and
  the syncs wrapped with timers; the first attempt under \`strace -f\` slowed the syscalls so much
  that it suggested a stalling pipeline, which turned out to be wrong): the first page write
  comes 0.08–0.11 s after start. Then 2069 writes of about 520 KB each, with exactly 3 in flight
  (= \`maxWrites\`) the whole time and 2.6–3.1 ms per write, or about 560 MB/s. Bytes written per
  250 ms track the bytes read, so the parser keeps up. Then \`fdatasync\` takes 0.72–0.75 s.
  In-process total: 2.65–2.95 s; a whole process adds 0.15–0.25 s of node start-up.
- *The same minutes for the peers* (each write preceded by \`sync -f\`): dd took 1.44–1.88 s, of
  which \`fdatasync\` was 0.29–0.69 s, so about 1.2 s of writing (≈ 900 MB/s at queue depth 1,
  1 MiB). The layout writer took 1.77–2.08 s, of which \`fdatasync\` was 0.43–0.71 s, so about
  1.35 s of writing. mram's write phase (≈ 1.9 s) was about 1.4× the layout writer's in those
  minutes. The two experiments below show that neither mram's write pattern nor its three
  concurrent writes explain this.
- *Stager sweep* (in process, \`sync -f\` first, 3 interleaved repetitions, quieter period):
  8 MiB × 4 extents with \`maxWrites\` 3 (the current default): 2.50–2.84 s. \`maxWrites\` 2:
  2.62–2.88 s. \`maxWrites\` 1: 2.81–3.09 s. 1 MiB extents × 16 with \`maxWrites\` 1:
  2.76–3.15 s. dd: 1.28–2.03 s. The default is the best of these. Earlier sweeps
  (extent size 2–32 MiB, in flight 1–8, \`UV_THREADPOOL_SIZE\` 16) were lost in noise.
- *A measurement bias, now fixed* (0351cf9): the suite deleted the previous outputs just before
  each convert. ext4 then put those block frees into the journal commit of the next
  \`fdatasync\`, which was convert's. Every timed write now starts after \`sync -f\`.
- *One idea, prototyped and measured* (outside the repo, by patching \`PageAreaFile.write\`): a
  single \`worker_threads\` writer doing back-to-back \`fs.writeSync\` calls on the O_DIRECT fd,
  in submission order, from a shared page-aligned wasm memory. Over 3 interleaved repetitions it
  took 2.42–2.68 s with \`maxWrites\` 3 and 2.29–2.64 s with \`maxWrites\` 6, against 2.43–2.68 s
  for the current code (dd: 1.94–2.04 s in the quiet repetitions). That is at most a 5% gain, so
  it is not worth a worker. Side finding: the same writes from a buffer that is only 512-byte
  aligned (a plain \`SharedArrayBuffer\` with an offset that O_DIRECT accepts) took 24 s. The
  arena's 4 KiB alignment matters a great deal on this disk.
- *Replaying mram's own writes:* the 2069 page-area writes of one convert were recorded in
  submission order (median 488 KB, largest 2.2 MB; 573 of them completed out of file order) and
  replayed by a C program at queue depth 1. The replay took 1.55–2.20 s, the layout writer
  1.66–2.00 s, and mram convert in process 2.19–2.31 s (3 interleaved repetitions, quiet
  period). So mram's write pattern costs little. What remains in process, ≈ 0.3 s, is mram's own:
  the first write comes 0.1 s after start, the pipeline drains at the end, and there is
  main-thread work. A whole process adds ≈ 0.2 s of node start-up on top. In quiet minutes,
  whole-process convert is therefore ≈ 0.75–0.8× dd. The suite's 0.5–0.66× includes the
  contention from the other jobs and QEMU guests that ran alongside it.
- *Where the remaining 10–25% could come from* (convert owner): overlap start-up with the first
  writes (node start plus module and wasm load is ≈ 0.25 s, about 10% of a 1 GiB convert, less
  for bigger guests); make the first extent smaller so the disk starts earlier; and check the
  flush. mram's \`fdatasync\` took 0.72–0.75 s every time, while dd's ranged 0.29–0.69 s. The
  suite's "vs dd at the slots" ratio is the figure to move.

**verify --digest: bounded by SHA-256 of the guest-visible bytes. The target cannot be reached on this machine as defined.**

- \`Hash.update\` takes 71–78% of the main thread. Read, scan and idle time together take under 15%.
- The digest covers every byte the guest sees (2 GiB here, holes included), whereas dd reads the
  1 GiB of present pages. SHA-256 runs at 1.28 GB/s in node (64 MiB buffers, quiet moment) and
  at 1.64 GB/s in \`openssl speed\` (16 KiB) on this CPU, so hashing alone needs 1.3–1.7 s. dd
  iflag=direct reads the 1 GiB in 0.5–1.6 s (0.57 s median in the 5-run table). With reads
  costing nothing, hashing alone would still cap verify --digest at ≈ 0.33–0.44× dd. Reaching
  0.9× would need SHA-256 at about twice the disk's read speed.
- *Proposed (not applied; verify owner):* hash in a \`worker_threads\` worker over a shared wasm
  memory, so that hashing (one core) overlaps reading, scanning and masking (the other core).
  The read slots are released only after the worker has hashed them. That saves at most the
  non-hash 15–25% (≈ 2.4 → ≈ 1.9 s). \`mram verify\` without \`--digest\` is not hash-bound.
- For comparison, coreutils \`sha256sum\` of the same raw image is several times slower than
  \`verify --digest\` (see the table; its build does not use the SHA extensions), and it checks nothing.

**extract** is I/O-bound (86–89% idle). It writes the raw image through the page cache, so 100%
of it stays resident (1 GiB). That is not one of the targets, but if that matters, the O_DIRECT
stager that convert uses would fix it.

**QEMU load** of our file and of QEMU's own file are within noise of each other. Both run at
about 0.1–0.2 GB/s, limited by the TCG destination rather than by the file. The load order
alternates between runs.
`;
