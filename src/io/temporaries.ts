// Temporary files written in place of a target (writer/output-file.ts registers them): nothing is
// left behind, a registered file is removed when the process is interrupted (SIGINT, SIGTERM,
// SIGHUP) or exits before it was published.
import fs from 'node:fs';

// The one registry kept at module level, on purpose: signals and 'exit' are process-wide, and a
// library caller (no CLI) interrupted mid-write must leave nothing behind either; nothing reads it
// but the cleanup.
const temporaries = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type CleanupSignal = (typeof SIGNALS)[number];

/** Records that `temp` is being written (until `forgetTemporary`): an interruption removes it. */
export function registerTemporary(temp: string): void {
  if (temporaries.size === 0) armCleanup();
  temporaries.add(temp);
}

/** Records that `temp` was published or removed: the cleanup leaves it alone. */
export function forgetTemporary(temp: string): void {
  if (!temporaries.delete(temp)) return;
  if (temporaries.size === 0) disarmCleanup();
}

function removeAllSync(): void {
  for (const temp of temporaries) {
    try {
      fs.rmSync(temp, { force: true });
    } catch {
      // Best effort: the process is going away; an unremovable file cannot be helped here.
    }
  }
  temporaries.clear();
}

/**
 * Removes every temporary file, then lets the signal do what it would have done: with no other
 * listener the default action (the process ends by the signal, exit status 128+n in a shell).
 * An application with its own listener keeps the decision.
 */
function onSignal(signal: CleanupSignal): void {
  removeAllSync();
  disarmCleanup();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function armCleanup(): void {
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', removeAllSync);
}

function disarmCleanup(): void {
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeAllSync);
}
