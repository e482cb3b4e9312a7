// Hand-written findings for the "## End to end" section (kept here so a re-run regenerates the
// figures without losing the analysis). Figures quoted here come from the runs named in the text.
export const FINDINGS = `### What keeps mram from its targets

I found these with \`node --cpu-prof\` (above), in-process timelines of \`mram convert\`, \`perf trace\`
of the page writes, \`/sys/block/vda/stat\` and \`strace -T\` of the peers' \`fdatasync\`, not by guessing.
The A/B batches ran on a 2 GiB guest shaped like this one (1.08 GB plain stream from the page cache),
each command once per round, rounds repeated 8–10 times, ratios taken round by round against dd and
against the C layout writer. The machine is shared, so the same command varies by up to ±40% from one
run to the next. Read only the pairwise ratios, and only differences larger than that.

**convert (write): at the C layout writer's speed once Node has started; that writer is itself
0.45–1.13× dd depending on the hour, because the mapped-ram layout needs twice dd's write requests.**

*2026-11-26, third session:*

- *A deeper write queue* (f968417). ext4 runs one file's allocating O_DIRECT writes one at a time
  (non-overwrite direct writes take the inode lock exclusively), so queueing more writes does
  not put more on the disk at once. It does keep writes waiting in the kernel while the main
  thread pauses (a \`stagePageRecords\` call over a 16 MiB input buffer, a GC, a read).
  \`perf trace\` of the old code: no page write in flight for 142 ms of the 1371 ms write phase,
  in 76 gaps (median 0.68 ms, longest 11 ms), and each MiB took 18% longer to complete than in
  the C writer. With 3 writes in flight (libuv's default pool of 4 threads, one kept for
  reads), a few milliseconds of main-thread work drained the queue. Now the CLI gives libuv 12
  threads and the stager keeps 10 writes (pool − 2) in flight. The pool's size is
  fixed when libuv starts it, at the ESM loader's first asynchronous read, so \`bin/mram.js\` is
  a CommonJS file that sets \`UV_THREADPOOL_SIZE\` first (a test checks the thread count).
  f968417 also raised the extents in flight from 4 to 8 (peak RSS 120 → 148–157 MiB); a later
  batch (8 rounds, ratio to the C writer) found 8 extents 0.87, 3 extents 0.88, 3 extents with an
  8 MiB input buffer 0.89, 5 extents of 4 MiB 0.84, so the default went back to 4 (below).
  - Final A/B, 10 rounds: new code 2.12 s median, **0.83× dd, 0.88× the C layout writer**;
    previous defaults 2.45 s, 0.75× and 0.78×; C layout writer 1.85 s (0.93× dd); dd 1.71 s.
  - The sweeps before it (8 rounds each, 5 batches), ratio to the C layout writer: 10 writes +
    12 threads + 8 extents 0.84, 0.88, 0.73, 0.84 (best or tied best in every batch), previous
    defaults 0.76, 0.71, 0.78; 10 writes with libuv's 4 threads 0.80; 3 writes with 12 threads
    0.80; 1 write in flight 0.72 (previous 0.81 in that batch); 16 writes, 20 threads, 4 MiB
    extents 0.79; 8 extents alone 0.75.
  - No better, same batches: smaller arenas (extents of 1–4 MiB, input buffer 2–8 MiB) cut the
    page faults from 22k to 9.7k per run but not the time or the CPU; reading with \`readSync\`
    on the main thread 0.76; io_uring (\`UV_USE_IO_URING=1\`) 0.81 — libuv reads that variable
    once at start-up, before any JavaScript, and its SQPOLL thread adds ≈ 0.7 s of system time;
    files grown before the page writes or extended by them, 0.73× dd both (the spec's claim that
    growing first shortens the final fdatasync did not hold up, see below).
- *The suite on the 4 GiB guest* (5 runs each, ratios per run):
  - before f968417 (00:40 code): convert 0.59× dd (0.35–0.86), 0.81× the C layout writer, which
    itself ran at 0.56× dd (0.45–1.01): that hour's disk wrote dd's one contiguous file twice as
    fast as the holed layout;
  - f968417 (deeper queue): 0.84× dd (0.60–1.16), 0.94× the layout writer, layout writer 0.92× dd;
  - 2c8d477 (and the first write before the first extent fills): 0.89× dd (0.85–1.23), 0.90× the
    layout writer, layout writer 1.07× dd; convert's own times bimodal (2.62, 2.66 s against
    3.83–4.09 s: the final fdatasync, see below); peak RSS 157 MiB with 8 extents in flight.
  - 7d0c5ce (4 extents in flight again; the table above): 0.77× dd (0.64–1.17), **1.04× the
    layout writer (0.63–1.35)**, layout writer 0.82× dd (0.57–1.13); peak RSS 121 MiB.
  - Over the three suites of the deeper queue, 15 runs: median 0.85× dd (0.60–1.23). Against
    the layout writer mram went 0.94×, 0.90×, 1.04×: it now writes this file as fast as the C
    program does, and the ratio to dd follows that program's own ratio to dd (0.92×, 1.07×, 0.82×).
  - A 2 GiB suite of 2c8d477 (\`--gib 2\`, not kept): 0.59× dd (0.43–0.75), 0.68× the layout
    writer, which ran at 0.90× dd. Node's ≈ 0.3 s of fixed cost weighs twice as much there.
- *Where a 2 GiB convert's time goes now* (in-process timeline): Node's own start-up, ≈ 105 ms
  before the first line of \`bin/mram.js\` (\`node -e 0\` alone takes 120–170 ms here: 2,160
  page faults, and a first-touch page fault costs ≈ 15 µs on this VM — touching 64 MiB takes
  247 ms); the convert module graph (33 modules), ≈ 45 ms; the first page write ≈ 50–60 ms
  later (8 MiB of input and the first 8 MiB extent touched for the first time); the write phase;
  the final fdatasync; ≈ 20–25 ms to exit. dd's first write comes ≈ 10 ms after exec. Those
  ≈ 0.2 s are ≈ 10% of a 1 GiB convert and ≈ 5% of a 2 GiB one, hence the suite's default of
  the 4 GiB guest that issue #4 names (its RSS target is stated for that size).
- *The final fdatasync is the host's, random, and the same for every writer.* Timed with
  \`strace -T\` in consecutive runs: dd 26, 803, 187, 346, 940, 722, 757 ms; the C layout writer
  383–1019 ms; mram 55–1026 ms. It is the virtual disk's cache flush (one flush request each,
  \`/sys/block/vda/stat\`), so it adds spread to every ratio without favouring anyone.
- *The layout's own cost.* This guest's page area takes ≈ 2× dd's write requests: runs of 1–256
  pages (mean 512 KiB) give 2034 (C writer) and 2099 (mram) requests per GiB against dd's 1032.
  A request costs ≈ 70–120 µs of its own here (dd \`bs=128K\` against \`bs=1M\`, same GiB:
  2.1–2.4 s against 1.3–1.9 s). So the C program that writes exactly the mapped-ram layout,
  the hardware limit for the file this issue asks for, runs at 0.56× dd (0.45–1.01) in the
  4 GiB suite just before f968417, at 0.92× and 1.13× in the two 2 GiB suites of the second
  session and at 0.89–0.96× in the batches above. The convert/dd target is therefore met or
  missed by the hour's disk behaviour as much as by mram: mram can at best match that writer,
  less Node's start-up.

*Second session, 2026-11-26 — what the changes before bought* (before f968417; 2 GiB guest, 1.08 GB plain stream from the page cache; quiet machine unless noted):

- *Page records staged in place by the wasm kernel* (4402df2). The input is read straight into
  the arena (the prefetching cursor reads into its buffer, no staging copy), and
  \`stagePageRecords\` (\`assembly/stage.ts\`) decodes runs of CONTINUE PAGE/ZERO records there,
  copies each page to its extent slot and scans it in the same pass. There is no JavaScript per
  page any more. Main-thread profile with the output on tmpfs: before, 1267 ms (\`putPage\` 314 ms,
  \`writeBuffer\` 173, GC 91, prefetch copy 80, scan and locate 95). After, 878 ms (the kernel
  277 ms for 1 GiB of copy and scan, \`writeBuffer\` 163, GC 18). The pipeline without page writes
  (\`PageAreaFile.write\` replaced by a no-op, 3 runs each): 460–500 ms against 600–740 ms, with
  CPU user+sys 0.81–0.88 s against 1.07–1.26 s. On disk, in the same minutes, this alone moved
  convert from 0.60× to 0.67× dd (medians of 5 alternating runs of dd, old and new; load ≈ 2,
  with another benchmark running).
- *File sized past its page areas before the page writes* (2bfc2cc). On ext4, each O_DIRECT
  write that extends a file updates i_size and takes the orphan list, all of it journalled.
  With the file pre-sized, the in-process convert took a median of 2.0 s against 2.37 s over
  6 alternating runs, and the time after the last write (the \`fdatasync\`) fell from ≈ 0.85 s to
  ≈ 0.45 s. Whole process, paired with dd (6 runs, quiet): 0.70× dd (0.67–0.94), against 0.58×
  (0.51–0.85) for the code before both changes.
- *Suite, twice 5 runs, same code* (the table above is the second): 0.66× dd (0.41–0.95) in the
  first, 1.00× (0.59–1.27) in the second, so the suite's rule calls the target met in the second
  and missed in the first. Over all 10 runs the median is 0.67× dd (0.41–1.27). Against the C
  writer at the mapped-ram slots it is 0.79× (0.65–1.09), and that writer itself reached 0.92× and
  1.13× of dd in the two suites. On this VM one run of the same command differs from the next by
  up to ±40%, so I do not count the target as met.
- *What the write path is not.* These were in process, 5–6 alternating runs each:
  - The exact 2069 writes of a convert, replayed alone from wasm memory with \`writeSync\`,
    took 1.59–1.88 s in total, the same as the C layout writer (1.31–1.86 s). At queue depth 3
    through the threadpool they took 1.61–2.20 s. So the write list costs nothing.
  - Convert with every page write done by a blocking \`writeSync\` on the main thread, so that
    parsing and writing never overlap, had a median of 2.11 s. The asynchronous queue had
    2.15 s. The overlap buys nothing.
  - \`maxZeroGap\` 8/32/64/128 pages (2069/1874/1648/1193 writes) had medians of
    2.10/2.16/2.10/2.21 s. \`maxWrites\` 1/2/3 did not separate from the noise either.
- *What it is.* The C layout writer alone took a median of 1.67 s. With one busy vCPU elsewhere
  in the VM it took 1.81 s (ALU spin) or 1.84 s (memcpy loop), 6 alternating runs. Work in the
  guest slows this virtual disk by 8–10% per busy vCPU. \`vmstat\` over the main second of
  writing: the C writer pushed 974 MB/s with the CPUs mostly idle. convert pushed 600 MB/s with
  24% user and 26% system time across the 2 vCPUs, and 10.9k context switches/s against 4.0k.
  The copy itself is what convert must do and dd does not: a plain stream puts an 8-byte
  header before every page, so the kernel's read (1 GiB) and the copy to aligned slots (1 GiB
  in, 1 GiB out) cannot be avoided. The next levers are less CPU per byte and overlapping
  node's ≈ 0.1 s start-up.

*Earlier work, 2026-11-25 (before 4402df2):*

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

**extract** is I/O-bound (86–89% idle). Up to 7bcfe02 it wrote the raw image through the page
cache: 1.0–1.3 s, but 100% of the image (1 GiB) stayed resident and dirty, its disk writes left to
the kernel's writeback after the process had exited. It now writes with O_DIRECT from the reader's
arena (6ceb90b) into a file sized up front, and syncs before the rename: 0 B resident, the image's
sha256 equals the guest RAM's, and the time includes the writes reaching the disk (2.6–4.1 s on
this guest): the disk writing 1 GiB at queue depth 1 (ext4 serialises a file's O_DIRECT writes)
after a 0.6 s read.

**QEMU load** of our file and of QEMU's own file are within noise of each other. Both run at
about 0.1–0.2 GB/s, limited by the TCG destination rather than by the file. The load order
alternates between runs.
`;
