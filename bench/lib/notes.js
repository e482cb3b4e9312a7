// Hand-written findings for the "## End to end" section (kept here so a re-run regenerates the
// figures without losing the analysis). Figures quoted here come from the runs named in the text.
export const FINDINGS = `### What keeps mram from its targets

I found these with \`node --cpu-prof\` (above) and one \`strace -f -tt -T\` timeline of \`mram convert\`,
not by guessing. The A/B sweeps ran on the same 2 GiB input, interleaved with dd. The machine was
shared (load average 5–7 from other jobs during these runs), so the same command varies by up to
±40% from one run to the next. Read only the pairwise ratios, and only differences larger than that.

**convert (write): limited by the write pipeline, not by the CPU or the format.**

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
  slots" row, a 30-line C writer built at run time), runs at about 0.93× dd. The final
  \`fdatasync\` is not the gap either: it costs 0.56–0.68 s in all three writers (mram, dd, and
  the layout writer). That is the virtio disk's flush.
- *The strace timeline* (one run, strace overhead included): the first page write comes 0.31 s
  after the first read (module load, wasm compile, stream header), plus about 0.2 s of node
  start-up before that under this load. Then come 2082 \`pwrite64\` calls of 518 KB on average.
  Writes in flight average only 0.5–1.4 per 250 ms window, and the bytes written in each window
  equal the bytes read in it. Then \`fdatasync\` takes 0.68 s. So the disk sits at queue depth
  ≤ 1 with gaps while the main thread is idle too: production and writing take turns instead of
  overlapping. dd keeps exactly one 1 MiB write in flight without gaps.
- *Tuning sweeps* (in process, \`stager\` options; 3–4 interleaved repetitions each): extent size
  2–32 MiB, extents in flight 1–8, \`maxWrites\` 1–6 and \`UV_THREADPOOL_SIZE\` 4 or 16. None of
  them separated from the noise; the same setting ranged from 2.5 to 6.4 s. The best medians came
  from fewer outstanding writes: 4 MiB × 2 in flight took 2.64 s and 8 MiB × 1 took 2.82 s,
  against 3.50 s for the default then (8 MiB × 4). More outstanding
  writes never helped.
- *Proposed (for the convert owner; not applied):* hand the disk one ordered stream of ≤ 1 MiB
  writes. Issue each 1 MiB (or each finished run) as soon as its pages are staged, rather than
  when an 8 MiB extent is full, and keep 1–2 writes in flight. Check it with this suite's
  "convert vs dd at the slots" ratio; it should go to ≥ 0.9 before anything else is tuned. Node
  start-up plus module and wasm load (≈ 0.3–0.5 s here) is about 10–15% of a 1 GiB convert, so
  0.9× dd also needs the writes to overlap that start-up: start writing before the wasm kernel is
  compiled, or compile it lazily or asynchronously.

**verify --digest: bounded by SHA-256 of the guest-visible bytes. The target cannot be reached on this machine as defined.**

- \`Hash.update\` takes 71–78% of the main thread. Read, scan and idle time together take under 15%.
- The digest covers every byte the guest sees (2 GiB here, holes included), whereas dd reads the
  1 GiB of present pages. SHA-256 runs at 1.28 GB/s in node (64 MiB buffers, quiet moment) and
  at 1.64 GB/s in \`openssl speed\` (16 KiB) on this CPU, so hashing alone needs 1.3–1.7 s. dd
  iflag=direct reads 1 GiB in 0.7–1.6 s. Even with free reads, verify --digest would reach about
  0.45–0.55× dd at best. Reaching 0.9× would need SHA-256 at twice the disk's read speed.
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
