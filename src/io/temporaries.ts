// Temporary files written in place of a target (writer/output-file.ts registers them). Messages
// name the target the user asked for, and nothing is left behind: a registered file is removed
// when the process is interrupted (SIGINT, SIGTERM, SIGHUP) or exits before it was published.
import fs from 'node:fs';

const temporaries = new Map<string, string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type CleanupSignal = (typeof SIGNALS)[number];

/** Records that `temp` is being written to become `target` (until `forgetTemporary`). */
export function registerTemporary(temp: string, target: string): void {
  if (temporaries.size === 0) armCleanup();
  temporaries.set(temp, target);
}

export function forgetTemporary(temp: string): void {
  if (!temporaries.delete(temp)) return;
  if (temporaries.size === 0) disarmCleanup();
}

/** The target a registered temporary file becomes, if `path` is one. */
export function targetOf(path: string): string | undefined {
  return temporaries.get(path);
}

/** The name to show for a file being written: its target when it is a registered temporary file. */
export function shownPath(path: string): string {
  return temporaries.get(path) ?? path;
}

function removeAllSync(): void {
  for (const temp of temporaries.keys()) {
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
