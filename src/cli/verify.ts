// Placeholder until the verify command lands (owned by another engineer; replace this file whole).
import { EXIT_FAILURE, type CliIO } from './io.js';

export async function verify(_args: string[], io: CliIO): Promise<number> {
  io.stderr.write('mram verify: not built yet\n');
  return EXIT_FAILURE;
}
